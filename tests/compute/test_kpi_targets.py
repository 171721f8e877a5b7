"""Targets with tolerance bands: status, variance, attainment, direction, specificity, streaks, events."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from django.core.exceptions import ValidationError

from apps.compute.kpis import services as kpis
from apps.kernel.errors import ConflictError, ForbiddenError
from apps.runtime.models import DomainEvent
from apps.storage.models import KpiValue
from tests.compute.test_kpi_compute import ROWS
from tests.compute.test_kpi_fixtures import *  # noqa: F403
from tests.compute.test_kpi_fixtures import compute, d, load, make_kpi


@pytest.fixture
def shop(world: Any) -> Any:
    load(world, ROWS)
    return world


def target(world: Any, version: Any, *, first: tuple[int, int] = (2026, 1), last: tuple[int, int] = (2026, 3),
           approve: bool = True, **attrs: Any) -> Any:  # fmt: skip
    attrs.setdefault("amber_within", Decimal("10"))
    row = kpis.kpi_target_create(actor=world.steward, definition=version.definition,
                                 period_from=world.period(*first), period_to=world.period(*last), **attrs)  # fmt: skip
    if approve:
        kpis.kpi_target_propose(actor=world.steward, target=row)
        kpis.kpi_target_approve(actor=world.admin, target=row)
    return row


def stamped(version: Any) -> dict[tuple[str, str | None], tuple[Any, ...]]:
    return {
        (v.period.label, v.dimensions.get("region")): (v.actual, v.target, v.variance,
                                                        None if v.attainment is None else round(v.attainment, 2),
                                                        v.status, v.streak)
        for v in KpiValue.objects.filter(kpi_version=version).select_related("period")
    }  # fmt: skip


class TestBands:
    def test_percent_bands_against_a_higher_is_better_target(self, shop):
        kpi = make_kpi(shop, "revenue", measure="revenue", dimensions=["region"])
        target(shop, kpi, value=Decimal("100"), tolerance_kind="percent", green_within=0, amber_within=Decimal("10"))
        compute(shop, kpi)
        result = stamped(kpi)
        assert result[("2026-01", "north")] == (Decimal("180"), Decimal("100"), Decimal("80"), Decimal("180"),
                                                "green", 0)  # fmt: skip
        assert result[("2026-02", "north")][1:] == (Decimal("100"), Decimal("-20"), Decimal("80"), "red", 1)
        assert result[("2026-03", "north")][4:] == ("red", 2)
        assert result[("2026-02", "south")][4:] == ("red", 1)

    def test_absolute_bands_make_a_small_shortfall_amber(self, shop):
        kpi = make_kpi(shop, "revenue", measure="revenue", dimensions=["region"])
        target(shop, kpi, value=Decimal("100"), tolerance_kind="absolute", green_within=Decimal("5"),
               amber_within=Decimal("25"))  # fmt: skip
        compute(shop, kpi)
        result = stamped(kpi)
        assert result[("2026-02", "north")][4] == "amber"  # 20 short, within 25
        assert result[("2026-02", "south")][4] == "red"  # 80 short
        assert result[("2026-01", "north")][4] == "green"

    def test_a_percent_band_close_to_the_target_is_amber(self, shop):
        kpi = make_kpi(shop, "revenue", measure="revenue", dimensions=["region"])
        target(shop, kpi, value=Decimal("85"), tolerance_kind="percent", green_within=0, amber_within=Decimal("10"))
        compute(shop, kpi)
        assert stamped(kpi)[("2026-02", "north")][4] == "amber"  # 80 vs 85: 5.9 % short

    def test_lower_is_better_turns_the_shortfall_around(self, shop):
        kpi = make_kpi(shop, "units", measure="units", dimensions=["region"], direction="lower")
        target(shop, kpi, value=Decimal("10"), tolerance_kind="absolute", green_within=0, amber_within=Decimal("5"))
        compute(shop, kpi)
        result = stamped(kpi)
        assert result[("2026-01", "north")][2:] == (Decimal("8"), Decimal("55.56"), "red", 1)  # 18 vs 10
        assert result[("2026-02", "north")][2:] == (Decimal("-2"), Decimal("125.00"), "green", 0)  # 8 vs 10
        assert result[("2026-01", "south")][4] == "red"  # 20 vs 10
        assert result[("2026-02", "south")][4] == "green"  # 2

    def test_without_an_approved_target_the_status_is_none(self, shop):
        kpi = make_kpi(shop, "revenue", measure="revenue", dimensions=["region"])
        target(shop, kpi, value=Decimal("100"), approve=False)
        compute(shop, kpi)
        assert {v.status for v in KpiValue.objects.filter(kpi_version=kpi)} == {"none"}
        assert not KpiValue.objects.filter(kpi_version=kpi, target__isnull=False).exists()


class TestSpecificity:
    def test_a_dimension_target_beats_the_general_one(self, shop):
        kpi = make_kpi(shop, "revenue", measure="revenue", dimensions=["region"])
        target(shop, kpi, value=Decimal("100"))
        target(shop, kpi, value=Decimal("50"), dimensions={"region": "north"})
        compute(shop, kpi)
        result = stamped(kpi)
        assert result[("2026-02", "north")][1] == Decimal("50") and result[("2026-02", "north")][4] == "green"
        assert result[("2026-02", "south")][1] == Decimal("100") and result[("2026-02", "south")][4] == "red"

    def test_a_shorter_range_beats_a_longer_one(self, shop):
        kpi = make_kpi(shop, "revenue", measure="revenue", dimensions=["region"])
        target(shop, kpi, value=Decimal("100"))
        target(shop, kpi, value=Decimal("70"), first=(2026, 2), last=(2026, 2))
        compute(shop, kpi)
        result = stamped(kpi)
        assert (result[("2026-01", "north")][1], result[("2026-02", "north")][1]) == (Decimal("100"), Decimal("70"))

    def test_a_target_applies_only_within_its_periods(self, shop):
        kpi = make_kpi(shop, "revenue", measure="revenue", dimensions=["region"])
        target(shop, kpi, value=Decimal("100"), first=(2026, 2), last=(2026, 3))
        compute(shop, kpi)
        assert stamped(kpi)[("2026-01", "north")][1] is None


class TestStreaks:
    def test_a_gap_or_a_met_target_ends_the_streak(self, world):
        load(world, [{"day": d(2026, m, 1), "store": "S1", "region": "north", "revenue": r}
                     for m, r in ((1, 10), (2, 10), (3, 500), (4, 10), (5, 10), (6, 10), (8, 10))])  # fmt: skip
        kpi = make_kpi(world, "revenue", measure="revenue")
        target(world, kpi, value=Decimal("100"), first=(2026, 1), last=(2026, 12))
        compute(world, kpi)
        streaks = {v.period.label: v.streak for v in KpiValue.objects.filter(kpi_version=kpi).select_related("period")}
        assert streaks == {"2026-01": 1, "2026-02": 2, "2026-03": 0, "2026-04": 1, "2026-05": 2, "2026-06": 3,
                           "2026-08": 1}  # fmt: skip

    def test_streaks_count_per_dimension_set(self, shop):
        kpi = make_kpi(shop, "revenue", measure="revenue", dimensions=["region"])
        target(shop, kpi, value=Decimal("190"))
        compute(shop, kpi)
        result = stamped(kpi)
        assert [result[(m, "north")][5] for m in ("2026-01", "2026-02", "2026-03")] == [1, 2, 3]
        assert [result[(m, "south")][5] for m in ("2026-01", "2026-02")] == [0, 1]


class TestGovernance:
    def test_approving_a_target_stamps_the_computed_values_and_announces_status_changes(self, shop):
        kpi = make_kpi(shop, "revenue", measure="revenue", dimensions=["region"])
        compute(shop, kpi)
        assert not DomainEvent.objects.filter(type="kpi.status_changed").exists()
        target(shop, kpi, value=Decimal("100"))
        assert (
            KpiValue.objects.get(kpi_version=kpi, period__label="2026-02", dimensions__region="north").status == "red"
        )
        changes = DomainEvent.objects.filter(type="kpi.status_changed")
        assert changes.count() == 5
        red = changes.get(payload__period_label="2026-02", payload__dimensions__region="north")
        assert (red.payload["from"], red.payload["to"], red.payload["actual"]) == ("none", "red", "80.0000000000")

    def test_a_recompute_that_moves_a_status_announces_it(self, shop):
        kpi = make_kpi(shop, "revenue", measure="revenue", dimensions=["region"])
        target(shop, kpi, value=Decimal("100"))
        compute(shop, kpi)
        seen = set(DomainEvent.objects.filter(type="kpi.status_changed").values_list("id", flat=True))
        load(shop, [{"day": d(2026, 2, 20), "store": "S9", "region": "north", "channel": "web", "revenue": 50}])
        compute(shop, kpi)
        [event] = DomainEvent.objects.filter(type="kpi.status_changed").exclude(id__in=seen)
        assert (event.payload["period_label"], event.payload["from"], event.payload["to"]) == (
            "2026-02",
            "red",
            "green",
        )
        assert event.payload["dimensions"] == {"region": "north"} and event.payload["actual"].startswith("130")

    def test_retiring_an_approved_target_removes_it_from_the_values(self, shop):
        kpi = make_kpi(shop, "revenue", measure="revenue", dimensions=["region"])
        row = target(shop, kpi, value=Decimal("100"))
        compute(shop, kpi)
        kpis.kpi_target_retire(actor=shop.admin, target=row, comment="wrong year")
        assert set(KpiValue.objects.filter(kpi_version=kpi).values_list("status", flat=True)) == {"none"}

    def test_the_proposer_cannot_approve_a_target(self, shop):
        kpi = make_kpi(shop, "revenue", measure="revenue")
        row = target(shop, kpi, value=Decimal("100"), approve=False)
        kpis.kpi_target_propose(actor=shop.admin, target=row)
        with pytest.raises(ForbiddenError) as refused:
            kpis.kpi_target_approve(actor=shop.admin, target=row)
        assert refused.value.slug == "four-eyes"

    def test_a_steward_cannot_approve_a_target(self, shop, member):
        kpi = make_kpi(shop, "revenue", measure="revenue")
        row = target(shop, kpi, value=Decimal("100"), approve=False)
        kpis.kpi_target_propose(actor=shop.admin, target=row)
        with pytest.raises(ForbiddenError) as refused:
            kpis.kpi_target_approve(actor=shop.steward, target=row)
        assert refused.value.slug == "not-an-approver"

    def test_an_approved_target_is_frozen_and_a_retired_one_final(self, shop):
        kpi = make_kpi(shop, "revenue", measure="revenue")
        row = target(shop, kpi, value=Decimal("100"))
        with pytest.raises(ConflictError) as frozen:
            kpis.kpi_target_update(actor=shop.steward, target=row, value=Decimal("1"))
        assert frozen.value.slug == "target-frozen"
        kpis.kpi_target_retire(actor=shop.admin, target=row)
        with pytest.raises(ConflictError) as final:
            kpis.kpi_target_propose(actor=shop.steward, target=row)
        assert final.value.slug == "illegal-transition" and final.value.extensions["allowed_next"] == []

    @pytest.mark.parametrize(
        ("attrs", "field"),
        [({"amber_within": Decimal("1"), "green_within": Decimal("5")}, "amber_within"),
         ({"green_within": Decimal("-1")}, "green_within"),
         ({"dimensions": {"colour": "red"}}, "dimensions")],
    )  # fmt: skip
    def test_bad_bands_or_dimensions_are_refused_on_their_field(self, shop, attrs, field):
        kpi = make_kpi(shop, "revenue", measure="revenue", dimensions=["region"])
        with pytest.raises(ValidationError) as refused:
            target(shop, kpi, value=Decimal("100"), approve=False, **attrs)
        assert field in refused.value.message_dict

    def test_a_range_that_ends_before_it_starts_is_refused(self, shop):
        kpi = make_kpi(shop, "revenue", measure="revenue")
        with pytest.raises(ValidationError) as refused:
            target(shop, kpi, value=Decimal("100"), first=(2026, 3), last=(2026, 1), approve=False)
        assert "period_to" in refused.value.message_dict
