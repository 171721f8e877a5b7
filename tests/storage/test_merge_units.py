"""storage.merge.BatchMerge unit by unit: whatever the units and whatever waits for the open COPY (PostgreSQL), a
later record of the batch wins and every record's versions are kept and counted once."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from apps.compute.records import Shape, make_candidates
from apps.storage import merge as merge_module
from apps.storage.merge import BatchMerge
from apps.storage.models import GoldenDataPoint

pytestmark = pytest.mark.django_db

SHAPE = Shape(entity_keys=("store",), dimensions=(), time_field="day", measures=(("revenue", "EUR"), ("units", "")))
BATCH = 7


def units_of(tenant: Any, *units: list[tuple[str, int]]) -> list[list[Any]]:
    """Units of candidate records (store, value), raw ids in position order, all of one day."""
    candidates = make_candidates(SHAPE, tenant.pk, 1)
    raw_id = 0
    made = []
    for unit in units:
        records = []
        for store, value in unit:
            raw_id += 1
            records.append((raw_id, [], *candidates({"store": store, "day": "2026-11-02", "revenue": value,
                                                     "units": value})))  # fmt: skip
        made.append(records)
    return made


def merge_all(tenant: Any, units: list[list[Any]]) -> BatchMerge:
    merge = BatchMerge(batch_id=BATCH, tenant_id=tenant.pk, contract_id=1, contract_version_id=1, source_id=1,
                       source_priority=0, survivorship="latest_recorded", now=datetime(2026, 11, 3, tzinfo=UTC),
                       expected_keys=100)  # fmt: skip
    for unit in units:
        merge.add(unit)
    merge.flush()
    return merge


def versions() -> Any:
    return GoldenDataPoint.objects.order_by()  # the default ordering joins the contract, which these rows lack


# A repeats in units 2 and 3 (held back while the COPY is open); C twice within unit 2, around A's repeats.
UNITS = ([("A", 1), ("B", 1)], [("C", 1), ("A", 2), ("A", 3), ("C", 4)], [("A", 5), ("D", 6)])


@pytest.mark.parametrize("held_back_limit", [5000, 1], ids=["held-to-the-end", "flushed-at-once"])
def test_a_later_record_wins_whatever_waits_for_the_copy(tenant_a, monkeypatch, held_back_limit):
    monkeypatch.setattr(merge_module, "HELD_BACK_RECORDS", held_back_limit)
    merge = merge_all(tenant_a, units_of(tenant_a, *UNITS))
    current = dict(versions().current().filter(measure="revenue").values_list("entity_key", "value"))
    assert current == {"A": Decimal(5), "B": Decimal(1), "C": Decimal(4), "D": Decimal(6)}
    # 4 keys a measure are current; A's 1, 2, 3 and C's 1 arrived and lost to a later record of the batch.
    assert (merge.result.created, merge.result.shadowed, merge.result.superseded) == (8, 8, 0)
    a = versions().filter(entity_key="A", measure="units").order_by("raw_record_id")
    assert [(v.value, v.recorded_to is None, v.superseded_by_batch_id) for v in a] == [
        (1, False, BATCH), (2, False, BATCH), (3, False, BATCH), (5, True, None)]  # fmt: skip
    assert versions().count() == 2 * 8  # every record's versions, each once


def test_merging_in_units_or_whole_gives_the_same_versions(tenant_a):
    by_units = merge_all(tenant_a, units_of(tenant_a, *UNITS))
    in_units = sorted(versions().values_list("raw_record_id", "measure", "value", "recorded_to"))
    versions().delete()
    whole = merge_all(tenant_a, [[record for unit in units_of(tenant_a, *UNITS) for record in unit]])
    assert sorted(versions().values_list("raw_record_id", "measure", "value", "recorded_to")) == in_units
    assert whole.result == by_units.result
