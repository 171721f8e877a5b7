"""KPI versions: validation against the contract and the other KPIs, four-eyes lifecycle, the log."""

from __future__ import annotations

from typing import Any

import pytest
from auditlog.models import LogEntry
from django.core.exceptions import ValidationError

from apps.compute.kpis import services as kpis
from apps.compute.kpis.models import KpiTransition, KpiVersion
from apps.kernel.errors import ConflictError, ForbiddenError
from apps.kernel.roles import RoleChoices
from apps.runtime.models import DomainEvent
from tests.compute.test_kpi_fixtures import *  # noqa: F403
from tests.compute.test_kpi_fixtures import make_kpi


def draft(world: Any, key: str = "revenue", **attrs: Any) -> KpiVersion:
    attrs.setdefault("measure", "revenue")
    return make_kpi(world, key, activate=False, **attrs)


def refused(exc: Any) -> dict[str, list[str]]:
    return exc.value.message_dict


class TestValidation:
    def test_an_unknown_measure_names_the_contracts_measures(self, world):
        with pytest.raises(ValidationError) as exc:
            draft(world, measure="profit")
        assert "'profit' is not a measure of contract 'shop' (measures: revenue, units, visits)." in refused(exc)[
            "measure"]  # fmt: skip

    def test_an_unknown_dimension_or_filter_is_refused(self, world):
        with pytest.raises(ValidationError) as exc:
            draft(world, dimensions=["colour"], filters={"size": "xl"})
        assert set(refused(exc)) == {"dimensions", "filters"}

    def test_a_ratio_needs_its_denominator(self, world):
        with pytest.raises(ValidationError) as exc:
            draft(world, kind="ratio")
        assert {"denominator_measure", "denominator_aggregation"} <= set(refused(exc))

    def test_a_cumulative_kpi_needs_a_mode_and_an_additive_aggregation(self, world):
        with pytest.raises(ValidationError) as exc:
            draft(world, kind="cumulative", aggregation="count_distinct")
        assert "cumulative_mode" in refused(exc)
        with pytest.raises(ValidationError) as exc:
            draft(world, kind="cumulative", cumulative_mode="rolling")
        assert "window_periods" in refused(exc)
        with pytest.raises(ValidationError) as exc:
            draft(world, kind="cumulative", cumulative_mode="quarter_to_date", level="quarter")
        assert "level" in refused(exc)

    def test_a_derived_kpi_refuses_unknown_references_and_bad_syntax(self, world):
        with pytest.raises(ValidationError) as exc:
            draft(world, "d", kind="derived", measure="", contract=None, expression="{nope} / 2")
        assert refused(exc)["expression"] == ["No KPI 'nope' in this tenant."]
        with pytest.raises(ValidationError) as exc:
            draft(world, "d", kind="derived", measure="", contract=None, expression="__import__('os')")
        assert "Unexpected" in refused(exc)["expression"][0]

    def test_a_derived_kpi_refuses_a_cycle(self, world):
        make_kpi(world, "a", measure="revenue")
        b = make_kpi(world, "b", kind="derived", measure="", expression="a * 2")
        # a new version of "a" that reads "b" would close the loop a → b → a
        with pytest.raises(ValidationError) as exc:
            kpis.kpi_version_create(actor=world.steward, definition=b.definition.__class__.objects.get(key="a"),
                                    version="2.0.0", kind="derived", expression="b + 1", calendar=world.calendar)  # fmt: skip
        assert "References form a cycle: a → b → a." in refused(exc)["expression"]

    def test_a_derived_kpi_refuses_references_on_another_grain(self, world):
        make_kpi(world, "q", measure="revenue", level="quarter")
        with pytest.raises(ValidationError) as exc:
            draft(world, "d", kind="derived", measure="", expression="q")
        assert "computed on another grain" in refused(exc)["expression"][0]

    def test_a_contract_of_another_tenant_is_refused(self, world, tenant_b):
        from tests.factories import DataContractFactory

        with pytest.raises(ValidationError) as exc:
            draft(world, contract=DataContractFactory(tenant=tenant_b))
        assert refused(exc)["contract"] == ["Belongs to another tenant."]


class TestLifecycle:
    def test_the_proposer_can_never_approve(self, world, member):
        version = draft(world)
        kpis.kpi_version_propose(actor=world.admin, version=version)
        with pytest.raises(ForbiddenError) as exc:
            kpis.kpi_version_approve(actor=world.admin, version=version)
        assert exc.value.slug == "four-eyes"

    def test_only_an_admin_or_a_granted_approver_approves(self, world, member):
        from guardian.shortcuts import assign_perm

        version = draft(world)
        kpis.kpi_version_propose(actor=world.steward, version=version)
        other = member(world.tenant, RoleChoices.STEWARD)
        with pytest.raises(ForbiddenError) as exc:
            kpis.kpi_version_approve(actor=other, version=version)
        assert exc.value.slug == "not-an-approver"
        assign_perm("compute.approve_kpidefinition", other, version.definition)
        kpis.kpi_version_approve(actor=other, version=version)
        assert KpiVersion.objects.get(pk=version.pk).status == "approved"

    def test_an_illegal_transition_names_the_allowed_next_states(self, world):
        version = draft(world)
        with pytest.raises(ConflictError) as exc:
            kpis.kpi_version_activate(actor=world.admin, version=version)
        assert exc.value.slug == "illegal-transition"
        assert exc.value.extensions == {"current_status": "draft", "allowed_next": ["proposed", "retired"]}

    def test_rejection_needs_a_reason_and_returns_to_draft(self, world):
        version = draft(world)
        kpis.kpi_version_propose(actor=world.steward, version=version)
        with pytest.raises(ValidationError):
            kpis.kpi_version_reject(actor=world.admin, version=version, comment=" ")
        kpis.kpi_version_reject(actor=world.admin, version=version, comment="wrong measure")
        version.refresh_from_db()
        assert (version.status, version.decision_comment) == ("draft", "wrong measure")

    def test_a_proposed_version_is_frozen_and_a_retired_one_read_only(self, world):
        version = draft(world)
        kpis.kpi_version_propose(actor=world.steward, version=version)
        with pytest.raises(ConflictError) as exc:
            kpis.kpi_version_update(actor=world.steward, version=version, unit="EUR")
        assert exc.value.slug == "version-frozen"
        kpis.kpi_version_reject(actor=world.admin, version=version, comment="no")
        kpis.kpi_version_retire(actor=world.admin, version=version)
        for service in (kpis.kpi_version_propose, kpis.kpi_version_activate, kpis.kpi_version_deprecate):
            with pytest.raises(ConflictError):
                service(actor=world.admin, version=version)

    def test_content_changed_after_proposal_is_refused(self, world):
        version = draft(world)
        kpis.kpi_version_propose(actor=world.steward, version=version)
        KpiVersion.objects.filter(pk=version.pk).update(unit="USD")  # behind the services' back
        with pytest.raises(ConflictError) as exc:
            kpis.kpi_version_approve(actor=world.admin, version=version)
        assert exc.value.slug == "content-changed"

    def test_activating_a_new_version_deprecates_the_old_one(self, world):
        first = make_kpi(world, "revenue", measure="revenue")
        second = make_kpi(world, "revenue", version="1.1.0", measure="revenue", aggregation="avg")
        assert KpiVersion.objects.get(pk=first.pk).status == "deprecated"
        assert KpiVersion.objects.get(pk=second.pk).status == "active"
        assert KpiVersion.objects.filter(definition=first.definition, status="active").count() == 1

    def test_every_step_is_logged_audited_and_announced(self, world):
        version = make_kpi(world, "revenue", measure="revenue")
        steps = list(KpiTransition.objects.filter(version=version).values_list("from_status", "to_status", "actor"))
        assert steps == [("", "draft", world.steward.pk), ("draft", "proposed", world.steward.pk),
                         ("proposed", "approved", world.admin.pk), ("approved", "active", world.admin.pk)]  # fmt: skip
        types = set(DomainEvent.objects.filter(type__startswith="kpi.").values_list("type", flat=True))
        assert {"kpi.created", "kpi.version_created", "kpi.proposed", "kpi.approved", "kpi.activated"} <= types
        assert LogEntry.objects.get_for_object(version).filter(actor=world.admin).exists()

    def test_a_kpi_that_left_draft_cannot_be_deleted(self, world):
        version = make_kpi(world, "revenue", measure="revenue")
        with pytest.raises(ConflictError) as exc:
            kpis.kpi_definition_delete(actor=world.admin, definition=version.definition)
        assert exc.value.slug == "kpi-in-use"
        only_draft = draft(world, "scratch")
        kpis.kpi_definition_delete(actor=world.admin, definition=only_draft.definition)
        assert not KpiVersion.objects.filter(pk=only_draft.pk).exists()
