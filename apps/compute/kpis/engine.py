"""KPI computation in the database: one INSERT … SELECT per KPI, bucketed by a join on the period table.

For a KPI version and a pinned `as_of`, the Golden Data Points believed at that moment
(recorded_from <= as_of and (recorded_to is null or recorded_to > as_of)) are joined to the day
rows of the KPI's calendar (`d.start` = the observed date, in UTC), which carry the index of every
enclosing period, and grouped by the grain's period index and the KPI's dimensions:

    simple      agg(value)                                     per period × dimensions
    ratio       agg(numerator) / agg(denominator)              each aggregated over the group first
    cumulative  the per-period aggregates, accumulated over the target period's window
                (fiscal year/half/quarter to date, or the last N periods) by a self-join on the index
    derived     an expression over the other KPIs' values of the same period and dimension set

Composable aggregations (not count distinct, not last value) group per-day partial aggregates
instead of GDPs; a run builds those once per contract and shares them among its KPIs (`partials`).

Storage writes the rows (`kpi_values_replace`: one DELETE and one INSERT … SELECT) and stamps
targets and status. Incremental: only periods touched by GDP versions recorded or superseded
after the version's watermark (`computed_as_of`) are recomputed; a run with an `as_of` earlier than
the watermark recomputes everything. Dimensions are read with jsonb operators on PostgreSQL and
json_extract on SQLite.
"""

# ruff: noqa: S608  (SQL is assembled from constant table and column names; every value is a parameter)
from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from django.db import connection

from apps.compute.kpis.choices import AggregationChoices as Agg
from apps.compute.kpis.choices import CumulativeModeChoices as Mode
from apps.compute.kpis.choices import KpiKindChoices as Kind
from apps.compute.kpis.expressions import parse, references, to_sql
from apps.compute.kpis.models import KpiVersion
from apps.compute.kpis.partials import (
    DailyPartials,
    Reader,
    as_text,
    believed,
    day_bounds,
    day_of,
    db_time,
    postgres,
)
from apps.storage.kpi_values import dimension_param, dimension_sql, dimension_text_sql, kpi_values_replace

GDP = "storage_goldendatapoint"
PERIOD = "storage_calendarperiod"
VALUE = "storage_kpivalue"
# grain level → the day-row column holding the index of that level's period
BUCKET = {"week": "week_index", "period": "period_index", "quarter": "quarter_index", "half": "half_index",
          "year": "fiscal_year"}  # fmt: skip
# period-to-date mode → the column (on day rows and on grain rows) naming the enclosing span
PART = {Mode.YEAR_TO_DATE: "fiscal_year", Mode.HALF_TO_DATE: "half_index", Mode.QUARTER_TO_DATE: "quarter_index"}


@dataclass
class Outcome:
    """What one computation did; becomes the pipeline run's counts."""

    mode: str  # "full" | "incremental"
    periods: list[int] = field(default_factory=list)  # period ids recomputed (all, when full)
    deleted: int = 0
    values: int = 0
    gdps_read: int = 0
    timings: dict[str, float] = field(default_factory=dict)


def divide(dividend: str, divisor: str) -> str:
    """dividend / divisor, NULL when the divisor is 0; SQLite divides integers as integers, so cast."""
    left = dividend if postgres() else f"CAST({dividend} AS REAL)"
    return f"({left} / NULLIF({divisor}, 0))"


def dims_object(names: list[str], alias: str) -> tuple[str, list[Any]]:
    """SQL building the dimensions JSON object from columns {alias}.d0, d1, …"""
    if not names:
        return ("'{}'::jsonb" if postgres() else "json_object()"), []
    func = "jsonb_build_object" if postgres() else "json_object"
    parts, params = [], []
    for i, name in enumerate(names):
        parts.append(f"%s, {alias}.d{i}")
        params.append(name)
    return f"{func}({', '.join(parts)})", params


def dims_key(names: list[str], alias: str) -> str:
    """The dimension values as a JSON array (text), in the KPI's dimension order: the uniqueness key."""
    if not names:
        return "'[]'"
    columns = ", ".join(f"{alias}.d{i}" for i in range(len(names)))
    return f"jsonb_build_array({columns})::text" if postgres() else f"json_array({columns})"


# --- the GDP side ---------------------------------------------------------------------------------
def measures_of(version: KpiVersion) -> list[str]:
    if version.kind == Kind.RATIO:
        return [version.measure, version.denominator_measure]
    return [version.measure]


def source_filter(version: KpiVersion, alias: str = "g") -> tuple[str, list[Any]]:
    """tenant, contract, measures and dimension filters of the version's GDPs."""
    measures = sorted(set(measures_of(version)))
    sql = (f"{alias}.tenant_id = %s AND {alias}.contract_id = %s AND {alias}.measure IN "
           f"({', '.join(['%s'] * len(measures))})")  # fmt: skip
    params: list[Any] = [version.tenant_id, version.contract_id, *measures]
    for name, wanted in sorted((version.filters or {}).items()):
        values = wanted if isinstance(wanted, list) else [wanted]
        sql += f" AND {dimension_text_sql(alias + '.dimensions')} IN ({', '.join(['%s'] * len(values))})"
        params += [dimension_param(name), *[as_text(v) for v in values]]
    return sql, params


def aggregate_sql(
    version: KpiVersion, as_of: datetime, *, buckets: list[int] | None, days: tuple[date, date] | None,
    partials: DailyPartials, extra_group: str | None = None, parts: bool = False,
) -> tuple[str, list[Any]]:  # fmt: skip
    """SELECT bucket, [part,] d0…dn, <aggregates> FROM GDPs ⋈ day rows, grouped: the heart of every kind
    but derived. For cumulative KPIs (`parts`) it yields the additive parts (s, c, mn, mx) per bucket, and
    the enclosing span (`extra_group`, for period-to-date) as `part`."""
    bucket = BUCKET[version.level]
    names = list(version.dimensions or [])
    where, params = source_filter(version)
    dims = [f"r.d{i}" for i in range(len(names))]
    select_dims = "".join(f", {dimension_sql('g.dimensions')} AS d{i}" for i in range(len(names)))
    dim_params = [dimension_param(name) for name in names]
    part = f", d.{extra_group} AS part" if extra_group else ""
    gdp_filters = f"{where} AND {believed()}"
    gdp_params = [*params, db_time(as_of), db_time(as_of)]
    if days is not None:
        lo, hi = day_bounds(*days)
        gdp_filters += " AND g.observed_at >= %s AND g.observed_at < %s"
        gdp_params += [db_time(lo), db_time(hi)]
    bucket_filter, bucket_params = "", []
    if buckets is not None:
        bucket_filter = f" AND d.{bucket} IN ({', '.join(['%s'] * len(buckets))})"
        bucket_params = list(buckets)
    group = ", ".join(["r.bucket", *(["r.part"] if extra_group else []), *dims])
    select_group = "r.bucket" + (", r.part" if extra_group else "") + "".join(f", {d}" for d in dims)
    agg_params: list[Any] = []
    if composable(version):
        # Per-day partials of the run (shared by its KPIs on the contract), bucketed by the day-row join:
        # the join touches days-by-dimension-sets rows instead of every GDP.
        daily, daily_params = partials.rows_sql(reader_of(version), days)
        rows = (f"SELECT d.{bucket} AS bucket{part}{''.join(f', x.d{i}' for i in range(len(names)))}, x.measure, "
                f"x.s, x.c, x.mn, x.mx, x.n FROM ({daily}) x JOIN {PERIOD} d ON d.calendar_id = %s "
                f"AND d.level = 'day' AND d.start = x.day{bucket_filter}")  # fmt: skip
        rows_params = [*daily_params, version.calendar_id, *bucket_params]
        if version.kind == Kind.RATIO:
            numerator = _agg_daily(version.aggregation, "CASE WHEN r.measure = %s THEN {} END")
            denominator = _agg_daily(version.denominator_aggregation, "CASE WHEN r.measure = %s THEN {} END")
            aggregates = f"{numerator} AS numerator, {denominator} AS denominator, SUM(r.n) AS gdp_count"
            agg_params = [version.measure] * numerator.count("%s") + [version.denominator_measure] * (
                denominator.count("%s")
            )
        elif parts:  # cumulative: the additive parts
            aggregates = "SUM(r.s) AS s, SUM(r.c) AS c, MIN(r.mn) AS mn, MAX(r.mx) AS mx, SUM(r.n) AS gdp_count"
        else:
            aggregates = f"{_agg_daily(version.aggregation, '{}')} AS actual, SUM(r.n) AS gdp_count"
        sql = f"SELECT {select_group}, {aggregates} FROM ({rows}) r GROUP BY {group}"
        return sql, [*agg_params, *rows_params]
    rows = (f"SELECT d.{bucket} AS bucket{part}{select_dims}, g.id, g.entity_key, g.observed_at, g.measure, g.value "
            f"FROM {GDP} g JOIN {PERIOD} d ON d.calendar_id = %s AND d.level = 'day' "
            f"AND d.start = {day_of('g.observed_at')} WHERE {gdp_filters}{bucket_filter}")  # fmt: skip
    rows_params = [*dim_params, version.calendar_id, *gdp_params, *bucket_params]
    if version.kind == Kind.RATIO:
        numerator = _agg(version.aggregation, "CASE WHEN r.measure = %s THEN {} END")
        denominator = _agg(version.denominator_aggregation, "CASE WHEN r.measure = %s THEN {} END")
        aggregates = f"{numerator} AS numerator, {denominator} AS denominator, COUNT(*) AS gdp_count"
        agg_params = [version.measure, version.denominator_measure]
    elif version.aggregation == Agg.LAST:
        # Each entity's latest value in the period (a balance), summed over the entities of the group.
        ranked = (f"SELECT r.*, ROW_NUMBER() OVER (PARTITION BY {group}, r.entity_key "
                  f"ORDER BY r.observed_at DESC, r.id DESC) AS rn FROM ({rows}) r")  # fmt: skip
        sql = (f"SELECT {select_group}, SUM(CASE WHEN r.rn = 1 THEN r.value END) AS actual, COUNT(*) AS gdp_count "
               f"FROM ({ranked}) r GROUP BY {group}")  # fmt: skip
        return sql, rows_params
    else:
        aggregates = f"{_agg(version.aggregation, '{}')} AS actual, COUNT(*) AS gdp_count"
    sql = f"SELECT {select_group}, {aggregates} FROM ({rows}) r GROUP BY {group}"
    return sql, [*agg_params, *rows_params]


def reader_of(version: KpiVersion) -> Reader:
    return Reader(tenant_id=version.tenant_id, contract_id=version.contract_id, measures=sorted(set(measures_of(version))),
                  dims=list(version.dimensions or []), filters=dict(version.filters or {}))  # fmt: skip


def partials_for(versions: list[KpiVersion], as_of: datetime) -> DailyPartials:
    """The GDP reads a run of `versions` shares (see `partials`); `drop()` them when done."""
    readers = [reader_of(v) for v in versions if v.kind != Kind.DERIVED]
    return DailyPartials(readers, as_of=as_of)


def composable(version: KpiVersion) -> bool:
    """Whether the aggregation composes from per-day partial aggregates (not count distinct, not last)."""
    used = {version.aggregation} | ({version.denominator_aggregation} if version.kind == Kind.RATIO else set())
    return not used & {Agg.COUNT_DISTINCT, Agg.LAST}


def _agg_daily(aggregation: str, wrap: str) -> str:
    """Aggregate SQL over per-day partial aggregates (s, c, mn, mx) instead of GDP values."""
    s, c = f"SUM({wrap.format('r.s')})", f"SUM({wrap.format('r.c')})"
    return {
        Agg.SUM: s,
        Agg.COUNT: c,
        Agg.MIN: f"MIN({wrap.format('r.mn')})",
        Agg.MAX: f"MAX({wrap.format('r.mx')})",
        Agg.AVG: divide(s, c),
    }[aggregation]


def _agg(aggregation: str, wrap: str) -> str:
    """Aggregate SQL of GDP values; `wrap` places the value (or entity key) inside e.g. a CASE."""
    value, entity = wrap.format("r.value"), wrap.format("r.entity_key")
    return {
        Agg.SUM: f"SUM({value})",
        Agg.AVG: f"AVG({value})",
        Agg.MIN: f"MIN({value})",
        Agg.MAX: f"MAX({value})",
        Agg.COUNT: f"COUNT({value})",
        Agg.COUNT_DISTINCT: f"COUNT(DISTINCT {entity})",
    }[aggregation]


def values_sql(
    version: KpiVersion, as_of: datetime, *, buckets: list[int] | None, days: tuple[date, date] | None,
    span: tuple[int, int] | None = None, refs: dict[str, int] | None = None, period_ids: list[int] | None = None,
    partials: DailyPartials, seed: Seed | None = None,
) -> tuple[str, list[Any]]:  # fmt: skip
    """The SELECT of storage's SELECT_COLUMNS for the version (restricted to `buckets` when incremental)."""
    names = list(version.dimensions or [])
    obj, obj_params = dims_object(names, "a")
    key = dims_key(names, "a")
    grain = f'JOIN {PERIOD} p ON p.calendar_id = %s AND p.level = %s AND p."index" = a.bucket'
    grain_params = [version.calendar_id, version.level]
    if version.kind == Kind.DERIVED:
        return derived_sql(version, refs or {}, period_ids)
    if version.kind == Kind.CUMULATIVE:
        return cumulative_sql(version, as_of, buckets=buckets, days=days, span=span, seed=seed, partials=partials)
    inner, params = aggregate_sql(version, as_of, buckets=buckets, days=days, partials=partials)
    if version.kind == Kind.RATIO:
        measures = f"{divide('a.numerator', 'a.denominator')} AS actual, a.numerator, a.denominator"
    else:
        measures = "a.actual, CAST(NULL AS NUMERIC) AS numerator, CAST(NULL AS NUMERIC) AS denominator"
    sql = (f'SELECT p.id AS period_id, p."index" AS period_index, {obj} AS dimensions, {key} AS dimensions_key, '
           f"{measures}, a.gdp_count FROM ({inner}) a {grain}")  # fmt: skip
    return sql, [*obj_params, *params, *grain_params]


@dataclass
class Seed:
    """An incremental period-to-date run starts each span's accumulation from the value stored for the
    period before its first recomputed one (`periods`: their ids), and reads GDPs of the recomputed
    periods only (`reads`: grain indexes), instead of every period since the span began."""

    periods: list[int]
    reads: list[int]


def cumulative_sql(
    version: KpiVersion, as_of: datetime, *, buckets: list[int] | None, days: tuple[date, date] | None,
    span: tuple[int, int] | None, partials: DailyPartials, seed: Seed | None = None,
) -> tuple[str, list[Any]]:  # fmt: skip
    """Per-period parts accumulated over each target period's window by a self-join on the index.

    Target periods are the grain's periods from the first to the last period holding data (`span`);
    a dimension set has a value in a target period when its window holds any of its data."""
    names = list(version.dimensions or [])
    mode = version.cumulative_mode
    part_column = PART.get(mode)
    reads = seed.reads if seed is not None else None
    base, base_params = aggregate_sql(version, as_of, buckets=reads, days=days, extra_group=part_column, parts=True,
                                      partials=partials)  # fmt: skip
    if seed is not None and seed.periods:
        seeded, seeded_params = seed_sql(version, seed.periods)
        base, base_params = f"{base} UNION ALL {seeded}", [*base_params, *seeded_params]
    if mode == Mode.ROLLING:
        window = 'b.bucket BETWEEN t."index" - %s AND t."index"'
        window_params: list[Any] = [int(version.window_periods or 1) - 1]
    else:
        window = f'b.part = t.{part_column} AND b.bucket <= t."index"'
        window_params = []
    actual = {
        Agg.SUM: "SUM(b.s)",
        Agg.COUNT: "SUM(b.c)",
        Agg.MIN: "MIN(b.mn)",
        Agg.MAX: "MAX(b.mx)",
        Agg.AVG: divide("SUM(b.s)", "SUM(b.c)"),
    }[version.aggregation]
    obj, obj_params = dims_object(names, "b")
    key = dims_key(names, "b")
    lo, hi = span if span is not None else (0, -1)
    targets = 't.calendar_id = %s AND t.level = %s AND t."index" BETWEEN %s AND %s'
    target_params: list[Any] = [version.calendar_id, version.level, lo, hi]
    if buckets is not None:
        targets += f' AND t."index" IN ({", ".join(["%s"] * len(buckets))})'
        target_params += list(buckets)
    group = ", ".join(["t.id", 't."index"', *[f"b.d{i}" for i in range(len(names))]])
    sql = (f'SELECT t.id AS period_id, t."index" AS period_index, {obj} AS dimensions, {key} AS dimensions_key, '
           f"{actual} AS actual, CAST(NULL AS NUMERIC) AS numerator, CAST(NULL AS NUMERIC) AS denominator, SUM(b.gdp_count) AS gdp_count "
           f"FROM {PERIOD} t JOIN ({base}) b ON {window} WHERE {targets} GROUP BY {group}")  # fmt: skip
    return sql, [*obj_params, *base_params, *window_params, *target_params]


# The stored period-to-date value carries the part the window's aggregate accumulates.
SEED_PART = {Agg.SUM: "s", Agg.COUNT: "c", Agg.MIN: "mn", Agg.MAX: "mx"}


def seedable(version: KpiVersion) -> bool:
    """Period-to-date KPIs whose stored value is the one additive part they accumulate: not averages (a
    sum and a count), not rolling windows (which drop periods at their start)."""
    return version.cumulative_mode in PART and version.aggregation in SEED_PART


def seed_sql(version: KpiVersion, period_ids: list[int]) -> tuple[str, list[Any]]:
    """The stored values of `period_ids` as base rows (bucket, part, d0…dn, s, c, mn, mx, gdp_count)."""
    names = list(version.dimensions or [])
    dims = "".join(f", {dimension_sql('v.dimensions')}" for _ in names)
    parts = ", ".join("v.actual" if SEED_PART[version.aggregation] == part else "CAST(NULL AS NUMERIC)"
                      for part in ("s", "c", "mn", "mx"))  # fmt: skip
    marks = ", ".join(["%s"] * len(period_ids))
    sql = (f"SELECT v.period_index, p.{PART[version.cumulative_mode]}{dims}, {parts}, v.gdp_count FROM {VALUE} v "
           f"JOIN {PERIOD} p ON p.id = v.period_id WHERE v.kpi_version_id = %s AND v.period_id IN ({marks})")  # fmt: skip
    return sql, [*(dimension_param(name) for name in names), version.pk, *period_ids]


def derived_sql(version: KpiVersion, refs: dict[str, int], period_ids: list[int] | None) -> tuple[str, list[Any]]:
    """The expression over the referenced KPIs' values (their active versions `refs`: key → version id),
    where every one of them has a value for the period and dimension set."""
    keys = references(parse(version.expression))
    alias = {key: f"v{i}" for i, key in enumerate(keys)}
    expression, numbers = to_sql(
        parse(version.expression), lambda k: f"{alias[k]}.actual", real_division=not postgres()
    )
    joins, join_params = [], []
    for key in keys[1:]:
        joins.append(f"JOIN {VALUE} {alias[key]} ON {alias[key]}.kpi_version_id = %s "
                     f"AND {alias[key]}.period_id = v0.period_id AND {alias[key]}.dimensions_key = v0.dimensions_key")  # fmt: skip
        join_params.append(refs[key])
    where, where_params = "v0.kpi_version_id = %s", [refs[keys[0]]]
    if period_ids is not None:
        where += f" AND v0.period_id IN ({', '.join(['%s'] * len(period_ids))})" if period_ids else " AND 1 = 0"
        where_params += list(period_ids)
    counts = " + ".join(f"{alias[k]}.gdp_count" for k in keys)
    sql = (f"SELECT v0.period_id, v0.period_index, v0.dimensions, v0.dimensions_key, {expression} AS actual, "
           f"CAST(NULL AS NUMERIC) AS numerator, CAST(NULL AS NUMERIC) AS denominator, {counts} AS gdp_count FROM {VALUE} v0 {' '.join(joins)} "
           f"WHERE {where}")  # fmt: skip
    return sql, [*numbers, *join_params, *where_params]


# --- what changed since the watermark ---------------------------------------------------------------
def touched_buckets(version: KpiVersion, since: datetime, partials: DailyPartials) -> set[int]:
    """Grain periods (indexes) holding a GDP version of the KPI's measures recorded or superseded after
    `since` (up to the run's as-of): the days come from the run's shared detection (`partials`)."""
    days = partials.touched_days(reader_of(version), since)
    if not days:
        return set()
    bucket = BUCKET[version.level]
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT DISTINCT {bucket} FROM {PERIOD} WHERE calendar_id = %s AND level = 'day' "
                       f"AND start IN ({', '.join(['%s'] * len(days))})", [version.calendar_id, *sorted(days)])  # fmt: skip
        return {row[0] for row in cursor.fetchall() if row[0] is not None}


def data_span(version: KpiVersion, as_of: datetime) -> tuple[int, int] | None:
    """(first, last) grain period index holding the KPI's data as of `as_of`: the earliest and latest observed
    times believed then (`_believed_bound`)."""
    first = _believed_bound(version, as_of, "ASC")
    if first is None:
        return None
    bounds = [_as_date(first), _as_date(_believed_bound(version, as_of, "DESC"))]
    bucket = BUCKET[version.level]
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT start, {bucket} FROM {PERIOD} WHERE calendar_id = %s AND level = 'day' "
                       f"AND start IN (%s, %s)", [version.calendar_id, *bounds])  # fmt: skip
        found = {_as_date(day): index for day, index in cursor.fetchall()}
    if bounds[0] not in found or bounds[1] not in found:
        return None  # data outside the generated years: nothing to accumulate over
    return found[bounds[0]], found[bounds[1]]


def _believed_bound(version: KpiVersion, as_of: datetime, order: str) -> Any:
    """The earliest (ASC) or latest (DESC) observed_at of the KPI's GDP versions believed at `as_of`. Each read
    follows one of the storage's indexes of a contract's versions by time (current, past): the current versions
    first, then past ones only beyond that bound, where there are few (as of now none, and the read ends at once
    instead of walking every superseded version of the contract)."""
    where, params = source_filter(version)
    moment = db_time(as_of)
    bound = None
    for kind, kind_params in (("g.recorded_to IS NULL", []), ("g.recorded_to > %s", [moment])):
        sql = f"SELECT g.observed_at FROM {GDP} g WHERE {where} AND {kind} AND g.recorded_from <= %s"
        sql_params = [*params, *kind_params, moment]
        if bound is not None:
            sql += f" AND g.observed_at {'<' if order == 'ASC' else '>'} %s"
            sql_params.append(bound)
        with connection.cursor() as cursor:
            cursor.execute(f"{sql} ORDER BY g.observed_at {order} LIMIT 1", sql_params)
            row = cursor.fetchone()
        if row is not None:
            bound = row[0]
    return bound


def _as_date(value: Any) -> date:
    if isinstance(value, datetime):
        return value.astimezone(UTC).date() if value.tzinfo else value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def periods_at(version: KpiVersion, indexes: set[int] | None = None) -> list[tuple[int, int, date, date, Any]]:
    """(id, index, start, end, part) of the grain's periods (all, or those with `indexes`)."""
    part = PART.get(version.cumulative_mode) or "fiscal_year"
    sql = f'SELECT id, "index", start, "end", {part} FROM {PERIOD} WHERE calendar_id = %s AND level = %s'
    params: list[Any] = [version.calendar_id, version.level]
    if indexes is not None:
        if not indexes:
            return []
        sql += f' AND "index" IN ({", ".join(["%s"] * len(indexes))})'
        params += sorted(indexes)
    with connection.cursor() as cursor:
        cursor.execute(sql + ' ORDER BY "index"', params)
        return [(i, idx, _as_date(s), _as_date(e), p) for i, idx, s, e, p in cursor.fetchall()]


def stored_span(version: KpiVersion) -> tuple[int, int] | None:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT MIN(period_index), MAX(period_index) FROM {VALUE} WHERE kpi_version_id = %s",
                       [version.pk])  # fmt: skip
        low, high = cursor.fetchone()
    return None if low is None else (low, high)


# --- one computation --------------------------------------------------------------------------------
def compute_version(
    version: KpiVersion, *, as_of: datetime, run_id: Any, computed_at: datetime, full: bool,
    refs: dict[str, int] | None = None, ref_periods: set[int] | None = None, partials: DailyPartials,
) -> Outcome:  # fmt: skip
    """Recompute the version's values as of `as_of` (all of them, or only the touched periods) and
    return what was done. The caller holds the transaction and the version's row lock.

    Derived KPIs are given `refs` (key → active version id, already computed as of `as_of`) and, when
    incremental, `ref_periods`: the period ids their references recomputed in this run."""
    clock = time.perf_counter()
    watermark = version.computed_as_of
    incremental = not full and watermark is not None and watermark <= as_of
    outcome = Outcome(mode="incremental" if incremental else "full")
    if incremental and postgres():
        _plan_for_small_reads()
    period_ids: list[int] | None
    buckets: list[int] | None = None
    days: tuple[date, date] | None = None
    span: tuple[int, int] | None = None
    seed: Seed | None = None
    if version.kind == Kind.DERIVED:
        period_ids = sorted(ref_periods) if incremental and ref_periods is not None else None
        if period_ids is None:
            outcome.mode = "full"
    else:
        if version.kind == Kind.CUMULATIVE:
            span = data_span(version, as_of) or (0, -1)
        if incremental:
            assert watermark is not None
            touched = touched_buckets(version, watermark, partials)
            if version.kind == Kind.CUMULATIVE:
                touched = _cumulative_reach(version, touched, span, stored_span(version))
            rows = periods_at(version, touched)
            period_ids, buckets = [row[0] for row in rows], [row[1] for row in rows]
            if rows and version.kind == Kind.CUMULATIVE and seedable(version):
                seed, days = _seed(version, rows, span)
            elif rows:
                days = (_window_start(version, rows), max(row[3] for row in rows))
        else:
            period_ids = None
    outcome.timings["detect_s"] = round(time.perf_counter() - clock, 4)
    clock = time.perf_counter()
    if period_ids is not None and not period_ids:
        return outcome
    sql, params = values_sql(version, as_of, buckets=buckets, days=days, span=span, refs=refs, period_ids=period_ids,
                             seed=seed, partials=partials)  # fmt: skip
    outcome.deleted, outcome.values = kpi_values_replace(
        tenant_id=version.tenant_id, kpi_key=version.definition.key, kpi_version_id=version.pk,
        period_ids=period_ids, select_sql=sql, params=params, as_of=as_of, run_id=run_id, computed_at=computed_at,
    )  # fmt: skip
    outcome.timings["aggregate_s"] = round(time.perf_counter() - clock, 4)
    outcome.periods, outcome.gdps_read = _written(version, period_ids)
    return outcome


# An incremental run reads a few days of a large GDP table. PostgreSQL's default random_page_cost (4,
# for spinning disks) makes a full sequential scan look cheaper than an index range over a few % of
# the rows; 1.1 is what its documentation suggests for SSDs, and halves such a run here. Its row
# estimates for those ranges are high enough to trigger JIT compilation, which costs more than
# a query of a few hundred milliseconds gains from it.
SMALL_READ_SETTINGS = {"random_page_cost": "1.1", "jit": "off"}


def _plan_for_small_reads() -> None:
    """For the rest of the caller's transaction (SET LOCAL)."""
    with connection.cursor() as cursor:
        for name, value in SMALL_READ_SETTINGS.items():
            cursor.execute("SELECT set_config(%s, %s, true)", [name, value])


def _written(version: KpiVersion, period_ids: list[int] | None) -> tuple[list[int], int]:
    """The periods recomputed (ids) and the GDPs read for them."""
    if period_ids is not None:
        where, params = f"kpi_version_id = %s AND period_id IN ({', '.join(['%s'] * len(period_ids))})", [
            version.pk, *period_ids]  # fmt: skip
    else:
        where, params = "kpi_version_id = %s", [version.pk]
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT COALESCE(SUM(gdp_count), 0) FROM {VALUE} WHERE {where}", params)
        gdps = int(cursor.fetchone()[0] or 0)
        if period_ids is None:
            cursor.execute(f"SELECT DISTINCT period_id FROM {VALUE} WHERE {where}", params)
            period_ids = [row[0] for row in cursor.fetchall()]
    return sorted(period_ids), gdps


def _cumulative_reach(
    version: KpiVersion, touched: set[int], span: tuple[int, int], before: tuple[int, int] | None
) -> set[int]:
    """Periods whose windows hold a touched period: the rest of its fiscal span (to date) or the next
    N − 1 periods (rolling), within the data's span; plus the periods the span gained (new targets)
    and those it lost (their values go)."""
    low, high = span
    reach: set[int] = set()
    if version.cumulative_mode == Mode.ROLLING:
        width = int(version.window_periods or 1)
        for index in touched:
            reach.update(range(index, index + width))
    elif touched:
        part = PART[version.cumulative_mode]
        marks = ", ".join(["%s"] * len(touched))
        with connection.cursor() as cursor:
            cursor.execute(
                f'SELECT t."index" FROM {PERIOD} t WHERE t.calendar_id = %s AND t.level = %s AND t.{part} IN '
                f'(SELECT s.{part} FROM {PERIOD} s WHERE s.calendar_id = %s AND s.level = %s AND s."index" IN ({marks}))',
                [version.calendar_id, version.level, version.calendar_id, version.level, *sorted(touched)],
            )  # fmt: skip
            reach = {row[0] for row in cursor.fetchall() if row[0] >= min(touched)}
    new = set(range(low, high + 1))
    old = set(range(before[0], before[1] + 1)) if before is not None else set()
    return (reach & new) | (new - old) | (old - new)


def _seed(
    version: KpiVersion, rows: list[tuple[int, int, date, date, Any]], span: tuple[int, int]
) -> tuple[Seed, tuple[date, date]]:
    """Per span (fiscal year, half or quarter) of the recomputed periods: its first recomputed period f,
    the periods f … last to read GDPs of, and the stored period f − 1 to start from when it lies in the
    same span and within the data. Periods before f are untouched, so their stored values still hold."""
    first: dict[Any, tuple[int, int, date, date, Any]] = {}
    last: dict[Any, int] = {}
    for row in rows:
        part = row[4]
        if part not in first or row[1] < first[part][1]:
            first[part] = row
        last[part] = max(last.get(part, row[1]), row[1])
    reads = sorted({index for part, row in first.items() for index in range(row[1], last[part] + 1)})
    before = {row[1] - 1: part for part, row in first.items() if row[1] - 1 >= span[0]}
    periods = [pid for pid, index, _, _, part in periods_at(version, set(before)) if before[index] == part]
    days = (min(row[2] for row in first.values()), max(row[3] for row in rows))
    return Seed(periods=periods, reads=reads), days


def _window_start(version: KpiVersion, rows: list[tuple[int, int, date, date, Any]]) -> date:
    """The first day any recomputed period's value reads: the period itself, or for cumulative KPIs the
    start of its window."""
    if version.kind != Kind.CUMULATIVE:
        return min(row[2] for row in rows)
    first = min(rows, key=lambda row: row[1])
    if version.cumulative_mode == Mode.ROLLING:
        earliest = first[1] - int(version.window_periods or 1) + 1
        sql, params = '"index" = %s', [earliest]
    else:
        sql, params = f"{PART[version.cumulative_mode]} = %s", [first[4]]
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT MIN(start) FROM {PERIOD} WHERE calendar_id = %s AND level = %s AND {sql}",
                       [version.calendar_id, version.level, *params])  # fmt: skip
        start = cursor.fetchone()[0]
    return _as_date(start) if start is not None else first[2]


def derived_refs(version: KpiVersion) -> list[str]:
    return references(parse(version.expression)) if version.kind == Kind.DERIVED else []
