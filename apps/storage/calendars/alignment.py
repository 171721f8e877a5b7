"""Alignment: which period holds a date, the period before, the same period last year, and how the
periods of two calendars overlap (so a KPI can be compared across calendars).

Reads only; everything goes through the period table (indexed by (calendar, level, start) and
(calendar, level, index)), so each answer costs one or two index lookups.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import Q

from apps.storage.calendars.choices import LEVEL_ORDER, CalendarKindChoices
from apps.storage.calendars.models import Calendar, CalendarPeriod

MAX_OVERLAP_DAYS = 3660  # ten years of days per overlap table


def _check_level(level: str, name: str = "level") -> None:
    if level not in LEVEL_ORDER:
        raise ValidationError({name: [f"One of {', '.join(LEVEL_ORDER)}."]})


def period_for(calendar: Calendar, day: date, level: str) -> CalendarPeriod | None:
    """The period of `level` holding `day`, or None when the calendar has no row for it (not generated)."""
    _check_level(level)
    period = (
        CalendarPeriod.objects.filter(calendar=calendar, level=level, start__lte=day)
        .order_by("-start")
        .select_related("calendar")
        .first()
    )
    return period if period is not None and period.end >= day else None


def periods_of_day(calendar: Calendar, day: date) -> dict[str, CalendarPeriod | None]:
    """Every level's period holding `day`, from its day row (two queries); None for levels the calendar lacks."""
    found: dict[str, CalendarPeriod | None] = dict.fromkeys(reversed(LEVEL_ORDER))
    row = CalendarPeriod.objects.filter(calendar=calendar, level="day", start=day).first()
    if row is None:
        return found
    found["day"] = row
    wanted = Q(level="year", index=row.fiscal_year)
    for level in ("week", "period", "quarter", "half"):
        index = getattr(row, f"{level}_index")
        if index is not None:
            wanted |= Q(level=level, index=index)
    for period in CalendarPeriod.objects.filter(wanted, calendar=calendar):
        found[period.level] = period
    return found


def previous_period(period: CalendarPeriod) -> CalendarPeriod | None:
    """The period of the same level just before (index − 1), or None when it is not generated."""
    return CalendarPeriod.objects.filter(calendar_id=period.calendar_id, level=period.level,
                                         index=period.index - 1).first()  # fmt: skip


def next_period(period: CalendarPeriod) -> CalendarPeriod | None:
    return CalendarPeriod.objects.filter(calendar_id=period.calendar_id, level=period.level,
                                         index=period.index + 1).first()  # fmt: skip


@dataclass(frozen=True)
class Comparison:
    """A period with the ones it is compared to; `note` says why a counterpart is missing."""

    period: CalendarPeriod
    previous: CalendarPeriod | None
    same_period_last_year: CalendarPeriod | None
    note: str = ""


def same_period_last_year(period: CalendarPeriod) -> CalendarPeriod | None:
    """The period with the same number in the previous fiscal year (week 12 ↔ week 12).

    None when there is none: a 53rd week (or a custom year's extra period) has no counterpart
    in a shorter year — NRF restates the 53-week year instead, others exclude or pro-rate
    week 53; `compare_period` says which case applies. Gregorian days match by date (29 Feb
    has none); other calendars' days by their number in the fiscal year (same weekday).
    """
    return compare_period(period).same_period_last_year


def compare_period(period: CalendarPeriod) -> Comparison:
    """The previous period and the same period last year, with a note when one is missing."""
    previous = previous_period(period)
    rows = CalendarPeriod.objects.filter(calendar_id=period.calendar_id, level=period.level)
    last_year = period.fiscal_year - 1
    if period.level == "year":
        match = rows.filter(index=period.index - 1).first()
    elif period.level == "day" and period.calendar.kind == CalendarKindChoices.GREGORIAN:
        if (period.start.month, period.start.day) == (2, 29):
            return Comparison(period, previous, None, f"{period.label} is 29 February: no such day the year before.")
        match = rows.filter(start=period.start.replace(year=period.start.year - 1)).first()
    else:
        match = rows.filter(fiscal_year=last_year, number=period.number).first()
    note = ""
    if match is None:
        if not rows.filter(fiscal_year=last_year).exists():
            note = f"FY{last_year} is not generated in this calendar."
        else:
            count = rows.filter(fiscal_year=last_year).count()
            note = (
                f"{period.label} is {period.level} {period.number} of its year; FY{last_year} has {count} "
                f"{period.level}s, so it has no counterpart (restate, exclude or pro-rate it)."
            )
    return Comparison(period, previous, match, note)


@dataclass(frozen=True)
class Overlap:
    """How much of period `a` falls in period `b`: `days` in common; `weight_of_a` = days / days of a."""

    period_a: Any
    period_b: Any
    days: int

    @property
    def weight_of_a(self) -> float:
        return self.days / _days(self.period_a)

    @property
    def weight_of_b(self) -> float:
        return self.days / _days(self.period_b)


def _days(period: Any) -> int:
    return (period.end - period.start).days + 1


def overlap(period_a: Any, period_b: Any) -> Overlap:
    """Days the two periods share (0 when disjoint); works for any objects with start and end."""
    first, last = max(period_a.start, period_b.start), min(period_a.end, period_b.end)
    return Overlap(period_a, period_b, max((last - first).days + 1, 0))


def overlaps(
    calendar_a: Calendar, level_a: str, calendar_b: Calendar, level_b: str, start: date, end: date
) -> list[Overlap]:
    """For each period of `level_a` in calendar a meeting [start, end], the periods of `level_b` in
    calendar b it overlaps, with the days in common and the share of a's days (whole periods, not
    clipped to the range), so that a value of a can be spread over b by `weight_of_a`.

    Where b's table covers a's period the weights of one a period sum to 1. Two sorted
    queries and one merge pass: linear in the rows.
    """
    _check_level(level_a, "level_a")
    _check_level(level_b, "level_b")
    if start > end:
        raise ValidationError({"to": [f"The range ends ({end}) before it starts ({start})."]})
    if (end - start).days + 1 > MAX_OVERLAP_DAYS:
        raise ValidationError({"to": [f"At most {MAX_OVERLAP_DAYS} days at a time."]})
    rows_a = list(
        CalendarPeriod.objects.filter(calendar=calendar_a, level=level_a, start__lte=end, end__gte=start).order_by(
            "start"
        )
    )
    if not rows_a:
        return []
    rows_b = list(
        CalendarPeriod.objects.filter(
            calendar=calendar_b, level=level_b, start__lte=rows_a[-1].end, end__gte=rows_a[0].start
        ).order_by("start")
    )
    result: list[Overlap] = []
    j = 0
    for a in rows_a:
        while j < len(rows_b) and rows_b[j].end < a.start:
            j += 1
        k = j
        while k < len(rows_b) and rows_b[k].start <= a.end:
            result.append(overlap(a, rows_b[k]))
            k += 1
    return result
