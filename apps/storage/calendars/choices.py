"""Choices and constants of calendars and their periods."""

from __future__ import annotations

from django.db import models


class CalendarKindChoices(models.TextChoices):
    GREGORIAN = "gregorian", "Gregorian months (any fiscal start month)"
    ISO_WEEK = "iso_week", "ISO 8601 weeks"
    RETAIL_445 = "retail_445", "Retail 4-4-5 (52/53 weeks)"
    RETAIL_454 = "retail_454", "Retail 4-5-4 (52/53 weeks, NRF)"
    RETAIL_544 = "retail_544", "Retail 5-4-4 (52/53 weeks)"
    CUSTOM = "custom", "Custom period list"


RETAIL_KINDS = frozenset(
    {CalendarKindChoices.RETAIL_445, CalendarKindChoices.RETAIL_454, CalendarKindChoices.RETAIL_544}
)


class PeriodLevelChoices(models.TextChoices):
    DAY = "day", "Day"
    WEEK = "week", "Week"
    PERIOD = "period", "Period (fiscal month)"
    QUARTER = "quarter", "Quarter"
    HALF = "half", "Half year"
    YEAR = "year", "Year"


class YearEndRuleChoices(models.TextChoices):
    LAST = "last", "Last given weekday of the year-end month"
    NEAREST = "nearest", "Given weekday nearest the end of the year-end month"


class Week53PlacementChoices(models.TextChoices):
    LAST_MONTH = "last_month", "Last fiscal month of Q4 (4-4-6)"
    FIRST_MONTH = "first_month", "First fiscal month of Q1"


class YearNamingChoices(models.TextChoices):
    END = "end", "After the calendar year the fiscal year ends in"
    START = "start", "After the calendar year the fiscal year starts in (NRF)"


class PeriodStateChoices(models.TextChoices):
    OPEN = "open", "Open"
    SOFT_CLOSED = "soft_closed", "Soft-closed"
    CLOSED = "closed", "Closed"


class WeekdayChoices(models.IntegerChoices):
    MONDAY = 0, "Monday"
    TUESDAY = 1, "Tuesday"
    WEDNESDAY = 2, "Wednesday"
    THURSDAY = 3, "Thursday"
    FRIDAY = 4, "Friday"
    SATURDAY = 5, "Saturday"
    SUNDAY = 6, "Sunday"


# Levels from the finest to the coarsest; a period row carries the indexes of every coarser level.
LEVEL_ORDER = ("day", "week", "period", "quarter", "half", "year")
# Levels a tenant may close (a day is closed with the period that holds it).
CLOSABLE_LEVELS = ("week", "period", "quarter", "half", "year")
