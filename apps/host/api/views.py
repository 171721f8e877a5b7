from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status
from rest_framework.request import Request
from rest_framework.response import Response

from apps.host import services
from apps.host.api.serializers import (
    MembershipCreateSerializer,
    MembershipSerializer,
    MembershipUpdateSerializer,
    TenantSerializer,
)
from apps.host.models import Membership, Tenant
from apps.kernel.api.problems import Conflict
from apps.kernel.api.viewsets import TenantModelViewSet, TenantReadOnlyViewSet


class TenantViewSet(TenantReadOnlyViewSet):
    """The tenant of the request (the token's tenant, or the one chosen in the portal)."""

    queryset = Tenant.objects.all()
    serializer_class = TenantSerializer
    lookup_field = "slug"


class MembershipViewSet(mixins.UpdateModelMixin, mixins.DestroyModelMixin, TenantModelViewSet):
    """Who belongs to the tenant, with which role. Managing members needs the admin scope."""

    queryset = Membership.objects.select_related("user", "tenant")
    serializer_class = MembershipSerializer
    scope_map = {action: "admin" for action in ("list", "retrieve", "create", "partial_update", "destroy")}
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]
    extra_error_codes = (409,)

    @extend_schema(request=MembershipCreateSerializer, responses={201: MembershipSerializer})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        payload = MembershipCreateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        tenant, user = self.tenant_context.tenant, payload.validated_data["username"]
        if Membership.objects.filter(tenant=tenant, user=user).exists():
            raise Conflict(
                f"'{user.username}' is already a member of '{tenant.slug}'; PATCH the membership to change its role."
            )
        membership = services.membership_set(
            actor=request.user, tenant=tenant, user=user, role=payload.validated_data["role"]
        )
        return Response(MembershipSerializer(membership).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=MembershipUpdateSerializer, responses={200: MembershipSerializer})
    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        membership = self.get_object()
        payload = MembershipUpdateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        membership = services.membership_set(
            actor=request.user, tenant=membership.tenant, user=membership.user, role=payload.validated_data["role"]
        )
        return Response(MembershipSerializer(membership).data)

    def perform_destroy(self, instance: Membership) -> None:
        services.membership_remove(actor=self.request.user, membership=instance)
