"""The lineage obligation compute proves for publications: 'kpi_values_traceable_to_raw'."""

from __future__ import annotations

from apps.compute.kpis.models import KpiVersion
from apps.compute.publication.services import gdps_behind
from apps.host.policies.evaluation import PolicySubject, register_obligation_checker
from apps.storage.models import CalendarPeriod


@register_obligation_checker("kpi_values_traceable_to_raw")
def kpi_values_traceable_to_raw(subject: PolicySubject) -> tuple[bool, str]:
    """Every Golden Data Point behind the values still points at its raw record (steward overrides, which
    have none, trace to their override instead). The values are named by the facts `kpi_version_id` and
    `period_ids`, which the publish services give."""
    version_id, period_ids = subject.facts.get("kpi_version_id"), subject.facts.get("period_ids")
    if not version_id or not period_ids:
        return False, "no KPI values named, so none can be traced."
    version = KpiVersion.objects.filter(pk=version_id, tenant=subject.tenant).first()
    if version is None:
        return False, "the KPI version is not this tenant's."
    periods = list(CalendarPeriod.objects.filter(pk__in=period_ids))
    gdps = gdps_behind(version, periods)
    total = gdps.count()
    untraced = gdps.filter(raw_record__isnull=True, is_override=False).count()
    if untraced:
        return False, (f"{untraced} of {total} Golden Data Points behind the values no longer trace to a raw record "
                       "(expired by retention, or written without one).")  # fmt: skip
    return True, f"all {total} Golden Data Points behind the values trace to their raw records."
