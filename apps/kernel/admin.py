"""ModelAdmin base for the steward portal: tenant-scoped querysets and role-based permissions.

Superusers see every tenant, or the one they pick in the switcher. Everyone else sees only the tenant chosen in the tenant
switcher (one of their memberships) and may do only what their role there allows;
another tenant's object is not found. Django's global model permissions are not used
for tenant-owned models because a user's role differs from tenant to tenant.
"""

from __future__ import annotations

from typing import Any

from auditlog.mixins import AuditlogHistoryAdminMixin
from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.db import models
from django.http import HttpRequest

from apps.kernel.context import TenantContext, get_tenant_context
from apps.kernel.roles import EDITOR_ROLES, PORTAL_ROLES, TENANT_ADMIN_ROLES


class TenantScopedAdmin(AuditlogHistoryAdminMixin, admin.ModelAdmin):
    tenant_lookup = "tenant"  # ORM path from this model to its tenant
    view_roles: frozenset[str] = PORTAL_ROLES
    add_roles: frozenset[str] = EDITOR_ROLES
    change_roles: frozenset[str] = EDITOR_ROLES
    delete_roles: frozenset[str] = TENANT_ADMIN_ROLES
    show_auditlog_history_link = True

    # --- scoping ---------------------------------------------------------------------
    def get_queryset(self, request: HttpRequest) -> models.QuerySet:
        queryset = super().get_queryset(request)
        context = _context(request)
        if context.tenant is None:
            # Superusers without a chosen tenant see them all ("All tenants" in the switcher).
            return queryset if context.is_superuser else queryset.none()
        # The id, not the instance: `pk=<Tenant>` (TenantAdmin's lookup) is refused by the ORM.
        return queryset.filter(**{self.tenant_lookup: context.tenant_id})

    def auditlog_history_view(self, request: HttpRequest, object_id: str, extra_context: Any = None) -> Any:
        # auditlog's view renders "Audit log: None" (or fails) for an object outside get_queryset;
        # answer like Django's own history view: "not found", back to the index.
        if self.get_object(request, unquote(object_id)) is None:
            return self._get_obj_does_not_exist_redirect(request, self.model._meta, object_id)
        return super().auditlog_history_view(request, object_id, extra_context)

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        context = _context(request)
        related = db_field.related_model
        if not context.is_superuser:
            if related._meta.label == "host.Tenant":
                kwargs["queryset"] = related._default_manager.filter(pk=context.tenant_id)
                kwargs.setdefault("initial", context.tenant_id)
            elif hasattr(related._default_manager.all(), "for_tenant"):
                kwargs["queryset"] = related._default_manager.all().for_tenant(context.tenant)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    # --- permissions -----------------------------------------------------------------
    def _allowed(self, request: HttpRequest, roles: frozenset[str], obj: Any = None, *, write: bool = True) -> bool:
        context = _context(request)
        if context.is_superuser:
            return True
        if context.tenant is None or not context.has_role(roles):
            return False
        if write and not context.tenant.is_active:
            return False  # a suspended tenant's members may look, not change
        return obj is None or self._tenant_id_of(obj) == context.tenant_id

    def _tenant_id_of(self, obj: Any) -> int | None:
        value: Any = obj
        for part in self.tenant_lookup.split("__"):
            value = getattr(value, part, None)
        return getattr(value, "pk", value)

    def has_module_permission(self, request: HttpRequest) -> bool:
        return self._allowed(request, self.view_roles, write=False)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._allowed(request, self.view_roles | self.change_roles, obj, write=False)

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return self._allowed(request, self.add_roles)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._allowed(request, self.change_roles, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._allowed(request, self.delete_roles, obj)


class ReadOnlyTenantScopedAdmin(TenantScopedAdmin):
    """For records written only by services (events, logs): visible, never edited by hand."""

    add_roles = frozenset()
    change_roles = frozenset()
    delete_roles = frozenset()

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


def _context(request: HttpRequest) -> TenantContext:
    context = get_tenant_context(request)
    if context is None:
        return TenantContext(user=request.user, tenant=None, role=None)
    return context
