"""Calendar reads other code may use: a tenant's calendars and default, period states, bucketing."""

from __future__ import annotations

from datetime import date
from typing import Any

from django.db.models import Case, Exists, IntegerField, OuterRef, QuerySet, Subquery, Value, When
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


# closed > soft_closed > open: the effective state of a period is the strongest of its holders'.
STATE_RANK = Case(
    When(state=PeriodStateChoices.CLOSED, then=Value(2)),
    When(state=PeriodStateChoices.SOFT_CLOSED, then=Value(1)),
    default=Value(0),
    output_field=IntegerField(),
)


def calendar_list(*, tenant: Any) -> QuerySet[Calendar]:
    """The tenant's calendars and the platform calendars."""
    return Calendar.objects.for_tenant(tenant)


def calendar_default(*, tenant: Any) -> Calendar | None:
    """The tenant's default calendar, else the platform default, else None."""
    defaults = {c.tenant_id: c for c in Calendar.objects.for_tenant(tenant).filter(is_default=True)}
    return defaults.get(getattr(tenant, "pk", None)) or defaults.get(None)


def period_state_of(*, tenant: Any, period: CalendarPeriod) -> str:
    """open, soft_closed or closed: the tenant's own state of the period (no row = open).

    A period can be open on its own and still closed through a period holding it (a month of a
    closed quarter): `effective_state_of` and `with_state` answer that.
    """
    state = PeriodState.objects.filter(tenant=tenant, period=period).values_list("state", flat=True).first()
    return state or PeriodStateChoices.OPEN


def _frozen_holders(*, tenant: Any, calendar: Any, start: Any, end: Any) -> QuerySet[PeriodState]:
    """The tenant's soft-closed and closed states of periods of `calendar` holding every day of start..end
    (the period itself included), strongest first. `calendar`, `start` and `end` may be OuterRefs."""
    return (
        PeriodState.objects.filter(tenant=tenant, period__calendar_id=calendar, period__start__lte=start,
                                   period__end__gte=end)
        .exclude(state=PeriodStateChoices.OPEN)
        .annotate(rank=STATE_RANK)
        .order_by("-rank")
    )  # fmt: skip


def effective_state_of(*, tenant: Any, period: CalendarPeriod) -> str:
    """The strongest state of the period and of every period of its calendar holding it, for the tenant:
    closed when it or a holder (its quarter, half, year, or a period of the same days) is closed,
    else soft_closed likewise, else open. Days are closed with their periods this way."""
    state = (
        _frozen_holders(tenant=tenant, calendar=period.calendar_id, start=period.start, end=period.end)
        .values_list("state", flat=True)
        .first()
    )
    return state or PeriodStateChoices.OPEN


def period_is_closed(*, tenant: Any, period: CalendarPeriod) -> bool:
    """True when the tenant closed the period or a period holding it (one indexed query)."""
    return effective_state_of(tenant=tenant, period=period) == PeriodStateChoices.CLOSED


def with_state(queryset: QuerySet[CalendarPeriod], *, tenant: Any) -> QuerySet[CalendarPeriod]:
    """Annotate each period with `state`, its effective state for the tenant (`effective_state_of`), in
    one correlated subquery: no extra query per row."""
    states = _frozen_holders(
        tenant=tenant, calendar=OuterRef("calendar_id"), start=OuterRef("start"), end=OuterRef("end")
    ).values("state")[:1]
    return queryset.annotate(state=Coalesce(Subquery(states), Value(PeriodStateChoices.OPEN)))


def closed_periods(*, tenant: Any, calendar: Calendar, soft: bool = False) -> QuerySet[CalendarPeriod]:
    """The periods of `calendar` the tenant has closed itself (and soft-closed, with soft=True), each
    annotated with its own `state`; the periods they hold are not listed."""
    states = [PeriodStateChoices.CLOSED, PeriodStateChoices.SOFT_CLOSED] if soft else [PeriodStateChoices.CLOSED]
    own = PeriodState.objects.filter(tenant=tenant, period__calendar=calendar, state__in=states)
    return CalendarPeriod.objects.filter(pk__in=own.values("period_id")).annotate(
        state=Subquery(own.filter(period=OuterRef("pk")).values("state")[:1])
    )


def date_is_closed(*, tenant: Any, calendar: Calendar, day: date) -> bool:
    """True when a period of any level holding `day` is closed for the tenant (late data → restatement).

    One EXISTS over the tenant's period states joined to their periods; no Python loop."""
    return PeriodState.objects.filter(
        tenant=tenant, state=PeriodStateChoices.CLOSED, period__calendar=calendar, period__start__lte=day,
        period__end__gte=day,
    ).exists()  # fmt: skip


def with_closed(
    queryset: QuerySet[Any], *, tenant: Any, calendar: Calendar, date_field: str, tzinfo: Any = None
) -> QuerySet[Any]:
    """Annotate rows with `in_closed_period`: whether the tenant has closed a period of `calendar` holding
    the row's date (a date-time is cut to its date in `tzinfo`, default the current time zone).

    Set-based form of `date_is_closed`, e.g. the GDPs of a batch that land in closed periods:
    `with_closed(gdps, tenant=t, calendar=c, date_field="observed_at").filter(in_closed_period=True)`.
    """
    queryset, date_field = _as_date(queryset, date_field, tzinfo)
    closed = PeriodState.objects.filter(
        tenant=tenant, state=PeriodStateChoices.CLOSED, period__calendar=calendar,
        period__start__lte=OuterRef(date_field), period__end__gte=OuterRef(date_field),
    )  # fmt: skip
    return queryset.annotate(in_closed_period=Exists(closed))


def _as_date(queryset: QuerySet[Any], date_field: str, tzinfo: Any) -> tuple[QuerySet[Any], str]:
    field = queryset.model._meta.get_field(date_field)
    if field.get_internal_type() == "DateTimeField":
        alias = f"_{date_field}_day"
        if alias not in queryset.query.annotations:  # with_buckets and with_closed on one queryset
            queryset = queryset.annotate(**{alias: TruncDate(date_field, tzinfo=tzinfo)})
        return queryset, alias
    return queryset, date_field


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
    queryset, date_field = _as_date(queryset, date_field, tzinfo)
    day_rows = CalendarPeriod.objects.filter(calendar=calendar, level="day", start=OuterRef(date_field))
    return queryset.annotate(
        bucket_index=Subquery(day_rows.values(index_column)[:1]),
        bucket_label=Subquery(day_rows.values(label_column)[:1]),
    )
