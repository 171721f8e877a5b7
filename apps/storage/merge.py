"""The survivorship merge: a batch's staged values (storage/staging.py) become Golden Data Points, set-based.

A batch is merged in one transaction, one unit (a range of record positions, the pipeline's
chunks) after another, in position order, all with the same `now`; each unit is a handful of
statements whatever its size:

1. shadowed  – within the unit, only the last record of a GDP key can win;
2. unchanged – a value equal to the current version changes no belief (no new version);
3. lost      – the current version wins: a steward override, or (priority mode) a source
               of higher priority;
4. the current versions the winners replace get `recorded_to = now` (kept, bitemporal);
5. winners are inserted as current versions;
6. shadowed and lost values are kept as versions that were never current
   (recorded_from = recorded_to = now), so lineage shows they arrived and lost, and a
   removed override can fall back to the best of them.

A current version an earlier unit of the same batch wrote is always replaced (a later record of
the batch wins, whatever its value): it ends with recorded_from = recorded_to = now and
superseded_by_batch = its own batch, exactly as a value shadowed within one unit, and is
counted so. Merging a batch in units or whole gives the same current values.

On PostgreSQL steps 1-4 are one statement that looks each staged value up once in the
partial unique index of current versions (see `_classify_postgresql`); SQLite (≥ 3.33, for
UPDATE … FROM) runs them as five statements. Steps 5-6 are the same SQL on both, and skip
the inserts that have nothing to insert.
"""

from __future__ import annotations

from dataclasses import astuple, dataclass
from datetime import datetime
from typing import Any

from django.db import connection

from apps.host.choices import SurvivorshipChoices
from apps.storage.staging import STAGED

GDP = "storage_goldendatapoint"
# For the rest of the merge's transaction (SET LOCAL): ranking a batch's staged values sorts all of them,
# and with the default 4 MB a 100,000-record batch (300,000 values) sorted on disk (36 MB), a third of
# the classification. JIT is off: the statements are simple and it only adds compile time.
MERGE_WORK_MEM = "128MB"
IN_UNIT = "s.batch_id = %s AND s.position BETWEEN %s AND %s"
KEY_MATCH = "g.key_hash = s.key_hash"  # the GDP key's hash (storage.models.key_hash)
GDP_COLUMNS = (
    "tenant_id, contract_id, contract_version_id, measure, entity_key, dimensions, dimensions_key, observed_at, "
    "value, unit, quality_flags, source_id, source_priority, batch_id, raw_record_id, recorded_from, recorded_to, "
    "superseded_by_batch_id, is_override, override_reason, overridden_by_id, key_hash"
)


@dataclass(frozen=True)
class MergeResult:
    created: int  # new current versions
    superseded: int  # earlier current versions this batch replaced
    unchanged: int  # values equal to the current version
    lost: int  # values the current version (override or higher priority) beat
    shadowed: int  # values a later record of the same batch replaced

    def __add__(self, other: MergeResult) -> MergeResult:
        return MergeResult(*(a + b for a, b in zip(astuple(self), astuple(other), strict=True)))


NOTHING = MergeResult(0, 0, 0, 0, 0)


def refresh_staging_statistics() -> None:
    """ANALYZE the session's staging table (PostgreSQL) before a whole batch is merged from it.

    Autovacuum never analyzes a TEMP table: without statistics the planner would take a million staged
    rows for a handful, and a join on them could become quadratic. ANALYZE samples a bounded number
    of rows (well under a second)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {STAGED}")


def merge_unit(
    *,
    batch_id: int,
    positions: tuple[int, int],
    tenant_id: int,
    contract_id: int,
    contract_version_id: int,
    source_id: int,
    source_priority: int,
    survivorship: str,
    now: datetime,
) -> MergeResult:
    """Merge the batch's staged values of records `positions` (first, last; inclusive). The caller holds the
    batch's merge transaction (and the contract's merge lock), merges units in position order and gives each
    the same `now`; `discard_staged` ends the batch."""
    unit = (batch_id, *positions)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT set_config('work_mem', %s, true), set_config('jit', 'off', true)", [MERGE_WORK_MEM])
            shadowed, unchanged, lost, superseded, replaced = _classify_postgresql(
                cursor, unit, tenant_id, contract_id, survivorship, source_priority, now
            )
        else:
            shadowed, unchanged, lost, superseded, replaced = _classify(
                cursor, unit, tenant_id, contract_id, survivorship, source_priority, now
            )
        insert = f"""
            INSERT INTO {GDP} ({GDP_COLUMNS})
            SELECT %s, %s, %s, s.measure, s.entity_key, s.dimensions, s.dimensions_key, s.observed_at, s.value,
                   s.unit, s.quality_flags, %s, %s, s.batch_id, s.raw_record_id, %s, {{recorded_to}},
                   {{superseded_by}}, FALSE, '', NULL, s.key_hash
            FROM {STAGED} s WHERE {IN_UNIT} AND s.outcome IN ({{outcomes}})"""
        common = [tenant_id, contract_id, contract_version_id, source_id, source_priority, now]
        created = _execute(cursor, insert.format(recorded_to="NULL", superseded_by="NULL", outcomes="''"),
                           [*common, *unit])  # fmt: skip
        if shadowed:
            _execute(cursor, insert.format(recorded_to="%s", superseded_by="%s", outcomes="'shadowed'"),
                     [*common[:-1], now, now, batch_id, *unit])  # fmt: skip
        if lost:
            _execute(cursor, insert.format(recorded_to="%s", superseded_by="NULL", outcomes="'lost'"),
                     [*common[:-1], now, now, *unit])  # fmt: skip
    # A replaced version of an earlier unit was counted created there: it ends shadowed, as within one unit.
    return MergeResult(created=created - replaced, superseded=superseded, unchanged=unchanged, lost=lost,
                       shadowed=shadowed + replaced)  # fmt: skip


def discard_staged() -> None:
    """Empty the session's staging table: its units are merged (or the batch refused)."""
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {STAGED}" if connection.vendor == "postgresql" else f"DELETE FROM {STAGED}")


def _beaten(survivorship: str, source_priority: int) -> tuple[str, list[Any]]:
    """When the current version beats a value: a steward override, or (priority mode) a higher priority."""
    if survivorship == SurvivorshipChoices.SOURCE_PRIORITY:
        return "g.is_override = TRUE OR g.source_priority > %s", [source_priority]
    return "g.is_override = TRUE", []


def _classify_postgresql(
    cursor: Any,
    unit: tuple[int, int, int],
    tenant_id: int,
    contract_id: int,
    survivorship: str,
    source_priority: int,
    now: datetime,
) -> tuple[int, int, int, int, int]:
    """Steps 1-4 in one statement: each staged value of the unit is ranked within it and looked up once in the
    current versions (through the partial unique index, whatever the planner's statistics say about a
    just-filled staging table: LATERAL … LIMIT 1 is an index probe per value, never a join that could
    turn quadratic). Only values that do not win get an outcome written; the current versions the winners
    replace get `recorded_to`. Returns (shadowed, unchanged, lost, superseded, replaced): `replaced` are
    versions an earlier unit of this batch wrote, `superseded` the others."""  # fmt: skip
    beaten, params_beaten = _beaten(survivorship, source_priority)
    batch_id = unit[0]
    cursor.execute(f"""
        WITH ranked AS (
            SELECT position, measure, key_hash, value, unit,
                   ROW_NUMBER() OVER (PARTITION BY key_hash ORDER BY position DESC) AS rank
            FROM {STAGED} s WHERE {IN_UNIT}
        ), classified AS MATERIALIZED (
            SELECT r.position, r.measure, g.id AS current_id, g.batch_id = %s AS own,
                   CASE WHEN r.rank > 1 THEN 'shadowed'
                        WHEN g.id IS NULL THEN ''
                        WHEN g.batch_id = %s AND g.is_override = FALSE THEN ''
                        WHEN g.is_override = FALSE AND (g.value = r.value OR (g.value IS NULL AND r.value IS NULL))
                             AND g.unit = r.unit THEN 'unchanged'
                        WHEN ({beaten}) THEN 'lost'
                        ELSE '' END AS outcome
            FROM ranked r
            LEFT JOIN LATERAL (
                SELECT g.id, g.batch_id, g.value, g.unit, g.is_override, g.source_priority FROM {GDP} g
                WHERE g.key_hash = r.key_hash AND g.recorded_to IS NULL
                  AND g.tenant_id = %s AND g.contract_id = %s  -- the hash holds both: a guard, never a filter
                LIMIT 1
            ) g ON r.rank = 1
        ), marked AS (
            UPDATE {STAGED} AS s SET outcome = c.outcome FROM classified c
            WHERE s.position = c.position AND s.measure = c.measure AND c.outcome <> ''
            RETURNING c.outcome
        ), superseded AS (
            UPDATE {GDP} AS g SET recorded_to = %s, superseded_by_batch_id = %s FROM classified c
            WHERE g.id = c.current_id AND c.outcome = ''
            RETURNING c.own
        )
        SELECT (SELECT COUNT(*) FROM marked WHERE outcome = 'shadowed'),
               (SELECT COUNT(*) FROM marked WHERE outcome = 'unchanged'),
               (SELECT COUNT(*) FROM marked WHERE outcome = 'lost'),
               (SELECT COUNT(*) FILTER (WHERE NOT own) FROM superseded),
               (SELECT COUNT(*) FILTER (WHERE own) FROM superseded)""",
        [*unit, batch_id, batch_id, *params_beaten, tenant_id, contract_id, now, batch_id])  # fmt: skip
    return tuple(cursor.fetchone())  # type: ignore[return-value]


def _classify(
    cursor: Any,
    unit: tuple[int, int, int],
    tenant_id: int,
    contract_id: int,
    survivorship: str,
    source_priority: int,
    now: datetime,
) -> tuple[int, int, int, int, int]:
    """Steps 1-4 statement by statement (SQLite). Returns (shadowed, unchanged, lost, superseded, replaced)."""
    batch_id = unit[0]
    scope = "g.tenant_id = %s AND g.contract_id = %s AND g.recorded_to IS NULL"
    params_scope = [tenant_id, contract_id]
    # A current version an earlier unit of this batch wrote is replaced whatever the value (see the module).
    foreign = "NOT (g.batch_id IS NOT NULL AND g.batch_id = %s AND g.is_override = FALSE)"
    shadowed = _execute(cursor, f"""
        UPDATE {STAGED} SET outcome = 'shadowed'
        WHERE rowid IN (
            SELECT rowid FROM (
                SELECT rowid, ROW_NUMBER() OVER (PARTITION BY key_hash ORDER BY position DESC) AS rank
                FROM {STAGED} s WHERE {IN_UNIT}
            ) ranked WHERE rank > 1
        )""", [*unit])  # fmt: skip
    unchanged = _execute(cursor, f"""
        UPDATE {STAGED} AS s SET outcome = 'unchanged' FROM {GDP} g
        WHERE {IN_UNIT} AND s.outcome = '' AND {scope} AND {KEY_MATCH} AND g.is_override = FALSE AND {foreign}
          AND (g.value = s.value OR (g.value IS NULL AND s.value IS NULL)) AND g.unit = s.unit""",
        [*unit, *params_scope, batch_id])  # fmt: skip
    beaten, params_beaten = _beaten(survivorship, source_priority)
    lost = _execute(cursor, f"""
        UPDATE {STAGED} AS s SET outcome = 'lost' FROM {GDP} g
        WHERE {IN_UNIT} AND s.outcome = '' AND {scope} AND {KEY_MATCH} AND {foreign} AND ({beaten})""",
        [*unit, *params_scope, batch_id, *params_beaten])  # fmt: skip
    supersede = f"""
        UPDATE {GDP} AS g SET recorded_to = %s, superseded_by_batch_id = %s FROM {STAGED} s
        WHERE {IN_UNIT} AND s.outcome = '' AND {scope} AND {KEY_MATCH} AND {{which}}"""
    replaced = _execute(cursor, supersede.format(which=f"NOT {foreign}"),
                        [now, batch_id, *unit, *params_scope, batch_id])  # fmt: skip
    superseded = _execute(cursor, supersede.format(which=foreign), [now, batch_id, *unit, *params_scope, batch_id])
    return shadowed, unchanged, lost, superseded, replaced


def _execute(cursor: Any, sql: str, params: list[Any]) -> int:
    cursor.execute(sql, params)
    return max(cursor.rowcount, 0)
