"""Calendars API: calendars (the tenant's and the platform's), their periods, lookups, comparisons,
overlaps between calendars, and closing periods.

Routes stay flat (one lookup kwarg each): `/calendars/{id}/…` for a calendar and
`/calendar-periods/{id}/…` for a period. Platform calendars are listed and read by every
tenant; changing one is refused (403) unless the caller is a superuser.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from django.utils.dateparse import parse_date
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from apps.kernel.api.serializers import documented_variant
from apps.kernel.api.viewsets import TenantModelViewSet, TenantReadOnlyViewSet
from apps.storage.calendars import alignment, selectors, services
from apps.storage.calendars.choices import (
    LEVEL_ORDER,
    CalendarKindChoices,
    PeriodStateChoices,
    Week53PlacementChoices,
    WeekdayChoices,
    YearEndRuleChoices,
    YearNamingChoices,
)
from apps.storage.calendars.models import Calendar, CalendarPeriod


# --- serializers ------------------------------------------------------------------------------------
class CalendarSerializer(serializers.ModelSerializer):
    platform = serializers.BooleanField(source="is_platform", read_only=True)

    class Meta:
        model = Calendar
        fields = ("id", "key", "name", "description", "kind", "platform", "is_default", "year_end_month",
                  "year_end_weekday", "year_end_rule", "week53_placement", "year_naming", "fiscal_year_start_month",
                  "custom_periods", "generated_from", "generated_to", "created_at", "updated_at")  # fmt: skip
        read_only_fields = fields


class CustomPeriodSerializer(serializers.Serializer):
    label = serializers.CharField(max_length=40)
    start = serializers.DateField()
    end = serializers.DateField()
    level = serializers.ChoiceField(choices=["week", "period", "quarter", "half", "year"], required=False)
    fiscal_year = serializers.IntegerField(required=False)


class CalendarWriteSerializer(serializers.Serializer):
    key = serializers.SlugField(max_length=64)
    name = serializers.CharField(max_length=200)
    description = serializers.CharField(required=False, allow_blank=True)
    kind = serializers.ChoiceField(choices=CalendarKindChoices.choices)
    platform = serializers.BooleanField(
        required=False, default=False, help_text="Create a platform calendar shared by every tenant (superusers)."
    )
    is_default = serializers.BooleanField(required=False)
    year_end_month = serializers.IntegerField(min_value=1, max_value=12, required=False)
    year_end_weekday = serializers.ChoiceField(choices=WeekdayChoices.choices, required=False)
    year_end_rule = serializers.ChoiceField(choices=YearEndRuleChoices.choices, required=False)
    week53_placement = serializers.ChoiceField(choices=Week53PlacementChoices.choices, required=False)
    year_naming = serializers.ChoiceField(choices=YearNamingChoices.choices, required=False)
    fiscal_year_start_month = serializers.IntegerField(min_value=1, max_value=12, required=False)
    custom_periods = CustomPeriodSerializer(many=True, required=False)


class CalendarGenerateSerializer(serializers.Serializer):
    from_year = serializers.IntegerField(required=False, help_text="First fiscal year (custom: default the list's).")
    to_year = serializers.IntegerField(required=False, help_text="Last fiscal year, included.")


class GenerationSerializer(serializers.Serializer):
    calendar = CalendarSerializer()
    from_year = serializers.IntegerField()
    to_year = serializers.IntegerField()
    created = serializers.IntegerField()
    updated = serializers.IntegerField()
    deleted = serializers.IntegerField()
    unchanged = serializers.IntegerField()


class CalendarPeriodSerializer(serializers.ModelSerializer):
    days = serializers.IntegerField(read_only=True)
    state = serializers.SerializerMethodField(
        help_text="The tenant's state of the period: open, soft_closed or closed, the strongest of its own and of "
        "the periods holding it (a day or month of a closed quarter is closed)."
    )

    class Meta:
        model = CalendarPeriod
        fields = ("id", "calendar", "level", "label", "start", "end", "days", "fiscal_year", "number", "index",
                  "year_label", "half_index", "half_label", "quarter_index", "quarter_label", "period_index",
                  "period_label", "week_index", "week_label", "state")  # fmt: skip
        read_only_fields = fields

    def get_state(self, period: CalendarPeriod) -> str:
        return getattr(period, "state", None) or "open"


class PeriodBriefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    level = serializers.CharField()
    label = serializers.CharField()
    start = serializers.DateField()
    end = serializers.DateField()
    fiscal_year = serializers.IntegerField()
    number = serializers.IntegerField()
    index = serializers.IntegerField()


class LookupSerializer(serializers.Serializer):
    date = serializers.DateField()
    day = PeriodBriefSerializer(allow_null=True)
    week = PeriodBriefSerializer(allow_null=True)
    period = PeriodBriefSerializer(allow_null=True)
    quarter = PeriodBriefSerializer(allow_null=True)
    half = PeriodBriefSerializer(allow_null=True)
    year = PeriodBriefSerializer(allow_null=True)


class ComparisonSerializer(serializers.Serializer):
    period = PeriodBriefSerializer()
    previous = PeriodBriefSerializer(allow_null=True)
    same_period_last_year = PeriodBriefSerializer(allow_null=True)
    note = serializers.CharField(help_text="Why a counterpart is missing (e.g. a 53rd week), else empty.")


class OverlapRowSerializer(serializers.Serializer):
    period_a = PeriodBriefSerializer()
    period_b = PeriodBriefSerializer()
    days = serializers.IntegerField(help_text="Days the two periods share.")
    weight_of_a = serializers.FloatField(help_text="Share of period a's days that fall in period b.")
    weight_of_b = serializers.FloatField(help_text="Share of period b's days that fall in period a.")


class OverlapTableSerializer(serializers.Serializer):
    a = serializers.IntegerField()
    b = serializers.IntegerField()
    level_a = serializers.CharField()
    level_b = serializers.CharField()
    start = serializers.DateField()
    end = serializers.DateField()
    rows = OverlapRowSerializer(many=True)


class PeriodStateActionSerializer(serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, default="")


# --- query parameters -------------------------------------------------------------------------------
def _date_param(request: Request, name: str, *, required: bool = False) -> date | None:
    raw = request.query_params.get(name)
    if not raw:
        if required:
            raise serializers.ValidationError({name: ["This parameter is required (YYYY-MM-DD)."]})
        return None
    try:
        value = parse_date(raw)
    except ValueError:
        value = None
    if value is None:
        raise serializers.ValidationError({name: [f"'{raw}' is not a date (YYYY-MM-DD)."]})
    return value


def _range_params(request: Request, *, required: bool = False) -> tuple[date | None, date | None]:
    start, end = _date_param(request, "from", required=required), _date_param(request, "to", required=required)
    if start and end and start > end:
        raise serializers.ValidationError({"to": [f"The range ends ({end}) before it starts ({start})."]})
    return start, end


def _level_param(request: Request, name: str = "level", default: str | None = None) -> str | None:
    level = request.query_params.get(name) or default
    if level is not None and level not in LEVEL_ORDER:
        raise serializers.ValidationError({name: [f"One of {', '.join(LEVEL_ORDER)}."]})
    return level


def _int_param(request: Request, name: str, *, required: bool = False) -> int | None:
    raw = request.query_params.get(name)
    if not raw:
        if required:
            raise serializers.ValidationError({name: ["This parameter is required."]})
        return None
    try:
        return int(raw)
    except ValueError:
        raise serializers.ValidationError({name: [f"'{raw}' is not a whole number."]}) from None


PERIOD_FILTERS = [
    OpenApiParameter("level", str, enum=list(LEVEL_ORDER), description="Only periods of this level."),
    OpenApiParameter("from", OpenApiTypes.DATE, description="Only periods ending on or after this date (YYYY-MM-DD)."),
    OpenApiParameter("to", OpenApiTypes.DATE, description="Only periods starting on or before this date (YYYY-MM-DD)."),
    OpenApiParameter("fiscal_year", int, description="Only periods of this fiscal year."),
    OpenApiParameter("label", str, description="Only the periods with this label, e.g. FY2026-P03."),
    OpenApiParameter("state", str, enum=list(PeriodStateChoices.values),
                     description="Only periods in this state for the tenant (effective: a closed quarter's months "
                                 "are closed)."),
]  # fmt: skip


def _filter_periods(request: Request, queryset: Any) -> Any:
    level = _level_param(request)
    start, end = _range_params(request)
    fiscal_year = _int_param(request, "fiscal_year")
    label, state = request.query_params.get("label"), request.query_params.get("state")
    if state and state not in PeriodStateChoices.values:
        raise serializers.ValidationError({"state": [f"One of {', '.join(PeriodStateChoices.values)}."]})
    if label:
        queryset = queryset.filter(label=label)
    if state:
        queryset = queryset.filter(state=state)
    if level:
        queryset = queryset.filter(level=level)
    if start:
        queryset = queryset.filter(end__gte=start)
    if end:
        queryset = queryset.filter(start__lte=end)
    if fiscal_year is not None:
        queryset = queryset.filter(fiscal_year=fiscal_year)
    return queryset


# --- viewsets ---------------------------------------------------------------------------------------
class CalendarViewSet(mixins.UpdateModelMixin, TenantModelViewSet):
    """The tenant's calendars and the platform calendars (read-only to tenants).

    Creating, changing and generating need the write scope; a platform calendar only a superuser.
    """

    queryset = Calendar.objects.all()
    serializer_class = CalendarSerializer
    http_method_names = ["get", "post", "patch", "head", "options"]
    filterset_fields = ("key", "kind", "is_default")
    extra_error_codes = (409,)

    @extend_schema(request=CalendarWriteSerializer, responses={201: CalendarSerializer})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        payload = CalendarWriteSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = dict(payload.validated_data)
        tenant = None if data.pop("platform", False) else self.tenant_context.tenant
        calendar = services.calendar_create(actor=request.user, tenant=tenant, **_custom_rows(data))
        return Response(CalendarSerializer(calendar).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        request=documented_variant(CalendarWriteSerializer, "CalendarUpdateSerializer", exclude=("key", "platform")),
        responses={200: CalendarSerializer},
    )
    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        calendar = self.get_object()
        payload = CalendarWriteSerializer(data=request.data, partial=True)
        payload.is_valid(raise_exception=True)
        data = dict(payload.validated_data)
        if "key" in data or "platform" in data:
            raise serializers.ValidationError({"key" if "key" in data else "platform": ["This cannot change."]})
        calendar = services.calendar_update(actor=request.user, calendar=calendar, **_custom_rows(data))
        return Response(CalendarSerializer(calendar).data)

    @extend_schema(request=CalendarGenerateSerializer, responses={200: GenerationSerializer})
    @action(detail=True, methods=["post"])
    def generate(self, request: Request, pk: str | None = None) -> Response:
        """Write the period rows of fiscal years from_year..to_year (idempotent); 409 over a closed period."""
        calendar = self.get_object()
        payload = CalendarGenerateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        result = services.calendar_generate(actor=request.user, calendar=calendar, **payload.validated_data)
        return Response(GenerationSerializer(result).data)

    @extend_schema(parameters=PERIOD_FILTERS, responses={200: CalendarPeriodSerializer(many=True)})
    @action(detail=True, methods=["get"])
    def periods(self, request: Request, pk: str | None = None) -> Response:
        """The calendar's periods, paginated, by level and date range."""
        calendar = self.get_object()
        queryset = CalendarPeriod.objects.filter(calendar=calendar).order_by("level", "start")
        queryset = _filter_periods(request, selectors.with_state(queryset, tenant=self.tenant_context.tenant))
        page = self.paginate_queryset(queryset)
        return self.get_paginated_response(CalendarPeriodSerializer(page, many=True).data)

    @extend_schema(
        parameters=[
            OpenApiParameter("date", OpenApiTypes.DATE, required=True, description="The day to look up (YYYY-MM-DD).")
        ],
        responses={200: LookupSerializer},
    )
    @action(detail=True, methods=["get"])
    def lookup(self, request: Request, pk: str | None = None) -> Response:
        """The day's week, period, quarter, half and year (null for levels the calendar lacks)."""
        calendar = self.get_object()
        day = _date_param(request, "date", required=True)
        found = alignment.periods_of_day(calendar, day)
        return Response(LookupSerializer({"date": day, **found}).data)

    @extend_schema(
        parameters=[
            OpenApiParameter("b", int, required=True, description="The calendar to compare with (its id)."),
            OpenApiParameter("level_a", str, enum=list(LEVEL_ORDER), description="Level in this calendar (period)."),
            OpenApiParameter("level_b", str, enum=list(LEVEL_ORDER), description="Level in calendar b (period)."),
            OpenApiParameter("from", OpenApiTypes.DATE, required=True, description="First day (YYYY-MM-DD)."),
            OpenApiParameter(
                "to", OpenApiTypes.DATE, required=True, description="Last day (YYYY-MM-DD), at most ten years on."
            ),
        ],
        responses={200: OverlapTableSerializer},
    )
    @action(detail=True, methods=["get"])
    def overlap(self, request: Request, pk: str | None = None) -> Response:
        """How this calendar's periods overlap calendar b's: days in common and the share of each period of
        this calendar that falls in each period of b."""
        calendar_a = self.get_object()
        b = _int_param(request, "b", required=True)
        calendar_b = self.get_queryset().filter(pk=b).first()
        if calendar_b is None:
            raise serializers.ValidationError({"b": [f"No calendar {b} is visible to this tenant."]})
        level_a = _level_param(request, "level_a", "period")
        level_b = _level_param(request, "level_b", "period")
        start, end = _range_params(request, required=True)
        rows = alignment.overlaps(calendar_a, level_a, calendar_b, level_b, start, end)
        table = {"a": calendar_a.pk, "b": calendar_b.pk, "level_a": level_a, "level_b": level_b, "start": start,
                 "end": end, "rows": [{"period_a": r.period_a, "period_b": r.period_b, "days": r.days,
                                       "weight_of_a": round(r.weight_of_a, 9), "weight_of_b": round(r.weight_of_b, 9)} for r in rows]}  # fmt: skip
        return Response(OverlapTableSerializer(table).data)


def _custom_rows(data: dict[str, Any]) -> dict[str, Any]:
    if data.get("custom_periods") is not None:
        data["custom_periods"] = [dict(row) for row in data["custom_periods"]]
    return data


class CalendarPeriodViewSet(TenantReadOnlyViewSet):
    """Periods of the tenant's and the platform's calendars, with the tenant's close state.

    Filter with `calendar`, `level`, `fiscal_year`, `from` and `to`. Soft-closing, closing and
    reopening (soft-closed only) need the admin scope and act for the tenant of the request.
    """

    queryset = CalendarPeriod.objects.all()
    serializer_class = CalendarPeriodSerializer
    scope_map = {"close": "admin", "soft_close": "admin", "reopen": "admin"}
    extra_error_codes = (409,)

    def get_queryset(self) -> Any:
        queryset = super().get_queryset().order_by("calendar_id", "level", "start")
        if getattr(self, "swagger_fake_view", False):
            return queryset
        queryset = selectors.with_state(queryset, tenant=self.tenant_context.tenant)
        if self.action != "list":
            return queryset
        calendar = _int_param(self.request, "calendar")
        if calendar is not None:
            queryset = queryset.filter(calendar_id=calendar)
        return _filter_periods(self.request, queryset)

    @extend_schema(parameters=[OpenApiParameter("calendar", int, description="Only this calendar's periods."),
                               *PERIOD_FILTERS])  # fmt: skip
    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().list(request, *args, **kwargs)

    @extend_schema(responses={200: ComparisonSerializer})
    @action(detail=True, methods=["get"])
    def compare(self, request: Request, pk: str | None = None) -> Response:
        """The previous period and the same period last year; `note` says why one is missing (a 53rd week)."""
        comparison = alignment.compare_period(self.get_object())
        return Response(ComparisonSerializer(comparison).data)

    def _transition(self, request: Request, service: Any) -> Response:
        period = self.get_object()
        payload = PeriodStateActionSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        service(actor=request.user, tenant=self.tenant_context.tenant, period=period, **payload.validated_data)
        return Response(self.get_serializer(self.get_queryset().get(pk=period.pk)).data)

    @extend_schema(request=PeriodStateActionSerializer, responses={200: CalendarPeriodSerializer})
    @action(detail=True, methods=["post"], url_path="soft-close")
    def soft_close(self, request: Request, pk: str | None = None) -> Response:
        """Open → soft-closed (can still be reopened)."""
        return self._transition(request, services.period_soft_close)

    @extend_schema(request=PeriodStateActionSerializer, responses={200: CalendarPeriodSerializer})
    @action(detail=True, methods=["post"])
    def close(self, request: Request, pk: str | None = None) -> Response:
        """Open or soft-closed → closed, for good; publishes `period.closed`."""
        return self._transition(request, services.period_close)

    @extend_schema(request=PeriodStateActionSerializer, responses={200: CalendarPeriodSerializer})
    @action(detail=True, methods=["post"])
    def reopen(self, request: Request, pk: str | None = None) -> Response:
        """Soft-closed → open; a closed period answers 409."""
        return self._transition(request, services.period_reopen)
