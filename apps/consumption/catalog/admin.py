"""Data products in the steward portal: tenant-scoped, editors write through the catalog services,
and a catalog search page (the discovery index) for everyone who may use the portal."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import path
from django.utils.safestring import mark_safe

from apps.consumption.catalog import selectors, services
from apps.consumption.catalog.markdown import render_markdown
from apps.consumption.catalog.models import DataProduct
from apps.kernel.admin import TenantScopedAdmin
from apps.kernel.context import get_tenant_context
from apps.kernel.errors import DomainError
from apps.kernel.roles import EDITOR_ROLES, PORTAL_ROLES
from apps.utilities.search import selectors as search

EDITED_FIELDS = (
    "name",
    "description",
    "owner",
    "domain",
    "tags",
    "classification",
    "kind",
    "contract",
    "kpis",
    "visibility",
)


class TagsField(forms.CharField):
    """Tags typed as a comma-separated line, stored as a list."""

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, list):
            return ", ".join(value)
        return value

    def to_python(self, value: Any) -> list[str]:
        text = super().to_python(value) or ""
        return [tag.strip() for tag in text.split(",") if tag.strip()]


class DataProductForm(forms.ModelForm):
    tags = TagsField(required=False, help_text="Comma-separated, e.g. “sales, retail”.")
    kpis = TagsField(required=False, label="KPIs", help_text="KPI keys of a KPI set, comma-separated.")

    class Meta:
        model = DataProduct
        fields = ("tenant", "slug", *EDITED_FIELDS)


@admin.register(DataProduct)
class DataProductAdmin(TenantScopedAdmin):
    form = DataProductForm
    view_roles = PORTAL_ROLES
    add_roles = EDITOR_ROLES
    change_roles = EDITOR_ROLES
    delete_roles = frozenset()  # products are deprecated, never deleted: consumers link to them
    list_display = ("name", "slug", "kind", "status", "visibility", "classification", "domain", "owner", "freshness")
    list_filter = ("kind", "status", "visibility", "classification", "domain")
    search_fields = ("name", "slug", "domain", "description")
    list_select_related = ("owner", "contract")
    readonly_fields = ("status", "published_at", "deprecated_at", "description_preview")
    actions = ("publish_selected", "deprecate_selected")

    def get_fields(self, request: HttpRequest, obj: DataProduct | None = None) -> tuple[str, ...]:
        fields = ("tenant", "slug", *EDITED_FIELDS)
        return (*fields, "status", "published_at", "deprecated_at", "description_preview") if obj else fields

    def get_readonly_fields(self, request: HttpRequest, obj: DataProduct | None = None) -> tuple[str, ...]:
        base = ("status", "published_at", "deprecated_at", "description_preview")
        return ("tenant", "slug", *base) if obj is not None else base

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "owner":
            context = get_tenant_context(request)
            users = get_user_model().objects.filter(is_active=True).order_by("username")
            if context is None or context.tenant is None:
                users = users if context is not None and context.is_superuser else users.none()
            else:
                users = users.filter(aurum_memberships__tenant=context.tenant).distinct()
            kwargs["queryset"] = users
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def get_changeform_initial_data(self, request: HttpRequest) -> dict[str, Any]:
        initial = super().get_changeform_initial_data(request)
        initial.setdefault("owner", request.user.pk)
        return initial

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> Any:
        self._health_cache: dict[int, selectors.ProductHealth] = {}
        return super().get_changelist(request, **kwargs)

    @admin.display(description="Freshness")
    def freshness(self, obj: DataProduct) -> str:
        cache = getattr(self, "_health_cache", {})
        if obj.pk not in cache:
            cache.update(selectors.products_health([obj]))
        return cache[obj.pk].freshness

    @admin.display(description="Description (rendered)")
    def description_preview(self, obj: DataProduct) -> str:
        # render_markdown escapes raw HTML and drops unsafe links: its output is safe to show.
        return mark_safe(render_markdown(obj.description)) if obj.description else "—"  # noqa: S308

    def save_model(self, request: HttpRequest, obj: DataProduct, form: Any, change: bool) -> None:
        attrs = {name: form.cleaned_data.get(name, getattr(obj, name)) for name in EDITED_FIELDS}
        if change:
            services.product_update(actor=request.user, product=obj, **attrs)
            return
        created = services.product_create(actor=request.user, tenant=obj.tenant, slug=obj.slug, **attrs)
        obj.pk, obj._state.adding = created.pk, False

    def _transition(self, request: HttpRequest, queryset: QuerySet[DataProduct], service: Any, done: str) -> None:
        moved = 0
        for product in queryset:
            try:
                service(actor=request.user, product=product)
                moved += 1
            except (DomainError, ValidationError) as exc:
                self.message_user(request, f"{product.slug}: {getattr(exc, 'detail', exc)}", messages.WARNING)
        if moved:
            self.message_user(request, f"{moved} product(s) {done}.", messages.SUCCESS)

    @admin.action(description="Publish the selected products", permissions=["change"])
    def publish_selected(self, request: HttpRequest, queryset: QuerySet[DataProduct]) -> None:
        self._transition(request, queryset, services.product_publish, "published")

    @admin.action(description="Deprecate the selected products", permissions=["change"])
    def deprecate_selected(self, request: HttpRequest, queryset: QuerySet[DataProduct]) -> None:
        self._transition(request, queryset, services.product_deprecate, "deprecated")

    # --- catalog search ------------------------------------------------------------------------------
    def get_urls(self) -> list[Any]:
        search_view = self.admin_site.admin_view(self.search_view)
        return [path("search/", search_view, name="consumption_dataproduct_search"), *super().get_urls()]

    def search_view(self, request: HttpRequest) -> HttpResponse:
        """Search products, contracts and fields as the discovery API does, with facets."""
        if not self.has_view_permission(request):
            return self._get_obj_does_not_exist_redirect(request, self.model._meta, "search")
        context = get_tenant_context(request)
        query = request.GET.get("q", "")[:200]
        facets = {name: request.GET.getlist(name) for name in ("domain", "owner", "tag", "classification", "freshness")}
        kinds = request.GET.getlist("kind")
        results = None
        if context is not None and context.tenant is not None:
            results = search.search(tenant=context.tenant, query=query, facets=facets, kinds=kinds, limit=50)
        page = {
            **self.admin_site.each_context(request),
            "title": "Catalog search",
            "opts": self.model._meta,
            "query": query,
            "kinds": kinds,
            "results": results,
            "no_tenant": results is None,
        }
        return TemplateResponse(request, "admin/consumption/dataproduct/search.html", page)
