"""Reading Golden Data Points for KPIs: the as-of predicate, a GDP's day, and what a run reads once
for all its KPIs: per-day partial aggregates and, when incremental, the days that changed.

A composable KPI (sums, counts, minimums, maximums, averages and ratios of those; see
`engine.composable`) is aggregated from per-day partials: per day, measure and dimension set, the
SUM, COUNT, MIN and MAX of the values and the number of GDPs. The KPIs of one run that read the same
contract read the same GDPs as of the same moment, so the run builds the partials once per contract,
in a temporary table, and every such KPI groups that table instead of scanning the GDPs again:
three KPIs over one contract read its GDPs once, not three times.

The table is a TEMP table of the run's database session (private to it, dropped at the end of the
run and with the session), holding the union of the measures and dimensions those KPIs read (filter
dimensions as text, the others as JSON values, as the KPI values keep them). It fills on demand: a
KPI asks for a day range (None: every day) and only the days not read yet are read.

Each KPI of a run is its own transaction; one that fails rolls back what it added to a table, so
the run then forgets every table (`reset`) and rebuilds what a later KPI asks for.

Change detection (`touched_days`) likewise runs once per contract and watermark, for the measures of
all the run's KPIs on the contract together.
"""

# ruff: noqa: S608  (SQL is assembled from constant table and column names; every value is a parameter)
from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from typing import Any

from django.db import DatabaseError, connection

from apps.storage.kpi_values import dimension_param, dimension_sql, dimension_text_sql

logger = logging.getLogger(__name__)

GDP = "storage_goldendatapoint"
BATCH = "storage_ingestionbatch"

Days = tuple[date, date]


def db_time(value: datetime) -> Any:
    """A timestamp parameter as the database stores it (SQLite compares text: the same layout matters)."""
    return connection.ops.adapt_datetimefield_value(value)


def postgres() -> bool:
    return connection.vendor == "postgresql"


def day_of(column: str) -> str:
    """The UTC date of a timestamp column (GDP times are stored in UTC; dates arrive as midnight UTC)."""
    return f"({column} AT TIME ZONE 'UTC')::date" if postgres() else f"date({column})"


def believed(alias: str = "g") -> str:
    """GDP versions believed at the as-of moment (two parameters: as_of, as_of)."""
    return f"{alias}.recorded_from <= %s AND ({alias}.recorded_to IS NULL OR {alias}.recorded_to > %s)"


def day_bounds(first: date, last: date) -> tuple[datetime, datetime]:
    """observed_at range [first 00:00 UTC, last + 1 day 00:00 UTC): lets the storage's indexes of a contract's
    versions by time (contract, observed_at, …) narrow the scan to the days being read."""
    return datetime.combine(first, dtime.min, UTC), datetime.combine(last + timedelta(days=1), dtime.min, UTC)


def as_text(value: Any) -> str:
    """A filter value as the text a dimension is compared as."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@dataclass(frozen=True)
class Reader:
    """What one KPI reads: its tenant's GDPs of a contract, some measures, grouped by some dimensions,
    kept by dimension filters (name → value or list of values)."""

    tenant_id: int
    contract_id: int
    measures: list[str]
    dims: list[str]
    filters: dict[str, Any]


@dataclass
class _Table:
    name: str
    tenant_id: int
    contract_id: int
    measures: list[str]
    dims: list[str]  # grouped dimensions, columns d0, d1, …
    filters: list[str]  # dimensions filtered on, as text: columns f0, f1, …
    created: bool = False
    covered: list[Days] | None = field(default_factory=list)  # None: every day


class DailyPartials:
    """What a run reads once: one partials table per contract its KPIs' `readers` read (shaped for all
    of them; only composable KPIs fill and read it), and the touched days per contract and watermark."""

    def __init__(self, readers: list[Reader], *, as_of: datetime) -> None:
        self._as_of = as_of
        self._run = secrets.token_hex(4)  # a KPI's handlers may start another run in this session
        self._tables: dict[tuple[int, int], _Table] = {}
        self._touched: dict[tuple[Any, ...], dict[str, set[date]]] = {}
        for reader in readers:
            self._table_for(reader)

    def rows_sql(self, reader: Reader, days: Days | None) -> tuple[str, list[Any]]:
        """SELECT day, d0…dn (the reader's dimensions, in its order), measure, s, c, mn, mx, n of the
        reader's GDPs on `days` (None: all), filling the table first where needed."""
        table = self._table_for(reader)
        self._cover(table, days)
        dims = "".join(f", x.d{table.dims.index(name)} AS d{i}" for i, name in enumerate(reader.dims))
        where = f"x.measure IN ({', '.join(['%s'] * len(reader.measures))})"
        params: list[Any] = list(reader.measures)
        for name, wanted in sorted(reader.filters.items()):
            values = wanted if isinstance(wanted, list) else [wanted]
            where += f" AND x.f{table.filters.index(name)} IN ({', '.join(['%s'] * len(values))})"
            params += [as_text(value) for value in values]
        if days is not None:
            where += " AND x.day >= %s AND x.day <= %s"
            params += list(days)
        return f"SELECT x.day{dims}, x.measure, x.s, x.c, x.mn, x.mx, x.n FROM {table.name} x WHERE {where}", params

    def touched_days(self, reader: Reader, since: datetime) -> set[date]:
        """Days holding a GDP version of the reader's measures recorded or superseded in (since, as_of].
        Found once per contract and watermark for the measures of all the run's KPIs on it; dimension
        filters are not applied (a KPI may recompute a period that did not change: same values)."""
        table = self._table_for(reader)
        key = (table.tenant_id, table.contract_id, since, tuple(table.measures))
        if key not in self._touched:
            self._touched[key] = self._detect(table, since)
        return set().union(*(self._touched[key].get(measure, set()) for measure in reader.measures))

    def _detect(self, table: _Table, since: datetime) -> dict[str, set[date]]:
        """Candidates come through indexes: the GDPs of batches finished after `since` (or not finished),
        the versions those batches superseded, and steward overrides."""
        where = (f"g.tenant_id = %s AND g.contract_id = %s AND g.measure IN ({', '.join(['%s'] * len(table.measures))})")  # fmt: skip
        params = [table.tenant_id, table.contract_id, *table.measures]
        recent = f"SELECT id FROM {BATCH} WHERE tenant_id = %s AND (finished_at IS NULL OR finished_at > %s)"
        recent_params = [table.tenant_id, db_time(since)]
        changed_from = "g.recorded_from > %s AND g.recorded_from <= %s"
        changed_to = "g.recorded_to > %s AND g.recorded_to <= %s"
        window = [db_time(since), db_time(self._as_of)]
        branches = [
            (f"g.batch_id IN ({recent}) AND {changed_from}", [*recent_params, *window]),
            (f"g.superseded_by_batch_id IN ({recent}) AND {changed_to}", [*recent_params, *window]),
            (f"g.overridden_by_id IS NOT NULL AND (({changed_from}) OR ({changed_to}))", [*window, *window]),
        ]
        sql = " UNION ".join(f"SELECT g.measure, {day_of('g.observed_at')} FROM {GDP} g WHERE {where} AND {cond}"
                             for cond, _ in branches)  # fmt: skip
        found: dict[str, set[date]] = {}
        with connection.cursor() as cursor:
            cursor.execute(sql, [p for _, branch_params in branches for p in (*params, *branch_params)])
            for measure, day in cursor.fetchall():
                found.setdefault(measure, set()).add(day if isinstance(day, date) else date.fromisoformat(day))
        return found

    def reset(self) -> None:
        """Forget (and drop) every table: after a failed KPI, whose rollback undid what it added."""
        self.drop()
        for table in self._tables.values():
            table.created, table.covered = False, []

    def drop(self) -> None:
        """Never raises: it runs on the way out of a run, also a failed one."""
        try:
            with connection.cursor() as cursor:
                for table in self._tables.values():
                    if table.created:
                        cursor.execute(f"DROP TABLE IF EXISTS {table.name}")
        except DatabaseError:  # e.g. the caller's transaction is broken: the tables go with it or the session
            logger.warning("Could not drop the KPI run's partials tables", exc_info=True)

    def _table_for(self, reader: Reader) -> _Table:
        """The reader's contract's table, widened (and emptied) if it lacks one of the reader's columns."""
        key = (reader.tenant_id, reader.contract_id)
        table = self._tables.setdefault(
            key, _Table(f"aurum_kpi_daily_{self._run}_{reader.contract_id}", *key, [], [], [])
        )
        measures, dims, filters = set(reader.measures), set(reader.dims), set(reader.filters)
        if measures <= set(table.measures) and dims <= set(table.dims) and filters <= set(table.filters):
            return table
        if table.created:
            with connection.cursor() as cursor:
                cursor.execute(f"DROP TABLE IF EXISTS {table.name}")
            table.created, table.covered = False, []
        table.measures = sorted({*table.measures, *measures})
        table.dims = sorted({*table.dims, *dims})
        table.filters = sorted({*table.filters, *filters})
        return table

    # --- filling ------------------------------------------------------------------------------------
    def _cover(self, table: _Table, days: Days | None) -> None:
        if table.covered is None:
            return
        if days is None:
            if table.created:
                with connection.cursor() as cursor:
                    cursor.execute(f"DELETE FROM {table.name}")
            self._fill(table, None)
            table.covered = None
            return
        for gap in missing(table.covered, days):
            self._fill(table, gap)
        table.covered = merged([*table.covered, days])

    def _fill(self, table: _Table, days: Days | None) -> None:
        select, params = self._partials_sql(table, days)
        statement = (
            f"INSERT INTO {table.name} {select}" if table.created else f"CREATE TEMP TABLE {table.name} AS {select}"
        )
        with connection.cursor() as cursor:
            cursor.execute(statement, params)
            if connection.vendor == "postgresql":
                cursor.execute(f"ANALYZE {table.name}")  # autovacuum never sees a temp table
        table.created = True

    def _partials_sql(self, table: _Table, days: Days | None) -> tuple[str, list[Any]]:
        dims = "".join(f", {dimension_sql('g.dimensions')} AS d{i}" for i in range(len(table.dims)))
        filters = "".join(f", {dimension_text_sql('g.dimensions')} AS f{i}" for i in range(len(table.filters)))
        where = (f"g.tenant_id = %s AND g.contract_id = %s AND g.measure IN ({', '.join(['%s'] * len(table.measures))}) "
                 f"AND {believed()}")  # fmt: skip
        params: list[Any] = [
            *(dimension_param(name) for name in [*table.dims, *table.filters]),
            table.tenant_id, table.contract_id, *table.measures, db_time(self._as_of), db_time(self._as_of),
        ]  # fmt: skip
        if days is not None:
            where += " AND g.observed_at >= %s AND g.observed_at < %s"
            params += [db_time(moment) for moment in day_bounds(*days)]
        group = ", ".join(str(i + 1) for i in range(2 + len(table.dims) + len(table.filters)))
        sql = (f"SELECT {day_of('g.observed_at')} AS day, g.measure{dims}{filters}, SUM(g.value) AS s, COUNT(g.value) AS c, "
               f"MIN(g.value) AS mn, MAX(g.value) AS mx, COUNT(*) AS n FROM {GDP} g WHERE {where} GROUP BY {group}")  # fmt: skip
        return sql, params


def missing(covered: list[Days], wanted: Days) -> list[Days]:
    """The parts of `wanted` (inclusive day range) outside the sorted, disjoint `covered` ranges."""
    gaps, start = [], wanted[0]
    for low, high in covered:
        if high < start or low > wanted[1]:
            continue
        if low > start:
            gaps.append((start, low - timedelta(days=1)))
        start = max(start, high + timedelta(days=1))
    if start <= wanted[1]:
        gaps.append((start, wanted[1]))
    return gaps


def merged(ranges: list[Days]) -> list[Days]:
    """Sorted, disjoint inclusive day ranges covering the same days (adjacent ones joined)."""
    out: list[Days] = []
    for low, high in sorted(ranges):
        if out and low <= out[-1][1] + timedelta(days=1):
            out[-1] = (out[-1][0], max(out[-1][1], high))
        else:
            out.append((low, high))
    return out
