"""Export tasks: thin adapters over the export services."""

from __future__ import annotations

from celery import shared_task
from django.db import OperationalError

from apps.consumption.exports import services
from apps.runtime.backoff import backoff_seconds
from apps.runtime.services import job_run


@shared_task(bind=True, name="consumption.run_export", max_retries=5)
def run_export(self, job_id: int) -> str:
    """Write an export job's file to the default storage. A database that goes away mid-way
    (restart, lock timeout) retries with backoff; any other failure is recorded on the job."""
    try:
        return services.export_job_run(job_id).status
    except OperationalError as exc:
        raise self.retry(exc=exc, countdown=backoff_seconds(self.request.retries)) from exc


@shared_task(name="consumption.prune_exports")
def prune_exports() -> int:
    """Beat job: delete export files past AURUM_EXPORT_FILE_DAYS (their jobs stay, as expired)."""
    with job_run("consumption.prune_exports") as run:
        count = services.export_files_prune()
        run.detail = {"files_deleted": count}
    return count
