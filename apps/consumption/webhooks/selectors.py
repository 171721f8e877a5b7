"""Webhook reads other code may use; each is restricted to one tenant."""

from __future__ import annotations

from typing import Any

from django.db.models import Prefetch, QuerySet

from apps.consumption.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint


def webhook_endpoint_list(*, tenant: Any) -> QuerySet[WebhookEndpoint]:
    """The tenant's endpoints, newest first."""
    return WebhookEndpoint.objects.for_tenant(tenant)


def webhook_endpoint_get(*, tenant: Any, pk: Any) -> WebhookEndpoint | None:
    return webhook_endpoint_list(tenant=tenant).filter(pk=pk).first()


def webhook_delivery_list(*, tenant: Any, endpoint: WebhookEndpoint | None = None) -> QuerySet[WebhookDelivery]:
    """The tenant's deliveries (of one endpoint, if given), newest first, with their attempts prefetched."""
    deliveries = (
        WebhookDelivery.objects.for_tenant(tenant)
        .select_related("endpoint")
        .prefetch_related(Prefetch("attempts", queryset=WebhookAttempt.objects.order_by("number")))
    )
    if endpoint is not None:
        deliveries = deliveries.filter(endpoint=endpoint)
    return deliveries
