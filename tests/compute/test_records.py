"""GDP candidates of validated records: the key hash is storage.models.key_hash, however the parts are cached."""

import hashlib
from datetime import UTC, date, datetime
from decimal import Decimal

from apps.compute.records import Shape, make_candidates
from apps.storage.models import KEY_MD5, dimensions_key, key_hash

SHAPE = Shape(entity_keys=("store",), dimensions=("region", "channel"), time_field="day",
              measures=(("revenue", "EUR"), ("units", "items")))  # fmt: skip


def test_every_candidate_key_is_the_key_hash_of_its_parts_also_when_its_dimensions_and_time_repeat():
    candidates = make_candidates(SHAPE, 7, 11)
    records = [
        {"store": "S1", "region": "north", "channel": "web", "day": date(2026, 1, 2), "revenue": Decimal("1.5"),
         "units": 3},
        {"store": "S2", "region": "north", "channel": "web", "day": date(2026, 1, 2), "revenue": None, "units": 0},
        {"store": "S1", "region": "south", "channel": "web", "day": date(2026, 1, 2), "revenue": Decimal("2"),
         "units": 1},
        {"store": "S1", "region": "north", "channel": "web", "day": datetime(2026, 1, 3, 12, tzinfo=UTC),
         "revenue": Decimal("4"), "units": 2},
        {"store": "é|\x1f", "region": "north", "channel": "web", "day": date(2026, 1, 2), "revenue": Decimal("1"),
         "units": 9},
        {"store": "S3", "region": "Île-de-France", "channel": "web", "day": date(2026, 1, 2), "revenue": None,
         "units": 4},
    ]  # fmt: skip
    for record in records:
        entity_key, dims, dims_key, observed_at, values = candidates(record)
        assert entity_key == record["store"]
        assert dims == {"region": record["region"], "channel": record["channel"]}
        assert dims.json == '{"channel":"web","region":"%s"}' % record["region"]  # noqa: UP031
        assert dims_key == hashlib.sha256(dims.json.encode()).hexdigest() == dimensions_key(dict(dims))
        day = record["day"]
        assert observed_at == (day if isinstance(day, datetime) else datetime(day.year, day.month, day.day, tzinfo=UTC))
        assert [(m, v, u) for m, v, u, _ in values] == [
            ("revenue", record["revenue"], "EUR"), ("units", record["units"], "items")
        ]  # fmt: skip
        for measure, _, _, key in values:
            assert key == key_hash(7, 11, measure, dims_key, observed_at, entity_key)
    assert type(candidates(records[0])[4][1][1]) is int  # an integer measure stays one (no Decimal made)


def test_a_record_without_a_time_has_no_keys():
    _, _, _, observed_at, values = make_candidates(SHAPE, 1, 1)({"store": "S1", "region": "n", "channel": "w",
                                                                 "revenue": Decimal(1)})  # fmt: skip
    assert observed_at is None and [key for *_, key in values] == [None, None]


def test_the_key_md5_is_md5():
    assert KEY_MD5(b"tenant\x1fkey").hexdigest() == hashlib.md5(b"tenant\x1fkey").hexdigest()  # noqa: S324


def test_a_primary_key_made_of_key_parts_keeps_a_batchs_keys_apart():
    types = {"store": "string", "region": "string", "channel": "string", "day": "date"}
    assert SHAPE.keys_follow(("store", "day"), types)
    assert SHAPE.keys_follow(("store",), types)  # one record a store: one key a store
    assert SHAPE.keys_follow(("region", "channel", "store"), types)
    assert not SHAPE.keys_follow((), types)  # no primary key: repeats are allowed
    assert not SHAPE.keys_follow(("store", "promotion"), types)  # not a key part: two keys can share it
    # a time given as text: "2026-01-02" and "2026-01-02T00:00:00+00:00" are two keys of the validator, one time
    assert not SHAPE.keys_follow(("store", "day"), {**types, "day": "string"})
    assert SHAPE.keys_follow(("store",), {**types, "day": "string"})  # the time is not in the primary key
    compound = Shape(entity_keys=("store", "till"), dimensions=(), time_field="day", measures=(("revenue", "EUR"),))
    # ("a|b", "c") and ("a", "b|c") are two primary keys, one entity key "a|b|c"
    assert not compound.keys_follow(("store", "till", "day"), {**types, "till": "string"})
