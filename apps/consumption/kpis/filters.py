"""Filters of KPI value reads, shared by the KPI values API and the `kpi-values` export.

- `period_from` / `period_to`: a period label of the KPI's calendar (`FY2026-P03`, any level:
  `FY2026-Q2` too) or a date (`2026-03-01`). A value's period must start on or after the start
  of `period_from` and end on or before the end of `period_to`.
- `grain`: the period level (`day`, `week`, `period`, `quarter`, `half`, `year`).
- `dim.<name>=<value>`: the value's dimension `<name>` equals `<value>`, compared as text (names as
  in the GDP filters: letters, digits, `_`, `-`, no `__`; at most 20).
- `kpi` (exports; the API takes the key from its path) and `status`.

The same parameters select published rows (which are JSON, filtered in Python): `KpiRowFilter`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from django.db import connection, models
from django.db.models import CharField, Max, Min
from django.db.models.expressions import RawSQL
from django.forms.utils import ErrorList
from django_filters import rest_framework as django_filters

from apps.storage.api.filters import DIMENSION_NAME, DIMENSION_PREFIX, MAX_DIMENSION_FILTERS
from apps.storage.calendars.choices import PeriodLevelChoices
from apps.storage.kpi_values import KpiStatusChoices, KpiValue, dimension_param, dimension_text_sql
from apps.storage.models import CalendarPeriod

BOUND_HELP = "A period label of the KPI's calendar (e.g. FY2026-P03) or a date (YYYY-MM-DD)."


def resolve_bound(raw: str, calendars: Any, *, end: bool) -> date | None:
    """A date, or the start (end=False) / end (end=True) of the periods labelled `raw` in `calendars`
    (ids or a subquery); None when no period has that label."""
    try:
        return date.fromisoformat(raw)
    except ValueError:
        pass
    bounds = CalendarPeriod.objects.filter(label=raw, calendar_id__in=calendars).aggregate(
        start=Min("start"), end=Max("end")
    )
    return bounds["end"] if end else bounds["start"]


def unknown_bound(raw: str) -> str:
    return f"No period labelled {raw!r} in the KPI's calendar. {BOUND_HELP}"


def dimension_filters(data: Any) -> dict[str, str]:
    return {
        key[len(DIMENSION_PREFIX) :]: value
        for key, value in data.items()
        if isinstance(key, str) and key.startswith(DIMENSION_PREFIX)
    }


def dimension_errors(dimensions: dict[str, str]) -> dict[str, list[str]]:
    problems = [name for name in dimensions if not DIMENSION_NAME.match(name)]
    if problems:
        return {f"{DIMENSION_PREFIX}{problems[0]}": ["A dimension name: letters, digits, '_' and '-'."]}
    if len(dimensions) > MAX_DIMENSION_FILTERS:
        return {"dim": [f"At most {MAX_DIMENSION_FILTERS} dimension filters."]}
    return {}


def as_text(value: Any) -> str | None:
    """A JSON dimension value as the text the filters compare."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class KpiValueFilter(django_filters.FilterSet):
    """Current KPI values (rows of storage's KpiValue) by KPI, periods, grain, status and dimensions."""

    kpi = django_filters.CharFilter(field_name="kpi_key", help_text="The KPI's key.")
    period_from = django_filters.CharFilter(method="_no_op", help_text=f"First period. {BOUND_HELP}")
    period_to = django_filters.CharFilter(method="_no_op", help_text=f"Last period. {BOUND_HELP}")
    grain = django_filters.ChoiceFilter(
        field_name="period__level", choices=PeriodLevelChoices.choices, help_text="The period level."
    )
    status = django_filters.ChoiceFilter(choices=KpiStatusChoices.choices, help_text="Status against the target.")

    class Meta:
        model = KpiValue
        fields: list[str] = []

    def _no_op(self, queryset: models.QuerySet, name: str, value: Any) -> models.QuerySet:
        return queryset  # bounds are resolved in is_valid and applied in filter_queryset

    def is_valid(self) -> bool:
        valid = super().is_valid()
        for name, message in dimension_errors(self.dimension_filters()).items():
            self.errors[name] = ErrorList(message)
            valid = False
        self.bounds: dict[str, date] = {}
        cleaned = self.form.cleaned_data if hasattr(self.form, "cleaned_data") else {}
        calendars = getattr(self, "calendars", None)  # published reads: the calendars of their periods
        if calendars is None:
            calendars = self.queryset.values("period__calendar_id")
        for name in ("period_from", "period_to"):
            raw = cleaned.get(name)
            if not raw:
                continue
            bound = resolve_bound(raw, calendars, end=name == "period_to")
            if bound is None:
                self.errors[name] = ErrorList([unknown_bound(raw)])
                valid = False
            else:
                self.bounds[name] = bound
        return valid

    def dimension_filters(self) -> dict[str, str]:
        return dimension_filters(self.data)

    def filter_queryset(self, queryset: models.QuerySet) -> models.QuerySet:
        queryset = super().filter_queryset(queryset)
        bounds = getattr(self, "bounds", {})
        if "period_from" in bounds:
            queryset = queryset.filter(period__start__gte=bounds["period_from"])
        if "period_to" in bounds:
            queryset = queryset.filter(period__end__lte=bounds["period_to"])
        column = f"{connection.ops.quote_name(KpiValue._meta.db_table)}.{connection.ops.quote_name('dimensions')}"
        for position, (name, value) in enumerate(sorted(self.dimension_filters().items())):
            alias = f"_dim_{position}"
            # The SQL is built from constant names; the dimension name is a parameter.
            text = RawSQL(dimension_text_sql(column), [dimension_param(name)], output_field=CharField())  # noqa: S611
            queryset = queryset.alias(**{alias: text}).filter(**{alias: value})
        return queryset


@dataclass(frozen=True)
class KpiRowFilter:
    """The same filters over published value rows (dicts with `period_ref` and `dimensions`)."""

    period_from: date | None
    period_to: date | None
    grain: str | None
    status: str | None
    dimensions: dict[str, str]

    def keeps(self, row: dict[str, Any]) -> bool:
        period = row["period"]
        if self.grain and period["level"] != self.grain:
            return False
        if self.period_from and (period["start"] is None or period["start"] < self.period_from):
            return False
        if self.period_to and (period["end"] is None or period["end"] > self.period_to):
            return False
        if self.status and row["status"] != self.status:
            return False
        dims = row["dimensions"] or {}
        return all(name in dims and as_text(dims[name]) == wanted for name, wanted in self.dimensions.items())
