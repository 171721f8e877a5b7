"""DRF permission classes built on the request's TenantContext."""

from __future__ import annotations

from typing import Any

from rest_framework import exceptions
from rest_framework.permissions import SAFE_METHODS, BasePermission

from apps.kernel.api.problems import InsufficientScope, NoActiveTenant, TenantSuspended
from apps.kernel.context import get_tenant_context


def required_scope(request: Any, view: Any) -> str:
    """The scope an action needs: the view's `scope_map` entry, else read for safe methods, write otherwise."""
    action = getattr(view, "action", None)
    scope_map: dict[str, str] = getattr(view, "scope_map", {})
    if action in scope_map:
        return scope_map[action]
    return "read" if request.method in SAFE_METHODS else "write"


class TenantAccess(BasePermission):
    """Authenticated, with an active tenant that is not suspended, and a role and scope for the action.

    Object-level checks are unnecessary: querysets are already restricted to the tenant,
    so another tenant's object is simply not found (404, never 403).
    """

    def has_permission(self, request: Any, view: Any) -> bool:
        if not (request.user and request.user.is_authenticated):
            raise exceptions.NotAuthenticated()
        context = get_tenant_context(request)
        if context is None or context.tenant is None:
            raise NoActiveTenant()
        if not context.tenant.is_active:
            raise TenantSuspended()
        scope = required_scope(request, view)
        if not context.allows(scope):
            raise InsufficientScope(
                f"This action needs the '{scope}' scope; your token or your role "
                f"'{context.effective_role}' in tenant '{context.tenant.slug}' does not allow it."
            )
        return True


class AuthenticatedPrincipal(BasePermission):
    """Any signed-in user or valid token; for platform-wide, tenant-free endpoints."""

    def has_permission(self, request: Any, view: Any) -> bool:
        if not (request.user and request.user.is_authenticated):
            raise exceptions.NotAuthenticated()
        return True
