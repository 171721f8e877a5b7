"""DRF authentication: bearer API tokens, API tokens as a Basic password, and the portal session."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from rest_framework import authentication, exceptions

from apps.access import services, tokencache
from apps.access.context import context_for_token
from apps.kernel.api.readcache import generations_memo
from apps.kernel.logcontext import bind

INVALID_TOKEN = "Invalid, expired or revoked token."  # noqa: S105  (a message, not a secret)


def _token_context(raw: str) -> Any:
    token = services.api_token_authenticate(raw=raw)
    if token is None or not token.user.is_active:
        raise exceptions.AuthenticationFailed(INVALID_TOKEN)
    context = context_for_token(token)
    if context is None:
        raise exceptions.AuthenticationFailed("The token's user is no longer a member of its tenant.")
    return context


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
        context = tokencache.cached_context(raw, lambda: _token_context(raw), generations_memo(request))
        if context is None:  # a cached token that has expired since
            raise exceptions.AuthenticationFailed(INVALID_TOKEN)
        bind(user=context.user.get_username(), tenant=context.tenant.slug)
        request._request.tenant_context = context
        return context.user, context.token

    def authenticate_header(self, request: Any) -> str:
        return 'Bearer realm="aurum"'


class ApiTokenBasicAuthentication(ApiTokenAuthentication):
    """`Authorization: Basic base64(<anything>:aur_…)`: the password is an API token, the username ignored.

    For clients that only speak HTTP Basic, such as Confluent Schema Registry clients
    (`basic.auth.user.info`). The token is checked exactly like a bearer token.
    """

    keyword = b"basic"

    def authenticate(self, request: Any) -> tuple[Any, Any] | None:
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword:
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Malformed Authorization header: use 'Basic <base64(user:token)>'.")
        try:
            decoded = base64.b64decode(header[1], validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise exceptions.AuthenticationFailed(
                "The Basic credentials are not valid base64 of 'user:token'."
            ) from None
        _, separator, raw = decoded.partition(":")
        if not separator or not raw:
            raise exceptions.AuthenticationFailed("Give the API token as the Basic password ('user:token').")
        return self.authenticate_token(request, raw)

    def authenticate_header(self, request: Any) -> str:
        return 'Basic realm="aurum"'


class TenantSessionAuthentication(authentication.SessionAuthentication):
    """The portal session (CSRF-checked); its tenant context comes from the middleware."""
