"""Attaches `request.tenant_context` for session users (the portal and session API calls)."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from apps.access.context import context_for_session


class TenantContextMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request.tenant_context = context_for_session(request)  # type: ignore[attr-defined]
        return self.get_response(request)
