"""Webhook models: endpoints a tenant registers, the messages delivered to them, and each attempt."""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone

from apps.consumption.webhooks.choices import WebhookDeliveryStatusChoices, WebhookEventTypeChoices
from apps.kernel.models import TenantOwnedModel, TenantQuerySet


class WebhookEndpoint(TenantOwnedModel):
    """A URL of the tenant's that receives signed (Standard Webhooks) messages for chosen event types.

    The signing secret is stored in plain text. It has to be: the platform signs every
    delivery with it, so a one-way hash (as for API tokens) would make it useless, and
    Aurum has no secrets vault yet (the Trust module's Secrets are planned). It is shown
    once, when created or rotated, never in lists, the API, the audit log or events; the
    database and its backups must be protected accordingly.

    During a rotation the replaced secret stays in `previous_secret` until
    `previous_secret_expires_at`, and deliveries carry a signature for each.
    """

    url = models.URLField(max_length=2000, help_text="Where messages are POSTed (http or https).")
    description = models.CharField(max_length=500, blank=True)
    event_types = models.JSONField(
        default=list,
        blank=True,  # clean() names the problem: "choose at least one"
        help_text="The event types sent to this endpoint: " + ", ".join(WebhookEventTypeChoices.values) + ".",
    )
    secret = models.CharField(max_length=120, editable=False)
    previous_secret = models.CharField(max_length=120, blank=True, editable=False)
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True, editable=False)
    active = models.BooleanField(default=True)
    disabled_reason = models.CharField(max_length=500, blank=True)
    disabled_at = models.DateTimeField(null=True, blank=True)
    consecutive_failures = models.PositiveIntegerField(
        default=0, editable=False, help_text="Failed deliveries in a row; reset by a success."
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", editable=False
    )

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name = "webhook endpoint"
        constraints = [
            models.CheckConstraint(
                condition=Q(previous_secret="", previous_secret_expires_at__isnull=True)
                | (~Q(previous_secret="") & Q(previous_secret_expires_at__isnull=False)),
                name="consumption_webhookendpoint_previous_secret_expiry",
            ),
        ]

    def __str__(self) -> str:
        return self.url

    def clean(self) -> None:
        super().clean()
        if not isinstance(self.event_types, list) or not self.event_types:
            raise ValidationError({"event_types": "Choose at least one event type."})
        unknown = sorted({str(t) for t in self.event_types} - set(WebhookEventTypeChoices.values))
        if unknown:
            raise ValidationError(
                {
                    "event_types": f"Unknown event type(s): {', '.join(unknown)}. "
                    f"Known: {', '.join(WebhookEventTypeChoices.values)} (there is no '*')."
                }
            )
        self.event_types = sorted(set(self.event_types))

    def signing_secrets(self, now: datetime | None = None) -> list[str]:
        """The secrets a delivery is signed with now: the current one, and the previous during its grace."""
        moment = now or timezone.now()
        result = [self.secret]
        if self.previous_secret and self.previous_secret_expires_at and self.previous_secret_expires_at > moment:
            result.append(self.previous_secret)
        return result


class WebhookDelivery(TenantOwnedModel):
    """One message for one endpoint: its exact body and id (the same on every attempt) and its state.

    A retry or a manual redelivery is another attempt of this row, so the receiver sees the
    same `webhook-id` and can deduplicate; `webhook-timestamp` is the time of each attempt.
    """

    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    event = models.ForeignKey(
        "runtime.DomainEvent", null=True, blank=True, on_delete=models.SET_NULL, related_name="+", editable=False
    )
    event_type = models.CharField(max_length=50, choices=WebhookEventTypeChoices.choices)
    message_id = models.CharField(max_length=40, unique=True, editable=False)
    body = models.TextField(editable=False, help_text="The JSON sent, byte for byte (it is what is signed).")
    status = models.CharField(
        max_length=20, choices=WebhookDeliveryStatusChoices.choices, default=WebhookDeliveryStatusChoices.PENDING
    )
    attempt_count = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True, help_text="When the next attempt is due.")
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        editable=False,
        help_text="Who asked for the pending attempt (a redelivery or a test); empty for automatic ones.",
    )

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name = "webhook delivery"
        verbose_name_plural = "webhook deliveries"
        constraints = [
            # The handler may run again (a retried task): one message per event and endpoint.
            models.UniqueConstraint(
                fields=["endpoint", "event"], condition=Q(event__isnull=False), name="consumption_webhookdelivery_once"
            ),
        ]
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="consumption_webhook_due")]

    def __str__(self) -> str:
        return f"{self.event_type} {self.message_id}"


class WebhookAttemptQuerySet(TenantQuerySet):
    tenant_lookup = "delivery__tenant"


class WebhookAttempt(models.Model):
    """One HTTP request of a delivery: what came back (status, latency, ≤ 1 KB of the body) or the error."""

    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="attempts")
    number = models.PositiveIntegerField()
    started_at = models.DateTimeField()
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    latency_ms = models.PositiveIntegerField(default=0)
    response_excerpt = models.TextField(blank=True, help_text="The start of the answer's body (at most 1 KB).")
    error = models.TextField(blank=True)
    succeeded = models.BooleanField(default=False)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="Who asked for this attempt (a redelivery or a test); empty for automatic attempts.",
    )

    objects = WebhookAttemptQuerySet.as_manager()

    class Meta:
        ordering = ["delivery", "number"]
        verbose_name = "webhook attempt"
        constraints = [
            models.UniqueConstraint(fields=["delivery", "number"], name="consumption_webhookattempt_unique_number")
        ]

    def __str__(self) -> str:
        return f"attempt {self.number} of {self.delivery_id}"
