from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from apps.access import services
from apps.access.api.serializers import ApiTokenCreatedSerializer, ApiTokenCreateSerializer, ApiTokenSerializer
from apps.access.models import ApiToken
from apps.kernel.api.problems import InsufficientScope
from apps.kernel.api.viewsets import TenantModelViewSet


class ApiTokenViewSet(mixins.DestroyModelMixin, TenantModelViewSet):
    """API tokens of the tenant. Members manage their own; the admin scope manages everyone's.

    DELETE revokes (the row stays for the audit trail). The plain token appears only in the
    response to its creation.
    """

    queryset = ApiToken.objects.select_related("user", "tenant")
    serializer_class = ApiTokenSerializer
    scope_map = {"list": "read", "retrieve": "read", "create": "read", "destroy": "read"}

    def get_queryset(self) -> Any:
        queryset = super().get_queryset()
        if getattr(self, "swagger_fake_view", False) or self.tenant_context.allows("admin"):
            return queryset
        return queryset.filter(user=self.request.user)

    @extend_schema(request=ApiTokenCreateSerializer, responses={201: ApiTokenCreatedSerializer})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        payload = ApiTokenCreateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        owner = self._owner(data.get("username"))
        issuer = request.auth if isinstance(request.auth, ApiToken) else None
        token, plain = services.api_token_create(
            actor=request.user,
            tenant=self.tenant_context.tenant,
            user=owner,
            name=data["name"],
            scopes=data["scopes"],
            expires_at=data.get("expires_at"),
            issuer_token=issuer,
        )
        body = ApiTokenCreatedSerializer(token).data
        body["token"] = plain
        return Response(body, status=status.HTTP_201_CREATED)

    def _owner(self, username: str | None) -> Any:
        if not username or username == self.request.user.get_username():
            return self.request.user
        if not self.tenant_context.allows("admin"):
            raise InsufficientScope("Creating a token for another member needs the admin scope.")
        user = get_user_model().objects.filter(username=username, is_active=True).first()
        if user is None:
            raise serializers.ValidationError({"username": [f"No active account is called '{username}'."]})
        return user

    def perform_destroy(self, instance: ApiToken) -> None:
        services.api_token_revoke(actor=self.request.user, token=instance, reason="revoked by API")
