"""Compute reacts to host events."""

from __future__ import annotations

from apps.compute.models import NormalizationRule
from apps.runtime.events import subscribe
from apps.runtime.models import DomainEvent


@subscribe("contract.version_created", name="compute.copy_normalization_rules")
def copy_normalization_rules(event: DomainEvent) -> None:
    """A version made from another starts with that version's normalization rules."""
    source_id, target_id = event.payload.get("copied_from_id"), event.payload["version_id"]
    if source_id is None or NormalizationRule.objects.filter(contract_version_id=target_id).exists():
        return
    NormalizationRule.objects.bulk_create(
        NormalizationRule(contract_version_id=target_id, position=rule.position, kind=rule.kind, field=rule.field,
                          params=rule.params, description=rule.description)
        for rule in NormalizationRule.objects.filter(contract_version_id=source_id).order_by("position", "id")
    )  # fmt: skip


from apps.compute.kpis.handlers import compute_kpis_of_batch  # noqa: E402,F401  (KPIs follow completed batches)
