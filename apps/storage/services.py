"""Storage services: steward overrides of Golden Data Points, and retention of the raw layer."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from apps.host.choices import SurvivorshipChoices
from apps.kernel.errors import ConflictError
from apps.runtime.events import publish_event
from apps.storage.models import GoldenDataPoint, RawRecord, retention_deletes

KEY_FIELDS = ("tenant_id", "contract_id", "measure", "entity_key", "dimensions_key", "observed_at")
COPY_FIELDS = (*KEY_FIELDS, "contract_version_id", "dimensions", "unit", "quality_flags")


def _key(gdp: GoldenDataPoint) -> dict[str, Any]:
    return {name: getattr(gdp, name) for name in KEY_FIELDS}


@transaction.atomic
def gdp_override_set(*, actor: Any, gdp: GoldenDataPoint, value: Decimal, reason: str) -> GoldenDataPoint:
    """A steward's value for a GDP key, with a reason; it wins over any data until removed."""
    if not reason.strip():
        raise ValidationError({"reason": "Say why the value is overridden."})
    current = _current_locked(gdp)
    now = timezone.now()
    GoldenDataPoint.objects.filter(pk=current.pk).update(recorded_to=now)
    override = GoldenDataPoint.objects.create(
        **{name: getattr(current, name) for name in COPY_FIELDS},
        value=value, recorded_from=now, is_override=True, override_reason=reason,
        overridden_by=actor if getattr(actor, "is_authenticated", False) else None,
    )  # fmt: skip
    publish_event("gdp.overridden", _payload(override, reason=reason), tenant=override.tenant, actor=actor)
    return override


@transaction.atomic
def gdp_override_remove(*, actor: Any, gdp: GoldenDataPoint, reason: str = "") -> GoldenDataPoint:
    """End the override; the value the contract's survivorship rule picks from the data returns."""
    current = _current_locked(gdp)
    if not current.is_override:
        raise ConflictError("The current version is not a steward override.", slug="not-an-override")
    now = timezone.now()
    GoldenDataPoint.objects.filter(pk=current.pk).update(recorded_to=now)
    survivor = _survivor(current)
    restored = None
    if survivor is not None:
        restored = GoldenDataPoint.objects.create(
            **{name: getattr(survivor, name) for name in COPY_FIELDS},
            value=survivor.value, source_id=survivor.source_id, source_priority=survivor.source_priority,
            batch_id=survivor.batch_id, raw_record_id=survivor.raw_record_id, recorded_from=now,
        )  # fmt: skip
    publish_event("gdp.override_removed", _payload(current, reason=reason), tenant=current.tenant, actor=actor)
    return restored or current


def _current_locked(gdp: GoldenDataPoint) -> GoldenDataPoint:
    current = GoldenDataPoint.objects.select_for_update().filter(recorded_to__isnull=True, **_key(gdp)).first()
    if current is None:
        raise ConflictError("This key has no current value.", slug="no-current-value")
    return current


def _survivor(gdp: GoldenDataPoint) -> GoldenDataPoint | None:
    """The best data-derived version of the key under its contract's survivorship rule."""
    # Shadowed versions (a later record of their own batch replaced them) never come back.
    versions = (
        GoldenDataPoint.objects.filter(is_override=False, **_key(gdp))
        .exclude(superseded_by_batch_id=F("batch_id"))
        .select_related("contract")
    )
    order = ["-recorded_from", "-id"]
    if gdp.contract.survivorship == SurvivorshipChoices.SOURCE_PRIORITY:
        order = ["-source_priority", *order]
    return versions.order_by(*order).first()


def _payload(gdp: GoldenDataPoint, **extra: Any) -> dict[str, Any]:
    return {"gdp": gdp.pk, "contract": gdp.contract_id, "measure": gdp.measure, "entity_key": gdp.entity_key,
            "observed_at": gdp.observed_at.isoformat(), "value": str(gdp.value), **extra}  # fmt: skip


def raw_records_expire(*, tenant: Any, older_than_days: int, now: Any = None) -> int:
    """The retention job's delete: the tenant's raw records received before the cut-off, only those.

    Lineage that pointed at them (GDP versions, rejections) keeps its rows with the link
    emptied: the raw layer is the part a retention policy shortens.
    """
    if older_than_days < 1:
        raise ValidationError({"older_than_days": "Keep raw records at least one day."})
    cutoff = (now or timezone.now()) - timedelta(days=older_than_days)
    expired = RawRecord.objects.for_tenant(tenant).filter(received_at__lt=cutoff)
    with transaction.atomic(), retention_deletes():
        count, _ = expired.delete()
    return count
