"""Runtime services: outbox dispatch, idempotent handler runs, dead letters, job runs."""

from __future__ import annotations

import logging
import traceback as tb
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.runtime.choices import DeadLetterStatusChoices, JobRunStatusChoices
from apps.runtime.events import handler_named, handlers_for, publish_event
from apps.runtime.models import DeadLetter, DomainEvent, HandledEvent, JobRun

logger = logging.getLogger(__name__)

__all__ = [
    "dead_letter_record",
    "dead_letter_replay",
    "event_fan_out",
    "event_handle",
    "job_run",
    "outbox_sweep",
    "publish_event",
]


def event_fan_out(*, event_id: Any) -> list[str]:
    """Enqueue one handler task per subscriber of the event and mark it dispatched.

    The row is locked (SKIP LOCKED on PostgreSQL) so that the sweep and a late dispatch
    never fan the same event out at the same moment; should they still overlap, handlers
    are idempotent.
    """
    from apps.runtime.tasks import run_handler

    with transaction.atomic():
        event = (
            DomainEvent.objects.select_for_update(skip_locked=True)
            .filter(pk=event_id, dispatched_at__isnull=True)
            .first()
        )
        if event is None:
            return []
        names = handlers_for(event.type)
        # Enqueued before the mark commits: if the broker fails, the mark rolls back and the
        # sweep tries again; a handler that was already sent is idempotent.
        for name in names:
            run_handler.delay(str(event.pk), name)
        event.dispatched_at = timezone.now()
        event.save(update_fields=["dispatched_at"])
    return names


def outbox_sweep(*, older_than_seconds: int, limit: int = 500) -> int:
    """Dispatch events that committed but were never handed off (crash, broker outage)."""
    cutoff = timezone.now() - timedelta(seconds=older_than_seconds)
    ids = list(
        DomainEvent.objects.filter(dispatched_at__isnull=True, occurred_at__lt=cutoff)
        .order_by("occurred_at")
        .values_list("pk", flat=True)[:limit]
    )
    for event_id in ids:
        event_fan_out(event_id=event_id)
    return len(ids)


def event_handle(*, event_id: Any, handler: str) -> bool:
    """Run `handler` on the event unless it already ran; False when it had.

    The handler's writes and the HandledEvent marker commit together, so a handler either
    took effect exactly once or not at all; a concurrent duplicate fails on the unique
    marker, rolls back, and finds the marker on its retry.
    """
    func = handler_named(handler)
    if HandledEvent.objects.filter(event_id=event_id, handler=handler).exists():
        return False
    event = DomainEvent.objects.select_related("tenant", "actor").get(pk=event_id)
    try:
        with transaction.atomic():
            func(event)
            HandledEvent.objects.create(event=event, handler=handler)
    except IntegrityError:
        if HandledEvent.objects.filter(event_id=event_id, handler=handler).exists():
            return False
        raise
    return True


def dead_letter_record(*, event_id: Any, handler: str, attempts: int, error: BaseException) -> DeadLetter:
    """Park an event a handler could not process after all retries."""
    letter = DeadLetter.objects.create(
        event_id=event_id,
        handler=handler,
        attempts=attempts,
        error=f"{type(error).__name__}: {error}"[:2000],
        traceback="".join(tb.format_exception(error))[-10000:],
    )
    logger.error("Handler %s gave up on event %s after %d attempts: %s", handler, event_id, attempts, error)
    return letter


def dead_letter_replay(*, actor: Any, dead_letter: DeadLetter) -> None:
    """Run the handler again (with fresh retries) after its cause was fixed."""
    from apps.runtime.tasks import run_handler

    with transaction.atomic():
        updated = DeadLetter.objects.filter(pk=dead_letter.pk, status=DeadLetterStatusChoices.PENDING).update(
            status=DeadLetterStatusChoices.REPLAYED, replayed_at=timezone.now(), replayed_by=actor
        )
        if updated:
            event_id, handler = str(dead_letter.event_id), dead_letter.handler
            transaction.on_commit(lambda: run_handler.delay(event_id, handler))


@contextmanager
def job_run(task: str) -> Iterator[JobRun]:
    """Record one run of a job: a JobRun row that ends succeeded (with `detail`) or failed."""
    run = JobRun.objects.create(task=task)
    try:
        yield run
    except BaseException as exc:
        run.status = JobRunStatusChoices.FAILED
        run.error = f"{type(exc).__name__}: {exc}"[:2000]
        run.finished_at = timezone.now()
        run.save(update_fields=["status", "error", "finished_at"])
        raise
    run.status = JobRunStatusChoices.SUCCEEDED
    run.finished_at = timezone.now()
    run.save(update_fields=["status", "detail", "finished_at"])
