"""The process-local store behind cached tokens and reads: least recently used first, bounded by size."""

from __future__ import annotations

from apps.kernel.localcache import LocalStore, clear_all


def test_it_drops_the_least_recently_used_entries_to_stay_within_its_size():
    store = LocalStore(max_bytes=100)
    store.put("a", "A", 40)
    store.put("b", "B", 40)
    assert store.get("a") == "A"  # a is now the most recently used
    store.put("c", "C", 40)
    assert (store.get("a"), store.get("b"), store.get("c")) == ("A", None, "C")


def test_a_value_larger_than_the_store_is_not_kept_and_a_replaced_one_is_counted_once():
    store = LocalStore(max_bytes=100)
    store.put("big", "X", 101)
    assert store.get("big") is None
    for _ in range(5):
        store.put("a", "A", 60)
    store.put("b", "B", 40)
    assert (store.get("a"), store.get("b")) == ("A", "B")


def test_clear_all_empties_every_store():
    first, second = LocalStore(max_bytes=10), LocalStore(max_bytes=10)
    first.put("a", 1, 1)
    second.put("b", 2, 1)
    clear_all()
    assert first.get("a") is None and second.get("b") is None
