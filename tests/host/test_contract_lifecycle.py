"""Contract versions move draft → proposed → approved → active → deprecated → retired,
with four eyes on approval, one active version, and compatibility guarded by the registry."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from guardian.shortcuts import assign_perm

from apps.host import services
from apps.host.choices import ContractStatusChoices as S
from apps.host.contracts.lifecycle import TRANSITIONS, IllegalTransition
from apps.host.models import ContractTransition, ContractVersion
from apps.kernel.errors import ConflictError, ForbiddenError
from apps.kernel.roles import RoleChoices
from apps.runtime.models import DomainEvent
from apps.utilities.models import SchemaVersion

pytestmark = pytest.mark.django_db

ORDER_FIELDS = [
    {"name": "order_id", "logical_type": "string", "required": True, "primary_key": True, "role": "entity_key"},
    {"name": "store_id", "logical_type": "string", "required": True, "role": "dimension"},
    {"name": "amount", "logical_type": "number", "required": True, "role": "measure", "unit": "EUR"},
]


@pytest.fixture
def people(tenant_a, member):
    return {
        "steward": member(tenant_a, RoleChoices.STEWARD, username="steward"),
        "approver": member(tenant_a, RoleChoices.ADMIN, username="approver"),
        "other_steward": member(tenant_a, RoleChoices.STEWARD, username="other"),
    }


@pytest.fixture
def contract(tenant_a, people):
    return services.contract_create(actor=people["steward"], tenant=tenant_a, key="orders", name="Orders")


def draft(contract, people, version="1.0.0", fields=ORDER_FIELDS, **attrs):
    return services.contract_version_create(
        actor=people["steward"], contract=contract, version=version, fields=[dict(f) for f in fields], **attrs
    )


def activate(version, people, **propose):
    services.contract_version_propose(actor=people["steward"], version=version, **propose)
    services.contract_version_approve(actor=people["approver"], version=version)
    return services.contract_version_activate(actor=people["approver"], version=version)


def status_of(version):
    return ContractVersion.objects.get(pk=version.pk).status


class TestTheHappyPath:
    def test_a_version_goes_from_draft_to_active_with_a_log_and_events(self, contract, people):
        version = activate(draft(contract, people), people)
        assert status_of(version) == S.ACTIVE
        steps = list(ContractTransition.objects.filter(version=version).values_list("from_status", "to_status"))
        assert steps == [("", S.DRAFT), (S.DRAFT, S.PROPOSED), (S.PROPOSED, S.APPROVED), (S.APPROVED, S.ACTIVE)]
        types = list(DomainEvent.objects.filter(type__startswith="contract.").values_list("type", flat=True))
        assert {"contract.created", "contract.proposed", "contract.approved", "contract.activated"} <= set(types)

    def test_activation_registers_the_schema_in_the_registry(self, contract, people):
        version = activate(draft(contract, people), people)
        registered = SchemaVersion.objects.get(subject__name="contract.orders")
        assert version.schema_version == registered
        schema = registered.schema.schema
        assert schema["required"] == ["order_id", "store_id", "amount"]
        assert schema["additionalProperties"] is False

    def test_activating_a_new_version_deprecates_the_old_one(self, contract, people):
        v1 = activate(draft(contract, people), people)
        v11 = activate(draft(contract, people, "1.1.0", [*ORDER_FIELDS, {"name": "note", "logical_type": "string"}]),
                       people)  # fmt: skip
        assert (status_of(v1), status_of(v11)) == (S.DEPRECATED, S.ACTIVE)
        assert ContractVersion.objects.filter(contract=contract, status=S.ACTIVE).count() == 1

    def test_a_deprecated_version_can_be_reactivated_and_then_retired(self, contract, people):
        v1 = activate(draft(contract, people), people)
        v11 = activate(draft(contract, people, "1.1.0"), people)
        services.contract_version_activate(actor=people["approver"], version=v1)
        assert (status_of(v1), status_of(v11)) == (S.ACTIVE, S.DEPRECATED)
        services.contract_version_retire(actor=people["approver"], version=v11)
        assert status_of(v11) == S.RETIRED

    def test_a_rejection_sends_the_proposal_back_to_draft_with_the_reason(self, contract, people):
        version = draft(contract, people)
        services.contract_version_propose(actor=people["steward"], version=version)
        services.contract_version_reject(actor=people["approver"], version=version, comment="amount needs a unit")
        version.refresh_from_db()
        assert version.status == S.DRAFT
        assert version.decision_comment == "amount needs a unit"
        assert DomainEvent.objects.filter(type="contract.rejected").exists()


class TestFourEyes:
    def test_it_refuses_approval_by_the_proposer(self, contract, people):
        version = draft(contract, people)
        services.contract_version_propose(actor=people["approver"], version=version)
        with pytest.raises(ForbiddenError, match="Four eyes"):
            services.contract_version_approve(actor=people["approver"], version=version)
        assert status_of(version) == S.PROPOSED

    def test_it_refuses_approval_by_a_steward_without_the_approver_right(self, contract, people):
        version = draft(contract, people)
        services.contract_version_propose(actor=people["steward"], version=version)
        with pytest.raises(ForbiddenError, match="approver right"):
            services.contract_version_approve(actor=people["other_steward"], version=version)

    def test_a_steward_granted_the_approver_right_on_the_contract_may_approve(self, contract, people):
        assign_perm("host.approve_datacontract", people["other_steward"], contract)
        version = draft(contract, people)
        services.contract_version_propose(actor=people["steward"], version=version)
        services.contract_version_approve(actor=people["other_steward"], version=version)
        assert status_of(version) == S.APPROVED

    def test_an_admin_of_another_tenant_may_not_approve(self, contract, people, tenant_b, member):
        stranger = member(tenant_b, RoleChoices.ADMIN)
        version = draft(contract, people)
        services.contract_version_propose(actor=people["steward"], version=version)
        with pytest.raises(ForbiddenError):
            services.contract_version_approve(actor=stranger, version=version)

    def test_a_rejection_needs_a_comment(self, contract, people):
        version = draft(contract, people)
        services.contract_version_propose(actor=people["steward"], version=version)
        with pytest.raises(ValidationError, match="why"):
            services.contract_version_reject(actor=people["approver"], version=version, comment=" ")


ACTIONS = {
    "propose": lambda v, p: services.contract_version_propose(actor=p["steward"], version=v),
    "approve": lambda v, p: services.contract_version_approve(actor=p["approver"], version=v),
    "reject": lambda v, p: services.contract_version_reject(actor=p["approver"], version=v, comment="no"),
    "activate": lambda v, p: services.contract_version_activate(actor=p["approver"], version=v),
    "deprecate": lambda v, p: services.contract_version_deprecate(actor=p["approver"], version=v),
    "retire": lambda v, p: services.contract_version_retire(actor=p["approver"], version=v),
}
TARGET = {"propose": S.PROPOSED, "approve": S.APPROVED, "reject": S.DRAFT, "activate": S.ACTIVE,
          "deprecate": S.DEPRECATED, "retire": S.RETIRED}  # fmt: skip
ROUTE = {  # how to bring a fresh draft into each state
    S.DRAFT: [],
    S.PROPOSED: ["propose"],
    S.APPROVED: ["propose", "approve"],
    S.ACTIVE: ["propose", "approve", "activate"],
    S.DEPRECATED: ["propose", "approve", "activate", "deprecate"],
    S.RETIRED: ["retire"],
}
CASES = [(state, action) for state in ROUTE for action in ACTIONS]


@pytest.mark.parametrize(("state", "action"), CASES, ids=[f"{s}-{a}" for s, a in CASES])
def test_every_transition_is_either_allowed_or_answered_with_the_allowed_next_states(contract, people, state, action):
    version = draft(contract, people)
    for step in ROUTE[state]:
        ACTIONS[step](version, people)
    legal = TARGET[action] in TRANSITIONS[state] and TRANSITIONS[state][TARGET[action]] == action
    if legal:
        ACTIONS[action](version, people)
        assert status_of(version) == TARGET[action]
    else:
        with pytest.raises(IllegalTransition) as exc:
            ACTIONS[action](version, people)
        assert exc.value.status_code == 409
        assert exc.value.extensions["allowed_next"] == list(TRANSITIONS[state])
        assert status_of(version) == state


class TestFrozenContent:
    def test_drafts_can_be_edited(self, contract, people):
        version = draft(contract, people)
        services.contract_version_update(actor=people["steward"], version=version, notes="first cut",
                                         fields=ORDER_FIELDS[:2])  # fmt: skip
        assert [f.name for f in version.fields.all()] == ["order_id", "store_id"]

    @pytest.mark.parametrize("state", [S.PROPOSED, S.APPROVED, S.ACTIVE, S.RETIRED])
    def test_anything_past_draft_is_read_only(self, contract, people, state):
        version = draft(contract, people)
        for step in ROUTE[state]:
            ACTIONS[step](version, people)
        with pytest.raises(ConflictError, match="only drafts can be edited"):
            services.contract_version_update(actor=people["steward"], version=version, notes="sneaky")
        assert ContractVersion.objects.get(pk=version.pk).notes == ""

    def test_a_version_without_fields_cannot_be_proposed(self, contract, people):
        version = draft(contract, people, fields=[])
        with pytest.raises(ValidationError, match="at least one field"):
            services.contract_version_propose(actor=people["steward"], version=version)

    def test_bad_fields_are_refused_with_their_position(self, contract, people):
        bad = [{"name": "a", "logical_type": "strng"}, {"name": "a", "logical_type": "string", "pattern": "("}]
        with pytest.raises(ValidationError) as exc:
            draft(contract, people, fields=bad)
        assert set(exc.value.message_dict) == {"fields/0/logical_type", "fields/1/pattern"}

    def test_a_rule_must_name_a_field_of_the_version(self, contract, people):
        with pytest.raises(ValidationError) as exc:
            draft(contract, people, quality_rules=[{"field": "nope", "kind": "not_null"}])
        assert "quality_rules/0/field" in exc.value.message_dict


class TestCompatibility:
    def test_adding_an_optional_field_is_a_compatible_minor_version(self, contract, people):
        activate(draft(contract, people), people)
        v11 = draft(contract, people, "1.1.0", [*ORDER_FIELDS, {"name": "coupon", "logical_type": "string"}])
        services.contract_version_propose(actor=people["steward"], version=v11)
        assert status_of(v11) == S.PROPOSED

    def test_a_breaking_minor_version_is_refused_with_the_reasons(self, contract, people):
        activate(draft(contract, people), people)
        v11 = draft(contract, people, "1.1.0", ORDER_FIELDS[:2])  # amount removed
        with pytest.raises(ConflictError) as exc:
            services.contract_version_propose(actor=people["steward"], version=v11)
        assert exc.value.slug == "breaking-change"
        assert "2.0.0" in exc.value.detail
        assert exc.value.extensions["incompatibilities"][0]["path"].endswith("amount")
        assert status_of(v11) == S.DRAFT

    def test_a_breaking_major_version_needs_a_confirmation(self, contract, people):
        activate(draft(contract, people), people)
        v2 = draft(contract, people, "2.0.0", ORDER_FIELDS[:2])
        with pytest.raises(ConflictError) as exc:
            services.contract_version_propose(actor=people["steward"], version=v2)
        assert exc.value.slug == "breaking-change-unconfirmed"
        activate(v2, people, confirm_breaking=True)
        v2.refresh_from_db()
        assert v2.breaking_change_confirmed is True
        assert v2.schema_version.breaking is True
        assert list(SchemaVersion.objects.filter(subject__name="contract.orders").values_list("version", flat=True)) == [
            1, 2,
        ]  # fmt: skip

    def test_a_version_must_be_newer_than_what_was_active(self, contract, people):
        activate(draft(contract, people, "1.2.0"), people)
        older = draft(contract, people, "1.1.0")
        with pytest.raises(ConflictError, match="not newer"):
            services.contract_version_propose(actor=people["steward"], version=older)

    def test_a_narrowed_type_is_breaking(self, contract, people):
        activate(draft(contract, people), people)
        narrowed = [*ORDER_FIELDS[:2], {**ORDER_FIELDS[2], "logical_type": "integer"}]
        with pytest.raises(ConflictError, match="narrowed from number to integer"):
            services.contract_version_propose(
                actor=people["steward"], version=draft(contract, people, "1.1.0", narrowed)
            )
