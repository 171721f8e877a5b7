"""The outbound allow list in the portal: platform admins only."""

from __future__ import annotations

from typing import Any

from auditlog.mixins import AuditlogHistoryAdminMixin
from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from apps.security import services
from apps.security.models import OutboundAllowRule


def _platform_admin(request: HttpRequest) -> bool:
    user = request.user
    return bool(user.is_active and user.is_superuser)


@admin.register(OutboundAllowRule)
class OutboundAllowRuleAdmin(AuditlogHistoryAdminMixin, admin.ModelAdmin):
    """Superusers only, whatever Django permissions say: a rule opens the SSRF guard.

    A rule's host, port and tenant are fixed once created (a different destination is a
    different rule); only the note may be edited. Adds and deletes go through the services.
    """

    list_display = ("host", "port", "tenant_scope", "note", "created_by", "created_at")
    list_filter = (("tenant_scope", admin.RelatedOnlyFieldListFilter),)
    search_fields = ("host", "note")
    list_select_related = ("tenant_scope", "created_by")
    fields = ("tenant_scope", "host", "port", "note", "created_by", "created_at")
    show_auditlog_history_link = True

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        if obj is None:
            return ("created_by", "created_at")
        return ("tenant_scope", "host", "port", "created_by", "created_at")

    def has_module_permission(self, request: HttpRequest) -> bool:
        return _platform_admin(request)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return _platform_admin(request)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return _platform_admin(request)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return _platform_admin(request)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return _platform_admin(request)

    def save_model(self, request: HttpRequest, obj: OutboundAllowRule, form: Any, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)  # the note only
            return
        rule = services.outbound_allow(
            actor=request.user, host=obj.host, tenant=obj.tenant_scope, port=obj.port, note=obj.note
        )
        # The admin goes on with `obj` (messages, redirect): make it the saved rule.
        obj.pk, obj.host, obj.note = rule.pk, rule.host, rule.note
        obj.created_by, obj.created_at, obj.updated_at = rule.created_by, rule.created_at, rule.updated_at
        obj._state.adding = False

    def delete_model(self, request: HttpRequest, obj: OutboundAllowRule) -> None:
        services.outbound_disallow(actor=request.user, rule=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[OutboundAllowRule]) -> None:
        for rule in queryset:
            services.outbound_disallow(actor=request.user, rule=rule)
