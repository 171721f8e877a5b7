"""Incremental computation equals a full recompute; a pinned as-of reproduces the same numbers."""

from __future__ import annotations

from typing import Any

import pytest
from django.utils import timezone

from apps.compute.kpis import services as kpis
from apps.compute.models import PipelineRun
from apps.storage.models import KpiValue
from tests.compute.test_kpi_compute import ROWS
from tests.compute.test_kpi_fixtures import *  # noqa: F403
from tests.compute.test_kpi_fixtures import compute, d, full_snapshot, load, make_kpi

KINDS = {
    "simple": {"measure": "revenue", "dimensions": ["region"]},
    "last": {"measure": "revenue", "aggregation": "last", "dimensions": ["region", "channel"]},
    "ratio": {"kind": "ratio", "measure": "revenue", "denominator_measure": "visits",
              "denominator_aggregation": "sum", "dimensions": ["region"]},
    "ytd": {"kind": "cumulative", "measure": "revenue", "cumulative_mode": "year_to_date", "dimensions": ["region"]},
    "rolling": {"kind": "cumulative", "measure": "units", "cumulative_mode": "rolling", "window_periods": 3},
    "ytd-min": {"kind": "cumulative", "measure": "revenue", "aggregation": "min", "cumulative_mode": "year_to_date",
                "dimensions": ["region"]},
    "qtd-count": {"kind": "cumulative", "measure": "units", "aggregation": "count",
                  "cumulative_mode": "quarter_to_date", "dimensions": ["channel"]},
    "ytd-avg": {"kind": "cumulative", "measure": "revenue", "aggregation": "avg", "cumulative_mode": "year_to_date"},
}  # fmt: skip
CHANGES = [
    # a correction of January (supersedes S1's revenue, units and visits of the 5th)
    {"day": d(2026, 1, 5), "store": "S1", "region": "north", "channel": "web", "revenue": 130, "units": 11,
     "visits": 60},
    # a new store in February
    {"day": d(2026, 2, 9), "store": "S4", "region": "south", "channel": "shop", "revenue": 40, "units": 4,
     "visits": 8},
    # May, after an empty April: the cumulative KPIs' span grows by two periods
    {"day": d(2026, 5, 2), "store": "S2", "region": "north", "channel": "shop", "revenue": 5, "units": 1,
     "visits": 1},
]  # fmt: skip

# Changes after the first periods only: period-to-date KPIs start from the stored value before them.
LATE_CHANGES = [
    # a correction of March 31st (S2: revenue 10 → 4) and a new store in March
    {"day": d(2026, 3, 31), "store": "S2", "region": "north", "channel": "shop", "revenue": 4, "units": 1,
     "visits": 5},
    {"day": d(2026, 3, 12), "store": "S5", "region": "east", "channel": "web", "revenue": 7, "units": 2, "visits": 3},
    {"day": d(2026, 5, 2), "store": "S2", "region": "north", "channel": "shop", "revenue": 5, "units": 1,
     "visits": 1},
]  # fmt: skip


@pytest.fixture
def shop(world: Any) -> Any:
    load(world, ROWS)
    return world


def refreshed(version: Any) -> Any:
    return version.__class__.objects.get(pk=version.pk)


@pytest.mark.parametrize("changes", [CHANGES, LATE_CHANGES], ids=["from-january", "from-march"])
@pytest.mark.parametrize("kind", sorted(KINDS))
def test_an_incremental_recompute_equals_a_full_one(shop, kind, changes):
    kpi = make_kpi(shop, f"kpi-{kind}", **KINDS[kind])
    compute(shop, kpi)
    load(shop, changes)
    as_of = timezone.now()
    [run] = compute(shop, kpi, as_of=as_of)
    assert run.counts["mode"] == "incremental"
    incremental = full_snapshot(kpi)
    [again] = compute(shop, kpi, as_of=as_of, full=True)
    assert again.counts["mode"] == "full"
    assert incremental == full_snapshot(kpi)
    assert refreshed(kpi).computed_as_of == as_of


def test_an_incremental_run_recomputes_only_the_touched_periods(shop):
    kpi = make_kpi(shop, "revenue", measure="revenue", dimensions=["region"])
    compute(shop, kpi)
    untouched = KpiValue.objects.get(kpi_version=kpi, period__label="2026-03")
    load(shop, CHANGES)
    [run] = compute(shop, kpi)
    assert (run.counts["mode"], run.counts["periods"]) == ("incremental", 3)  # January, February, May
    assert KpiValue.objects.get(pk=untouched.pk).run_id == untouched.run_id  # March kept its row


def test_a_run_with_no_change_recomputes_nothing(shop):
    kpi = make_kpi(shop, "revenue", measure="revenue")
    compute(shop, kpi)
    [run] = compute(shop, kpi)
    assert (run.counts["mode"], run.counts["periods"], run.counts["values"]) == ("incremental", 0, 0)
    assert KpiValue.objects.filter(kpi_version=kpi).count() == 3


def test_a_rolling_window_reaches_the_periods_after_a_change(shop):
    kpi = make_kpi(shop, "rolling", **KINDS["rolling"])
    compute(shop, kpi)
    load(shop, [{"day": d(2026, 1, 30), "store": "S7", "region": "east", "units": 100}])
    [run] = compute(shop, kpi)
    assert run.counts["periods"] == 3  # January, and February and March whose windows hold January


def test_derived_kpis_follow_their_references_incrementally(shop):
    make_kpi(shop, "revenue", measure="revenue", dimensions=["region"])
    make_kpi(shop, "visits", measure="visits", dimensions=["region"])
    derived = make_kpi(shop, "rpv", kind="derived", expression="revenue / visits * 100", dimensions=["region"])
    compute(shop, derived)
    load(shop, CHANGES[:1])
    as_of = timezone.now()
    runs = {r.job: r for r in compute(shop, derived, as_of=as_of)}
    assert (runs["kpi:rpv"].counts["mode"], runs["kpi:rpv"].counts["periods"]) == ("incremental", 1)
    incremental = full_snapshot(derived)
    compute(shop, derived, as_of=as_of, full=True)
    assert incremental == full_snapshot(derived)


class TestAsOf:
    def test_rerunning_with_the_same_as_of_gives_the_same_numbers(self, shop):
        kpi = make_kpi(shop, "revenue", measure="revenue", dimensions=["region"])
        pinned = timezone.now()
        compute(shop, kpi, as_of=pinned)
        before = full_snapshot(kpi)
        load(shop, CHANGES)
        compute(shop, kpi)  # now: the corrections count
        assert full_snapshot(kpi) != before
        [run] = compute(shop, kpi, as_of=pinned)  # as believed then: the same numbers
        assert run.counts["mode"] == "full"
        assert full_snapshot(kpi) == before
        assert set(KpiValue.objects.filter(kpi_version=kpi).values_list("as_of", flat=True)) == {pinned}

    def test_a_superseded_gdp_still_counts_as_of_before_its_correction(self, shop):
        kpi = make_kpi(shop, "revenue", measure="revenue", dimensions=["region"])
        pinned = timezone.now()
        load(shop, CHANGES[:1])
        compute(shop, kpi, as_of=pinned)
        north = KpiValue.objects.get(kpi_version=kpi, period__label="2026-01", dimensions__region="north")
        assert north.actual == 180  # the 100 the correction replaced, as believed at `pinned`
        compute(shop, kpi)
        assert KpiValue.objects.get(kpi_version=kpi, period__label="2026-01", dimensions__region="north").actual == 210

    def test_a_cumulative_kpis_span_as_of_a_moment_reaches_the_days_only_since_superseded_versions_held(self, shop):
        from apps.compute.kpis.engine import data_span

        kpi = make_kpi(shop, "ytd", **KINDS["ytd"])
        pinned = timezone.now()
        span = data_span(kpi, pinned)
        # Every value of January (the first month) and of March 31st (the last day) corrected: as of `pinned`
        # only superseded versions hold them, and the current versions of the span's ends are recorded later.
        corrections = [{**row, "revenue": row["revenue"] + 1} for row in ROWS if row["day"].month in (1, 3)]
        load(shop, corrections)
        assert data_span(kpi, pinned) == span
        assert data_span(kpi, timezone.now()) == span
        assert span[1] - span[0] == 2  # January to March

    def test_after_a_pinned_recompute_the_next_run_catches_up_incrementally(self, shop):
        kpi = make_kpi(shop, "revenue", measure="revenue")
        pinned = timezone.now()
        compute(shop, kpi, as_of=pinned)
        load(shop, CHANGES)
        compute(shop, kpi, as_of=pinned)
        [run] = compute(shop, kpi)
        assert run.counts["mode"] == "incremental" and run.counts["periods"] == 3


class TestTriggers:
    def test_a_completed_batch_computes_the_kpis_over_its_contract(self, shop, settings):
        import io
        import json

        from apps.compute import services as compute_services
        from apps.compute.pipeline import batch_process

        kpi = make_kpi(shop, "revenue", measure="revenue")
        compute(shop, kpi)
        body = json.dumps([{"sale_date": "2026-02-10", "store_id": "S8", "region": "north", "revenue": 1000}])
        batch, _ = compute_services.batch_receive(actor=shop.steward, source=shop.source, stream=io.BytesIO(
            body.encode()), content_type="application/json", idempotency_key="k1")  # fmt: skip
        batch_process(batch.pk)
        from apps.runtime.models import DomainEvent
        from apps.runtime.services import event_handle

        event = DomainEvent.objects.get(type="batch.completed", payload__batch=batch.pk)
        event_handle(event_id=event.pk, handler="compute.compute_kpis_of_batch")
        run = PipelineRun.objects.filter(job="kpi:revenue").order_by("-started_at", "-id").first()
        assert run.counts["trigger"] == f"batch:{batch.pk}" and run.counts["mode"] == "incremental"
        assert KpiValue.objects.get(kpi_version=kpi, period__label="2026-02").actual == 1100

    def test_the_beat_job_computes_only_the_kpis_that_are_due(self, shop):
        from datetime import timedelta

        kpi = make_kpi(shop, "revenue", measure="revenue")
        make_kpi(shop, "units", measure="units")  # not scheduled
        definition = kpi.definition
        kpis.kpi_definition_update(actor=shop.admin, definition=definition, compute_every_seconds=3600)
        runs = kpis.kpi_compute_due()
        assert [r.job for r in runs] == ["kpi:revenue"]
        assert kpis.kpi_compute_due() == []  # not due again for an hour
        later = timezone.now() + timedelta(hours=1, seconds=1)
        assert [r.counts["trigger"] for r in kpis.kpi_compute_due(now=later)] == ["schedule"]

    def test_the_beat_task_records_a_job_run(self, shop):
        from apps.compute.tasks import compute_due_kpis
        from apps.runtime.models import JobRun

        kpi = make_kpi(shop, "revenue", measure="revenue")
        kpis.kpi_definition_update(actor=shop.admin, definition=kpi.definition, compute_every_seconds=60)
        assert compute_due_kpis() == 1
        assert JobRun.objects.get(task="compute.compute_due_kpis").status == "succeeded"
