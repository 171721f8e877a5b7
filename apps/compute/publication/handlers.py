"""Publication reacts to computations and to period closes.

- `kpi.computed`: the recomputed periods that are published are compared with what is in force;
  a changed number proposes a restatement (never a silent change of published numbers).
- `period.closed`: the KPI values of the closed period are snapshotted (an output of kind
  `period_close`), so that later data for it goes through a restatement.

Both run once per event, their writes committing with the handled mark (the runtime's rule), and
are idempotent besides: a second run finds the restatement or snapshot already there.
"""

from __future__ import annotations

from apps.compute.kpis.models import KpiVersion
from apps.compute.publication import services
from apps.runtime.events import subscribe
from apps.runtime.models import DomainEvent
from apps.storage.models import CalendarPeriod


@subscribe("kpi.computed", name="compute.detect_restatements")
def detect_restatements(event: DomainEvent) -> None:
    """Propose restatements for the published periods the computation changed."""
    payload = event.payload
    version = KpiVersion.objects.select_related("definition").filter(pk=payload.get("version_id")).first()
    if version is None or event.tenant_id is None or version.tenant_id != event.tenant_id:
        return
    periods = payload.get("periods")
    services.restatements_detect(
        tenant=event.tenant,
        version=version,
        period_ids=None if periods is None else [int(p) for p in periods],
        trigger=f"kpi.computed run {payload.get('run') or ''}".strip(),
    )


@subscribe("period.closed", name="compute.snapshot_closed_period")
def snapshot_closed_period(event: DomainEvent) -> None:
    """Snapshot the KPI values of the closed period (one `period_close` output per KPI)."""
    period = CalendarPeriod.objects.filter(pk=event.payload.get("period")).first()
    if period is None or event.tenant_id is None:
        return
    services.period_close_snapshot(tenant=event.tenant, period=period, actor=event.actor)
