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

The SQL is the same on PostgreSQL and SQLite (≥ 3.33, for UPDATE … FROM).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection

from apps.host.choices import SurvivorshipChoices

GDP = "storage_goldendatapoint"
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
    scope = "g.tenant_id = %s AND g.contract_id = %s AND g.recorded_to IS NULL"
    params_scope = [tenant_id, contract_id]
    with connection.cursor() as cursor:
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
        beaten = "g.is_override = TRUE"
        params_beaten: list[Any] = []
        if survivorship == SurvivorshipChoices.SOURCE_PRIORITY:
            beaten += " OR g.source_priority > %s"
            params_beaten.append(source_priority)
        lost = _execute(cursor, f"""
            UPDATE {STAGED} AS s SET outcome = 'lost' FROM {GDP} g
            WHERE s.batch_id = %s AND s.outcome = '' AND {scope} AND {KEY_MATCH} AND ({beaten})""",
            [batch_id, *params_scope, *params_beaten])  # fmt: skip
        superseded = _execute(cursor, f"""
            UPDATE {GDP} AS g SET recorded_to = %s, superseded_by_batch_id = %s FROM {STAGED} s
            WHERE s.batch_id = %s AND s.outcome = '' AND {scope} AND {KEY_MATCH}""",
            [now, batch_id, batch_id, *params_scope])  # fmt: skip
        insert = f"""
            INSERT INTO {GDP} ({GDP_COLUMNS})
            SELECT %s, %s, %s, s.measure, s.entity_key, s.dimensions, s.dimensions_key, s.observed_at, s.value,
                   s.unit, s.quality_flags, %s, %s, s.batch_id, s.raw_record_id, %s, {{recorded_to}},
                   {{superseded_by}}, FALSE, '', NULL
            FROM {STAGED} s WHERE s.batch_id = %s AND s.outcome IN ({{outcomes}})"""
        common = [tenant_id, contract_id, contract_version_id, source_id, source_priority, now]
        created = _execute(cursor, insert.format(recorded_to="NULL", superseded_by="NULL", outcomes="''"),
                           [*common, batch_id])  # fmt: skip
        _execute(cursor, insert.format(recorded_to="%s", superseded_by="%s", outcomes="'shadowed'"),
                 [*common[:-1], now, now, batch_id, batch_id])  # fmt: skip
        _execute(cursor, insert.format(recorded_to="%s", superseded_by="NULL", outcomes="'lost'"),
                 [*common[:-1], now, now, batch_id])  # fmt: skip
        _execute(cursor, f"DELETE FROM {STAGED} WHERE batch_id = %s", [batch_id])
    return MergeResult(created=created, superseded=superseded, unchanged=unchanged, lost=lost, shadowed=shadowed)


def _execute(cursor: Any, sql: str, params: list[Any]) -> int:
    cursor.execute(sql, params)
    return max(cursor.rowcount, 0)
