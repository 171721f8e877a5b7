"""DRF authentication: bearer API tokens and the portal session."""

from __future__ import annotations

from typing import Any

from rest_framework import authentication, exceptions

from apps.access import services
from apps.access.context import context_for_token


class ApiTokenAuthentication(authentication.BaseAuthentication):
    """`Authorization: Bearer aur_…`. Unknown, expired and revoked tokens all answer 401."""

    keyword = b"bearer"

    def authenticate(self, request: Any) -> tuple[Any, Any] | None:
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword:
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Malformed Authorization header: use 'Bearer <token>'.")
        try:
            raw = header[1].decode("ascii")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed("The token contains invalid characters.") from None
        return self.authenticate_token(request, raw)

    def authenticate_token(self, request: Any, raw: str) -> tuple[Any, Any]:
        token = services.api_token_authenticate(raw=raw)
        if token is None or not token.user.is_active:
            raise exceptions.AuthenticationFailed("Invalid, expired or revoked token.")
        context = context_for_token(token)
        if context is None:
            raise exceptions.AuthenticationFailed("The token's user is no longer a member of its tenant.")
        request._request.tenant_context = context
        return token.user, token

    def authenticate_header(self, request: Any) -> str:
        return 'Bearer realm="aurum"'


class TenantSessionAuthentication(authentication.SessionAuthentication):
    """The portal session (CSRF-checked); its tenant context comes from the middleware."""
