"""Webhook tasks: thin adapters over the services. Names are stable ("consumption.<verb>")."""

from __future__ import annotations

from celery import shared_task

from apps.consumption.webhooks import services
from apps.runtime.services import job_run


@shared_task(name="consumption.deliver_webhook")
def deliver_webhook(delivery_id: int) -> int | None:
    """Make the next attempt of one delivery if it is due; returns the answer's status code.

    A failed attempt is not retried by Celery: the delivery records when it is due again,
    and `consumption.retry_webhooks` enqueues it then.
    """
    attempt = services.webhook_delivery_attempt(delivery_id=delivery_id)
    return attempt.status_code if attempt is not None else None


@shared_task(name="consumption.retry_webhooks")
def retry_webhooks() -> int:
    """Beat job: enqueue the deliveries whose next attempt is due."""
    with job_run("consumption.retry_webhooks") as run:
        count = services.webhook_deliveries_retry_due()
        run.detail = {"enqueued": count}
    return count


@shared_task(name="consumption.prune_webhook_deliveries")
def prune_webhook_deliveries() -> int:
    """Beat job: delete finished deliveries (and their attempts) past AURUM_WEBHOOK_DELIVERY_DAYS."""
    with job_run("consumption.prune_webhook_deliveries") as run:
        count = services.webhook_deliveries_prune()
        run.detail = {"deliveries_deleted": count}
    return count
