"""The per-day partials a KPI run shares: one read of a contract's GDPs for all its composable KPIs."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.compute.kpis.partials import merged, missing
from tests.compute.test_kpi_compute import ROWS
from tests.compute.test_kpi_fixtures import *  # noqa: F403
from tests.compute.test_kpi_fixtures import compute, d, load, make_kpi, values

SPECS = {
    "revenue": {"measure": "revenue", "dimensions": ["region"]},
    "web-units": {"measure": "units", "filters": {"channel": "web"}},
    "per-visit": {"kind": "ratio", "measure": "revenue", "aggregation": "sum", "denominator_measure": "visits",
                  "denominator_aggregation": "sum", "dimensions": ["channel"]},
    "units-ytd": {"kind": "cumulative", "measure": "units", "aggregation": "max", "cumulative_mode": "year_to_date",
                  "dimensions": ["region", "channel"]},
    "stores": {"measure": "revenue", "aggregation": "count_distinct", "dimensions": ["region"]},
}  # fmt: skip


@pytest.fixture
def shop(world: Any) -> Any:
    load(world, ROWS)
    return world


def _partials_built(queries: list[dict[str, Any]]) -> list[str]:
    return [q["sql"] for q in queries if "aurum_kpi_daily" in q["sql"] and "storage_goldendatapoint" in q["sql"]]


def _temp_tables() -> list[str]:
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT tablename FROM pg_tables WHERE tablename LIKE 'aurum_kpi_daily%%'")
        else:
            cursor.execute("SELECT name FROM sqlite_temp_master WHERE name LIKE 'aurum_kpi_daily%'")
        return [row[0] for row in cursor.fetchall()]


def test_the_kpis_of_a_contract_read_its_gdps_once_and_each_gets_its_own_values(shop):
    kpis = {key: make_kpi(shop, key, **spec) for key, spec in SPECS.items()}
    alone = {}
    for key, kpi in kpis.items():
        compute(shop, kpi)
        alone[key] = values(kpi)
    with CaptureQueriesContext(connection) as queries:
        compute(shop, *kpis.values(), full=True)
    assert len(_partials_built(queries.captured_queries)) == 1  # four composable KPIs, one read
    assert {key: values(kpi) for key, kpi in kpis.items()} == alone
    assert alone["web-units"] == {("2026-01", ()): 35, ("2026-02", ()): 10}
    assert _temp_tables() == []


def test_an_incremental_run_reads_the_days_its_kpis_recompute(shop):
    kpis = [make_kpi(shop, key, **SPECS[key]) for key in ("revenue", "units-ytd")]
    compute(shop, *kpis)
    late = {"day": d(2026, 2, 20), "store": "S2", "region": "north", "channel": "shop", "revenue": 7, "units": 9,
            "visits": 1}  # fmt: skip
    load(shop, [late])
    with CaptureQueriesContext(connection) as queries:
        compute(shop, *kpis)
    # revenue recomputes February, units-ytd February and March: each day is read once, no other day is.
    built = _partials_built(queries.captured_queries)
    assert len(built) == 2
    assert len([q for q in queries.captured_queries if "superseded_by_batch_id IN" in q["sql"]]) == 1  # detected once
    assert "2026-02-01" in built[0] and "2026-03-01" in built[0] and "2026-01-01" not in built[0]
    assert "2026-03-01" in built[1] and "2026-04-01" in built[1] and "2026-02-01" not in built[1]
    assert values(kpis[0])[("2026-02", ("north",))] == 87
    assert values(kpis[1])[("2026-02", ("north", "shop"))] == 9


def test_after_a_kpi_fails_the_next_one_rebuilds_the_partials_it_rolled_back(shop, monkeypatch):
    from apps.compute.kpis import engine

    first, second = make_kpi(shop, "a-revenue", measure="revenue"), make_kpi(shop, "b-units", measure="units")
    real = engine.compute_version

    def fails_after_reading(version: Any, **kwargs: Any) -> Any:
        outcome = real(version, **kwargs)  # fills the partials inside its transaction
        if version.definition.key == "a-revenue":
            raise RuntimeError("disk on fire")
        return outcome

    monkeypatch.setattr(engine, "compute_version", fails_after_reading)
    with pytest.raises(RuntimeError, match="disk on fire"):
        compute(shop, first, second)
    assert values(first) == {}
    assert values(second) == {("2026-01", ()): 38, ("2026-02", ()): 10, ("2026-03", ()): 1}
    assert _temp_tables() == []


def test_missing_gives_the_days_outside_the_covered_ranges():
    covered = [(date(2026, 1, 1), date(2026, 1, 31)), (date(2026, 3, 1), date(2026, 3, 31))]
    assert missing(covered, (date(2026, 1, 10), date(2026, 1, 20))) == []
    assert missing(covered, (date(2025, 12, 30), date(2026, 3, 2))) == [
        (date(2025, 12, 30), date(2025, 12, 31)),
        (date(2026, 2, 1), date(2026, 2, 28)),
    ]
    assert missing(covered, (date(2026, 3, 31), date(2026, 4, 2))) == [(date(2026, 4, 1), date(2026, 4, 2))]
    assert missing([], (date(2026, 1, 1), date(2026, 1, 1))) == [(date(2026, 1, 1), date(2026, 1, 1))]


def test_merged_joins_overlapping_and_adjacent_ranges():
    ranges = [(date(2026, 3, 1), date(2026, 3, 31)), (date(2026, 1, 1), date(2026, 1, 31)),
              (date(2026, 2, 1), date(2026, 2, 10)), (date(2026, 3, 5), date(2026, 4, 2))]  # fmt: skip
    assert merged(ranges) == [(date(2026, 1, 1), date(2026, 2, 10)), (date(2026, 3, 1), date(2026, 4, 2))]
