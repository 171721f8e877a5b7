"""Calendar reads other code may use: a tenant's calendars and default, period states, bucketing."""

from __future__ import annotations

from datetime import date
from typing import Any

from django.db.models import OuterRef, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce, TruncDate

from apps.storage.calendars.choices import LEVEL_ORDER, PeriodStateChoices
from apps.storage.calendars.models import Calendar, CalendarPeriod, PeriodState

# level → the day-row columns naming a day's period of that level (index, label)
BUCKET_COLUMNS: dict[str, tuple[str, str]] = {
    "day": ("index", "label"),
    "week": ("week_index", "week_label"),
    "period": ("period_index", "period_label"),
    "quarter": ("quarter_index", "quarter_label"),
    "half": ("half_index", "half_label"),
    "year": ("fiscal_year", "year_label"),
}


def calendar_list(*, tenant: Any) -> QuerySet[Calendar]:
    """The tenant's calendars and the platform calendars."""
    return Calendar.objects.for_tenant(tenant)


def calendar_default(*, tenant: Any) -> Calendar | None:
    """The tenant's default calendar, else the platform default, else None."""
    defaults = {c.tenant_id: c for c in Calendar.objects.for_tenant(tenant).filter(is_default=True)}
    return defaults.get(getattr(tenant, "pk", None)) or defaults.get(None)


def period_state_of(*, tenant: Any, period: CalendarPeriod) -> str:
    """open, soft_closed or closed: the tenant's state of the period (no row = open)."""
    state = PeriodState.objects.filter(tenant=tenant, period=period).values_list("state", flat=True).first()
    return state or PeriodStateChoices.OPEN


def with_state(queryset: QuerySet[CalendarPeriod], *, tenant: Any) -> QuerySet[CalendarPeriod]:
    """Annotate each period with `state`, the tenant's state of it (one subquery, no extra queries)."""
    states = PeriodState.objects.filter(tenant=tenant, period=OuterRef("pk")).values("state")[:1]
    return queryset.annotate(state=Coalesce(Subquery(states), Value(PeriodStateChoices.OPEN)))


def closed_periods(*, tenant: Any, calendar: Calendar, soft: bool = False) -> QuerySet[CalendarPeriod]:
    """The periods of `calendar` the tenant has closed (and soft-closed, with soft=True)."""
    states = [PeriodStateChoices.CLOSED, PeriodStateChoices.SOFT_CLOSED] if soft else [PeriodStateChoices.CLOSED]
    return with_state(CalendarPeriod.objects.filter(calendar=calendar), tenant=tenant).filter(state__in=states)


def date_is_closed(*, tenant: Any, calendar: Calendar, day: date) -> bool:
    """True when a period of any level holding `day` is closed for the tenant (late data → restatement)."""
    return PeriodState.objects.filter(
        tenant=tenant, state=PeriodStateChoices.CLOSED, period__calendar=calendar, period__start__lte=day,
        period__end__gte=day,
    ).exists()  # fmt: skip


def with_buckets(
    queryset: QuerySet[Any], *, calendar: Calendar, date_field: str, level: str, tzinfo: Any = None
) -> QuerySet[Any]:
    """Annotate rows with `bucket_index` and `bucket_label`: the `level` period of `calendar` holding the
    row's date (a date-time field is cut to its date in `tzinfo`, default the current time zone).

    Portable ORM form of the day-row join; SQL can join the day row directly:
    `JOIN storage_calendarperiod d ON d.calendar_id = … AND d.level = 'day' AND d.start = <date>`.
    """
    if level not in LEVEL_ORDER:
        raise ValueError(f"unknown level {level!r}")
    index_column, label_column = BUCKET_COLUMNS[level]
    field = queryset.model._meta.get_field(date_field)
    if field.get_internal_type() == "DateTimeField":
        queryset = queryset.annotate(_bucket_day=TruncDate(date_field, tzinfo=tzinfo))
        date_field = "_bucket_day"
    day_rows = CalendarPeriod.objects.filter(calendar=calendar, level="day", start=OuterRef(date_field))
    return queryset.annotate(
        bucket_index=Subquery(day_rows.values(index_column)[:1]),
        bucket_label=Subquery(day_rows.values(label_column)[:1]),
    )
