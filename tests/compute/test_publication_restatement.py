"""Restatements: period close snapshots, late data proposes a restatement with the diff, approval supersedes."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from apps.compute.publication import services
from apps.compute.publication.models import Restatement
from apps.host import services as host
from apps.kernel.errors import ConflictError, ForbiddenError
from apps.kernel.roles import RoleChoices
from apps.runtime.models import DomainEvent
from apps.storage.calendars import services as calendars
from apps.storage.published import (
    PublishedOutput,
    content_hash_of,
    published_output_as_published_on,
    published_output_in_force,
    published_output_latest,
)
from apps.trust import selectors as trust
from tests.compute.test_kpi_fixtures import *  # noqa: F403
from tests.compute.test_kpi_fixtures import compute, d, later, load, make_kpi

ROWS = [
    {"day": d(2026, 1, 5), "store": "S1", "region": "north", "revenue": 100},
    {"day": d(2026, 1, 9), "store": "S3", "region": "south", "revenue": 200},
    {"day": d(2026, 2, 3), "store": "S1", "region": "north", "revenue": 80},
]
LATE = [
    {"day": d(2026, 1, 20), "store": "S2", "region": "north", "revenue": 25},  # a new store for north in January
    {"day": d(2026, 1, 28), "store": "S4", "region": "east", "revenue": 7},  # a region January never had
]


@pytest.fixture
def closed(world: Any, django_capture_on_commit_callbacks: Any) -> Any:
    """Revenue by region computed, then January closed (which snapshots it)."""
    load(world, ROWS)
    world.kpi = make_kpi(world, "revenue", measure="revenue", aggregation="sum", dimensions=["region"])
    with django_capture_on_commit_callbacks(execute=True):
        compute(world, world.kpi)
        calendars.period_close(actor=world.admin, tenant=world.tenant, period=world.period(2026, 1), reason="books")
    world.kpi.refresh_from_db()
    return world


def late_data(world: Any, capture: Any, rows: list[dict[str, Any]] = LATE) -> None:
    """Rows recorded after the KPI's watermark, then an incremental computation that sees them."""
    world.kpi.refresh_from_db()
    moment = max(timezone.now(), world.kpi.computed_as_of) + timedelta(seconds=1)
    with capture(execute=True):
        load(world, rows, at=moment)
        compute(world, world.kpi, as_of=moment + timedelta(seconds=1))


def policy(world: Any, kind: str, parameters: dict[str, Any]) -> None:
    row = host.policy_create(actor=world.admin, tenant=world.tenant, kind=kind, name=kind, parameters=parameters)
    host.policy_activate(actor=world.admin, policy=row)


class TestPeriodClose:
    def test_closing_a_period_snapshots_its_kpi_values(self, closed):
        [snapshot] = PublishedOutput.objects.filter(tenant=closed.tenant)
        assert (snapshot.kind, snapshot.version, snapshot.period_labels) == ("period_close", 1, ["2026-01"])
        assert snapshot.closed_period == closed.period(2026, 1)
        assert snapshot.published_by == closed.admin
        assert [(r["dimensions"]["region"], r["actual"]) for r in snapshot.values] == [
            ("north", "100"),
            ("south", "200"),
        ]
        assert snapshot.content_hash == content_hash_of(snapshot)
        assert DomainEvent.objects.get(type="kpi.published").payload["kind"] == "period_close"

    def test_a_replayed_close_event_snapshots_nothing_twice(self, closed):
        assert services.period_close_snapshot(tenant=closed.tenant, period=closed.period(2026, 1)) == []
        assert PublishedOutput.objects.count() == 1

    def test_a_recompute_that_changes_nothing_proposes_nothing(self, closed, django_capture_on_commit_callbacks):
        with django_capture_on_commit_callbacks(execute=True):
            compute(closed, closed.kpi, full=True)
        assert not Restatement.objects.exists()


class TestLateData:
    def test_late_data_for_a_closed_period_proposes_a_restatement_with_the_diff(
        self, closed, django_capture_on_commit_callbacks
    ):
        snapshot = PublishedOutput.objects.get()
        late_data(closed, django_capture_on_commit_callbacks)
        [restatement] = Restatement.objects.all()
        assert (restatement.status, restatement.supersedes, restatement.kpi_key) == ("proposed", snapshot, "revenue")
        assert [
            (row["period"], row["dimensions"], row["old"], row["new"], row["delta"]) for row in restatement.diff
        ] == [
            ("2026-01", {"region": "east"}, None, "7", None),
            ("2026-01", {"region": "north"}, "100", "125", "25"),
        ]
        assert restatement.period_labels == ["2026-01"]
        assert restatement.trigger.startswith("kpi.computed run ")
        # The published numbers did not move.
        assert PublishedOutput.objects.get().values == snapshot.values

    def test_more_late_data_refreshes_the_open_proposal(self, closed, django_capture_on_commit_callbacks):
        late_data(closed, django_capture_on_commit_callbacks)
        late_data(closed, django_capture_on_commit_callbacks,
                  [{"day": d(2026, 1, 21), "store": "S5", "region": "south", "revenue": 1}])  # fmt: skip
        [restatement] = Restatement.objects.all()
        assert {row["dimensions"]["region"]: row["new"] for row in restatement.diff} == {
            "east": "7",
            "north": "125",
            "south": "201",
        }

    def test_a_proposal_whose_numbers_match_again_is_closed_by_aurum(self, closed, django_capture_on_commit_callbacks):
        late_data(closed, django_capture_on_commit_callbacks, [{"day": d(2026, 1, 5), "store": "S1", "region": "north",
                                                                "revenue": 101}])  # fmt: skip
        late_data(closed, django_capture_on_commit_callbacks, [{"day": d(2026, 1, 5), "store": "S1", "region": "north",
                                                                "revenue": 100}])  # fmt: skip
        [restatement] = Restatement.objects.all()
        assert restatement.status == "rejected" and restatement.decided_by is None
        assert "match the publication again" in restatement.reason

    def test_a_published_open_period_is_restated_too(self, closed, django_capture_on_commit_callbacks):
        output = services.kpi_publish(actor=closed.steward, tenant=closed.tenant, version=closed.kpi,
                                      periods=["2026-02"])  # fmt: skip
        late_data(closed, django_capture_on_commit_callbacks,
                  [{"day": d(2026, 2, 10), "store": "S1", "region": "north", "revenue": 5}])  # fmt: skip
        [restatement] = Restatement.objects.all()
        assert restatement.supersedes == output
        assert [(r["old"], r["new"]) for r in restatement.diff] == [("80", "85")]

    def test_derived_kpis_reading_the_kpi_are_listed_downstream(self, closed, django_capture_on_commit_callbacks):
        make_kpi(closed, "double-revenue", kind="derived", expression="{revenue} * 2", dimensions=["region"])
        late_data(closed, django_capture_on_commit_callbacks)
        assert Restatement.objects.get(kpi_key="revenue").downstream == ["double-revenue"]


class TestDecision:
    def test_approval_supersedes_the_old_output_and_both_stay_readable(
        self, closed, django_capture_on_commit_callbacks, monkeypatch
    ):
        snapshot = PublishedOutput.objects.get()
        late_data(closed, django_capture_on_commit_callbacks)
        restatement = Restatement.objects.get()
        published_on = timezone.localdate(snapshot.published_at)
        two_days_later = timezone.now() + timedelta(days=2)
        monkeypatch.setattr(timezone, "now", lambda: two_days_later)
        with django_capture_on_commit_callbacks(execute=True):
            restatement = services.restatement_approve(actor=closed.steward, restatement=restatement,
                                                       reason="Store S2 and region east reported late.")  # fmt: skip
        new = restatement.output
        assert (new.kind, new.version, new.supersedes, new.published_by) == ("restatement", 2, snapshot, closed.steward)
        assert new.reason == "Store S2 and region east reported late."
        assert {r["dimensions"]["region"]: r["actual"] for r in new.values} == {
            "east": "7",
            "north": "125",
            "south": "200",
        }
        assert list(snapshot.superseded_by.all()) == [new]
        # Both readable: latest is the restatement; as published on the close's day, the snapshot.
        january = closed.period(2026, 1).pk
        assert published_output_latest(tenant=closed.tenant, kpi_key="revenue") == new
        assert published_output_as_published_on(tenant=closed.tenant, kpi_key="revenue", day=published_on,
                                                 period_id=january) == snapshot  # fmt: skip
        assert published_output_as_published_on(tenant=closed.tenant, kpi_key="revenue",
                                                 day=two_days_later.date(), period_id=january) == new  # fmt: skip
        assert published_output_in_force(tenant=closed.tenant, kpi_key="revenue",
                                         at=snapshot.published_at - timedelta(seconds=1)) is None  # fmt: skip
        assert PublishedOutput.objects.get(pk=snapshot.pk).values == snapshot.values

        event = DomainEvent.objects.get(type="kpi.restated")
        assert {k: event.payload[k] for k in ("kpi", "publication", "publication_version", "supersedes",
                                               "supersedes_version", "content_hash", "reason")} == {
            "kpi": "revenue", "publication": new.pk, "publication_version": 2, "supersedes": snapshot.pk,
            "supersedes_version": 1, "content_hash": new.content_hash,
            "reason": "Store S2 and region east reported late.",
        }  # fmt: skip
        assert len(event.payload["diff"]) == 2
        kinds = [entry.kind for entry in trust.evidence_list(tenant=closed.tenant).order_by("sequence")]
        assert kinds[-3:] == ["period.closed", "kpi.published", "kpi.restated"] or kinds[-3:] == [
            "kpi.published",
            "period.closed",
            "kpi.restated",
        ]
        [entry] = trust.evidence_list(tenant=closed.tenant, kind="kpi.restated")
        assert entry.content["payload"]["content_hash"] == new.content_hash
        assert trust.evidence_verify(tenant=closed.tenant).ok

    def test_the_numbers_after_approval_are_in_force_so_nothing_more_is_proposed(
        self, closed, django_capture_on_commit_callbacks
    ):
        late_data(closed, django_capture_on_commit_callbacks)
        services.restatement_approve(actor=closed.steward, restatement=Restatement.objects.get(), reason="late")
        with django_capture_on_commit_callbacks(execute=True):
            compute(closed, closed.kpi, full=True, as_of=later(30))
        assert list(Restatement.objects.values_list("status", flat=True)) == ["approved"]

    def test_a_decision_needs_a_reason_and_rejection_keeps_the_numbers(
        self, closed, django_capture_on_commit_callbacks
    ):
        late_data(closed, django_capture_on_commit_callbacks)
        restatement = Restatement.objects.get()
        for decide in (services.restatement_approve, services.restatement_reject):
            with pytest.raises(ValidationError):
                decide(actor=closed.steward, restatement=restatement, reason="  ")
        restatement = services.restatement_reject(actor=closed.steward, restatement=restatement, reason="audit first")
        assert (restatement.status, restatement.decided_by, restatement.output) == ("rejected", closed.steward, None)
        assert PublishedOutput.objects.count() == 1
        with pytest.raises(ConflictError):
            services.restatement_approve(actor=closed.steward, restatement=restatement, reason="changed my mind")

    def test_four_eyes_needs_two_different_stewards(self, closed, member, django_capture_on_commit_callbacks):
        policy(closed, "publication_approval", {"four_eyes": True})
        late_data(closed, django_capture_on_commit_callbacks)
        restatement = services.restatement_approve(actor=closed.steward, restatement=Restatement.objects.get(),
                                                   reason="late stores")  # fmt: skip
        assert (restatement.status, restatement.first_approved_by, restatement.output) == (
            "proposed",
            closed.steward,
            None,
        )
        with pytest.raises(ForbiddenError) as refusal:
            services.restatement_approve(actor=closed.steward, restatement=restatement, reason="again")
        assert refusal.value.slug == "four-eyes"
        second = member(closed.tenant, RoleChoices.STEWARD, username="second")
        restatement = services.restatement_approve(actor=second, restatement=restatement, reason="checked")
        output = restatement.output
        assert (output.published_by, output.approved_by) == (closed.steward, second)
        assert output.reason == "late stores\nchecked"

    def test_an_analyst_cannot_decide(self, closed, member, django_capture_on_commit_callbacks):
        late_data(closed, django_capture_on_commit_callbacks)
        with pytest.raises(ForbiddenError):
            services.restatement_approve(actor=member(closed.tenant, RoleChoices.ANALYST),
                                         restatement=Restatement.objects.get(), reason="x")  # fmt: skip
