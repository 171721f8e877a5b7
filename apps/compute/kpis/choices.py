"""Choices of KPI definitions, versions and targets."""

from __future__ import annotations

from django.db import models


class KpiKindChoices(models.TextChoices):
    SIMPLE = "simple", "Simple aggregation of a measure"
    RATIO = "ratio", "Ratio (numerator and denominator aggregated separately)"
    DERIVED = "derived", "Derived (arithmetic over other KPIs)"
    CUMULATIVE = "cumulative", "Cumulative (period-to-date or rolling)"


class AggregationChoices(models.TextChoices):
    SUM = "sum", "Sum"
    AVG = "avg", "Average"
    MIN = "min", "Minimum"
    MAX = "max", "Maximum"
    COUNT = "count", "Count of values"
    COUNT_DISTINCT = "count_distinct", "Count of distinct entities"
    LAST = "last", "Last value (each entity's latest in the period, summed)"


class CumulativeModeChoices(models.TextChoices):
    YEAR_TO_DATE = "year_to_date", "Fiscal year to date"
    HALF_TO_DATE = "half_to_date", "Fiscal half to date"
    QUARTER_TO_DATE = "quarter_to_date", "Fiscal quarter to date"
    ROLLING = "rolling", "Rolling N periods"


class GrainLevelChoices(models.TextChoices):
    """The calendar levels a KPI can be computed at (a subset of the period table's levels)."""

    WEEK = "week", "Week"
    PERIOD = "period", "Period (fiscal month)"
    QUARTER = "quarter", "Quarter"
    HALF = "half", "Half year"
    YEAR = "year", "Year"


class DirectionChoices(models.TextChoices):
    HIGHER_IS_BETTER = "higher", "Higher is better"
    LOWER_IS_BETTER = "lower", "Lower is better"


class DisplayFormatChoices(models.TextChoices):
    NUMBER = "number", "Number"
    PERCENT = "percent", "Percent"
    CURRENCY = "currency", "Currency"


class ToleranceKindChoices(models.TextChoices):
    ABSOLUTE = "absolute", "Absolute (in the KPI's unit)"
    PERCENT = "percent", "Percent of the target"


class TargetStatusChoices(models.TextChoices):
    DRAFT = "draft", "Draft"
    PROPOSED = "proposed", "Proposed"
    APPROVED = "approved", "Approved"
    RETIRED = "retired", "Retired"


# Aggregations a cumulative KPI may accumulate over a window (count distinct and last are not additive).
CUMULATIVE_AGGREGATIONS = frozenset(
    {AggregationChoices.SUM, AggregationChoices.COUNT, AggregationChoices.MIN, AggregationChoices.MAX,
     AggregationChoices.AVG}
)  # fmt: skip
# Aggregations a ratio's numerator or denominator may use.
RATIO_AGGREGATIONS = frozenset(set(AggregationChoices) - {AggregationChoices.LAST})
