"""KPI tasks: thin adapters over the services (imported by apps/compute/tasks.py for discovery)."""

from __future__ import annotations

from celery import shared_task
from django.db import OperationalError

from apps.compute.kpis import services
from apps.compute.kpis.models import KpiDefinition
from apps.runtime.backoff import backoff_seconds
from apps.runtime.services import job_run


@shared_task(bind=True, name="compute.compute_kpi", max_retries=5)
def compute_kpi(self, definition_id: int, trigger: str = "manual", full: bool = False) -> int:
    """Compute one KPI (and the derived KPIs around it) incrementally; returns the runs recorded."""
    definition = KpiDefinition.objects.filter(pk=definition_id).first()
    if definition is None:
        return 0
    try:
        return len(services.kpi_compute(actor=None, definitions=[definition], trigger=trigger, full=full))
    except OperationalError as exc:  # database restarts, lock timeouts: transient
        raise self.retry(exc=exc, countdown=backoff_seconds(self.request.retries)) from exc


@shared_task(name="compute.compute_due_kpis")
def compute_due_kpis() -> int:
    """Beat job: compute every KPI whose own schedule (`compute_every_seconds`) is due."""
    with job_run("compute.compute_due_kpis") as run:
        runs = services.kpi_compute_due()
        run.detail = {"runs": [str(r.run_id) for r in runs], "failed": sum(r.status == "failed" for r in runs)}
    return len(runs)
