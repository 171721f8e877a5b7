"""Webhook vocabularies: the event types an endpoint may subscribe to, delivery states."""

from __future__ import annotations

from django.db import models


class WebhookEventTypeChoices(models.TextChoices):
    """The domain events a tenant can receive as webhooks (and the test message).

    There is deliberately no `*`: a receiver is vetted for the data of the types it lists,
    and a type added to Aurum later must not start flowing to it unasked.
    """

    KPI_PUBLISHED = "kpi.published", "KPI published"
    KPI_RESTATED = "kpi.restated", "KPI restated"
    KPI_STATUS_CHANGED = "kpi.status_changed", "KPI status changed"
    CONTRACT_ACTIVATED = "contract.activated", "Contract activated"
    BATCH_COMPLETED = "batch.completed", "Batch completed"
    PERIOD_CLOSED = "period.closed", "Period closed"
    WEBHOOK_TEST = "webhook.test", "Test message"


# Domain events that fan out to endpoints; webhook.test is sent on request only, to one endpoint.
DOMAIN_EVENT_TYPES: tuple[str, ...] = tuple(
    value for value in WebhookEventTypeChoices.values if value != WebhookEventTypeChoices.WEBHOOK_TEST
)


class WebhookDeliveryStatusChoices(models.TextChoices):
    PENDING = "pending", "Pending"  # waiting for its first attempt or a retry
    SUCCEEDED = "succeeded", "Succeeded"  # a 2xx answer
    FAILED = "failed", "Failed"  # given up: attempts exhausted, a non-retryable answer, or endpoint disabled


SECRET_PREFIX = "whsec_"  # noqa: S105 (the Standard Webhooks marker, not a secret)
MESSAGE_ID_PREFIX = "msg_"
