"""Policies: typed parameters, scopes where the most specific wins, versions, and one evaluation service."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from apps.host import services
from apps.host.choices import PolicyStatusChoices as P
from apps.host.models import Policy
from apps.host.policies.evaluation import PolicySubject, effective_policies, evaluate, register_obligation_checker
from apps.host.policies.kinds import KINDS
from apps.kernel.errors import ConflictError, ForbiddenError
from apps.kernel.roles import RoleChoices
from apps.runtime.models import DomainEvent

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin(tenant_a, member):
    return member(tenant_a, RoleChoices.ADMIN, username="admin-a")


@pytest.fixture
def contract(tenant_a, admin):
    return services.contract_create(actor=admin, tenant=tenant_a, key="orders", name="Orders")


def active(actor, **kwargs):
    return services.policy_activate(actor=actor, policy=services.policy_create(actor=actor, **kwargs))


def gate(actor, minimum, **scope):
    return active(actor, kind="quality_gate", name=f"gate {minimum}", parameters={"min_batch_pass_rate": minimum},
                  **scope)  # fmt: skip


class TestParameters:
    @pytest.mark.parametrize("kind", list(KINDS))
    def test_every_kind_accepts_its_documented_example(self, kind, tenant_a, admin):
        policy = services.policy_create(actor=admin, tenant=tenant_a, kind=kind, name=kind,
                                        parameters=KINDS[kind].example)  # fmt: skip
        assert policy.status == P.DRAFT

    @pytest.mark.parametrize(
        ("kind", "parameters", "located"),
        [
            (
                "quality_gate",
                {"min_batch_pass_rate": 140},
                "min_batch_pass_rate: 140 is greater than the maximum of 100",
            ),
            ("quality_gate", {}, "'min_batch_pass_rate' is a required property"),
            ("export_control", {"allowed_formats": ["pdf"]}, "allowed_formats/0: 'pdf' is not one of"),
            ("export_control", {"max_rows": 0}, "max_rows: 0 is less than the minimum of 1"),
            ("retention", {"raw_days": "ninety"}, "raw_days: 'ninety' is not of type 'integer'"),
            ("classification_handling", {"restricted": "shredded"}, "restricted: 'shredded' is not one of"),
            ("publication_approval", {"four_eyes": True, "extra": 1}, "'extra' was unexpected"),
            ("lineage_obligation", {"requirements": ["vibes"]}, "requirements/0: 'vibes' is not one of"),
        ],
    )
    def test_bad_parameters_are_refused_with_a_located_message(self, tenant_a, admin, kind, parameters, located):
        with pytest.raises(ValidationError) as exc:
            services.policy_create(actor=admin, tenant=tenant_a, kind=kind, name="x", parameters=parameters)
        assert any(located in message for message in exc.value.message_dict["parameters"])
        assert not Policy.objects.exists()

    def test_an_unknown_kind_is_refused(self, tenant_a, admin):
        with pytest.raises(ValidationError, match="Unknown policy kind"):
            services.policy_create(actor=admin, tenant=tenant_a, kind="vibes", name="x", parameters={})


class TestScopesAndPrecedence:
    def test_the_most_specific_active_policy_decides(self, tenant_a, admin, superuser, contract):
        platform = gate(superuser, 50)
        tenant_wide = gate(admin, 80, tenant=tenant_a)
        just_orders = gate(admin, 99, contract=contract)
        other = services.contract_create(actor=admin, tenant=tenant_a, key="stock", name="Stock")

        resolved = effective_policies(tenant=tenant_a, contract=contract)["quality_gate"]
        assert resolved.policy == just_orders
        assert resolved.overridden == (tenant_wide, platform)
        assert effective_policies(tenant=tenant_a, contract=other)["quality_gate"].policy == tenant_wide
        assert just_orders.scope_label == "contract orders"

    def test_a_platform_policy_applies_to_every_tenant(self, tenant_a, tenant_b, superuser):
        platform = gate(superuser, 50)
        assert effective_policies(tenant=tenant_b)["quality_gate"].policy == platform

    def test_another_tenants_policy_never_applies(self, tenant_a, tenant_b, admin, member):
        gate(member(tenant_b, RoleChoices.ADMIN), 99, tenant=tenant_b)
        assert effective_policies(tenant=tenant_a)["quality_gate"].policy is None

    def test_only_superusers_manage_platform_policies(self, admin):
        with pytest.raises(ForbiddenError):
            services.policy_create(actor=admin, kind="quality_gate", name="x", parameters={"min_batch_pass_rate": 1})


class TestVersions:
    def test_a_revision_is_a_new_draft_and_activating_it_retires_the_old_version(self, tenant_a, admin):
        v1 = gate(admin, 80, tenant=tenant_a)
        v2 = services.policy_revise(actor=admin, policy=v1, parameters={"min_batch_pass_rate": 90})
        assert (v2.version, v2.status, v2.lineage) == (2, P.DRAFT, v1.lineage)
        assert effective_policies(tenant=tenant_a)["quality_gate"].policy == v1  # still in force
        services.policy_activate(actor=admin, policy=v2)
        v1.refresh_from_db()
        assert v1.status == P.RETIRED
        assert effective_policies(tenant=tenant_a)["quality_gate"].policy.pk == v2.pk
        assert DomainEvent.objects.filter(type="policy.retired", payload__policy=v1.pk).exists()

    def test_only_drafts_are_edited_in_place(self, tenant_a, admin):
        policy = gate(admin, 80, tenant=tenant_a)
        with pytest.raises(ConflictError, match="revise it"):
            services.policy_update(actor=admin, policy=policy, parameters={"min_batch_pass_rate": 1})
        with pytest.raises(ConflictError):
            services.policy_activate(actor=admin, policy=policy)
        services.policy_retire(actor=admin, policy=policy)
        with pytest.raises(ConflictError, match="already retired"):
            services.policy_retire(actor=admin, policy=policy)


class TestEvaluation:
    def test_a_batch_below_the_gate_is_refused_with_the_reason(self, tenant_a, admin):
        gate(admin, 95, tenant=tenant_a)
        decision = evaluate("batch.accept", PolicySubject(tenant_a, facts={"pass_rate": 91.5}))
        assert not decision.allowed
        assert decision.failures[0].message == "Pass rate 91.5% is below the required 95%."
        assert decision.failures[0].scope == "tenant tenant-a"
        assert evaluate("batch.accept", PolicySubject(tenant_a, facts={"pass_rate": 95})).allowed

    def test_without_policies_everything_is_allowed_and_says_so(self, tenant_a):
        decision = evaluate("output.publish", PolicySubject(tenant_a))
        assert decision.allowed
        assert {r.kind for r in decision.reasons} == {"quality_gate", "publication_approval", "lineage_obligation"}

    def test_publishing_names_every_unmet_condition(self, tenant_a, admin, contract):
        active(admin, tenant=tenant_a, kind="quality_gate", name="g",
               parameters={"min_batch_pass_rate": 90, "min_publish_pass_rate": 99})  # fmt: skip
        active(admin, tenant=tenant_a, kind="publication_approval", name="4e", parameters={"four_eyes": True})
        active(admin, tenant=tenant_a, kind="lineage_obligation", name="lin",
               parameters={"requirements": ["contract_active", "kpi_values_traceable_to_raw"],
                           "retain_lineage_days": 365})  # fmt: skip
        facts = {"pass_rate": 98, "publisher": "ann", "approvers": ["ann"]}
        decision = evaluate("output.publish", PolicySubject(tenant_a, contract, facts))
        assert not decision.allowed
        messages = [r.message for r in decision.failures]
        assert messages == [
            "Pass rate 98% is below the required 99%.",
            "Four eyes: a second person must approve the publication.",
            "contract_active: the contract has no active version.",
            "kpi_values_traceable_to_raw: no KPI values named, so none can be traced.",
            "Lineage must be kept 365 days; the retention policy keeps it no set number of days.",
        ]

    def test_registered_checkers_and_caller_facts_prove_obligations(self, tenant_a, admin, contract, monkeypatch):
        from apps.host.policies import evaluation

        monkeypatch.setattr(evaluation, "_obligation_checkers", dict(evaluation._obligation_checkers))
        register_obligation_checker("kpi_values_traceable_to_raw")(lambda subject: (True, "all 12 values traced."))
        # Caller facts count only where no module registered a checker (compute registers this one).
        evaluation._obligation_checkers.pop("sources_under_active_contract", None)
        active(admin, tenant=tenant_a, kind="lineage_obligation", name="lin",
               parameters={"requirements": ["kpi_values_traceable_to_raw", "sources_under_active_contract"]})  # fmt: skip
        facts = {"lineage": {"sources_under_active_contract": True}}
        decision = evaluate("output.publish", PolicySubject(tenant_a, contract, facts))
        assert decision.allowed, decision.failures

    def test_an_export_is_checked_after_classified_fields_are_treated(self, tenant_a, admin):
        active(admin, tenant=tenant_a, kind="classification_handling", name="ch",
               parameters={"restricted": "excluded", "internal": "masked"})  # fmt: skip
        active(admin, tenant=tenant_a, kind="export_control", name="ec",
               parameters={"allowed_formats": ["csv"], "max_rows": 1000, "max_classification": "internal"})  # fmt: skip
        fields = {"id": "public", "email": "confidential", "ssn": "restricted", "phone": "internal"}
        decision = evaluate("export.create", PolicySubject(tenant_a, facts={"format": "parquet", "rows": 5000,
                                                                           "fields": fields}))  # fmt: skip
        assert decision.treatments["fields"] == {"phone": "masked", "ssn": "excluded"}
        assert [r.message for r in decision.failures] == [
            "Format 'parquet' is not allowed; allowed: csv.",
            "5000 rows; at most 1000 may leave.",
            "Fields above 'internal' would leave in the clear: email.",
        ]

    def test_an_unknown_action_is_an_error(self, tenant_a):
        with pytest.raises(ValueError, match="unknown action"):
            evaluate("launch.rockets", PolicySubject(tenant_a))
