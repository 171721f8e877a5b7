"""The steward portal: Django admin, branded, tenant-aware, with a tenant switcher."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm
from django.core.exceptions import ValidationError
from django.http import HttpRequest

from apps.host.selectors import memberships_for_user, tenants_all
from apps.kernel.context import get_tenant_context
from apps.kernel.roles import PORTAL_ROLES


def may_use_portal(user: Any) -> bool:
    if not (user.is_active and user.is_authenticated):
        return False
    return user.is_superuser or any(m.role in PORTAL_ROLES for m in memberships_for_user(user=user))


class PortalLoginForm(AdminAuthenticationForm):
    """Members with a portal role may sign in; `is_staff` is not needed (roles are per tenant)."""

    def confirm_login_allowed(self, user: Any) -> None:
        if not may_use_portal(user):
            raise ValidationError(
                "This account has no portal role in any tenant (consumers use the API).", code="invalid_login"
            )


class AurumAdminSite(admin.AdminSite):
    site_header = "Aurum"
    site_title = "Aurum portal"
    index_title = "Governance portal"
    login_form = PortalLoginForm
    site_url = None  # no public site beside the portal

    def has_permission(self, request: HttpRequest) -> bool:
        context = get_tenant_context(request)
        user = request.user
        return bool(user.is_active and user.is_authenticated and context is not None and context.can_use_portal)

    def each_context(self, request: HttpRequest) -> dict[str, Any]:
        context = super().each_context(request)
        context["tenant_switcher"] = _switcher(request)
        return context


def _switcher(request: HttpRequest) -> dict[str, Any] | None:
    context = get_tenant_context(request)
    if context is None:
        return None
    if context.is_superuser:
        choices = [(t.pk, t.name, "superuser") for t in tenants_all()]
    else:
        choices = [(m.tenant_id, m.tenant_name, m.role) for m in context.memberships if m.role in PORTAL_ROLES]
    return {
        "active_id": context.tenant_id,
        "active_name": context.tenant.name if context.tenant else "All tenants",
        "role": context.effective_role,
        "choices": choices,
        "allow_all": context.is_superuser,
    }
