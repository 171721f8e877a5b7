"""KPI computation: each kind against hand-computed values, on SQLite and PostgreSQL."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from apps.storage.models import KpiValue
from tests.compute.test_kpi_fixtures import *  # noqa: F403
from tests.compute.test_kpi_fixtures import compute, d, load, make_kpi, values

# Three stores, two regions, two channels, over January to March 2026 (fiscal periods P01-P03).
ROWS = [
    {"day": d(2026, 1, 5), "store": "S1", "region": "north", "channel": "web", "revenue": 100, "units": 10, "visits": 50},
    {"day": d(2026, 1, 20), "store": "S1", "region": "north", "channel": "web", "revenue": 50, "units": 5, "visits": 10},
    {"day": d(2026, 1, 7), "store": "S2", "region": "north", "channel": "shop", "revenue": 30, "units": 3, "visits": 100},
    {"day": d(2026, 1, 9), "store": "S3", "region": "south", "channel": "web", "revenue": 200, "units": 20, "visits": 20},
    {"day": d(2026, 2, 3), "store": "S1", "region": "north", "channel": "web", "revenue": 80, "units": 8, "visits": 40},
    {"day": d(2026, 2, 14), "store": "S3", "region": "south", "channel": "web", "revenue": 20, "units": 2, "visits": 80},
    {"day": d(2026, 3, 31), "store": "S2", "region": "north", "channel": "shop", "revenue": 10, "units": 1, "visits": 5},
]  # fmt: skip


@pytest.fixture
def shop(world: Any) -> Any:
    load(world, ROWS)
    return world


class TestSimple:
    def test_it_sums_a_measure_per_period_and_dimension(self, shop):
        kpi = make_kpi(shop, "revenue", measure="revenue", aggregation="sum", dimensions=["region"])
        compute(shop, kpi)
        assert values(kpi) == {
            ("2026-01", ("north",)): Decimal("180"),
            ("2026-01", ("south",)): Decimal("200"),
            ("2026-02", ("north",)): Decimal("80"),
            ("2026-02", ("south",)): Decimal("20"),
            ("2026-03", ("north",)): Decimal("10"),
        }

    @pytest.mark.parametrize(
        ("aggregation", "north", "south"),
        [("avg", Decimal("60"), Decimal("200")), ("min", Decimal("30"), Decimal("200")),
         ("max", Decimal("100"), Decimal("200")), ("count", Decimal("3"), Decimal("1")),
         ("count_distinct", Decimal("2"), Decimal("1"))],
    )  # fmt: skip
    def test_each_aggregation_gives_the_hand_computed_january(self, shop, aggregation, north, south):
        kpi = make_kpi(shop, f"revenue-{aggregation}".replace("_", "-"), measure="revenue", aggregation=aggregation,
                       dimensions=["region"])  # fmt: skip
        compute(shop, kpi)
        result = values(kpi)
        assert (result[("2026-01", ("north",))], result[("2026-01", ("south",))]) == (north, south)

    def test_last_value_takes_each_entitys_latest_in_the_period_and_sums_them(self, shop):
        # January north: S1's latest is the 20th (50), S2's the 7th (30); south: S3 (200).
        kpi = make_kpi(shop, "stock", measure="revenue", aggregation="last", dimensions=["region"])
        compute(shop, kpi)
        result = values(kpi)
        assert result[("2026-01", ("north",))] == Decimal("80")
        assert result[("2026-01", ("south",))] == Decimal("200")
        assert result[("2026-03", ("north",))] == Decimal("10")

    def test_filters_keep_only_matching_dimension_values(self, shop):
        kpi = make_kpi(shop, "web-revenue", measure="revenue", dimensions=["region"], filters={"channel": "web"})
        compute(shop, kpi)
        assert values(kpi) == {
            ("2026-01", ("north",)): Decimal("150"),
            ("2026-01", ("south",)): Decimal("200"),
            ("2026-02", ("north",)): Decimal("80"),
            ("2026-02", ("south",)): Decimal("20"),
        }

    def test_a_list_filter_keeps_any_of_its_values(self, shop):
        kpi = make_kpi(shop, "both", measure="units", filters={"channel": ["web", "shop"]})
        compute(shop, kpi)
        assert values(kpi)[("2026-01", ())] == Decimal("38")

    def test_without_dimensions_it_gives_one_value_per_period(self, shop):
        kpi = make_kpi(shop, "total", measure="revenue")
        compute(shop, kpi)
        assert values(kpi) == {("2026-01", ()): Decimal("380"), ("2026-02", ()): Decimal("100"),
                               ("2026-03", ()): Decimal("10")}  # fmt: skip
        assert KpiValue.objects.get(kpi_key="total", period__label="2026-01").gdp_count == 4

    def test_two_dimensions_break_down_by_both(self, shop):
        kpi = make_kpi(shop, "by-both", measure="revenue", dimensions=["region", "channel"])
        compute(shop, kpi)
        result = values(kpi)
        assert result[("2026-01", ("north", "web"))] == Decimal("150")
        assert result[("2026-01", ("north", "shop"))] == Decimal("30")
        assert result[("2026-01", ("south", "web"))] == Decimal("200")
        value = KpiValue.objects.get(kpi_key="by-both", period__label="2026-01", dimensions__channel="shop")
        assert value.dimensions == {"region": "north", "channel": "shop"}

    def test_a_quarter_grain_buckets_by_the_quarter(self, shop):
        kpi = make_kpi(shop, "quarterly", measure="revenue", level="quarter", dimensions=["region"])
        compute(shop, kpi)
        result = values(kpi)
        label = shop.quarter(2026, 1).label
        assert result == {(label, ("north",)): Decimal("270"), (label, ("south",)): Decimal("220")}


class TestRatio:
    def test_it_divides_the_sums_never_averages_the_ratios(self, shop):
        kpi = make_kpi(shop, "revenue-per-visit", kind="ratio", measure="revenue", aggregation="sum",
                       denominator_measure="visits", denominator_aggregation="sum", dimensions=["region"])  # fmt: skip
        compute(shop, kpi)
        north = KpiValue.objects.get(kpi_version=kpi, period__label="2026-01", dimensions__region="north")
        # 180 / 160 = 1.125; the average of the three records' ratios (2, 5, 0.3) would be 2.4333…
        assert (north.numerator, north.denominator, round(north.actual, 6)) == (
            Decimal("180"), Decimal("160"), Decimal("1.125"))  # fmt: skip
        assert values(kpi) == {
            ("2026-01", ("north",)): Decimal("1.125"),
            ("2026-01", ("south",)): Decimal("10"),
            ("2026-02", ("north",)): Decimal("2"),
            ("2026-02", ("south",)): Decimal("0.25"),
            ("2026-03", ("north",)): Decimal("2"),
        }

    def test_a_zero_denominator_gives_no_value_not_an_error(self, world):
        load(world, [{"day": d(2026, 4, 2), "store": "S9", "region": "east", "revenue": 5, "visits": 0}])
        kpi = make_kpi(world, "rpv", kind="ratio", measure="revenue", denominator_measure="visits",
                       denominator_aggregation="sum")  # fmt: skip
        compute(world, kpi)
        value = KpiValue.objects.get(kpi_version=kpi)
        assert (value.actual, value.numerator, value.denominator) == (None, Decimal("5"), Decimal("0"))

    def test_numerator_and_denominator_may_aggregate_differently(self, shop):
        # January revenue per distinct store: north 180 / 2, south 200 / 1.
        kpi = make_kpi(shop, "revenue-per-store", kind="ratio", measure="revenue", aggregation="sum",
                       denominator_measure="revenue", denominator_aggregation="count_distinct",
                       dimensions=["region"])  # fmt: skip
        compute(shop, kpi)
        result = values(kpi)
        assert (result[("2026-01", ("north",))], result[("2026-01", ("south",))]) == (Decimal("90"), Decimal("200"))


class TestCumulative:
    def test_year_to_date_accumulates_within_the_fiscal_year(self, shop):
        kpi = make_kpi(shop, "revenue-ytd", kind="cumulative", measure="revenue", aggregation="sum",
                       cumulative_mode="year_to_date", dimensions=["region"])  # fmt: skip
        compute(shop, kpi)
        assert values(kpi) == {
            ("2026-01", ("north",)): Decimal("180"),
            ("2026-02", ("north",)): Decimal("260"),
            ("2026-03", ("north",)): Decimal("270"),
            ("2026-01", ("south",)): Decimal("200"),
            ("2026-02", ("south",)): Decimal("220"),
            ("2026-03", ("south",)): Decimal("220"),  # no March data: the year to date carries on
        }

    def test_year_to_date_restarts_with_the_fiscal_year(self, shop):
        load(shop, [{"day": d(2025, 12, 15), "store": "S1", "region": "north", "channel": "web", "revenue": 1000}])
        kpi = make_kpi(shop, "ytd", kind="cumulative", measure="revenue", cumulative_mode="year_to_date")
        compute(shop, kpi)
        result = values(kpi)
        assert result[("2025-12", ())] == Decimal("1000")
        assert result[("2026-01", ())] == Decimal("380")
        assert result[("2026-03", ())] == Decimal("490")

    def test_rolling_sums_the_last_n_periods_across_the_year_end(self, shop):
        load(shop, [{"day": d(2025, 12, 15), "store": "S1", "region": "north", "channel": "web", "revenue": 1000}])
        kpi = make_kpi(shop, "rolling-2", kind="cumulative", measure="revenue", cumulative_mode="rolling",
                       window_periods=2)  # fmt: skip
        compute(shop, kpi)
        assert values(kpi) == {
            ("2025-12", ()): Decimal("1000"),
            ("2026-01", ()): Decimal("1380"),
            ("2026-02", ()): Decimal("480"),
            ("2026-03", ()): Decimal("110"),
        }

    def test_a_cumulative_average_divides_the_accumulated_sum_by_the_accumulated_count(self, shop):
        kpi = make_kpi(shop, "avg-ytd", kind="cumulative", measure="revenue", aggregation="avg",
                       cumulative_mode="year_to_date", dimensions=["region"])  # fmt: skip
        compute(shop, kpi)
        result = values(kpi)
        assert [result[(m, ("north",))] for m in ("2026-01", "2026-02", "2026-03")] == [
            Decimal("60"), Decimal("65"), Decimal("54")]  # fmt: skip

    def test_quarter_to_date_restarts_each_quarter(self, shop):
        load(shop, [{"day": d(2026, 4, 1), "store": "S1", "region": "north", "channel": "web", "revenue": 7}])
        kpi = make_kpi(shop, "qtd", kind="cumulative", measure="revenue", cumulative_mode="quarter_to_date")
        compute(shop, kpi)
        result = values(kpi)
        assert (result[("2026-03", ())], result[("2026-04", ())]) == (Decimal("490"), Decimal("7"))


class TestDerived:
    def test_it_computes_the_expression_over_the_other_kpis_values(self, shop):
        revenue = make_kpi(shop, "revenue", measure="revenue", dimensions=["region"])
        units = make_kpi(shop, "units", measure="units", dimensions=["region"])
        derived = make_kpi(shop, "margin-ish", kind="derived", expression="({revenue} - units) * 2",
                           dimensions=["region"])  # fmt: skip
        compute(shop, derived)  # computes its references first, as of the same moment
        assert values(derived) == {
            ("2026-01", ("north",)): Decimal("324"),
            ("2026-01", ("south",)): Decimal("360"),
            ("2026-02", ("north",)): Decimal("144"),
            ("2026-02", ("south",)): Decimal("36"),
            ("2026-03", ("north",)): Decimal("18"),
        }
        assert (
            revenue.__class__.objects.get(pk=revenue.pk).computed_as_of
            == (derived.__class__.objects.get(pk=derived.pk).computed_as_of)
            == units.__class__.objects.get(pk=units.pk).computed_as_of
        )

    def test_division_by_a_zero_value_gives_no_value(self, world):
        load(world, [{"day": d(2026, 4, 2), "store": "S9", "region": "east", "revenue": 5, "visits": 0}])
        make_kpi(world, "rev", measure="revenue")
        make_kpi(world, "vis", measure="visits")
        derived = make_kpi(world, "per-visit", kind="derived", expression="rev / vis")
        compute(world, derived)
        assert values(derived) == {("2026-04", ()): None}

    def test_computing_a_base_kpi_recomputes_the_derived_ones_reading_it(self, shop):
        revenue = make_kpi(shop, "revenue", measure="revenue")
        derived = make_kpi(shop, "double", kind="derived", expression="{revenue} * 2")
        runs = compute(shop, revenue)
        assert [r.job for r in runs] == ["kpi:revenue", "kpi:double"]
        assert values(derived)[("2026-01", ())] == Decimal("760")


class TestRuns:
    def test_each_kpi_computed_is_a_pipeline_run_with_counts_and_timings(self, shop):
        kpi = make_kpi(shop, "revenue", measure="revenue", dimensions=["region"])
        [run] = compute(shop, kpi)
        assert run.job == "kpi:revenue" and run.status == "completed"
        assert run.counts["mode"] == "full"
        assert (run.counts["periods"], run.counts["values"], run.counts["gdps_read"]) == (3, 5, 7)
        assert {"detect_s", "aggregate_s", "seconds"} <= set(run.counts)
        assert set(KpiValue.objects.filter(kpi_version=kpi).values_list("run_id", flat=True)) == {run.run_id}

    def test_it_publishes_kpi_computed_with_the_periods(self, shop):
        from apps.runtime.models import DomainEvent

        kpi = make_kpi(shop, "revenue", measure="revenue")
        compute(shop, kpi)
        event = DomainEvent.objects.filter(type="kpi.computed").latest("id")
        assert event.payload["kpi"] == "revenue" and len(event.payload["periods"]) == 3

    def test_a_failing_kpi_fails_its_run_and_skips_the_kpis_reading_it(self, shop, monkeypatch):
        from apps.compute.kpis import engine

        revenue = make_kpi(shop, "revenue", measure="revenue")
        make_kpi(shop, "double", kind="derived", expression="revenue * 2")
        real = engine.compute_version

        def broken(version: Any, **kwargs: Any) -> Any:
            if version.definition.key == "revenue":
                raise RuntimeError("disk on fire")
            return real(version, **kwargs)

        monkeypatch.setattr(engine, "compute_version", broken)
        with pytest.raises(RuntimeError):
            compute(shop, revenue)
        from apps.compute.models import PipelineRun

        runs = {r.job: r for r in PipelineRun.objects.filter(job__startswith="kpi:")}
        assert runs["kpi:revenue"].status == "failed" and "disk on fire" in runs["kpi:revenue"].error
        assert runs["kpi:double"].status == "failed" and "revenue failed" in runs["kpi:double"].error
