from __future__ import annotations

import json
from typing import Any

from rest_framework import serializers

from apps.consumption.webhooks.choices import WebhookEventTypeChoices
from apps.consumption.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from apps.consumption.webhooks.services import MAX_GRACE

ENDPOINT_FIELDS = (
    "id",
    "url",
    "description",
    "event_types",
    "active",
    "disabled_reason",
    "disabled_at",
    "consecutive_failures",
    "previous_secret_valid_until",
    "created_at",
    "updated_at",
)


class WebhookEndpointSerializer(serializers.ModelSerializer):
    """An endpoint as listed and read: never its secret."""

    event_types = serializers.ListField(child=serializers.ChoiceField(choices=WebhookEventTypeChoices.choices))
    previous_secret_valid_until = serializers.DateTimeField(
        source="previous_secret_expires_at",
        read_only=True,
        allow_null=True,
        help_text="Until when deliveries are also signed with the replaced secret (after a rotation).",
    )

    class Meta:
        model = WebhookEndpoint
        fields = ENDPOINT_FIELDS
        read_only_fields = fields


class WebhookEndpointWithSecretSerializer(WebhookEndpointSerializer):
    """An endpoint just created or rotated, with its signing secret: the only time it is shown."""

    secret = serializers.CharField(read_only=True, help_text="`whsec_…`: store it now, it is not shown again.")

    class Meta(WebhookEndpointSerializer.Meta):
        fields = (*ENDPOINT_FIELDS, "secret")
        read_only_fields = fields


class WebhookEndpointWriteSerializer(serializers.Serializer):
    url = serializers.URLField(max_length=2000, help_text="http(s) URL the messages are POSTed to.")
    description = serializers.CharField(max_length=500, required=False, allow_blank=True)
    event_types = serializers.ListField(
        child=serializers.ChoiceField(choices=WebhookEventTypeChoices.choices),
        allow_empty=False,
        help_text="The event types to receive; there is no '*'.",
    )
    active = serializers.BooleanField(required=False)


class RotateSecretSerializer(serializers.Serializer):
    grace_seconds = serializers.IntegerField(
        required=False,
        min_value=0,
        max_value=int(MAX_GRACE.total_seconds()),
        help_text="How long the replaced secret keeps signing too (default: the platform's grace period, "
        "24 h unless configured; 0: end it now).",
    )


class WebhookAttemptSerializer(serializers.ModelSerializer):
    requested_by = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = WebhookAttempt
        fields = (
            "number",
            "started_at",
            "status_code",
            "latency_ms",
            "succeeded",
            "response_excerpt",
            "error",
            "requested_by",
        )
        read_only_fields = fields


class WebhookDeliverySerializer(serializers.ModelSerializer):
    payload = serializers.SerializerMethodField(help_text="The JSON body sent: {type, timestamp, data}.")
    attempts = WebhookAttemptSerializer(many=True, read_only=True)

    class Meta:
        model = WebhookDelivery
        fields = (
            "id",
            "endpoint",
            "event_type",
            "message_id",
            "status",
            "attempt_count",
            "next_attempt_at",
            "last_status_code",
            "last_error",
            "delivered_at",
            "created_at",
            "payload",
            "attempts",
        )
        read_only_fields = fields

    def get_payload(self, delivery: WebhookDelivery) -> dict[str, Any]:
        return json.loads(delivery.body)
