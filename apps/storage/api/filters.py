"""Filters of the Golden Data Point reads, shared by the query API and the exports.

One FilterSet decides which rows a request means, whichever way they leave: the list
endpoint (`/api/v1/golden-data-points/`) and the exports (`/api/v1/exports/gdps/`) take
the same query parameters and so select the same rows.

Besides the declared filters:
- `dim.<name>=<value>` keeps the rows whose dimension `<name>` equals `<value>` (compared as
  text; repeat for several dimensions, all must match);
- the time axis: current versions by default ("latest"); `as_of=<ISO 8601>` what was
  believed at that moment; `history=true` every version.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from django import forms
from django.db import models
from django.forms.utils import ErrorList
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django_filters import rest_framework as django_filters
from django_filters.fields import IsoDateTimeField

from apps.storage.models import GoldenDataPoint

DIMENSION_PREFIX = "dim."
# A dimension name: letters, digits, `_` and `-`, and no `__` (that would be a nested ORM lookup).
DIMENSION_NAME = re.compile(r"^(?!.*__)[A-Za-z0-9][A-Za-z0-9_-]{0,99}$")
MAX_DIMENSION_FILTERS = 20


def in_utc_range(moment: datetime) -> datetime:
    """The moment, refused when it has no UTC equivalent (e.g. 0001-01-01T00:00+08:00 is in year 0):
    the database adapters convert to UTC and would fail on it."""
    try:
        moment.astimezone(UTC)
    except (OverflowError, ValueError):
        raise forms.ValidationError("Out of the supported date range (years 1 to 9999 in UTC).") from None
    return moment


class AsOfField(forms.CharField):
    def to_python(self, value: Any) -> datetime | None:
        value = super().to_python(value)
        if not value:
            return None
        try:
            moment = parse_datetime(value.replace(" ", "+")) if isinstance(value, str) else None
        except ValueError:  # well formed but impossible, e.g. month 13 or an offset of 24 hours
            moment = None
        if moment is None:
            raise forms.ValidationError("An ISO 8601 date-time, e.g. 2026-11-01T00:00:00Z.")
        if timezone.is_naive(moment):
            moment = timezone.make_aware(moment, UTC)
        return in_utc_range(moment)


class AsOfFilter(django_filters.Filter):
    field_class = AsOfField


class UtcIsoDateTimeField(IsoDateTimeField):
    def to_python(self, value: Any) -> datetime | None:
        moment = super().to_python(value)
        return None if moment is None else in_utc_range(moment)


class IsoDateTimeFilter(django_filters.IsoDateTimeFilter):
    """django-filter's ISO 8601 filter, refusing moments with no UTC equivalent (400, not 500)."""

    field_class = UtcIsoDateTimeField


class CharInFilter(django_filters.BaseInFilter, django_filters.CharFilter):
    pass


class GoldenDataPointFilter(django_filters.FilterSet):
    contract = django_filters.CharFilter(field_name="contract__key", help_text="The contract's key.")
    contract__key = django_filters.CharFilter(field_name="contract__key", help_text="Same as `contract`.")
    measure = django_filters.CharFilter(help_text="One measure (a contract field with the role 'measure').")
    measure__in = CharInFilter(field_name="measure", help_text="Several measures, comma-separated.")
    entity_key = django_filters.CharFilter(help_text="The entity key (its fields joined by '|').")
    batch = django_filters.NumberFilter(field_name="batch_id", help_text="Rows written by this ingestion batch.")
    superseded_by_batch = django_filters.NumberFilter(
        field_name="superseded_by_batch_id", help_text="Versions this batch superseded (with history=true)."
    )
    observed_at__gte = IsoDateTimeFilter(field_name="observed_at", lookup_expr="gte")
    observed_at__gt = IsoDateTimeFilter(field_name="observed_at", lookup_expr="gt")
    observed_at__lte = IsoDateTimeFilter(field_name="observed_at", lookup_expr="lte")
    observed_at__lt = IsoDateTimeFilter(field_name="observed_at", lookup_expr="lt")
    is_override = django_filters.BooleanFilter()
    as_of = AsOfFilter(method="_no_op", help_text="What was believed at this ISO 8601 moment (bitemporal).")
    history = django_filters.BooleanFilter(method="_no_op", help_text="Every version, not only the current ones.")

    class Meta:
        model = GoldenDataPoint
        fields: list[str] = []

    def _no_op(self, queryset: models.QuerySet, name: str, value: Any) -> models.QuerySet:
        return queryset  # applied together in filter_queryset: the time axis is one decision

    def is_valid(self) -> bool:
        valid = super().is_valid()
        dimensions = self.dimension_filters()
        problems = [name for name in dimensions if not DIMENSION_NAME.match(name)]
        if problems:
            self.errors[f"{DIMENSION_PREFIX}{problems[0]}"] = ErrorList(
                ["A dimension name: letters, digits, '_' and '-'."]
            )
            valid = False
        if len(dimensions) > MAX_DIMENSION_FILTERS:
            self.errors["dim"] = ErrorList([f"At most {MAX_DIMENSION_FILTERS} dimension filters."])
            valid = False
        cleaned = self.form.cleaned_data if hasattr(self.form, "cleaned_data") else {}
        if cleaned.get("as_of") and cleaned.get("history"):
            self.errors["history"] = ErrorList(["Give either as_of or history=true, not both."])
            valid = False
        return valid

    def dimension_filters(self) -> dict[str, str]:
        return {
            key[len(DIMENSION_PREFIX) :]: value
            for key, value in self.data.items()
            if isinstance(key, str) and key.startswith(DIMENSION_PREFIX)
        }

    def filter_queryset(self, queryset: models.QuerySet) -> models.QuerySet:
        queryset = super().filter_queryset(queryset)
        for name, value in sorted(self.dimension_filters().items()):
            queryset = queryset.filter(**{f"dimensions__{name}": value})
        return apply_time_axis(queryset, as_of=self.form.cleaned_data.get("as_of"),
                               history=bool(self.form.cleaned_data.get("history")))  # fmt: skip


def apply_time_axis(queryset: Any, *, as_of: datetime | None, history: bool) -> Any:
    """Current versions ("latest") unless `as_of` (a past belief) or `history` (every version)."""
    if as_of is not None:
        return queryset.as_of(as_of)
    if history:
        return queryset
    return queryset.current()
