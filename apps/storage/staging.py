"""The staging table: a batch's GDP candidates, waiting in the merging session for their unit's merge.

A session's TEMP table (no WAL, no other session, gone with the connection): the merge reads it in
the same session, and nothing in it needs to outlive a run, since a resumed run validates its committed
chunks again and stages their values anew. `open_staging` creates it where the session has none and
empties it; the pipeline's merger calls it when a run starts (and `merge.discard_staged` when a unit
or the batch is done).
"""

from __future__ import annotations

from django.db import connection

STAGED = "aurum_staged_value"
# The columns a record's values share come first: COPY formats them once per record.
STAGED_COLUMNS = ("batch_id", "raw_record_id", "position", "quality_flags", "entity_key", "dimensions",
                  "dimensions_key", "observed_at", "outcome", "measure", "value", "unit", "key_hash")  # fmt: skip
_TYPES = {
    # outcome, set by the merge: "" (wins), "shadowed" (a later record of the unit has the same key),
    # "unchanged" (same value as the current version), "lost" (the current version wins).
    "postgresql": ("bigint", "bigint", "integer", "jsonb", "text", "jsonb", "text", "timestamptz", "text", "text",
                   "numeric", "text", "uuid"),
    # As Django stores these columns on SQLite, so that the merge copies them into the GDP table as they are.
    "sqlite": ("integer", "integer", "integer", "text", "text", "text", "text", "datetime", "text", "text",
               "decimal", "text", "char(32)"),
}  # fmt: skip


def open_staging() -> None:
    """This session's staging table, created where missing, and empty."""
    types = _TYPES["postgresql" if connection.vendor == "postgresql" else "sqlite"]
    columns = ", ".join(f"{name} {kind}" + ("" if name == "value" else " NOT NULL")
                        for name, kind in zip(STAGED_COLUMNS, types, strict=True))  # fmt: skip
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE TEMP TABLE IF NOT EXISTS {STAGED} ({columns})")
        cursor.execute(f"CREATE INDEX IF NOT EXISTS {STAGED}_by_position ON {STAGED} (position)")
        cursor.execute(f"DELETE FROM {STAGED}")  # noqa: S608 - a constant
