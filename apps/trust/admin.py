"""The evidence ledger in the portal: read-only for tenant admins and auditors, and its verification."""

from __future__ import annotations

import json
from typing import Any

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import path
from django.utils.html import format_html

from apps.kernel.admin import ReadOnlyTenantScopedAdmin
from apps.kernel.context import get_tenant_context
from apps.kernel.roles import RoleChoices
from apps.trust import selectors
from apps.trust.models import EvidenceRecord


@admin.register(EvidenceRecord)
class EvidenceRecordAdmin(ReadOnlyTenantScopedAdmin):
    """Entries are written by the ledger's service only: nobody adds, changes or deletes one here,
    superusers included (ReadOnlyTenantScopedAdmin refuses all three). "Verify chain" walks the
    active tenant's chain."""

    view_roles = frozenset({RoleChoices.ADMIN, RoleChoices.AUDITOR})
    show_auditlog_history_link = False  # the ledger is its own audit trail; auditlog does not track it
    list_display = ("sequence", "kind", "subject", "actor", "recorded_at", "short_entry_hash", "tenant")
    list_display_links = ("sequence", "kind")
    list_filter = ("kind",)
    list_select_related = ("actor", "tenant")
    search_fields = ("subject",)
    search_help_text = "Subject contains, e.g. orders."
    ordering = ("-sequence",)
    show_full_result_count = False  # the ledger only grows; avoid COUNT(*) on every page
    change_list_template = "admin/trust/evidencerecord/change_list.html"
    fields = ("tenant", "sequence", "kind", "subject", "content_json", "content_hash", "previous_hash", "entry_hash",
              "actor", "recorded_at")  # fmt: skip
    readonly_fields = fields

    @admin.display(description="Entry hash")
    def short_entry_hash(self, obj: EvidenceRecord) -> str:
        return format_html('<code title="{}">{}…</code>', obj.entry_hash, obj.entry_hash[:12])

    @admin.display(description="Content")
    def content_json(self, obj: EvidenceRecord) -> str:
        return format_html("<pre>{}</pre>", json.dumps(obj.content, indent=2, sort_keys=True, ensure_ascii=False))

    def get_urls(self) -> list[Any]:
        wrap = self.admin_site.admin_view
        return [path("verify/", wrap(self.verify_view), name="trust_evidencerecord_verify"), *super().get_urls()]

    def verify_view(self, request: HttpRequest) -> HttpResponse:
        """The chain of the active tenant (a superuser without one: every tenant's), checked now."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        context = get_tenant_context(request)
        if context is not None and context.tenant is not None:
            tenants = [context.tenant]
        else:  # only superusers get here without a tenant (has_view_permission)
            tenant_model = EvidenceRecord._meta.get_field("tenant").related_model
            tenants = list(tenant_model._default_manager.order_by("slug"))
        results = [(tenant, selectors.evidence_verify(tenant=tenant)) for tenant in tenants]
        return TemplateResponse(
            request,
            "admin/trust/evidencerecord/verify.html",
            {
                **self.admin_site.each_context(request),
                "opts": self.opts,
                "title": "Verify the evidence chain",
                "subtitle": "Verify chain",
                "results": results,
            },
        )
