"""Base viewsets: the queryset is restricted to the request's tenant before any handler runs."""

from __future__ import annotations

from typing import Any

from django.db import models
from rest_framework import mixins, viewsets

from apps.kernel.context import TenantContext, get_tenant_context


class TenantScopedMixin:
    """Restricts `queryset` to the active tenant; another tenant's rows answer 404."""

    request: Any
    queryset: models.QuerySet

    @property
    def tenant_context(self) -> TenantContext:
        context = get_tenant_context(self.request)
        assert context is not None, "TenantAccess permission runs before the queryset is read"
        return context

    def get_queryset(self) -> models.QuerySet:
        queryset = super().get_queryset()  # type: ignore[misc]
        if getattr(self, "swagger_fake_view", False):  # drf-spectacular introspection
            return queryset.none()
        return queryset.for_tenant(self.tenant_context.tenant)


class TenantReadOnlyViewSet(TenantScopedMixin, viewsets.ReadOnlyModelViewSet):
    """List and retrieve within the tenant."""


class TenantModelViewSet(
    TenantScopedMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    viewsets.GenericViewSet,
):
    """List, retrieve, create within the tenant. Writes go through services: override
    `perform_create` (and add update/destroy mixins) to call one."""
