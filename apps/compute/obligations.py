"""Lineage obligations the compute module can prove, registered with the host's policy evaluator."""

from __future__ import annotations

from apps.compute.models import Source
from apps.host.policies.evaluation import PolicySubject, register_obligation_checker


@register_obligation_checker("sources_under_active_contract")
def sources_under_active_contract(subject: PolicySubject) -> tuple[bool, str]:
    """Every active source feeding the contract delivers under an active contract version."""
    if subject.contract is None:
        return False, "no contract given."
    sources = list(Source.objects.filter(contract=subject.contract, active=True).values_list("key", flat=True))
    if not sources:
        return False, "the contract has no active source, so nothing feeds it."
    active = subject.contract.versions.filter(status="active").values_list("version", flat=True).first()
    if active is None:
        return False, f"sources {', '.join(sources)} feed a contract with no active version."
    return True, f"{len(sources)} source(s) ({', '.join(sources)}) deliver under version {active}."
