"""Calendars, their period tables, and the close state of periods per tenant.

A KPI buckets a date with one join: every day of a calendar's generated years has a `day`
row that carries the index and label of its week, period, quarter, half and year, so

    JOIN storage_calendarperiod d
      ON d.calendar_id = %(calendar)s AND d.level = 'day' AND d.start = <the fact's date>

gives every bucket of the fact at once (GROUP BY d.period_index, d.period_label, …).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from apps.kernel.models import TenantOwnedModel, TimeStampedModel
from apps.storage.calendars.choices import (
    CalendarKindChoices,
    PeriodLevelChoices,
    PeriodStateChoices,
    Week53PlacementChoices,
    WeekdayChoices,
    YearEndRuleChoices,
    YearNamingChoices,
)
from apps.storage.calendars.engine import LABEL_MAX_LENGTH, CalendarRules

MONTH_VALIDATORS = [MinValueValidator(1), MaxValueValidator(12)]


class CalendarQuerySet(models.QuerySet):
    def for_tenant(self, tenant: Any) -> CalendarQuerySet:
        """The tenant's own calendars and the platform-wide ones (read-only to tenants)."""
        if tenant is None:
            return self.none()
        return self.filter(models.Q(tenant=tenant) | models.Q(tenant__isnull=True))


class Calendar(TimeStampedModel):
    """A governed calendar: the rules that cut time into fiscal years, periods and weeks.

    No tenant = platform-wide: visible to every tenant, changed by superusers only. The
    rules are fixed once periods are generated (a changed rule would move closed periods);
    a different cut of time is a new calendar. `generated_from`..`generated_to` are the
    fiscal years whose rows exist, always one unbroken range.
    """

    tenant = models.ForeignKey("host.Tenant", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    key = models.SlugField(max_length=64, help_text="Unique within the tenant (or among platform calendars).")
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    kind = models.CharField(max_length=16, choices=CalendarKindChoices.choices)
    year_end_month = models.PositiveSmallIntegerField(
        default=12, validators=MONTH_VALIDATORS, help_text="Retail kinds: the month the fiscal year ends in (1-12)."
    )
    year_end_weekday = models.PositiveSmallIntegerField(
        default=WeekdayChoices.SATURDAY,
        choices=WeekdayChoices.choices,
        help_text="Retail kinds: the weekday it ends on.",
    )
    year_end_rule = models.CharField(max_length=8, choices=YearEndRuleChoices.choices, default=YearEndRuleChoices.LAST)
    week53_placement = models.CharField(
        max_length=16, choices=Week53PlacementChoices.choices, default=Week53PlacementChoices.LAST_MONTH
    )
    year_naming = models.CharField(max_length=8, choices=YearNamingChoices.choices, default=YearNamingChoices.END)
    fiscal_year_start_month = models.PositiveSmallIntegerField(
        default=1, validators=MONTH_VALIDATORS, help_text="Gregorian: the first month of the fiscal year (1 = January)."
    )
    custom_periods = models.JSONField(
        default=list, blank=True, help_text="Custom kind: [{label, start, end, level?, fiscal_year?}, …]."
    )
    generated_from = models.IntegerField(null=True, blank=True, editable=False)
    generated_to = models.IntegerField(null=True, blank=True, editable=False)
    is_default = models.BooleanField(default=False, help_text="The tenant's default calendar (one per tenant).")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", editable=False
    )

    objects = CalendarQuerySet.as_manager()

    class Meta:
        ordering = ["key"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "key"], condition=models.Q(tenant__isnull=False), name="storage_calendar_unique_key"
            ),
            models.UniqueConstraint(
                fields=["key"], condition=models.Q(tenant__isnull=True), name="storage_calendar_unique_platform_key"
            ),
            models.UniqueConstraint(
                fields=["tenant"],
                condition=models.Q(is_default=True, tenant__isnull=False),
                name="storage_calendar_one_default",
            ),
            models.UniqueConstraint(
                fields=["is_default"],
                condition=models.Q(is_default=True, tenant__isnull=True),
                name="storage_calendar_one_platform_default",
            ),
            models.CheckConstraint(
                condition=models.Q(
                    year_end_month__gte=1,
                    year_end_month__lte=12,
                    fiscal_year_start_month__gte=1,
                    fiscal_year_start_month__lte=12,
                    year_end_weekday__lte=6,
                ),
                name="storage_calendar_valid_months",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.key})" if self.tenant_id else f"{self.name} ({self.key}, platform)"

    @property
    def is_platform(self) -> bool:
        return self.tenant_id is None

    @property
    def rules(self) -> CalendarRules:
        return CalendarRules(
            kind=self.kind,
            year_end_month=self.year_end_month,
            year_end_weekday=self.year_end_weekday,
            year_end_rule=self.year_end_rule,
            week53_placement=self.week53_placement,
            year_naming=self.year_naming,
            fiscal_year_start_month=self.fiscal_year_start_month,
            custom_periods=tuple(self.custom_periods or ()),
        )


class CalendarPeriodQuerySet(models.QuerySet):
    def for_tenant(self, tenant: Any) -> CalendarPeriodQuerySet:
        """Periods of the tenant's calendars and of the platform calendars."""
        if tenant is None:
            return self.none()
        return self.filter(models.Q(calendar__tenant=tenant) | models.Q(calendar__tenant__isnull=True))

    def covering(self, day: Any) -> CalendarPeriodQuerySet:
        return self.filter(start__lte=day, end__gte=day)


class CalendarPeriod(models.Model):
    """One period of one level of a calendar (a day, week, fiscal month, quarter, half or year).

    Written only by `calendar_generate`. `index` runs along the level (previous = index − 1);
    the `*_index` / `*_label` columns name the enclosing periods (and the row's own level),
    which is what makes bucketing a join on the day row.
    """

    id = models.BigAutoField(primary_key=True)
    # Served by the (calendar, level, index) unique index, which starts with it.
    calendar = models.ForeignKey(Calendar, on_delete=models.CASCADE, related_name="periods", db_index=False)
    level = models.CharField(max_length=8, choices=PeriodLevelChoices.choices)
    start = models.DateField()
    end = models.DateField(help_text="Last day, inclusive.")
    label = models.CharField(max_length=LABEL_MAX_LENGTH)
    fiscal_year = models.IntegerField()
    number = models.PositiveSmallIntegerField(help_text="Within the fiscal year: week 1-53, period 1-12, …")
    index = models.IntegerField(help_text="Running ordinal per calendar and level; the previous period is index − 1.")
    year_label = models.CharField(max_length=LABEL_MAX_LENGTH)
    half_index = models.IntegerField(null=True, blank=True)
    half_label = models.CharField(max_length=LABEL_MAX_LENGTH, blank=True)
    quarter_index = models.IntegerField(null=True, blank=True)
    quarter_label = models.CharField(max_length=LABEL_MAX_LENGTH, blank=True)
    period_index = models.IntegerField(null=True, blank=True)
    period_label = models.CharField(max_length=LABEL_MAX_LENGTH, blank=True)
    week_index = models.IntegerField(null=True, blank=True)
    week_label = models.CharField(max_length=LABEL_MAX_LENGTH, blank=True)

    objects = CalendarPeriodQuerySet.as_manager()

    class Meta:
        ordering = ["calendar", "level", "start"]
        verbose_name = "calendar period"
        constraints = [
            models.UniqueConstraint(fields=["calendar", "level", "index"], name="storage_calperiod_unique_index"),
            models.CheckConstraint(condition=models.Q(start__lte=models.F("end")), name="storage_calperiod_ordered"),
        ]
        indexes = [
            models.Index(fields=["calendar", "level", "start"], name="storage_calperiod_by_start"),
            models.Index(fields=["calendar", "fiscal_year"], name="storage_calperiod_by_year"),
        ]

    def __str__(self) -> str:
        return f"{self.label} ({self.get_level_display().lower()}, {self.start}..{self.end})"

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1


class PeriodState(TenantOwnedModel):
    """Whether a tenant has closed a period: open → soft-closed → closed (no row = open).

    Per tenant, so tenants sharing a platform calendar close their books on their own. A
    closed period never reopens (late data goes through restatements) and never moves:
    regenerating its years is refused. Closing a period closes what it holds (a quarter's
    months, weeks and days: `selectors.effective_state_of`), whose own rows then stay as they
    are. Changed only by the period services, which publish `period.soft_closed` /
    `period.closed` / `period.reopened`.
    """

    period = models.ForeignKey(CalendarPeriod, on_delete=models.PROTECT, related_name="states")
    state = models.CharField(max_length=12, choices=PeriodStateChoices.choices, default=PeriodStateChoices.OPEN)
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", editable=False
    )
    changed_at = models.DateTimeField()
    reason = models.TextField(blank=True)

    class Meta:
        ordering = ["period__start"]
        constraints = [models.UniqueConstraint(fields=["tenant", "period"], name="storage_periodstate_once")]

    def __str__(self) -> str:
        return f"{self.period.label}: {self.get_state_display()}"
