"""Export tasks: thin adapters over the export services."""

from __future__ import annotations

from celery import shared_task
from django.db import OperationalError

from apps.consumption.exports import services
from apps.runtime.backoff import backoff_seconds


@shared_task(bind=True, name="consumption.run_export", max_retries=5)
def run_export(self, job_id: int) -> str:
    """Write an export job's file to the default storage. A database that goes away mid-way
    (restart, lock timeout) retries with backoff; any other failure is recorded on the job."""
    try:
        return services.export_job_run(job_id).status
    except OperationalError as exc:
        raise self.retry(exc=exc, countdown=backoff_seconds(self.request.retries)) from exc
