"""Storage services: steward overrides of Golden Data Points, and retention of the raw layer."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db import OperationalError, connection, transaction
from django.db.models import F
from django.utils import timezone

from apps.host.choices import PolicyKindChoices, SurvivorshipChoices
from apps.kernel.errors import ConflictError
from apps.runtime.events import publish_event
from apps.storage.choices import FINAL_BATCH_STATUSES
from apps.storage.merge import MERGE_LOCK
from apps.storage.models import KEY_FIELDS, GoldenDataPoint, RawRecord, key_of, retention_deletes

COPY_FIELDS = (*KEY_FIELDS, "contract_version_id", "dimensions", "unit", "quality_flags")
# How long a steward's override waits for a batch that is being merged into the contract (PostgreSQL's
# lock_timeout syntax): a moment, not the minutes a large batch may take.
OVERRIDE_WAIT = "5s"


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
    _between_merges(gdp.contract_id)
    current = GoldenDataPoint.objects.select_for_update().filter(recorded_to__isnull=True, **key_of(gdp)).first()
    if current is None:
        raise ConflictError("This key has no current value.", slug="no-current-value")
    return current


def _between_merges(contract_id: int) -> None:
    """Take the contract's merge lock for the override's transaction (PostgreSQL). A batch being merged may
    supersede the very version the override replaces (the batch would then fail on the one-current-version
    index) or hold it until its commit (the override would then find no current version): the override waits
    up to OVERRIDE_WAIT for the merge to end, and is refused with a conflict if it has not."""
    if connection.vendor != "postgresql":
        return  # SQLite: one writer at a time
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('lock_timeout')")
        [before] = cursor.fetchone()
        cursor.execute("SELECT set_config('lock_timeout', %s, true)", [OVERRIDE_WAIT])
        try:
            cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [MERGE_LOCK, contract_id])
        except OperationalError as exc:
            if getattr(exc.__cause__, "sqlstate", None) != "55P03":  # lock_not_available
                raise
            raise ConflictError("A batch is being merged into this contract; try again once it has completed.",
                                slug="contract-being-merged") from exc  # fmt: skip
        cursor.execute("SELECT set_config('lock_timeout', %s, true)", [before])


def _survivor(gdp: GoldenDataPoint) -> GoldenDataPoint | None:
    """The best data-derived version of the key under its contract's survivorship rule."""
    # Shadowed versions (a later record of their own batch replaced them) never come back.
    versions = (
        GoldenDataPoint.objects.of_key(gdp)
        .filter(is_override=False)
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


def raw_records_expire(
    *, tenant: Any, older_than_days: int, now: Any = None, contract: Any = None, other_than: Any = ()
) -> int:
    """The retention job's delete: the tenant's raw records received before the cut-off, only those, and only
    of finished batches (a batch still processing may need its records to resume). `contract` narrows it to
    the batches of one contract, `other_than` leaves out those of the contracts given.

    Lineage that pointed at them (GDP versions, rejections, unique values) keeps its rows with the
    link emptied: the raw layer is the part a retention policy shortens.
    """
    if older_than_days < 1:
        raise ValidationError({"older_than_days": "Keep raw records at least one day."})
    cutoff = (now or timezone.now()) - timedelta(days=older_than_days)
    expired = RawRecord.objects.for_tenant(tenant).filter(
        received_at__lt=cutoff, batch__status__in=FINAL_BATCH_STATUSES
    )
    if contract is not None:
        expired = expired.filter(batch__contract_version__contract=contract)
    if other_than:
        expired = expired.exclude(batch__contract_version__contract__in=list(other_than))
    with transaction.atomic(), retention_deletes():
        # The GDPs' links first, a batch at a time (storage_gdp_by_batch_raw, a BRIN index on PostgreSQL: a batch's
        # block ranges): the delete's collector leaves them (DO_NOTHING), as it would look them up by raw record
        # alone.
        for batch_id in expired.order_by().values_list("batch_id", flat=True).distinct():
            GoldenDataPoint.objects.filter(
                batch_id=batch_id, raw_record_id__in=expired.filter(batch_id=batch_id).values("id")
            ).update(raw_record=None)
        count, _ = expired.delete()
    return count


def raw_records_retention_run(*, now: Any = None) -> dict[str, int]:
    """What the beat job `storage.expire_raw_records` does: for every tenant, expire the raw records that its
    effective retention policy no longer keeps (`raw_days` of the host's `data.retain` decision).

    A contract's own retention policy decides for that contract's batches, the tenant's (or the platform's)
    for the others; a deciding policy without `raw_days`, or no policy, keeps raw records for ever.
    Returns the records expired per tenant slug (tenants with none left out).
    """
    from apps.host.models import Policy
    from apps.host.policies.evaluation import PolicySubject, evaluate
    from apps.host.selectors import tenants_all

    now = now or timezone.now()

    def raw_days(tenant: Any, contract: Any) -> int | None:
        decision = evaluate("data.retain", PolicySubject(tenant, contract))
        return decision.treatments.get("retention_days", {}).get("raw_days")

    expired: dict[str, int] = {}
    for tenant in tenants_all():
        own = {
            policy.contract_id: policy.contract
            for policy in Policy.objects.active().filter(tenant=tenant, kind=PolicyKindChoices.RETENTION,
                                                         contract__isnull=False).select_related("contract")
        }  # fmt: skip
        count = 0
        days = raw_days(tenant, None)
        if days:
            count += raw_records_expire(tenant=tenant, older_than_days=days, now=now, other_than=own.values())
        for contract in own.values():
            days = raw_days(tenant, contract)
            if days:
                count += raw_records_expire(tenant=tenant, older_than_days=days, now=now, contract=contract)
        if count:
            expired[tenant.slug] = count
    return expired
