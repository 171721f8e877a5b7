from __future__ import annotations

from typing import Any

import django_filters
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from apps.consumption.webhooks import selectors, services
from apps.consumption.webhooks.api.serializers import (
    RotateSecretSerializer,
    WebhookDeliverySerializer,
    WebhookEndpointSerializer,
    WebhookEndpointWithSecretSerializer,
    WebhookEndpointWriteSerializer,
)
from apps.consumption.webhooks.models import WebhookDelivery, WebhookEndpoint
from apps.kernel.api.viewsets import TenantModelViewSet, TenantReadOnlyViewSet


def _with_secret(endpoint: WebhookEndpoint, secret: str) -> dict[str, Any]:
    endpoint.secret = secret  # the value just generated; the serializer shows it this once
    return WebhookEndpointWithSecretSerializer(endpoint).data


class WebhookEndpointViewSet(mixins.UpdateModelMixin, mixins.DestroyModelMixin, TenantModelViewSet):
    """The tenant's webhook endpoints. Writes need the write scope (editor roles: admin, steward).

    Messages are signed per Standard Webhooks; the secret appears in the create and
    rotate-secret responses only.
    """

    queryset = WebhookEndpoint.objects.all()
    serializer_class = WebhookEndpointSerializer
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]
    filterset_fields = ("active",)
    extra_error_codes = (409,)

    @extend_schema(request=WebhookEndpointWriteSerializer, responses={201: WebhookEndpointWithSecretSerializer})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Register an endpoint. The answer holds its signing secret, shown this once."""
        payload = WebhookEndpointWriteSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        endpoint, secret = services.webhook_endpoint_create(
            actor=request.user, tenant=self.tenant_context.tenant, **payload.validated_data
        )
        return Response(_with_secret(endpoint, secret), status=status.HTTP_201_CREATED)

    @extend_schema(request=WebhookEndpointWriteSerializer(partial=True), responses={200: WebhookEndpointSerializer})
    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Change the URL, description, event types or active flag (enabling clears the disabled reason)."""
        endpoint = self.get_object()
        payload = WebhookEndpointWriteSerializer(data=request.data, partial=True)
        payload.is_valid(raise_exception=True)
        endpoint = services.webhook_endpoint_update(actor=request.user, endpoint=endpoint, **payload.validated_data)
        return Response(WebhookEndpointSerializer(endpoint).data)

    def perform_destroy(self, instance: WebhookEndpoint) -> None:
        services.webhook_endpoint_delete(actor=self.request.user, endpoint=instance)

    @extend_schema(request=RotateSecretSerializer, responses={200: WebhookEndpointWithSecretSerializer})
    @action(detail=True, methods=["post"], url_path="rotate-secret")
    def rotate_secret(self, request: Request, pk: str | None = None) -> Response:
        """Replace the signing secret. The old one keeps signing too for `grace_seconds`; the new one is shown once."""
        endpoint = self.get_object()
        payload = RotateSecretSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        endpoint, secret = services.webhook_endpoint_rotate_secret(
            actor=request.user, endpoint=endpoint, grace_seconds=payload.validated_data.get("grace_seconds")
        )
        return Response(_with_secret(endpoint, secret))

    @extend_schema(request=None, responses={202: WebhookDeliverySerializer})
    @action(detail=True, methods=["post"])
    def test(self, request: Request, pk: str | None = None) -> Response:
        """Send a `webhook.test` message to the endpoint now (one attempt; 409 if the endpoint is disabled)."""
        endpoint = self.get_object()
        delivery = services.webhook_endpoint_send_test(actor=request.user, endpoint=endpoint)
        return Response(WebhookDeliverySerializer(delivery).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(responses={200: WebhookDeliverySerializer(many=True)})
    @action(detail=True, methods=["get"])
    def deliveries(self, request: Request, pk: str | None = None) -> Response:
        """The endpoint's messages, newest first, each with its attempts."""
        endpoint = self.get_object()
        page = self.paginate_queryset(selectors.webhook_delivery_list(tenant=endpoint.tenant, endpoint=endpoint))
        return self.get_paginated_response(WebhookDeliverySerializer(page, many=True).data)


class WebhookDeliveryFilterSet(django_filters.FilterSet):
    # A plain number, not a model choice: a choice field would validate the id against every
    # tenant's endpoints and so tell whether another tenant's endpoint exists.
    endpoint = django_filters.NumberFilter(field_name="endpoint_id", help_text="Id of the endpoint.")

    class Meta:
        model = WebhookDelivery
        fields = ("status", "event_type", "endpoint")


class WebhookDeliveryViewSet(TenantReadOnlyViewSet):
    """Messages sent (or to be sent) to the tenant's endpoints, with every attempt."""

    queryset = WebhookDelivery.objects.select_related("endpoint").prefetch_related("attempts")
    serializer_class = WebhookDeliverySerializer
    filterset_class = WebhookDeliveryFilterSet
    extra_error_codes = (409,)

    @extend_schema(request=None, responses={202: WebhookDeliverySerializer})
    @action(detail=True, methods=["post"])
    def redeliver(self, request: Request, pk: str | None = None) -> Response:
        """Send the message again (same `webhook-id` and body, a new attempt); 409 while pending or disabled."""
        delivery = services.webhook_delivery_redeliver(actor=request.user, delivery=self.get_object())
        delivery = self.get_queryset().get(pk=delivery.pk)
        return Response(WebhookDeliverySerializer(delivery).data, status=status.HTTP_202_ACCEPTED)
