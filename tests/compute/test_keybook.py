"""KeyBook: a batch's seen keys in bounded memory, the rest in a temporary SQLite database."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from apps.compute.keybook import KeyBook
from apps.compute.validate import compile_validator


def test_it_answers_as_a_dict_would_across_spills() -> None:
    rng = random.Random(7)
    book, oracle = KeyBook(limit=5), {}
    keys = [(f"S{rng.randrange(40):03d}", date(2024, 1, 1 + rng.randrange(3))) for _ in range(400)]
    for start in range(0, len(keys), 25):  # chunks, each prefetched as the pipeline does
        chunk = keys[start : start + 25]
        book.prefetch(chunk)
        for position, key in enumerate(chunk, start):
            assert book.get(key) == oracle.get(key), (position, key)
            if key not in oracle:
                book[key] = oracle[key] = position
    assert book.spilled > 0
    assert len(book) == len(oracle)


def test_keys_not_prefetched_are_looked_up_one_by_one() -> None:
    book = KeyBook(limit=1)
    for i in range(10):
        book[("k", i)] = i
    assert book.spilled >= 9
    assert [book.get(("k", i)) for i in range(10)] == list(range(10))
    assert book.get(("k", 10)) is None
    book.prefetch([("k", 3)])  # a prefetch answers for its keys; the others are still looked up
    assert (book.get(("k", 3)), book.get(("k", 4)), book.get(("k", 99))) == (3, 4, None)


def test_a_key_registered_in_the_chunk_is_found_after_it_spilled_mid_chunk() -> None:
    book = KeyBook(limit=2)
    book["a"] = 0
    book["b"] = 1
    book["c"] = 2  # spills a, b, c
    chunk = ["d", "e", "f", "d", "e"]
    book.prefetch(chunk)
    book["d"] = 3
    book["e"] = 4
    book["f"] = 5  # spills d, e, f: prefetched hashes that are now on disk only
    assert (book.get("d"), book.get("e"), book.get("a")) == (3, 4, 0)


@pytest.mark.parametrize(
    ("first", "again"),
    [
        (1, 1.0),
        (1, Decimal("1.00")),
        (0.5, Decimal("0.5")),
        (datetime(2024, 1, 1, 12, tzinfo=UTC), datetime(2024, 1, 1, 13, tzinfo=timezone(timedelta(hours=1)))),
        (("S1", date(2024, 1, 1)), ("S1", date(2024, 1, 1))),
    ],
)
def test_equal_keys_of_different_forms_are_one_key_on_disk_as_in_memory(first: Any, again: Any) -> None:
    book = KeyBook(limit=1)
    book[first] = 0
    book["filler"] = 1  # spills
    assert book.spilled == 2
    assert book.get(again) == 0
    book.prefetch([again])
    assert book.get(again) == 0


def test_unhashable_keys_raise_as_for_a_dict() -> None:
    book = KeyBook(limit=1)
    book["a"], book["b"] = 0, 1
    book.prefetch([["a list"], "a"])
    with pytest.raises(TypeError):
        book.get(["a list"])


def test_clear_forgets_everything_and_closes_the_database() -> None:
    book = KeyBook(limit=1)
    book["a"], book["b"] = 0, 1
    book.clear()
    assert (len(book), book.spilled, book.get("a")) == (0, 0, None)
    book["a"] = 5
    assert book.get("a") == 5


FIELDS = [
    {"name": "store", "logical_type": "string", "primary_key": True, "primary_key_position": 1},
    {"name": "day", "logical_type": "date", "primary_key": True, "primary_key_position": 2},
    {"name": "receipt", "logical_type": "string", "unique": True},
    {"name": "revenue", "logical_type": "number"},
]


def validate_all(records: list[dict[str, Any]], keys_in_memory: int | None, *, prefetch: bool) -> list[Any]:
    validator = compile_validator(FIELDS, [{"kind": "unique", "severity": "error"}], keys_in_memory=keys_in_memory)
    found = []
    for start in range(0, len(records), 10):
        chunk = records[start : start + 10]
        if prefetch:
            validator.prefetch(chunk)
        found.extend(validator.validate(record) for record in chunk)
    return found


def test_a_validator_with_few_keys_in_memory_finds_what_an_unbounded_one_finds() -> None:
    rng = random.Random(3)
    records = [{"store": f"S{rng.randrange(30)}", "day": date(2024, 1, 1 + rng.randrange(2)),
                "receipt": f"R{rng.randrange(150)}", "revenue": rng.choice([1, 2, "bad"])}
               for _ in range(300)]  # fmt: skip
    unbounded = validate_all(records, None, prefetch=False)
    assert sum(1 for v in unbounded if v) > 50  # repeats of each kind, and records rejected for their type
    assert {v.rule for found in unbounded for v in found} >= {"primary_key", "unique", "type"}
    assert validate_all(records, 4, prefetch=True) == unbounded
    assert validate_all(records, 4, prefetch=False) == unbounded
