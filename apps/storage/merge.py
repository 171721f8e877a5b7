"""The survivorship merge: a batch's staged values become Golden Data Points, set-based.

One transaction per batch, a handful of statements whatever its size:

1. shadowed  – within the batch, only the last record of a GDP key can win;
2. unchanged – a value equal to the current version changes no belief (no new version);
3. lost      – the current version wins: a steward override, or (priority mode) a source
               of higher priority;
4. the current versions the winners replace get `recorded_to = now` (kept, bitemporal);
5. winners are inserted as current versions;
6. shadowed and lost values are kept as versions that were never current
   (recorded_from = recorded_to = now), so lineage shows they arrived and lost, and a
   removed override can fall back to the best of them.

On PostgreSQL steps 1-4 are one statement that looks each staged value up once in the
partial unique index of current versions (see `_classify_postgresql`); SQLite (≥ 3.33, for
UPDATE … FROM) runs them as four statements. Steps 5-6 are the same SQL on both, and skip
the inserts that have nothing to insert.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection

from apps.host.choices import SurvivorshipChoices

GDP = "storage_goldendatapoint"
# For the rest of the merge's transaction (SET LOCAL): ranking a batch's staged values sorts all of them,
# and with the default 4 MB a 100,000-record batch (300,000 values) sorted on disk (36 MB), a third of
# the classification. JIT is off: the statements are simple and it only adds compile time.
MERGE_WORK_MEM = "128MB"
STAGED = "storage_stagedvalue"
KEY_MATCH = (
    "g.measure = s.measure AND g.entity_key = s.entity_key AND g.dimensions_key = s.dimensions_key "
    "AND g.observed_at = s.observed_at"
)
GDP_COLUMNS = (
    "tenant_id, contract_id, contract_version_id, measure, entity_key, dimensions, dimensions_key, observed_at, "
    "value, unit, quality_flags, source_id, source_priority, batch_id, raw_record_id, recorded_from, recorded_to, "
    "superseded_by_batch_id, is_override, override_reason, overridden_by_id"
)


@dataclass(frozen=True)
class MergeResult:
    created: int  # new current versions
    superseded: int  # earlier current versions this batch replaced
    unchanged: int  # values equal to the current version
    lost: int  # values the current version (override or higher priority) beat
    shadowed: int  # values a later record of the same batch replaced


def refresh_staging_statistics() -> None:
    """ANALYZE the staging table (PostgreSQL), outside the merge's transaction and before it.

    The staging table is filled and emptied by every batch, so its statistics always describe some
    other batch: the planner would take this batch's million rows for a handful, and a join on them
    could become quadratic. ANALYZE samples a bounded number of rows (well under a second); it is run
    outside the merge's transaction so that its lock (which ANALYZEs of concurrent merges wait for) is
    held only while it runs."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {STAGED}")


def merge_batch(
    *,
    batch_id: int,
    tenant_id: int,
    contract_id: int,
    contract_version_id: int,
    source_id: int,
    source_priority: int,
    survivorship: str,
    now: datetime,
) -> MergeResult:
    """Merge the batch's staged values; the caller holds the transaction (and any lock)."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT set_config('work_mem', %s, true), set_config('jit', 'off', true)", [MERGE_WORK_MEM])
            shadowed, unchanged, lost, superseded = _classify_postgresql(
                cursor, batch_id, tenant_id, contract_id, survivorship, source_priority, now
            )
        else:
            shadowed, unchanged, lost, superseded = _classify(
                cursor, batch_id, tenant_id, contract_id, survivorship, source_priority, now
            )
        insert = f"""
            INSERT INTO {GDP} ({GDP_COLUMNS})
            SELECT %s, %s, %s, s.measure, s.entity_key, s.dimensions, s.dimensions_key, s.observed_at, s.value,
                   s.unit, s.quality_flags, %s, %s, s.batch_id, s.raw_record_id, %s, {{recorded_to}},
                   {{superseded_by}}, FALSE, '', NULL
            FROM {STAGED} s WHERE s.batch_id = %s AND s.outcome IN ({{outcomes}})"""
        common = [tenant_id, contract_id, contract_version_id, source_id, source_priority, now]
        created = _execute(cursor, insert.format(recorded_to="NULL", superseded_by="NULL", outcomes="''"),
                           [*common, batch_id])  # fmt: skip
        if shadowed:
            _execute(cursor, insert.format(recorded_to="%s", superseded_by="%s", outcomes="'shadowed'"),
                     [*common[:-1], now, now, batch_id, batch_id])  # fmt: skip
        if lost:
            _execute(cursor, insert.format(recorded_to="%s", superseded_by="NULL", outcomes="'lost'"),
                     [*common[:-1], now, now, batch_id])  # fmt: skip
        _execute(cursor, f"DELETE FROM {STAGED} WHERE batch_id = %s", [batch_id])
    return MergeResult(created=created, superseded=superseded, unchanged=unchanged, lost=lost, shadowed=shadowed)


def _beaten(survivorship: str, source_priority: int) -> tuple[str, list[Any]]:
    """When the current version beats a value: a steward override, or (priority mode) a higher priority."""
    if survivorship == SurvivorshipChoices.SOURCE_PRIORITY:
        return "g.is_override = TRUE OR g.source_priority > %s", [source_priority]
    return "g.is_override = TRUE", []


def _classify_postgresql(
    cursor: Any,
    batch_id: int,
    tenant_id: int,
    contract_id: int,
    survivorship: str,
    source_priority: int,
    now: datetime,
) -> tuple[int, int, int, int]:
    """Steps 1-4 in one statement: each staged value is ranked within the batch and looked up once in the
    current versions (through the partial unique index, whatever the planner's statistics say about a
    just-filled staging table: LATERAL … LIMIT 1 is an index probe per value, never a join that could
    turn quadratic). Only values that do not win get an outcome written; the current versions the winners
    replace get `recorded_to`. Returns (shadowed, unchanged, lost, superseded)."""  # fmt: skip
    beaten, params_beaten = _beaten(survivorship, source_priority)
    cursor.execute(f"""
        WITH ranked AS (
            SELECT id, measure, entity_key, dimensions_key, observed_at, value, unit,
                   ROW_NUMBER() OVER (
                       PARTITION BY measure, entity_key, dimensions_key, observed_at ORDER BY position DESC
                   ) AS rank
            FROM {STAGED} WHERE batch_id = %s
        ), classified AS MATERIALIZED (
            SELECT r.id, g.id AS current_id,
                   CASE WHEN r.rank > 1 THEN 'shadowed'
                        WHEN g.id IS NULL THEN ''
                        WHEN g.is_override = FALSE AND (g.value = r.value OR (g.value IS NULL AND r.value IS NULL))
                             AND g.unit = r.unit THEN 'unchanged'
                        WHEN ({beaten}) THEN 'lost'
                        ELSE '' END AS outcome
            FROM ranked r
            LEFT JOIN LATERAL (
                SELECT g.id, g.value, g.unit, g.is_override, g.source_priority FROM {GDP} g
                WHERE g.tenant_id = %s AND g.contract_id = %s AND g.measure = r.measure
                  AND g.entity_key = r.entity_key AND g.dimensions_key = r.dimensions_key
                  AND g.observed_at = r.observed_at AND g.recorded_to IS NULL
                LIMIT 1
            ) g ON r.rank = 1
        ), marked AS (
            UPDATE {STAGED} AS s SET outcome = c.outcome FROM classified c
            WHERE s.id = c.id AND c.outcome <> ''
            RETURNING c.outcome
        ), superseded AS (
            UPDATE {GDP} AS g SET recorded_to = %s, superseded_by_batch_id = %s FROM classified c
            WHERE g.id = c.current_id AND c.outcome = ''
            RETURNING 1
        )
        SELECT (SELECT COUNT(*) FROM marked WHERE outcome = 'shadowed'),
               (SELECT COUNT(*) FROM marked WHERE outcome = 'unchanged'),
               (SELECT COUNT(*) FROM marked WHERE outcome = 'lost'),
               (SELECT COUNT(*) FROM superseded)""",
        [batch_id, *params_beaten, tenant_id, contract_id, now, batch_id])  # fmt: skip
    return tuple(cursor.fetchone())  # type: ignore[return-value]


def _classify(
    cursor: Any,
    batch_id: int,
    tenant_id: int,
    contract_id: int,
    survivorship: str,
    source_priority: int,
    now: datetime,
) -> tuple[int, int, int, int]:
    """Steps 1-4 statement by statement (SQLite). Returns (shadowed, unchanged, lost, superseded)."""
    scope = "g.tenant_id = %s AND g.contract_id = %s AND g.recorded_to IS NULL"
    params_scope = [tenant_id, contract_id]
    shadowed = _execute(cursor, f"""
        UPDATE {STAGED} SET outcome = 'shadowed'
        WHERE batch_id = %s AND id IN (
            SELECT id FROM (
                SELECT id, ROW_NUMBER() OVER (
                    PARTITION BY measure, entity_key, dimensions_key, observed_at ORDER BY position DESC
                ) AS rank
                FROM {STAGED} WHERE batch_id = %s
            ) ranked WHERE rank > 1
        )""", [batch_id, batch_id])  # fmt: skip
    unchanged = _execute(cursor, f"""
        UPDATE {STAGED} AS s SET outcome = 'unchanged' FROM {GDP} g
        WHERE s.batch_id = %s AND s.outcome = '' AND {scope} AND {KEY_MATCH} AND g.is_override = FALSE
          AND (g.value = s.value OR (g.value IS NULL AND s.value IS NULL)) AND g.unit = s.unit""",
        [batch_id, *params_scope])  # fmt: skip
    beaten, params_beaten = _beaten(survivorship, source_priority)
    lost = _execute(cursor, f"""
        UPDATE {STAGED} AS s SET outcome = 'lost' FROM {GDP} g
        WHERE s.batch_id = %s AND s.outcome = '' AND {scope} AND {KEY_MATCH} AND ({beaten})""",
        [batch_id, *params_scope, *params_beaten])  # fmt: skip
    superseded = _execute(cursor, f"""
        UPDATE {GDP} AS g SET recorded_to = %s, superseded_by_batch_id = %s FROM {STAGED} s
        WHERE s.batch_id = %s AND s.outcome = '' AND {scope} AND {KEY_MATCH}""",
        [now, batch_id, batch_id, *params_scope])  # fmt: skip
    return shadowed, unchanged, lost, superseded


def _execute(cursor: Any, sql: str, params: list[Any]) -> int:
    cursor.execute(sql, params)
    return max(cursor.rowcount, 0)
