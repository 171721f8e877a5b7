"""Portal pages for KPIs: definitions, versions with their lifecycle, targets, computed values with lineage.

Every write goes through the KPI services. A form's refusals (a ValidationError keyed by field, or a
domain error) are shown on the form: the form's `clean()` asks the service's validation first, and
`save_model` calls the service. Lifecycle buttons and "Compute now" are POSTs to small views that
call one service and report the outcome as a message.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from apps.compute.kpis import selectors, services
from apps.compute.kpis.choices import GrainLevelChoices
from apps.compute.kpis.models import KpiDefinition, KpiStatusChoices, KpiTarget, KpiVersion
from apps.compute.kpis.services import TARGET_TRANSITIONS
from apps.compute.kpis.validation import contract_shape, validate_version
from apps.host.contracts.lifecycle import TRANSITIONS
from apps.host.models import DataContract
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
# What the message after a step says comes next (the steward does not have to know the lifecycle).
STEP_DONE = {
    "propose": "Proposed: a tenant admin other than you approves it (four eyes).",
    "approve": "Approved.",
    "reject": "Rejected: back to draft, where it can be edited.",
    "activate": "Activated.",
    "deprecate": "Deprecated: its values stay, it is no longer computed.",
    "retire": "Retired.",
}
BADGE_COLOURS = {"green": "#1b5e20;background:#e3f5e5", "amber": "#7a5200;background:#fff4d6",
                 "red": "#8e1b1b;background:#fde3e3", "none": "#616161;background:#ececec"}  # fmt: skip


def _badge(status: str, label: str) -> str:
    colour = BADGE_COLOURS.get(status, BADGE_COLOURS["none"])
    return format_html('<span class="aurum-kpi-status aurum-kpi-status-{}" style="padding:1px 8px;border-radius:10px;'
                       'font-weight:600;color:{}">{}</span>', status, colour, label)  # fmt: skip


def _plain(value: Any) -> str:
    """A stored decimal without its trailing zeros: 10000.0000000000 → 10000, 2.5000 → 2.5."""
    if value is None:
        return "—"
    try:
        text = format(Decimal(value).normalize(), "f")
    except InvalidOperation:
        return str(value)
    return text


def _number(value: Any, version: Any) -> str:
    """A value as its KPI version shows it: its decimals, thousands grouped, its unit (e.g. 10,650 EUR)."""
    if value is None:
        return "—"
    decimals = getattr(version, "decimals", 2)
    if getattr(version, "display_format", "") == "percent":
        return f"{Decimal(value):,.{decimals}f} %"
    unit = getattr(version, "unit", "")
    return f"{Decimal(value):,.{decimals}f}" + (f" {unit}" if unit else "")


def _refusal(exc: Exception) -> str:
    if isinstance(exc, DomainError):
        return exc.detail
    if isinstance(exc, ValidationError) and hasattr(exc, "error_dict"):
        return " ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())
    if isinstance(exc, ValidationError):
        return " ".join(exc.messages)
    return str(exc)


def _narrowed(db_field: Any, request: HttpRequest, formfield: Any) -> Any:
    """After the kernel's tenant scoping (which replaces any queryset given to it), narrow owners to the
    tenant's members and periods to the non-day rows."""
    narrowed: dict[str, Any] = {}
    _members_only(db_field, request, narrowed)
    if formfield is not None and "queryset" in narrowed:
        formfield.queryset = narrowed["queryset"]
    return formfield


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
                done = service(actor=request.user, **{self.model._meta.model_name.replace("kpi", ""): obj},  # type: ignore[attr-defined]
                               comment=request.POST.get("comment", ""))  # fmt: skip
                messages.success(request, f"Done: {name}. {self.step_done(name, done)}".strip())
            except (DomainError, ValidationError) as exc:
                messages.error(request, f"Refused: {_refusal(exc)}")
        return HttpResponseRedirect(request.path.rsplit("step/", 1)[0])

    def step_done(self, name: str, obj: Any) -> str:
        return STEP_DONE.get(name, "")

    def waiting_note(self, request: HttpRequest, obj: Any) -> str:
        """Why a proposed row offers no approve/reject to this user: who decides it instead (four eyes)."""
        if getattr(obj, "status", None) != "proposed":
            return ""
        if obj.proposed_by_id is not None and obj.proposed_by_id == request.user.pk:
            return ("You proposed it: a tenant admin other than you approves or rejects it (four eyes). "
                    "It cannot be edited until then.")  # fmt: skip
        if not services.can_approve(request.user, obj.definition):
            return ("Waiting for a tenant admin (or someone with the approver right on this KPI) to approve or "
                    "reject it.")  # fmt: skip
        return ""

    def render_change_form(self, request: HttpRequest, context: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        obj = context.get("original")
        if obj is not None:
            note = self.waiting_note(request, obj)
            context["lifecycle_note"] = note
            context["lifecycle"] = [
                {"action": name, "label": name.capitalize(), "help": LIFECYCLE_HELP.get(name, ""),
                 "comment_required": name == "reject", "danger": name in ("retire", "reject")}
                for name in self.steps(obj) if not (note and name in ("approve", "reject"))
            ] if self._allowed(request, self.step_roles, obj) else []  # type: ignore[attr-defined]  # fmt: skip
            opts = self.model._meta  # type: ignore[attr-defined]
            context["step_url"] = reverse(f"admin:{opts.app_label}_{opts.model_name}_step", args=[obj.pk])
        return super().render_change_form(request, context, *args, **kwargs)  # type: ignore[misc]

    def response_add(self, request: HttpRequest, obj: Any, post_url_continue: str | None = None) -> HttpResponse:
        """A new draft opens on its own page, where the next step (Propose) is."""
        if "_addanother" in request.POST or "_popup" in request.POST or "_continue" in request.POST:
            return super().response_add(request, obj, post_url_continue)  # type: ignore[misc]
        opts = self.model._meta  # type: ignore[attr-defined]
        messages.success(request, f"Saved {obj} as a draft. Check it, then press Propose below: a tenant admin "
                                  "other than you approves it.")  # fmt: skip
        return HttpResponseRedirect(reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk]))

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        """The lifecycle fields say nothing before the row exists: the add form leaves them out."""
        fields = tuple(super().get_readonly_fields(request, obj))  # type: ignore[misc]
        return (*fields, "definition") if obj is not None else ()


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
        return _narrowed(db_field, request, super().formfield_for_foreignkey(db_field, request, **kwargs))

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
        if obj is not None:
            context["next_steps"] = _next_steps(request, obj, may_edit=self._allowed(request, EDITOR_ROLES, obj))
            if self._allowed(request, EDITOR_ROLES, obj) and selectors.kpi_active_version(definition=obj):
                context["compute_url"] = reverse("admin:compute_kpidefinition_compute", args=[obj.pk])
        return super().render_change_form(request, context, *args, **kwargs)

    def response_add(self, request: HttpRequest, obj: KpiDefinition, post_url_continue: str | None = None) -> Any:
        """A KPI says nothing until it has a version: go on to the version's form, the KPI chosen."""
        if "_addanother" in request.POST or "_popup" in request.POST or "_continue" in request.POST:
            return super().response_add(request, obj, post_url_continue)
        messages.success(request, f"Created the KPI {obj.key}. Now say what it computes: its first version.")
        return HttpResponseRedirect(reverse("admin:compute_kpiversion_add") + f"?definition={obj.pk}")


def _next_steps(request: HttpRequest, definition: KpiDefinition, *, may_edit: bool) -> list[dict[str, str]]:
    """Where the KPI stands and the link to its next step: version → approval → target → values → publish."""
    versions = list(definition.versions.order_by("-major", "-minor", "-patch"))
    active = next((v for v in versions if v.status == KpiStatusChoices.ACTIVE), None)
    steps = []
    if not versions:
        steps.append({"text": "No version yet: a version says what is computed (measure, aggregation, calendar).",
                      "url": reverse("admin:compute_kpiversion_add") + f"?definition={definition.pk}" if may_edit
                      else "", "label": "Add the first version"})  # fmt: skip
    else:
        newest = versions[0]
        text = f"Newest version {newest.version}: {newest.get_status_display().lower()}."
        if active is None:
            text += " It is computed once a tenant admin has approved and activated a version."
        steps.append({"text": text, "url": reverse("admin:compute_kpiversion_change", args=[newest.pk]),
                      "label": f"Open {newest.version}"})  # fmt: skip
        if may_edit:
            steps.append({"text": "A change to what is computed is a new version (the active one stays until then).",
                          "url": reverse("admin:compute_kpiversion_add") + f"?definition={definition.pk}",
                          "label": "Add a version"})  # fmt: skip
    targets = definition.targets.exclude(status="retired")
    approved = targets.filter(status="approved").count()
    steps.append({"text": f"Targets: {approved} approved, {targets.count() - approved} in draft or proposed. Only "
                          "approved targets give values a status (green, amber, red).",
                  "url": reverse("admin:compute_kpitarget_add") + f"?definition={definition.pk}" if may_edit else "",
                  "label": "Add a target"})  # fmt: skip
    if active is not None:
        values = KpiValue.objects.filter(kpi_version=active).count()
        steps.append({"text": f"Active version {active.version}: {values} values"
                              + (f", computed as of {active.computed_as_of:%Y-%m-%d %H:%M} UTC." if active.computed_as_of
                                 else ", not computed yet."),
                      "url": reverse("admin:storage_kpivalue_changelist") + f"?kpi_key={definition.key}",
                      "label": "See the values"})  # fmt: skip
        if active.computed_as_of is not None and may_edit:
            steps.append({"text": "Publishing checks the policies first (quality gate, lineage, four eyes).",
                          "url": reverse("admin:storage_publishedoutput_publish") + f"?kpi={active.pk}",
                          "label": "Publish"})  # fmt: skip
    return steps


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
        if counts.get("mode") == "incremental" and not counts.get("periods"):
            messages.success(request, f"{run.job}: nothing changed since the last computation; the values stand. "
                                      "(Recompute every period to rebuild them all.)")  # fmt: skip
            continue
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
        return _narrowed(db_field, request, super().formfield_for_foreignkey(db_field, request, **kwargs))

    def steps(self, obj: KpiVersion) -> list[str]:
        return list(TRANSITIONS[obj.status].values())

    def step_done(self, name: str, obj: Any) -> str:
        if name == "approve":
            return "Approved: Activate makes it the KPI's active version, and computes it."
        if name == "activate":
            return (f"Activated and computed: its values are on the KPI's page ({obj.definition.key}) and under "
                    "Data storage › KPI values. Add a target to see them green, amber or red.")  # fmt: skip
        return super().step_done(name, obj)

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        """The measure and dimension fields name what the tenant's contracts offer (their active versions)."""
        form = super().get_form(request, obj, change, **kwargs)
        context = get_tenant_context(request)
        tenant = context.tenant if context is not None else None
        shapes = []
        for contract in DataContract.objects.for_tenant(tenant).order_by("key") if tenant is not None else ():
            shape = contract_shape(contract)
            if shape is not None:
                shapes.append(f"{contract.key}: measures {', '.join(sorted(shape[0])) or '—'}; dimensions "
                              f"{', '.join(sorted(shape[1])) or '—'}")  # fmt: skip
        offered = (" Contracts with an active version — " + " · ".join(shapes) + ".") if shapes else ""
        for name, text in (("measure", "The measure field aggregated (the numerator of a ratio)."),
                           ("dimensions", 'Dimension fields to break the values down by, as a JSON list, e.g. '
                                          '["region"]; [] for one value per period.')):  # fmt: skip
            if name in form.base_fields:
                form.base_fields[name].help_text = text + offered
        return form

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
    list_display = ("target_text", "period_from_label", "period_to_label", "tolerance_kind", "bands",
                    "status_badge")  # fmt: skip
    list_filter = ("status", "tolerance_kind")
    search_fields = ("definition__key",)
    step_services = services.TARGET_SERVICES
    readonly_fields = ("status", "proposed_by", "proposed_at", "decided_by", "decided_at", "decision_comment")

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        return _narrowed(db_field, request, super().formfield_for_foreignkey(db_field, request, **kwargs))

    def steps(self, obj: KpiTarget) -> list[str]:
        return list(TARGET_TRANSITIONS[obj.status].values())

    def step_done(self, name: str, obj: Any) -> str:
        if name == "approve":
            return "Approved: the KPI's values are compared with it now (Data storage › KPI values)."
        return super().step_done(name, obj)

    @admin.display(description="Target", ordering="definition__key")
    def target_text(self, obj: KpiTarget) -> str:
        dims = ", ".join(f"{k}={v}" for k, v in sorted((obj.dimensions or {}).items()))
        return f"{obj.definition.key}: {_plain(obj.value)}" + (f" ({dims})" if dims else "")

    @admin.display(description="From", ordering="period_from__start")
    def period_from_label(self, obj: KpiTarget) -> str:
        return obj.period_from.label

    @admin.display(description="To", ordering="period_to__start")
    def period_to_label(self, obj: KpiTarget) -> str:
        return obj.period_to.label

    @admin.display(description="Bands (green / amber within)")
    def bands(self, obj: KpiTarget) -> str:
        suffix = " %" if obj.tolerance_kind == "percent" else ""
        return f"{_plain(obj.green_within)}{suffix} / {_plain(obj.amber_within)}{suffix}"

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        """Opened for one KPI (from its page, or an existing target), the periods offered are its calendar's."""
        form = super().get_form(request, obj, change, **kwargs)
        if request.method != "GET":
            return form  # a POST is checked against every period the tenant sees; the service checks the rest
        definition = obj.definition if obj is not None else None
        wanted = request.GET.get("definition", "")
        if definition is None and wanted.isdigit():
            context = get_tenant_context(request)
            definition = KpiDefinition.objects.for_tenant(context.tenant if context else None).filter(
                pk=int(wanted)).first()  # fmt: skip
        version = definition.versions.order_by("-major", "-minor", "-patch").first() if definition else None
        if version is not None:
            for name in ("period_from", "period_to"):
                if name in form.base_fields:
                    field = form.base_fields[name]
                    levels = list(GrainLevelChoices.values)
                    coarser = levels[levels.index(version.level) :] if version.level in levels else levels
                    field.queryset = field.queryset.filter(calendar_id=version.calendar_id, level__in=coarser)
                    field.help_text = (f"Periods of {version.calendar.name}, the KPI's calendar, at its grain or "
                                       "coarser. The target applies to the values whose periods lie within the "
                                       "range.")  # fmt: skip
        return form

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
    list_display = ("kpi_key", "period_label", "dimensions_label", "actual_text", "target_text", "variance_text",
                    "attainment_text", "status_badge", "streak", "as_of")  # fmt: skip
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

    @admin.display(description="Actual", ordering="actual")
    def actual_text(self, obj: KpiValue) -> str:
        return _number(obj.actual, obj.kpi_version)

    @admin.display(description="Target", ordering="target")
    def target_text(self, obj: KpiValue) -> str:
        return _number(obj.target, obj.kpi_version)

    @admin.display(description="Variance", ordering="variance")
    def variance_text(self, obj: KpiValue) -> str:
        return _number(obj.variance, obj.kpi_version)

    @admin.display(description="% attained", ordering="attainment")
    def attainment_text(self, obj: KpiValue) -> str:
        return "—" if obj.attainment is None else f"{Decimal(obj.attainment):.1f} %"

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
