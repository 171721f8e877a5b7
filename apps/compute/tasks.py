"""Compute tasks: thin adapters over the pipeline and services."""

from __future__ import annotations

import io
import uuid
from datetime import timedelta

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import OperationalError
from django.utils import timezone

from apps.compute import services
from apps.compute.models import Source
from apps.compute.pipeline import batch_process
from apps.runtime.backoff import backoff_seconds
from apps.runtime.services import job_run
from apps.security.outbound import fetch
from apps.storage.choices import BatchStatusChoices
from apps.storage.models import IngestionBatch


@shared_task(bind=True, name="compute.process_batch", max_retries=5)
def process_batch(self, batch_id: int) -> str:
    """Process or resume a batch. A worker lost mid-batch redelivers this (late acks); the
    pipeline resumes after the last committed chunk.

    A batch longer than the task's soft time limit is stopped there, resumable: if the task
    committed chunks, a new task goes on after them at once. One that made no progress is
    left to the beat job `compute.resume_stalled_batches`, so a batch that can never finish
    in time does not loop without a pause.
    """
    before = _processed_through(batch_id)
    try:
        return batch_process(batch_id).status
    except SoftTimeLimitExceeded:
        if _processed_through(batch_id) > before:
            process_batch.delay(batch_id)
            return BatchStatusChoices.PROCESSING
        raise
    except OperationalError as exc:  # database restarts, lock timeouts: transient
        raise self.retry(exc=exc, countdown=backoff_seconds(self.request.retries)) from exc


def _processed_through(batch_id: int) -> int:
    through = IngestionBatch.objects.filter(pk=batch_id).values_list("processed_through", flat=True).first()
    return -1 if through is None else through


@shared_task(name="compute.resume_stalled_batches")
def resume_stalled_batches() -> int:
    """Beat job: re-queue batches nobody has touched for a while (a lost message, a dead worker)."""
    with job_run("compute.resume_stalled_batches") as run:
        stale = timezone.now() - timedelta(seconds=settings.AURUM_STALLED_BATCH_SECONDS)
        ids = list(
            IngestionBatch.objects.filter(
                status__in=[BatchStatusChoices.RECEIVED, BatchStatusChoices.PROCESSING], updated_at__lt=stale
            ).values_list("pk", flat=True)[:100]
        )
        for batch_id in ids:
            IngestionBatch.objects.filter(pk=batch_id).update(updated_at=timezone.now())
            process_batch.delay(batch_id)
        run.detail = {"requeued": ids}
    return len(ids)


@shared_task(name="compute.pull_source")
def pull_source(source_id: int) -> int | None:
    """Beat job of a pull source: fetch its URL through the outbound guard and ingest the body.

    A body identical to the last delivery makes no new batch.
    """
    source = Source.objects.select_related("tenant", "contract").filter(pk=source_id, active=True).first()
    if source is None:
        return None
    with job_run("compute.pull_source") as run:
        response = fetch(source.pull_url, tenant=source.tenant, max_bytes=settings.AURUM_MAX_INGEST_BYTES,
                         timeout=60)  # fmt: skip
        if response.status >= 400:
            raise RuntimeError(f"{source.pull_url} answered {response.status}")
        digest = services.pull_body_checksum(response.body)
        last = source.batches.order_by("-created_at", "-pk").first()
        if last is not None and last.checksum == digest:
            # Unchanged since the last pull: no new delivery. (A body that changes back to an
            # older content is new again: A, B, A makes three batches.)
            Source.objects.filter(pk=source.pk).update(last_pulled_at=timezone.now())
            run.detail = {"source": source.key, "batch": last.pk, "new": False}
            return last.pk
        batch, created = services.batch_receive(
            actor=None, source=source, stream=io.BytesIO(response.body), content_type=None,
            filename=f"pull.{source.pull_format}", idempotency_key=f"pull:{uuid.uuid4().hex}",
        )  # fmt: skip
        Source.objects.filter(pk=source.pk).update(last_pulled_at=timezone.now())
        if created:
            services.batch_dispatch(batch)
        run.detail = {"source": source.key, "batch": batch.pk, "new": created}
    return batch.pk


from apps.compute.kpis.tasks import compute_due_kpis, compute_kpi  # noqa: E402,F401  (registered under compute.*)
