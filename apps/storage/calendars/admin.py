"""Calendars in the portal: calendars (the tenant's and the platform's), period tables, closing periods.

Registered from StorageConfig.ready() (Django autodiscovers only `apps.storage.admin`). Every
write goes through the calendar services: creating and changing a calendar, generating or
discarding its periods, soft-closing, closing and reopening periods for the tenant.
"""

from __future__ import annotations

import calendar as stdlib_calendar
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import Count, IntegerField, OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from apps.kernel.admin import ReadOnlyTenantScopedAdmin, TenantScopedAdmin
from apps.kernel.context import get_tenant_context
from apps.kernel.errors import DomainError
from apps.kernel.roles import PORTAL_ROLES, TENANT_ADMIN_ROLES
from apps.storage.calendars import selectors, services
from apps.storage.calendars.choices import CLOSABLE_LEVELS, PeriodStateChoices
from apps.storage.calendars.models import Calendar, CalendarPeriod, PeriodState

STATE_TONES = {PeriodStateChoices.OPEN: "info", PeriodStateChoices.SOFT_CLOSED: "warn", PeriodStateChoices.CLOSED: "ok"}


def _tenant(request: HttpRequest) -> Any:
    context = get_tenant_context(request)
    return context.tenant if context is not None else None


def _refusal(exc: Exception) -> str:
    if isinstance(exc, DomainError):
        return exc.detail
    if isinstance(exc, ValidationError) and hasattr(exc, "error_dict"):
        return " ".join(f"{key}: {' '.join(texts)}" for key, texts in exc.message_dict.items())
    if isinstance(exc, ValidationError):
        return " ".join(exc.messages)
    return str(exc)


def _state_badge(state: str) -> str:
    label = PeriodStateChoices(state).label if state in PeriodStateChoices.values else state
    return format_html('<span class="aurum-status aurum-tone-{}" data-state="{}">{}</span>', STATE_TONES.get(state, "info"),
                       state, label)  # fmt: skip


class _VisibleToTenant:
    """The tenant's own rows and the platform's (read-only); superusers without a tenant see all."""

    visible_lookup = "tenant"

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        # Not TenantScopedAdmin's: it would keep only the tenant's own rows.
        queryset = admin.ModelAdmin.get_queryset(self, request)  # type: ignore[arg-type]
        context = get_tenant_context(request)
        if context is not None and context.tenant is not None:
            return queryset.for_tenant(context.tenant)
        return queryset if context is not None and context.is_superuser else queryset.none()

    def _is_platform(self, obj: Any) -> bool:
        value: Any = obj
        for part in self.visible_lookup.split("__"):
            value = getattr(value, part, None)
        return value is None

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if obj is not None and self._is_platform(obj):
            context = get_tenant_context(request)
            return context is not None and (
                context.is_superuser or (context.tenant is not None and context.has_role(PORTAL_ROLES))
            )
        return super().has_view_permission(request, obj)  # type: ignore[misc]


# --- calendars ----------------------------------------------------------------------------------------
MONTHS = [(number, stdlib_calendar.month_name[number]) for number in range(1, 13)]


class CalendarAdminForm(forms.ModelForm):
    class Meta:
        model = Calendar
        fields = ("tenant", "key", "name", "description", "kind", "is_default", "year_end_month", "year_end_weekday",
                  "year_end_rule", "week53_placement", "year_naming", "fiscal_year_start_month", "custom_periods")  # fmt: skip
        labels = {
            "tenant": "Tenant (blank: a platform calendar for every tenant)",
            "is_default": "Default calendar",
            "week53_placement": "53rd week goes to",
            "year_naming": "Fiscal years are named",
        }
        help_texts = {
            "year_end_rule": "Retail kinds: e.g. NRF ends on the Saturday nearest 31 January.",
            "week53_placement": "Retail kinds: the month that gets 5 weeks more than its pattern (4-4-5 → 4-4-6).",
            "year_naming": "FY2026 is the year ending in 2026, or (NRF) the one starting in 2026.",
        }
        widgets = {
            "year_end_month": forms.Select(choices=MONTHS),
            "fiscal_year_start_month": forms.Select(choices=MONTHS),
            "description": forms.Textarea(attrs={"rows": 2}),
            "custom_periods": forms.Textarea(attrs={"rows": 8, "cols": 70, "class": "aurum-json"}),
        }

    def __init__(self, *args: Any, tenant: Any = None, superuser: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk is None and "tenant" not in self.fields:
            self.instance.tenant = tenant  # a tenant's new calendar belongs to the tenant of the request
        if "tenant" in self.fields:
            self.fields["tenant"].required = False

    def clean(self) -> dict[str, Any]:
        """The services' own checks (rules, custom list, key), so a refusal shows on the form."""
        cleaned = super().clean()
        if self.errors:
            return cleaned
        candidate = Calendar(pk=self.instance.pk, tenant=self.instance.tenant, key=self.instance.key)
        for name in (*services.EDITABLE_FIELDS, "key", "tenant"):
            setattr(candidate, name, cleaned[name] if name in cleaned else getattr(self.instance, name))
        candidate.custom_periods = candidate.custom_periods or []
        try:
            services.calendar_validate(candidate)
        except ValidationError as exc:
            for key, texts in (exc.message_dict if hasattr(exc, "error_dict") else {None: exc.messages}).items():
                field = key.split("/")[0] if key else None
                self.add_error(field if field in self.fields else None, texts)
        return cleaned


class CalendarPeriodCountsFilter(admin.SimpleListFilter):
    title = "scope"
    parameter_name = "scope"

    def lookups(self, request: HttpRequest, model_admin: Any) -> Any:
        return (("tenant", "This tenant"), ("platform", "Platform"))

    def queryset(self, request: HttpRequest, queryset: QuerySet[Calendar]) -> QuerySet[Calendar]:
        if self.value() == "platform":
            return queryset.filter(tenant__isnull=True)
        if self.value() == "tenant":
            return queryset.filter(tenant__isnull=False)
        return queryset


class GenerateForm(forms.Form):
    from_year = forms.IntegerField(min_value=1901, max_value=2199, required=False,
                                   help_text="First fiscal year (custom calendars: blank = their list's years).")  # fmt: skip
    to_year = forms.IntegerField(
        min_value=1901, max_value=2199, required=False, help_text="Last fiscal year, included."
    )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        start, end = cleaned.get("from_year"), cleaned.get("to_year")
        if start is not None and end is not None and start > end:
            self.add_error("to_year", f"The last year ({end}) comes before the first ({start}).")
        return cleaned


class CalendarAdmin(_VisibleToTenant, TenantScopedAdmin):
    """Calendars: rules, generated years, which periods the tenant has closed; generate periods as an action."""

    form = CalendarAdminForm
    list_display = ("key", "name", "kind", "scope", "years", "is_default", "closed_count")
    list_filter = ("kind", CalendarPeriodCountsFilter)
    search_fields = ("key", "name")
    list_select_related = ("tenant",)
    actions = ["generate_periods", "discard_periods"]
    readonly_fields = ("scope", "years", "closed_periods", "periods_link")

    def get_queryset(self, request: HttpRequest) -> QuerySet[Calendar]:
        queryset = super().get_queryset(request)
        tenant = _tenant(request)
        if tenant is None:
            return queryset
        closed = (
            PeriodState.objects.filter(tenant=tenant, state=PeriodStateChoices.CLOSED, period__calendar=OuterRef("pk"))
            .values("period__calendar")
            .annotate(total=Count("pk"))
            .values("total")
        )
        return queryset.annotate(closed_total=Coalesce(Subquery(closed, output_field=IntegerField()), 0))

    # --- permissions: platform calendars are read-only except for superusers -----------------------------
    def has_change_permission(self, request: HttpRequest, obj: Calendar | None = None) -> bool:
        if obj is not None and obj.tenant_id is None:
            return bool(request.user.is_superuser)
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Calendar | None = None) -> bool:
        return False  # periods, closes and KPIs hang on a calendar: discard its periods instead

    def has_generate_permission(self, request: HttpRequest, obj: Calendar | None = None) -> bool:
        return self.has_change_permission(request, obj)

    # --- columns -----------------------------------------------------------------------------------------
    @admin.display(description="Scope")
    def scope(self, obj: Calendar) -> str:
        return "platform" if obj.tenant_id is None else obj.tenant.slug

    @admin.display(description="Generated years")
    def years(self, obj: Calendar) -> str:
        if obj.generated_from is None:
            return "—"
        return (
            f"FY{obj.generated_from}"
            if obj.generated_from == obj.generated_to
            else (f"FY{obj.generated_from}–FY{obj.generated_to}")
        )

    @admin.display(description="Closed periods")
    def closed_count(self, obj: Calendar) -> int | str:
        return getattr(obj, "closed_total", "—")

    @admin.display(description="Closed and soft-closed periods (this tenant)")
    def closed_periods(self, obj: Calendar) -> str:
        tenant = getattr(self, "_request_tenant", None)
        if obj.pk is None or tenant is None:
            return "—"
        rows = selectors.closed_periods(tenant=tenant, calendar=obj, soft=True).order_by("start", "level")[:200]
        if not rows:
            return "None: every period is open."
        return format_html(
            "<ul>{}</ul>",
            format_html_join(
                "", "<li>{} ({}..{}) {}</li>", ((p.label, p.start, p.end, _state_badge(p.state)) for p in rows)
            ),
        )

    @admin.display(description="Periods")
    def periods_link(self, obj: Calendar) -> str:
        if obj.pk is None:
            return "—"
        url = reverse("admin:storage_calendarperiod_changelist") + f"?calendar={obj.pk}&level__exact=period"
        return format_html('<a href="{}">Fiscal periods of this calendar</a>', url)

    # --- the form ----------------------------------------------------------------------------------------
    def get_form(self, request: HttpRequest, obj: Calendar | None = None, change: bool = False, **kwargs: Any) -> Any:
        self._request_tenant = _tenant(request)
        form_class = super().get_form(request, obj, change, **kwargs)
        tenant, superuser = _tenant(request), bool(request.user.is_superuser)

        class BoundCalendarForm(form_class):  # type: ignore[valid-type, misc]
            def __init__(self, *args: Any, **inner: Any) -> None:
                super().__init__(*args, tenant=tenant, superuser=superuser, **inner)

        return BoundCalendarForm

    def get_fields(self, request: HttpRequest, obj: Calendar | None = None) -> list[str]:
        fields = list(CalendarAdminForm.Meta.fields)
        if not request.user.is_superuser or obj is not None:
            fields.remove("tenant")
        if obj is not None:
            fields = ["scope", *fields, "years", "periods_link", "closed_periods"]
        return fields

    def get_readonly_fields(self, request: HttpRequest, obj: Calendar | None = None) -> tuple[str, ...]:
        fixed: tuple[str, ...] = ("scope", "years", "closed_periods", "periods_link")
        if obj is not None:
            fixed += ("key",)
            if obj.generated_from is not None:
                fixed += services.RULE_FIELDS  # fixed once periods exist
        return fixed

    def get_changeform_initial_data(self, request: HttpRequest) -> dict[str, Any]:
        initial = super().get_changeform_initial_data(request)
        tenant = _tenant(request)
        if tenant is not None:
            initial.setdefault("tenant", tenant.pk)
        return initial

    def save_model(self, request: HttpRequest, obj: Calendar, form: Any, change: bool) -> None:
        data = {name: form.cleaned_data[name] for name in form.cleaned_data if name in services.EDITABLE_FIELDS}
        if change:
            data = {name: value for name, value in data.items() if name in form.changed_data}
            services.calendar_update(actor=request.user, calendar=obj, **data)
            obj.refresh_from_db()
            return
        tenant = form.cleaned_data.get("tenant") if request.user.is_superuser else _tenant(request)
        rules = {name: data.pop(name) for name in services.RULE_FIELDS if name in data and name != "kind"}
        created = services.calendar_create(actor=request.user, tenant=tenant, key=form.cleaned_data["key"],
                                           kind=data.pop("kind"), **data, **rules)  # fmt: skip
        obj.pk, obj._state.adding = created.pk, False

    # --- actions -----------------------------------------------------------------------------------------
    @admin.action(description="Generate periods for a range of fiscal years…", permissions=["generate"])
    def generate_periods(self, request: HttpRequest, queryset: QuerySet[Calendar]) -> HttpResponse | None:
        form = GenerateForm(request.POST if "apply" in request.POST else None)
        if "apply" in request.POST and form.is_valid():
            for calendar in queryset:
                self._generate(request, calendar, form.cleaned_data["from_year"], form.cleaned_data["to_year"])
            return None
        return TemplateResponse(
            request,
            "admin/storage/calendar/generate.html",
            {
                **self.admin_site.each_context(request),
                "opts": self.opts,
                "title": "Generate calendar periods",
                "calendars": queryset,
                "form": form,
                "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
            },
        )

    def _generate(self, request: HttpRequest, calendar: Calendar, from_year: int | None, to_year: int | None) -> None:
        if not self.has_generate_permission(request, calendar):
            self.message_user(request, f"“{calendar}”: a platform calendar, read-only for tenants.", messages.ERROR)
            return
        try:
            result = services.calendar_generate(actor=request.user, calendar=calendar, from_year=from_year,
                                                to_year=to_year)  # fmt: skip
        except (DomainError, ValidationError) as exc:
            self.message_user(request, f"“{calendar}”: {_refusal(exc)}", messages.ERROR)
            return
        self.message_user(
            request,
            f"“{calendar}”: FY{result.from_year}–FY{result.to_year} generated ({result.created} rows created, "
            f"{result.updated} updated, {result.deleted} removed, {result.unchanged} unchanged).",
            messages.SUCCESS,
        )

    @admin.action(description="Discard the generated periods (rules become editable)", permissions=["generate"])
    def discard_periods(self, request: HttpRequest, queryset: QuerySet[Calendar]) -> None:
        for calendar in queryset:
            if not self.has_generate_permission(request, calendar):
                self.message_user(request, f"“{calendar}”: a platform calendar, read-only for tenants.", messages.ERROR)
                continue
            try:
                services.calendar_clear(actor=request.user, calendar=calendar)
            except (DomainError, ValidationError) as exc:
                self.message_user(request, f"“{calendar}”: {_refusal(exc)}", messages.ERROR)
                continue
            self.message_user(request, f"“{calendar}”: periods discarded.", messages.SUCCESS)


# --- periods ------------------------------------------------------------------------------------------
class CalendarFilter(admin.SimpleListFilter):
    """Only calendars the tenant sees (a plain foreign-key filter would list every tenant's)."""

    title = "calendar"
    parameter_name = "calendar"

    def lookups(self, request: HttpRequest, model_admin: Any) -> Any:
        context = get_tenant_context(request)
        calendars = Calendar.objects.order_by("key")
        if context is None or context.tenant is not None or not context.is_superuser:
            calendars = calendars.for_tenant(context.tenant if context else None)
        return [(str(c.pk), str(c)) for c in calendars]

    def queryset(self, request: HttpRequest, queryset: QuerySet[CalendarPeriod]) -> QuerySet[CalendarPeriod]:
        value = self.value()
        return queryset.filter(calendar_id=value) if value and value.isdigit() else queryset


class StateFilter(admin.SimpleListFilter):
    title = "state (this tenant)"
    parameter_name = "state"

    def lookups(self, request: HttpRequest, model_admin: Any) -> Any:
        return PeriodStateChoices.choices

    def queryset(self, request: HttpRequest, queryset: QuerySet[CalendarPeriod]) -> QuerySet[CalendarPeriod]:
        return queryset.filter(state=self.value()) if self.value() in PeriodStateChoices.values else queryset


class CalendarPeriodAdmin(_VisibleToTenant, ReadOnlyTenantScopedAdmin):
    """Period tables, read-only (written by generation); tenant admins soft-close, close and reopen periods."""

    tenant_lookup = "calendar__tenant"
    visible_lookup = "calendar__tenant"
    list_display = ("label", "calendar", "level", "start", "end", "fiscal_year", "number", "state_badge")
    list_filter = ("level", CalendarFilter, StateFilter)
    search_fields = ("label",)
    list_select_related = ("calendar",)
    actions = ["soft_close_selected", "close_selected", "reopen_selected"]
    show_auditlog_history_link = False
    fields = ("calendar", "level", "label", "start", "end", "fiscal_year", "number", "index", "year_label",
              "half_label", "quarter_label", "period_label", "week_label", "state_badge", "state_history")  # fmt: skip
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest) -> QuerySet[CalendarPeriod]:
        return selectors.with_state(super().get_queryset(request), tenant=_tenant(request))

    @admin.display(description="State", ordering="state")
    def state_badge(self, obj: CalendarPeriod) -> str:
        return _state_badge(getattr(obj, "state", PeriodStateChoices.OPEN))

    @admin.display(description="Last change (this tenant)")
    def state_history(self, obj: CalendarPeriod) -> str:
        state = PeriodState.objects.filter(period=obj, tenant=self._request_tenant).select_related("changed_by").first()
        if state is None:
            return "Never closed."
        who = state.changed_by.get_username() if state.changed_by else "system"
        return f"{state.get_state_display()} on {state.changed_at:%Y-%m-%d %H:%M} by {who}" + (
            f": {state.reason}" if state.reason else ""
        )

    def get_object(self, request: HttpRequest, object_id: str, from_field: str | None = None) -> Any:
        self._request_tenant = _tenant(request)
        return super().get_object(request, object_id, from_field)

    def has_close_permission(self, request: HttpRequest) -> bool:
        """Closing is the API's admin scope: tenant admins (and superusers) acting for a chosen tenant."""
        context = get_tenant_context(request)
        return context is not None and context.tenant is not None and context.has_role(TENANT_ADMIN_ROLES)

    @admin.action(description="Soft-close the selected periods…", permissions=["close"])
    def soft_close_selected(self, request: HttpRequest, queryset: QuerySet[CalendarPeriod]) -> HttpResponse | None:
        return self._transition(request, queryset, "soft_close_selected")

    @admin.action(description="Close the selected periods for good…", permissions=["close"])
    def close_selected(self, request: HttpRequest, queryset: QuerySet[CalendarPeriod]) -> HttpResponse | None:
        return self._transition(request, queryset, "close_selected")

    @admin.action(description="Reopen the selected soft-closed periods…", permissions=["close"])
    def reopen_selected(self, request: HttpRequest, queryset: QuerySet[CalendarPeriod]) -> HttpResponse | None:
        return self._transition(request, queryset, "reopen_selected")

    def _transition(self, request: HttpRequest, queryset: QuerySet[CalendarPeriod], action: str) -> HttpResponse | None:
        """First a page naming the periods and asking for a reason (kept in the state, its audit log and the
        event), then the service per period; refusals are listed one by one."""
        service, verb, title, warning = TRANSITIONS[action]
        form = PeriodTransitionForm(request.POST if "apply" in request.POST else None)
        if "apply" not in request.POST or not form.is_valid():
            return TemplateResponse(
                request,
                "admin/storage/calendar/period_transition.html",
                {**self.admin_site.each_context(request), "opts": self.opts, "title": title, "warning": warning,
                 "periods": queryset.select_related("calendar").order_by("calendar", "start"), "form": form, "action": action,
                 "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME},
            )  # fmt: skip
        tenant, done = _tenant(request), 0
        for period in queryset.order_by("start"):
            if period.level not in CLOSABLE_LEVELS:
                self.message_user(request, f"{period.label}: days are closed with their period.", messages.ERROR)
                continue
            try:
                service(actor=request.user, tenant=tenant, period=period, reason=form.cleaned_data["reason"])
                done += 1
            except (DomainError, ValidationError) as exc:
                self.message_user(request, f"{period.label}: {_refusal(exc)}", messages.ERROR)
        if done:
            self.message_user(request, f"{done} period{'s' if done != 1 else ''} {verb}.", messages.SUCCESS)
        return None


class PeriodTransitionForm(forms.Form):
    reason = forms.CharField(required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 3, "cols": 70}),
                             help_text="Why (kept with the state, in its audit log and in the domain event).")  # fmt: skip


# action → (service, verb for the message, page title, warning on the page)
TRANSITIONS: dict[str, tuple[Any, str, str, str]] = {
    "soft_close_selected": (services.period_soft_close, "soft-closed", "Soft-close periods",
                            "Soft-closed periods can still be reopened."),
    "close_selected": (services.period_close, "closed", "Close periods for good",
                       "A closed period is never reopened: data that arrives later for it goes through a "
                       "restatement. Closing a quarter, half or year closes every period and day inside it."),
    "reopen_selected": (services.period_reopen, "reopened", "Reopen soft-closed periods",
                        "Only soft-closed periods reopen; closed ones stay closed."),
}  # fmt: skip


admin.site.register(Calendar, CalendarAdmin)
admin.site.register(CalendarPeriod, CalendarPeriodAdmin)
