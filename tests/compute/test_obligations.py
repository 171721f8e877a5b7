"""The compute module proves 'sources_under_active_contract' for the policy evaluator."""

from __future__ import annotations

import pytest

from apps.compute import services as compute
from apps.host import services as host
from apps.host.policies.evaluation import PolicySubject, evaluate

pytestmark = pytest.mark.django_db


def obligation(tenant, admin):
    policy = host.policy_create(actor=admin, tenant=tenant, kind="lineage_obligation", name="lin",
                                parameters={"requirements": ["sources_under_active_contract"]})  # fmt: skip
    host.policy_activate(actor=admin, policy=policy)


def test_a_contract_fed_by_a_source_under_its_active_version_passes(tenant_a, people, contract, source):
    obligation(tenant_a, people["admin"])
    decision = evaluate("output.publish", PolicySubject(tenant_a, contract))
    assert decision.allowed, decision.failures
    assert "1 source(s) (tills) deliver under version 1.0.0" in decision.reasons[-1].message


def test_a_contract_without_sources_fails_the_obligation(tenant_a, people, contract):
    obligation(tenant_a, people["admin"])
    decision = evaluate("output.publish", PolicySubject(tenant_a, contract))
    assert [r.message for r in decision.failures] == [
        "sources_under_active_contract: the contract has no active source, so nothing feeds it."
    ]


def test_the_caller_cannot_claim_what_the_module_can_check(tenant_a, people, contract):
    obligation(tenant_a, people["admin"])
    facts = {"lineage": {"sources_under_active_contract": True}}
    assert not evaluate("output.publish", PolicySubject(tenant_a, contract, facts)).allowed
    compute.source_create(actor=people["steward"], tenant=tenant_a, contract=contract, key="s", name="S")
    assert evaluate("output.publish", PolicySubject(tenant_a, contract, facts)).allowed


def test_a_version_made_from_another_starts_with_its_normalization_rules(
    tenant_a, people, contract, django_capture_on_commit_callbacks
):
    from apps.compute.models import NormalizationRule

    active = contract.versions.get(status="active")
    with django_capture_on_commit_callbacks(execute=True):
        draft = host.contract_version_create(
            actor=people["steward"], contract=contract, version="1.1.0", copied_from=active,
            fields=[{"name": f.name, "logical_type": f.logical_type, "role": f.role} for f in active.fields.all()],
        )  # fmt: skip
    copied = list(NormalizationRule.objects.filter(contract_version=draft).values_list("kind", "field"))
    assert copied == list(NormalizationRule.objects.filter(contract_version=active).values_list("kind", "field"))
    assert copied  # the fixture's contract has cast rules
