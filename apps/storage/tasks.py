"""Storage tasks: thin adapters over the services."""

from __future__ import annotations

from celery import shared_task

from apps.runtime.services import job_run
from apps.storage import services


@shared_task(name="storage.expire_raw_records")
def expire_raw_records() -> int:
    """Beat job: delete the raw records the tenants' retention policies no longer keep."""
    with job_run("storage.expire_raw_records") as run:
        expired = services.raw_records_retention_run()
        run.detail = {"expired": expired}
    return sum(expired.values())
