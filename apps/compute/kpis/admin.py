"""Portal pages for KPIs: definitions, versions with their lifecycle, targets, computed values with lineage.

Every write goes through the KPI services. A form's refusals (a ValidationError keyed by field, or a
domain error) are shown on the form: the form's `clean()` asks the service's validation first, and
`save_model` calls the service. Lifecycle buttons and "Compute now" are POSTs to small views that
call one service and report the outcome as a message.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from apps.compute.kpis import selectors, services
from apps.compute.kpis.models import KpiDefinition, KpiStatusChoices, KpiTarget, KpiVersion
from apps.compute.kpis.services import TARGET_TRANSITIONS
from apps.compute.kpis.validation import validate_version
from apps.host.contracts.lifecycle import TRANSITIONS
from apps.kernel.admin import ReadOnlyTenantScopedAdmin, TenantScopedAdmin
from apps.kernel.context import get_tenant_context
from apps.kernel.errors import DomainError
from apps.kernel.roles import EDITOR_ROLES, PORTAL_ROLES
from apps.storage.models import KpiValue

LIFECYCLE_HELP = {
    "propose": "Ask for approval. The version is checked again and its content frozen.",
    "approve": "Four eyes: not by the person who proposed it.",
    "reject": "Back to draft, with the reason.",
    "activate": "Make it the KPI's active version (the previous one is deprecated); it is computed at once.",
    "deprecate": "Keep its values, stop computing it.",
    "retire": "Read-only for good.",
}
BADGE_COLOURS = {"green": "#1b5e20;background:#e3f5e5", "amber": "#7a5200;background:#fff4d6",
                 "red": "#8e1b1b;background:#fde3e3", "none": "#616161;background:#ececec"}  # fmt: skip


def _badge(status: str, label: str) -> str:
    colour = BADGE_COLOURS.get(status, BADGE_COLOURS["none"])
    return format_html('<span class="aurum-kpi-status aurum-kpi-status-{}" style="padding:1px 8px;border-radius:10px;'
                       'font-weight:600;color:{}">{}</span>', status, colour, label)  # fmt: skip


def _refusal(exc: Exception) -> str:
    if isinstance(exc, DomainError):
        return exc.detail
    if isinstance(exc, ValidationError) and hasattr(exc, "error_dict"):
        return " ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())
    if isinstance(exc, ValidationError):
        return " ".join(exc.messages)
    return str(exc)


def _members_only(db_field: Any, request: HttpRequest, kwargs: dict[str, Any]) -> None:
    """Owners are chosen among the active tenant's members; periods among the non-day rows."""
    from django.contrib.auth import get_user_model

    context = get_tenant_context(request)
    if db_field.name == "owner":
        users = get_user_model().objects.filter(is_active=True).order_by("username")
        if context is None or context.tenant is None:
            kwargs["queryset"] = users if context is not None and context.is_superuser else users.none()
        else:
            kwargs["queryset"] = users.filter(aurum_memberships__tenant=context.tenant).distinct()
    elif db_field.name in ("period_from", "period_to"):
        from apps.storage.models import CalendarPeriod

        tenant = context.tenant if context is not None else None
        kwargs["queryset"] = (CalendarPeriod.objects.for_tenant(tenant).exclude(level="day")
                              .select_related("calendar").order_by("calendar__key", "level", "start"))  # fmt: skip


class _LifecycleMixin:
    """A POST view `<id>/step/` calling one lifecycle service; the change page lists the allowed steps."""

    change_form_template = "admin/compute/kpis/change_form.html"
    step_services: dict[str, Any] = {}
    step_roles: frozenset[str] = EDITOR_ROLES

    def get_urls(self) -> list[Any]:
        opts = self.model._meta  # type: ignore[attr-defined]
        wrap = self.admin_site.admin_view  # type: ignore[attr-defined]
        return [
            path("<path:object_id>/step/", wrap(self.step_view), name=f"{opts.app_label}_{opts.model_name}_step"),
            *super().get_urls(),  # type: ignore[misc]
        ]

    def steps(self, obj: Any) -> list[str]:
        raise NotImplementedError

    def step_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        obj = self.get_object(request, object_id)  # type: ignore[attr-defined]
        if obj is None or request.method != "POST":
            return HttpResponseRedirect(reverse("admin:index"))
        if not self._allowed(request, self.step_roles, obj):  # type: ignore[attr-defined]
            messages.error(request, "Your role may not change this.")
            return HttpResponseRedirect(request.path.rsplit("step/", 1)[0])
        name = request.POST.get("action", "")
        service = self.step_services.get(name)
        if service is None or name not in self.steps(obj):
            messages.error(request, f"'{name}' is not a step this {self.model._meta.verbose_name} can take now.")  # type: ignore[attr-defined]
        else:
            try:
                service(actor=request.user, **{self.model._meta.model_name.replace("kpi", ""): obj},  # type: ignore[attr-defined]
                        comment=request.POST.get("comment", ""))  # fmt: skip
                messages.success(request, f"Done: {name}.")
            except (DomainError, ValidationError) as exc:
                messages.error(request, f"Refused: {_refusal(exc)}")
        return HttpResponseRedirect(request.path.rsplit("step/", 1)[0])

    def render_change_form(self, request: HttpRequest, context: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        obj = context.get("original")
        if obj is not None:
            context["lifecycle"] = [
                {"action": name, "label": name.capitalize(), "help": LIFECYCLE_HELP.get(name, ""),
                 "comment_required": name == "reject", "danger": name in ("retire", "reject")}
                for name in self.steps(obj)
            ] if self._allowed(request, self.step_roles, obj) else []  # type: ignore[attr-defined]  # fmt: skip
            opts = self.model._meta  # type: ignore[attr-defined]
            context["step_url"] = reverse(f"admin:{opts.app_label}_{opts.model_name}_step", args=[obj.pk])
        return super().render_change_form(request, context, *args, **kwargs)  # type: ignore[misc]


# --- definitions ----------------------------------------------------------------------------------------
class KpiDefinitionForm(forms.ModelForm):
    class Meta:
        model = KpiDefinition
        fields = ("key", "name", "description", "domain", "owner", "compute_every_seconds")

    def clean_key(self) -> str:
        key = self.cleaned_data["key"]
        if self.instance.pk and key != self.instance.key:
            raise ValidationError("A KPI's key cannot change.")
        tenant = getattr(self, "tenant", None)
        if not self.instance.pk and KpiDefinition.objects.for_tenant(tenant).filter(key=key).exists():
            raise ValidationError(f"A KPI '{key}' exists already.")
        return key


class KpiVersionsInline(admin.TabularInline):
    model = KpiVersion
    fields = ("version_link", "kind", "status", "computed_as_of")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = False

    @admin.display(description="Version")
    def version_link(self, obj: KpiVersion) -> str:
        return format_html(
            '<a href="{}">{}</a>', reverse("admin:compute_kpiversion_change", args=[obj.pk]), obj.version
        )

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return True


@admin.register(KpiDefinition)
class KpiDefinitionAdmin(TenantScopedAdmin):
    form = KpiDefinitionForm
    list_display = ("key", "name", "domain", "owner", "active_version", "compute_every_seconds")
    search_fields = ("key", "name", "domain")
    inlines = [KpiVersionsInline]
    actions = ["compute_now"]
    change_form_template = "admin/compute/kpis/change_form.html"

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        form = super().get_form(request, obj, change, **kwargs)
        context = get_tenant_context(request)
        form.tenant = context.tenant if context is not None else None
        return form

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        _members_only(db_field, request, kwargs)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    @admin.display(description="Active version")
    def active_version(self, obj: KpiDefinition) -> str:
        active = selectors.kpi_active_version(definition=obj)
        return active.version if active else "—"

    def save_model(self, request: HttpRequest, obj: KpiDefinition, form: Any, change: bool) -> None:
        data = {name: form.cleaned_data.get(name) for name in ("name", "description", "domain", "owner",
                                                                "compute_every_seconds")}  # fmt: skip
        if change:
            services.kpi_definition_update(actor=request.user, definition=obj, **data)
        else:
            tenant = get_tenant_context(request).tenant
            created = services.kpi_definition_create(actor=request.user, tenant=tenant, key=obj.key, **data)
            obj.pk, obj.tenant = created.pk, tenant

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # versions are retired, not deleted (the API deletes a KPI that never left draft)

    @admin.action(description="Compute now (incremental)")
    def compute_now(self, request: HttpRequest, queryset: QuerySet[KpiDefinition]) -> None:
        _compute(request, list(queryset))

    def get_urls(self) -> list[Any]:
        wrap = self.admin_site.admin_view
        return [path("<path:object_id>/compute/", wrap(self.compute_view), name="compute_kpidefinition_compute"),
                *super().get_urls()]  # fmt: skip

    def compute_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        definition = self.get_object(request, object_id)
        back = reverse("admin:compute_kpidefinition_change", args=[object_id])
        if definition is None or request.method != "POST":
            return HttpResponseRedirect(reverse("admin:compute_kpidefinition_changelist"))
        if not self._allowed(request, EDITOR_ROLES, definition):
            messages.error(request, "Your role may not compute KPIs.")
        else:
            _compute(request, [definition], full=request.POST.get("full") == "1")
        return HttpResponseRedirect(back)

    def render_change_form(self, request: HttpRequest, context: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        obj = context.get("original")
        if obj is not None and self._allowed(request, EDITOR_ROLES, obj):
            context["compute_url"] = reverse("admin:compute_kpidefinition_compute", args=[obj.pk])
            context["new_version_url"] = reverse("admin:compute_kpiversion_add") + f"?definition={obj.pk}"
        return super().render_change_form(request, context, *args, **kwargs)


def _compute(request: HttpRequest, definitions: list[KpiDefinition], *, full: bool = False) -> None:
    computable = [d for d in definitions if selectors.kpi_active_version(definition=d) is not None]
    for skipped in set(definitions) - set(computable):
        messages.warning(request, f"{skipped.key}: no active version to compute.")
    if not computable:
        return
    try:
        runs = services.kpi_compute(actor=request.user, definitions=computable, full=full, trigger="portal")
    except Exception as exc:  # the failed run says why; the others ran
        messages.error(request, f"Computation failed: {exc}")
        return
    for run in runs:
        counts = run.counts
        messages.success(request, f"{run.job}: {counts.get('mode')} — {counts.get('periods')} periods, "
                                  f"{counts.get('values')} values, {counts.get('gdps_read')} GDPs read "
                                  f"in {counts.get('seconds')} s.")  # fmt: skip


# --- versions -----------------------------------------------------------------------------------------------
class KpiVersionForm(forms.ModelForm):
    """A draft version; `clean()` runs the service's validation so every problem shows on its field."""

    dimensions = forms.JSONField(required=False, initial=list, help_text='Dimension fields, e.g. ["region"].')
    filters = forms.JSONField(required=False, initial=dict, help_text='e.g. {"channel": ["web", "app"]}.')

    class Meta:
        model = KpiVersion
        fields = ("definition", "version", "kind", "contract", "measure", "aggregation", "denominator_measure",
                  "denominator_aggregation", "expression", "cumulative_mode", "window_periods", "filters",
                  "calendar", "level", "dimensions", "unit", "display_format", "decimals", "direction", "notes")  # fmt: skip

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if self.errors:
            return cleaned
        instance = self.instance
        for name, value in cleaned.items():
            setattr(instance, name, value if value is not None or name not in ("dimensions", "filters") else
                    ([] if name == "dimensions" else {}))  # fmt: skip
        instance.tenant = instance.definition.tenant
        clash = KpiVersion.objects.filter(definition=instance.definition, version=instance.version)
        if clash.exclude(pk=instance.pk).exists():
            self.add_error("version", f"Version {instance.version} of this KPI exists already.")
        try:
            validate_version(instance)
        except ValidationError as exc:
            for name, texts in exc.message_dict.items():
                self.add_error(name if name in self.fields else None, texts)
        return cleaned

    def _post_clean(self) -> None:  # validation ran in clean(); skip ModelForm's second full_clean
        pass


@admin.register(KpiVersion)
class KpiVersionAdmin(_LifecycleMixin, TenantScopedAdmin):
    form = KpiVersionForm
    list_display = ("__str__", "kind", "status_badge", "contract", "level", "computed_as_of")
    list_filter = ("status", "kind", "level")
    search_fields = ("definition__key", "definition__name")
    step_services = services.LIFECYCLE_SERVICES
    readonly_fields = ("status", "proposed_by", "proposed_at", "decided_by", "decided_at", "decision_comment",
                       "activated_at", "computed_as_of", "computed_at")  # fmt: skip

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        _members_only(db_field, request, kwargs)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        fields = tuple(super().get_readonly_fields(request, obj))
        return (*fields, "definition") if obj is not None else fields

    def steps(self, obj: KpiVersion) -> list[str]:
        return list(TRANSITIONS[obj.status].values())

    @admin.display(description="Status")
    def status_badge(self, obj: KpiVersion) -> str:
        return format_html('<span class="aurum-status aurum-status-{}">{}</span>', obj.status, obj.get_status_display())

    def get_queryset(self, request: HttpRequest) -> QuerySet[KpiVersion]:
        return super().get_queryset(request).select_related("definition", "contract")

    def has_change_permission(self, request: HttpRequest, obj: KpiVersion | None = None) -> bool:
        return super().has_change_permission(request, obj) and (obj is None or obj.is_editable)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_changeform_initial_data(self, request: HttpRequest) -> dict[str, Any]:
        initial = super().get_changeform_initial_data(request)
        initial.setdefault("version", "1.0.0")
        return initial

    def save_model(self, request: HttpRequest, obj: KpiVersion, form: Any, change: bool) -> None:
        data = {name: form.cleaned_data.get(name) for name in services.VERSION_ATTRS if name in form.cleaned_data}
        data["dimensions"] = data.get("dimensions") or []
        data["filters"] = data.get("filters") or {}
        if change:
            services.kpi_version_update(actor=request.user, version=obj, semver=form.cleaned_data["version"], **data)
        else:
            created = services.kpi_version_create(actor=request.user, definition=form.cleaned_data["definition"],
                                                  version=form.cleaned_data["version"], **data)  # fmt: skip
            obj.pk = created.pk


# --- targets ------------------------------------------------------------------------------------------------
class KpiTargetForm(forms.ModelForm):
    dimensions = forms.JSONField(required=False, initial=dict, help_text='Optional, e.g. {"region": "north"}.')

    class Meta:
        model = KpiTarget
        fields = ("definition", "period_from", "period_to", "dimensions", "value", "tolerance_kind", "green_within",
                  "amber_within", "owner", "notes")  # fmt: skip

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if self.errors:
            return cleaned
        instance = self.instance
        for name, value in cleaned.items():
            setattr(instance, name, value)
        instance.dimensions = cleaned.get("dimensions") or {}
        instance.tenant = instance.definition.tenant
        try:
            services._validate_target(instance)
        except ValidationError as exc:
            for name, texts in exc.message_dict.items():
                self.add_error(name if name in self.fields else None, texts)
        return cleaned

    def _post_clean(self) -> None:
        pass


@admin.register(KpiTarget)
class KpiTargetAdmin(_LifecycleMixin, TenantScopedAdmin):
    form = KpiTargetForm
    list_display = ("__str__", "period_from", "period_to", "tolerance_kind", "green_within", "amber_within",
                    "status_badge")  # fmt: skip
    list_filter = ("status", "tolerance_kind")
    search_fields = ("definition__key",)
    step_services = services.TARGET_SERVICES
    readonly_fields = ("status", "proposed_by", "proposed_at", "decided_by", "decided_at", "decision_comment")

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        _members_only(db_field, request, kwargs)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        fields = tuple(super().get_readonly_fields(request, obj))
        return (*fields, "definition") if obj is not None else fields

    def steps(self, obj: KpiTarget) -> list[str]:
        return list(TARGET_TRANSITIONS[obj.status].values())

    @admin.display(description="Status")
    def status_badge(self, obj: KpiTarget) -> str:
        return format_html('<span class="aurum-status aurum-status-{}">{}</span>', obj.status, obj.get_status_display())

    def get_queryset(self, request: HttpRequest) -> QuerySet[KpiTarget]:
        return super().get_queryset(request).select_related("definition", "period_from", "period_to")

    def has_change_permission(self, request: HttpRequest, obj: KpiTarget | None = None) -> bool:
        return super().has_change_permission(request, obj) and (obj is None or obj.is_editable)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: KpiTarget, form: Any, change: bool) -> None:
        data = {name: form.cleaned_data.get(name) for name in services.TARGET_ATTRS}
        data["dimensions"] = data.get("dimensions") or {}
        if change:
            services.kpi_target_update(actor=request.user, target=obj, **data)
        else:
            created = services.kpi_target_create(actor=request.user, definition=form.cleaned_data["definition"],
                                                 **data)  # fmt: skip
            obj.pk = created.pk


# --- values ---------------------------------------------------------------------------------------------------
@admin.register(KpiValue)
class KpiValueAdmin(ReadOnlyTenantScopedAdmin):
    view_roles = PORTAL_ROLES
    list_display = ("kpi_key", "period_label", "dimensions_label", "actual", "target", "variance", "attainment",
                    "status_badge", "streak", "as_of")  # fmt: skip
    list_filter = ("status", "kpi_key", "period__level")
    search_fields = ("kpi_key", "period__label")
    list_select_related = ("period", "kpi_version")
    fields = ("kpi_key", "kpi_version", "period", "dimensions", "actual", "numerator", "denominator", "gdp_count",
              "target", "kpi_target", "variance", "attainment", "status", "streak", "as_of", "run_id", "computed_at",
              "lineage")  # fmt: skip
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest) -> QuerySet[KpiValue]:
        return super().get_queryset(request).filter(kpi_version__status__in=[
            KpiStatusChoices.ACTIVE, KpiStatusChoices.DEPRECATED, KpiStatusChoices.RETIRED])  # fmt: skip

    @admin.display(description="Period", ordering="period_index")
    def period_label(self, obj: KpiValue) -> str:
        return obj.period.label

    @admin.display(description="Dimensions")
    def dimensions_label(self, obj: KpiValue) -> str:
        return ", ".join(f"{k}={v}" for k, v in sorted((obj.dimensions or {}).items())) or "—"

    @admin.display(description="Status", ordering="status")
    def status_badge(self, obj: KpiValue) -> str:
        return _badge(obj.status, obj.get_status_display())

    @admin.display(description="Lineage (GDP versions read)")
    def lineage(self, obj: KpiValue) -> str:
        parts = []
        for source in selectors.kpi_value_lineage(value=obj):
            rows = list(source.gdps[:50])
            total = source.gdps.count()
            table = format_html_join(
                "", "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                ((g.measure, g.entity_key, f"{g.observed_at:%Y-%m-%d}", g.value, f"{g.recorded_from:%Y-%m-%d %H:%M:%S}",
                  g.batch_id or "—", g.source.key if g.source_id else "—") for g in rows),
            )  # fmt: skip
            parts.append(format_html(
                '<div class="aurum-lineage"><p><strong>{}</strong> {} — {} GDP versions, {} to {}{}</p>'
                "<table><thead><tr><th>Measure</th><th>Entity</th><th>Observed</th><th>Value</th><th>Recorded</th>"
                "<th>Batch</th><th>Source</th></tr></thead><tbody>{}</tbody></table></div>",
                source.kpi, source.version, total, source.days[0], source.days[1],
                " (first 50)" if total > 50 else "", table,
            ))  # fmt: skip
        return format_html_join("", "{}", ((p,) for p in parts)) or "—"
