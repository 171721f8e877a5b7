"""storage.merge.BatchMerge unit by unit: whatever the units and whatever waits for the open COPY (PostgreSQL), a
later record of the batch wins and every record's versions are kept and counted once."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

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


def test_a_keys_versions_are_the_current_one_and_those_it_replaced(tenant_a):
    merge_all(tenant_a, units_of(tenant_a, *UNITS))
    current = versions().get(entity_key="A", measure="units", recorded_to__isnull=True)
    history = GoldenDataPoint.objects.of_key(current).order_by("raw_record_id")
    assert [(v.value, v.recorded_to is None) for v in history] == [(1, False), (2, False), (3, False), (5, True)]


@pytest.mark.postgres
def test_a_keys_versions_are_read_from_the_two_indexes_of_keys_not_from_their_period(tenant_a):
    merge_all(tenant_a, units_of(tenant_a, *MANY))  # 800 entities of one day
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE storage_goldendatapoint")  # the planner then knows how many share the day
    sql, params = GoldenDataPoint.objects.of_key(versions().first()).order_by().query.sql_with_params()
    plan = explain(sql, list(params))
    assert "storage_gdp_one_current_version" in plan
    assert "storage_gdp_past_versions" in plan


@pytest.mark.postgres
def test_a_contracts_versions_over_time_are_read_from_the_two_indexes_of_its_versions(tenant_a):
    merge_all(tenant_a, units_of(tenant_a, *MANY))
    day = datetime(2026, 11, 2, tzinfo=UTC)
    believed = versions().as_of(day).filter(contract_id=1, measure="revenue", observed_at__gte=day,
                                            observed_at__lt=datetime(2026, 11, 3, tzinfo=UTC))  # fmt: skip
    plan = explain(*believed.query.sql_with_params())
    assert "storage_gdp_one_current_version" in plan and "storage_gdp_past_versions" in plan
    with CaptureQueriesContext(connection) as queries:  # the merge's read of the contract's latest observed_at
        merge_module._latest_observed(1)
    assert "Scan Backward using storage_gdp_one_current_version" in explain(queries[0]["sql"], [])


def explain(sql: str, params: list[Any]) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")  # a few rows: the question is whether the index can serve
        cursor.execute(f"EXPLAIN {sql}", params)
        return "\n".join(row[0] for row in cursor.fetchall())


# Enough versions for more than one BRIN range of 32 pages: the last, partial range is never summarized (nor needs to
# be: every read scans it, and it is small).
MANY = [[(f"S{i:04}", i) for i in range(800)]]


def unsummarized_ranges() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT brin_summarize_new_values('storage_gdp_by_batch_raw'::regclass)")
        return cursor.fetchone()[0]


@pytest.mark.postgres
def test_the_lineage_index_is_a_brin_index_summarized_once_the_versions_are_in(tenant_a):
    merge_all(tenant_a, units_of(tenant_a, *MANY))
    merge_module.summarize_new_versions()
    assert unsummarized_ranges() == 0  # all summarized already (the call above did it)
    with connection.cursor() as cursor:
        cursor.execute("SELECT am.amname FROM pg_class c JOIN pg_am am ON am.oid = c.relam "
                       "WHERE c.relname = 'storage_gdp_by_batch_raw'")  # fmt: skip
        assert cursor.fetchone()[0] == "brin"
    raw_one = "SELECT id FROM storage_goldendatapoint WHERE batch_id = %s AND raw_record_id = %s"
    assert "storage_gdp_by_batch_raw" in explain(raw_one, [BATCH, 1])
    assert "storage_gdp_by_batch_raw" in explain("SELECT id FROM storage_goldendatapoint WHERE batch_id = %s", [BATCH])
    assert versions().filter(batch_id=BATCH, raw_record_id=700).count() == 2  # its revenue and units


@pytest.mark.postgres
def test_summarizing_gives_way_to_a_vacuum_of_the_table(tenant_a, caplog):
    import psycopg

    merge_all(tenant_a, units_of(tenant_a, *MANY))
    db = connection.settings_dict
    with psycopg.connect(host=db["HOST"] or None, port=db["PORT"] or None, user=db["USER"], dbname=db["NAME"],
                         password=db["PASSWORD"] or None) as vacuum:  # fmt: skip
        vacuum.execute("LOCK TABLE storage_goldendatapoint IN SHARE UPDATE EXCLUSIVE MODE")  # as VACUUM holds it
        with caplog.at_level("INFO", logger="apps.storage.merge"):
            merge_module.summarize_new_versions()  # waits a second, then leaves the ranges to the VACUUM
        vacuum.rollback()
    assert "left to VACUUM" in caplog.text
    assert unsummarized_ranges() >= 1  # still to do, and done now
