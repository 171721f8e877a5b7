"""Runtime tasks: thin adapters that call services. Names are stable ("runtime.<verb>")."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings

from apps.runtime import services
from apps.runtime.backoff import backoff_seconds


@shared_task(name="runtime.dispatch_event")
def dispatch_event(event_id: str) -> list[str]:
    """Fan a committed event out to its handlers."""
    return services.event_fan_out(event_id=event_id)


@shared_task(bind=True, name="runtime.run_handler", max_retries=None)
def run_handler(self, event_id: str, handler: str) -> bool:
    """Run one handler on one event; retry with backoff, dead-letter when retries run out."""
    try:
        return services.event_handle(event_id=event_id, handler=handler)
    except Exception as exc:
        attempts = self.request.retries + 1
        if attempts > settings.AURUM_HANDLER_MAX_RETRIES:
            services.dead_letter_record(event_id=event_id, handler=handler, attempts=attempts, error=exc)
            return False
        raise self.retry(exc=exc, countdown=backoff_seconds(self.request.retries)) from exc


@shared_task(name="runtime.sweep_outbox")
def sweep_outbox() -> int:
    """Beat job: dispatch events left behind by a crash or a broker outage."""
    with services.job_run("runtime.sweep_outbox") as run:
        count = services.outbox_sweep(older_than_seconds=settings.AURUM_OUTBOX_SWEEP_AFTER_SECONDS)
        run.detail = {"dispatched": count}
    return count
