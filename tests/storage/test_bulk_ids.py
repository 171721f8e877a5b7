"""storage.bulk.ids_ahead: new primary keys, reserved ahead in blocks by a thread of its own on PostgreSQL."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from apps.storage import bulk
from apps.storage.models import RawRecord

pytestmark = pytest.mark.django_db


def reserver_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == "id-reserver"]


@pytest.mark.postgres  # SQLite's ids are the next free ones, the same until rows take them
def test_the_ids_taken_are_new_and_grow_from_one_call_to_the_next():
    with bulk.ids_ahead(RawRecord, 5) as take:
        calls = [take(5), take(3), take(12), take(1)]  # 12: more than a block
    assert [len(ids) for ids in calls] == [5, 3, 12, 1]
    taken = [i for ids in calls for i in ids]
    assert taken == sorted(taken) and len(set(taken)) == len(taken)
    assert not reserver_threads()


def test_on_sqlite_the_ids_are_the_next_free_ones():
    if connection.vendor != "sqlite":
        pytest.skip("SQLite's path")
    with bulk.ids_ahead(RawRecord, 5) as take:
        assert take(3) == bulk.next_ids(RawRecord, 3)


@pytest.mark.postgres
def test_a_failure_to_reserve_is_raised_where_the_ids_are_taken(monkeypatch):
    def refused(model, count):
        raise RuntimeError("no ids today")

    monkeypatch.setattr(bulk, "next_ids", refused)
    with bulk.ids_ahead(RawRecord, 5) as take:
        for _ in range(2):  # and again at the next call: the pipeline stops at the first
            with pytest.raises(RuntimeError, match="no ids today"):
                take(5)
    assert not reserver_threads()


@pytest.mark.postgres
def test_the_reserver_ends_with_its_block_unfinished_when_the_caller_leaves_early():
    with bulk.ids_ahead(RawRecord, 5) as take:
        take(1)
        assert reserver_threads()  # reserving the blocks after it
    assert not reserver_threads()
