"""KPI values: one computed value per KPI version, period and dimension set, and their set-based writes.

Compute decides *what* a KPI is (apps/compute/kpis); storage keeps the values and owns every write
to them. Compute hands a SELECT that yields the aggregated rows; `kpi_values_replace` turns it into
one DELETE and one INSERT … SELECT for the periods being recomputed. `kpi_values_apply_targets`
then stamps targets, variance, attainment, status and the streak of consecutive misses, set-based,
and reports which values changed status.

Storage never imports compute: the KPI is referenced by the version's foreign key (a string) and
by its key, and targets reach this module as plain `TargetSpec`s.
"""

# ruff: noqa: S608  (SQL is assembled from constant table and column names; every value is a parameter)
from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.db import connection, models, transaction

from apps.kernel.models import TenantQuerySet

TABLE = "storage_kpivalue"
# What the SELECT given to kpi_values_replace must yield, in this order.
SELECT_COLUMNS = (
    "period_id", "period_index", "dimensions", "dimensions_key", "actual", "numerator", "denominator", "gdp_count",
)  # fmt: skip


class KpiStatusChoices(models.TextChoices):
    """A value's standing against its target (none: no target applies, or no actual)."""

    GREEN = "green", "Green"
    AMBER = "amber", "Amber"
    RED = "red", "Red"
    NONE = "none", "No target"


MISS_STATUSES = (KpiStatusChoices.AMBER, KpiStatusChoices.RED)
NUM = "CAST(%s AS NUMERIC)"


class KpiValue(models.Model):
    """A KPI's value for one period of its grain and one combination of its dimensions.

    `actual` is the computed value (for a ratio: `numerator` / `denominator`, each aggregated over
    the group first); `gdp_count` how many Golden Data Points it read. Target fields are stamped from
    the most specific approved target that applies: `variance` = actual − target, `attainment` in %
    (actual / target for higher-is-better, target / actual for lower-is-better), `status` from the
    target's tolerance bands, `streak` the number of consecutive periods (by period index, this one
    included) that missed (amber or red) for this dimension set; 0 when this one did not.

    `as_of` is the recorded time the row was computed as of and `run_id` its pipeline run; every value
    of a version equals the belief about the GDPs at the version's `computed_as_of` (rows of periods
    no change touched keep their older `as_of`: their belief did not change). `dimensions_key` is
    the dimension values as a JSON array in the KPI's dimension order, the uniqueness key.
    """

    id = models.BigAutoField(primary_key=True)
    tenant = models.ForeignKey("host.Tenant", on_delete=models.PROTECT, related_name="+")
    kpi_key = models.SlugField(max_length=100, db_index=False)
    # Served by storage_kpivalue_unique, which starts with it.
    kpi_version = models.ForeignKey("compute.KpiVersion", on_delete=models.PROTECT, related_name="+", db_index=False)
    period = models.ForeignKey("storage.CalendarPeriod", on_delete=models.CASCADE, related_name="+")
    period_index = models.IntegerField(help_text="The period's index along its level (streaks and windows).")
    dimensions = models.JSONField(default=dict)
    dimensions_key = models.CharField(max_length=1000)
    actual = models.DecimalField(max_digits=30, decimal_places=10, null=True)
    numerator = models.DecimalField(max_digits=30, decimal_places=10, null=True, blank=True)
    denominator = models.DecimalField(max_digits=30, decimal_places=10, null=True, blank=True)
    gdp_count = models.BigIntegerField(default=0)
    target = models.DecimalField(max_digits=30, decimal_places=10, null=True, blank=True)
    kpi_target = models.ForeignKey(
        "compute.KpiTarget", null=True, blank=True, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    variance = models.DecimalField(max_digits=30, decimal_places=10, null=True, blank=True)
    attainment = models.DecimalField(
        max_digits=30, decimal_places=10, null=True, blank=True, help_text="% of target attained."
    )
    status = models.CharField(max_length=8, choices=KpiStatusChoices.choices, default=KpiStatusChoices.NONE)
    streak = models.PositiveIntegerField(default=0, help_text="Consecutive missed periods up to this one.")
    as_of = models.DateTimeField(help_text="Recorded time of the GDP belief this value was computed from.")
    run_id = models.UUIDField(null=True, blank=True, help_text="The pipeline run that computed it.")
    computed_at = models.DateTimeField()

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["kpi_key", "period_index", "dimensions_key"]
        verbose_name = "KPI value"
        constraints = [
            models.UniqueConstraint(fields=["kpi_version", "period", "dimensions_key"], name="storage_kpivalue_unique")
        ]
        indexes = [
            models.Index(fields=["tenant", "kpi_key", "period_index"], name="storage_kpivalue_by_key"),
            models.Index(
                fields=["kpi_target"], condition=models.Q(kpi_target__isnull=False), name="storage_kpivalue_by_target"
            ),
        ]

    def __str__(self) -> str:
        dims = ", ".join(f"{k}={v}" for k, v in sorted((self.dimensions or {}).items()))
        return f"{self.kpi_key} {self.period_id}" + (f" [{dims}]" if dims else "") + f": {self.actual}"


@dataclass(frozen=True)
class TargetSpec:
    """An approved target as the value writes need it (compute's KpiTarget, flattened)."""

    id: int
    start: date  # first day of its first period
    end: date  # last day of its last period
    dimensions: dict[str, Any]
    value: Decimal
    tolerance_kind: str  # "absolute" | "percent"
    green_within: Decimal
    amber_within: Decimal
    specificity: tuple[Any, ...]  # higher wins: (pairs, -days, approved_at)


@dataclass(frozen=True)
class StatusChange:
    period_id: int
    period_index: int
    dimensions: dict[str, Any]
    before: str | None  # None: the value did not exist before
    after: str
    actual: Decimal | None
    target: Decimal | None
    streak: int


def kpi_values_replace(
    *,
    tenant_id: int,
    kpi_key: str,
    kpi_version_id: int,
    period_ids: Sequence[int] | None,
    select_sql: str,
    params: Sequence[Any],
    as_of: datetime,
    run_id: Any,
    computed_at: datetime,
) -> tuple[int, int]:
    """Replace the version's values of `period_ids` (None: all of them) with the rows `select_sql` yields.

    `select_sql` must yield SELECT_COLUMNS in order, only for those periods. One DELETE and one
    INSERT … SELECT (on PostgreSQL from a temporary table the SELECT fills first, in parallel); the
    caller holds the transaction. Returns (deleted, inserted).
    """
    columns = ", ".join(SELECT_COLUMNS)
    where, where_params = _period_filter(kpi_version_id, period_ids)
    source, source_params = f"({select_sql}) q", list(params)
    with connection.cursor() as cursor:
        staged = None
        if connection.vendor == "postgresql" and not (period_ids is not None and not period_ids):
            # PostgreSQL plans no parallel workers for INSERT … SELECT, but does for CREATE TABLE AS: the
            # aggregation (the whole cost) runs in parallel into a temporary table of a few rows, which
            # the INSERT then copies.
            staged = f"kpi_rows_{uuid.uuid4().hex}"
            cursor.execute(f"CREATE TEMPORARY TABLE {staged} AS {select_sql}", source_params)
            source, source_params = f"{staged} q", []
        cursor.execute(f"DELETE FROM {TABLE} WHERE {where}", where_params)
        deleted = max(cursor.rowcount, 0)
        if period_ids is not None and not period_ids:
            return deleted, 0
        cursor.execute(
            f"""INSERT INTO {TABLE} (tenant_id, kpi_key, kpi_version_id, {columns}, status, streak, as_of, run_id,
                                      computed_at)
                SELECT %s, %s, %s, {", ".join(f"q.{c}" for c in SELECT_COLUMNS)}, 'none', 0, %s, %s, %s
                FROM {source}""",
            [tenant_id, kpi_key, kpi_version_id, _time(as_of), _uuid(run_id), _time(computed_at), *source_params],
        )  # fmt: skip
        inserted = max(cursor.rowcount, 0)
        if staged is not None:
            cursor.execute(f"DROP TABLE {staged}")
    return deleted, inserted


def kpi_values_delete(*, kpi_version_id: int) -> int:
    """Drop every value of a version (a full recompute starts from nothing)."""
    return KpiValue.objects.filter(kpi_version_id=kpi_version_id).delete()[0]


def kpi_statuses(*, kpi_version_id: int) -> dict[tuple[int, str], str]:
    """(period id, dimensions key) → status of every value of a version: the 'before' of a recompute."""
    rows = KpiValue.objects.filter(kpi_version_id=kpi_version_id).values_list("period_id", "dimensions_key", "status")
    return {(period_id, key): status for period_id, key, status in rows}


@transaction.atomic
def kpi_values_apply_targets(
    *,
    kpi_version_id: int,
    targets: Iterable[TargetSpec],
    lower_is_better: bool,
    before: dict[tuple[int, str], str] | None = None,
) -> list[StatusChange]:
    """Stamp target, variance, attainment, status and streak on every value of the version, set-based.

    One UPDATE clears the target fields, one per approved target (least specific first, so the most
    specific one is written last and wins) stamps target, variance, attainment and the status from
    its bands, one computes the streaks (window functions over the period index). With `before` (from
    `kpi_statuses`), returns the values whose status is not what it was (a new value counts as a
    change unless its status is none).
    """
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {TABLE} SET target = NULL, kpi_target_id = NULL, variance = NULL, attainment = NULL, "
            f"status = 'none', streak = 0 WHERE kpi_version_id = %s",
            [kpi_version_id],
        )
        for spec in sorted(targets, key=lambda t: t.specificity):
            _apply_target(cursor, kpi_version_id, spec, lower_is_better)
        _stamp_streaks(cursor, kpi_version_id)
    if before is None:
        return []
    changes = []
    rows = KpiValue.objects.filter(kpi_version_id=kpi_version_id).values_list(
        "period_id", "period_index", "dimensions_key", "dimensions", "status", "actual", "target", "streak"
    )
    for period_id, index, key, dims, status, actual, target, streak in rows:
        old = before.get((period_id, key))
        if old != status and not (old is None and status == KpiStatusChoices.NONE):
            changes.append(StatusChange(period_id, index, dims, old, status, actual, target, streak))
    return changes


def _apply_target(cursor: Any, kpi_version_id: int, spec: TargetSpec, lower_is_better: bool) -> None:
    """Stamp one target (and what follows from it) on the values it applies to."""
    conditions, params = [], []
    for name, value in sorted(spec.dimensions.items()):
        conditions.append(f"{dimension_text_sql('dimensions')} = %s")
        params += [dimension_param(name), _as_text(value)]
    extra = "".join(f" AND {c}" for c in conditions)
    target = Decimal(spec.value)
    if spec.tolerance_kind == "percent":  # a band in % of the target is measured against |target|
        green, amber = abs(target) * spec.green_within / 100, abs(target) * spec.amber_within / 100
    else:
        green, amber = Decimal(spec.green_within), Decimal(spec.amber_within)
    # Parameters are cast: SQLite binds decimals as text, which never compares equal to a number.
    shortfall = f"({NUM} - actual)" if not lower_is_better else f"(actual - {NUM})"
    attainment = f"actual * 100.0 / {NUM}" if not lower_is_better else f"{NUM} * 100.0 / NULLIF(actual, 0)"
    attainment_params = [target] if target != 0 or lower_is_better else []
    if not lower_is_better and target == 0:
        attainment = "NULL"
    cursor.execute(
        f"""UPDATE {TABLE}
            SET target = %s, kpi_target_id = %s, variance = actual - {NUM}, attainment = {attainment},
                status = CASE WHEN actual IS NULL THEN 'none'
                              WHEN {shortfall} <= {NUM} THEN 'green'
                              WHEN {shortfall} <= {NUM} THEN 'amber'
                              ELSE 'red' END
            WHERE kpi_version_id = %s
              AND period_id IN (SELECT p.id FROM storage_calendarperiod p WHERE p.start >= %s AND p."end" <= %s)
              {extra}""",
        [target, spec.id, target, *attainment_params, target, green, target, amber, kpi_version_id, spec.start,
         spec.end, *params],
    )  # fmt: skip


def _stamp_streaks(cursor: Any, kpi_version_id: int) -> None:
    """Gaps-and-islands: among a dimension set's missed values, consecutive period indexes share
    `index - row_number()`; the streak is the position within that island."""
    misses = ", ".join(f"'{s}'" for s in MISS_STATUSES)
    cursor.execute(
        f"""UPDATE {TABLE} SET streak = s.streak
            FROM (
                SELECT id, ROW_NUMBER() OVER (PARTITION BY dimensions_key, island ORDER BY period_index) AS streak
                FROM (
                    SELECT id, dimensions_key, period_index,
                           period_index - ROW_NUMBER() OVER (PARTITION BY dimensions_key ORDER BY period_index) AS island
                    FROM {TABLE} WHERE kpi_version_id = %s AND status IN ({misses})
                ) m
            ) s
            WHERE {TABLE}.id = s.id""",
        [kpi_version_id],
    )  # fmt: skip


# --- JSON dimensions in SQL, both dialects ---------------------------------------------------------
def dimension_sql(column: str) -> str:
    """SQL reading one dimension (the name is the next parameter, see `dimension_param`) as JSON-typed
    value: jsonb on PostgreSQL, the SQL scalar json_extract gives on SQLite."""
    if connection.vendor == "postgresql":
        return f"({column} -> %s)"
    return f"json_extract({column}, %s)"


def dimension_text_sql(column: str) -> str:
    """SQL reading one dimension as text (filters and target matching compare text)."""
    if connection.vendor == "postgresql":
        return f"({column} ->> %s)"
    return f"CAST(json_extract({column}, %s) AS TEXT)"


def dimension_param(name: str) -> str:
    if connection.vendor == "postgresql":
        return name
    return '$."' + name.replace('"', '""') + '"'


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _period_filter(kpi_version_id: int, period_ids: Sequence[int] | None) -> tuple[str, list[Any]]:
    if period_ids is None:
        return "kpi_version_id = %s", [kpi_version_id]
    if not period_ids:
        return "kpi_version_id = %s AND 1 = 0", [kpi_version_id]
    marks = ", ".join(["%s"] * len(period_ids))
    return f"kpi_version_id = %s AND period_id IN ({marks})", [kpi_version_id, *period_ids]


def _time(value: datetime) -> Any:
    return connection.ops.adapt_datetimefield_value(value)


def _uuid(value: Any) -> Any:
    if value is None:
        return None
    if connection.vendor == "postgresql":
        return value
    return str(value).replace("-", "")
