"""Bulk writes of the pipeline: COPY on PostgreSQL, batched INSERTs elsewhere.

Per-row ORM saves cost ~100 µs each; the pipeline writes millions of rows, so it writes
lists of tuples here instead. Both paths take the same rows and give the same result.

On PostgreSQL the rows are formatted as COPY text here, in one pass per chunk, rather than
adapted value by value (`copy.write_row` and a `Jsonb` wrapper per JSON value cost several
times more). JSON values that were already serialized travel as `JsonText` (the text) or
`JsonDict` (a dict that carries its text), so nothing is serialized twice.
"""

from __future__ import annotations

import contextlib
import json
import queue
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.db import connection

from apps.storage.models import GoldenDataPoint, RawRecord, Rejection

RAW_COLUMNS = ("id", "tenant_id", "batch_id", "position", "line", "payload", "hash", "received_at")
REJECTION_COLUMNS = ("tenant_id", "batch_id", "raw_record_id", "position", "line", "field", "rule", "severity",
                     "message", "value")  # fmt: skip
JSON_COLUMNS = {"payload", "dimensions", "quality_flags"}
COPY_BLOCK_ROWS = 2000  # rows per write: the server parses a block while the next one is formatted


class JsonText(str):
    """A value of a JSON column given as its JSON text (written as is)."""

    __slots__ = ()


class JsonDict(dict):
    """A dict for a JSON column that carries its JSON text in `json` (set it once, never change the dict)."""

    __slots__ = ("json",)


def is_postgres() -> bool:
    return connection.vendor == "postgresql"


def next_ids(model: type, count: int) -> list[int]:
    """Reserve `count` primary keys, so rows can be written by COPY and referenced at once."""
    if count == 0:
        return []
    table = model._meta.db_table
    if is_postgres():
        with connection.cursor() as cursor:
            cursor.execute(  # the sequence looked up once, not once per value (5x faster); one array, not a row each
                "WITH s AS MATERIALIZED (SELECT pg_get_serial_sequence(%s, 'id')::regclass AS seq) "
                "SELECT array_agg(nextval(s.seq)) FROM s, generate_series(1, %s)",
                [table, count],
            )
            return cursor.fetchone()[0]
    # SQLite: the writer holds the database's write lock for the whole transaction, so the
    # next free ids are stable until commit.
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT COALESCE(MAX(id), 0) FROM {table}")
        start = cursor.fetchone()[0] + 1
    return list(range(start, start + count))


@contextlib.contextmanager
def ids_ahead(model: type, block: int) -> Iterator[Callable[[int], list[int]]]:
    """A function count → `count` new primary keys of `model` (next_ids). On PostgreSQL a thread of its own, on a
    connection of its own, reserves them ahead in blocks of `block`: the server runs a nextval per id (a 5,000-id
    block took ~12 ms on a busy server, ~2.5 s of waiting per 1,000,000 records when asked for chunk by chunk),
    now while the caller works on the chunk before. The ids of a block not taken are gaps, as a sequence leaves
    anyway; blocks follow each other, so the ids taken still grow with each call."""
    if not is_postgres():
        yield lambda count: next_ids(model, count)
        return
    reserver = _IdReserver(model, block)
    try:
        yield reserver.take
    finally:
        reserver.close()


class _IdReserver:
    def __init__(self, model: type, block: int) -> None:
        self._model, self._block = model, block
        self._ready: queue.Queue[list[int] | BaseException] = queue.Queue(maxsize=2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._work, name="id-reserver", daemon=True)
        self._thread.start()

    def take(self, count: int) -> list[int]:
        ids: list[int] = []
        while len(ids) < count:  # whole blocks, all of one session's sequence cache: the ids keep growing
            block = self._ready.get()
            if isinstance(block, BaseException):
                self._ready.put(block)  # for the next call too
                raise block
            ids += block
        return ids[:count]

    def close(self) -> None:
        self._stop.set()
        self._thread.join()

    def _work(self) -> None:
        try:
            while not self._stop.is_set():
                self._hand_over(next_ids(self._model, self._block))
        except BaseException as exc:  # raised again in the caller's thread, by `take`
            self._hand_over(exc)
        finally:
            connection.close()

    def _hand_over(self, item: list[int] | BaseException) -> None:
        while not self._stop.is_set():
            try:
                self._ready.put(item, timeout=0.1)
                return
            except queue.Full:
                continue


def write_rows(model: type | str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> int:
    """Append `rows` (tuples in `columns` order) to the model's table (or the table named); returns the count."""
    if not rows:
        return 0
    table = model if isinstance(model, str) else model._meta.db_table
    json_at = [i for i, column in enumerate(columns) if column in JSON_COLUMNS]
    if is_postgres():
        fields = [_json_field if column in JSON_COLUMNS else _field for column in columns]
        _copy(table, columns, ("\t".join([f(v) for f, v in zip(fields, row, strict=True)]) + "\n" for row in rows))
        return len(rows)
    placeholders = ", ".join(["%s"] * len(columns))
    sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({placeholders})"
    adapt_datetime = connection.ops.adapt_datetimefield_value
    prepared = []
    for row in rows:
        row = list(row)
        for i in json_at:
            value = row[i]
            if isinstance(value, JsonText):
                row[i] = str(value)
            elif isinstance(value, JsonDict):
                row[i] = value.json
            else:
                row[i] = json.dumps(value, default=str)
        for i, value in enumerate(row):
            if isinstance(value, datetime):
                row[i] = adapt_datetime(value)  # Django's own storage format (naive UTC text)
            elif isinstance(value, Decimal):
                row[i] = str(value)
        prepared.append(row)
    with connection.cursor() as cursor:
        cursor.executemany(sql, prepared)
    return len(rows)


def write_raw_records(rows: Sequence[Sequence[Any]]) -> int:
    """Rows in RAW_COLUMNS order; the payload a dict, or its JSON text as `JsonText`."""
    if not rows or not is_postgres():
        return write_rows(RawRecord, RAW_COLUMNS, rows)
    stamps: dict[Any, str] = {}

    def lines() -> Iterable[str]:
        for raw_id, tenant_id, batch_id, position, line, payload, digest, received_at in rows:
            stamp = stamps.get(received_at)
            if stamp is None:
                stamp = stamps[received_at] = _field(received_at)
            yield (f"{raw_id}\t{tenant_id}\t{batch_id}\t{position}\t{line}\t"
                   f"{_json_field(payload)}\t{_text(digest)}\t{stamp}\n")  # fmt: skip

    _copy(RawRecord._meta.db_table, RAW_COLUMNS, lines())
    return len(rows)


def write_rejections(rows: Sequence[Sequence[Any]]) -> int:
    return write_rows(Rejection, REJECTION_COLUMNS, rows)


GDP_COLUMNS = (
    # the same for a whole unit (merge.BatchMerge's `common`)
    "tenant_id", "contract_id", "contract_version_id", "source_id", "source_priority", "batch_id", "recorded_from",
    "is_override", "override_reason", "overridden_by_id",
    # per record
    "raw_record_id", "quality_flags", "entity_key", "dimensions", "observed_at",
    # per version
    "measure", "unit", "value", "key_hash", "recorded_to", "superseded_by_batch_id",
)  # fmt: skip
# recorded_from left to the column's default, the transaction's start (models.TransactionStart)
GDP_COLUMNS_RECORDED_AT_START = tuple(column for column in GDP_COLUMNS if column != "recorded_from")


def write_gdp_versions(
    common: Sequence[Any],
    records: Iterable[Sequence[Any]],
    stream: CopyStream | None = None,
    *,
    columns: Sequence[str] = GDP_COLUMNS,
) -> int:
    """GDP versions, in `columns` order (GDP_COLUMNS or GDP_COLUMNS_RECORDED_AT_START, the same as `stream`'s):
    `common` the unit's constant columns, then per record (raw_id, flags,
    entity_key, dimensions, dimensions_key, observed_at, [(measure, value, unit, key_hash[, recorded_to,
    superseded_by_batch_id]), …]), as merge.BatchMerge.add gives them (JsonDict dimensions, a flags list; the
    dimensions' key, which the key hash holds, is not written);
    a version without the last two is current. Into `stream` (gdp_stream) where one is given, on PostgreSQL.
    Returns the count of versions."""
    if not is_postgres():
        rows = [(*common, raw_id, flags, entity_key, dims, observed_at, version[0], version[2], version[1], version[3],
                 *(version[4:] or (None, None)))
                for raw_id, flags, entity_key, dims, _, observed_at, versions in records for version in versions]  # fmt: skip
        return write_rows(GoldenDataPoint, columns, rows)
    stamps: dict[Any, str] = {}
    measure_units: dict[tuple[str, str], str] = {}  # a contract version's few (measure, unit) pairs, escaped once
    dimension_texts: dict[str, str] = {}
    prefix = "\t".join(_field(value) for value in common)

    def stamp(moment: Any) -> str:
        if moment is None:
            return "\\N"
        formatted = stamps.get(moment)
        if formatted is None:
            formatted = stamps[moment] = _field(moment)
        return formatted

    lines: list[str] = []
    for raw_id, flags, entity_key, dims, dims_key, observed_at, versions in records:
        flag_text = "[]" if type(flags) is list and not flags else _json_field(flags)
        dims_text = dimension_texts.get(dims_key)  # the dimensions' key identifies the set
        if dims_text is None:
            dims_text = _json_field(dims)
            if len(dimension_texts) < 10_000:
                dimension_texts[dims_key] = dims_text
        shared = f"{prefix}\t{raw_id}\t{flag_text}\t{_text(entity_key)}\t{dims_text}\t{stamp(observed_at)}\t"
        for version in versions:
            if len(version) == 4:
                measure, value, unit, key = version
                later = "\\N\t\\N"
            else:
                measure, value, unit, key, recorded_to, superseded_by = version
                later = f"{stamp(recorded_to)}\t{_field(superseded_by)}"
            pair = measure_units.get((measure, unit))
            if pair is None:
                pair = measure_units[measure, unit] = f"{_text(measure)}\t{_text(unit)}"
            number = (
                "\\N" if value is None else str(value) if type(value) is int or value.is_finite() else _numeric(value)
            )
            lines.append(f"{shared}{pair}\t{number}\t{key}\t{later}\n")
    # In record order: the indexes that take every version start with the time (a unit's records are of a few
    # periods, so they land in a few places of each); sorting by key hash no longer makes their inserts cheaper.
    if stream is None:
        _copy(GoldenDataPoint._meta.db_table, columns, lines)
    else:
        stream.write(lines)
    return len(lines)


def gdp_stream(columns: Sequence[str] = GDP_COLUMNS) -> CopyStream | None:
    """An open COPY of GDP versions for write_gdp_versions, on PostgreSQL (None elsewhere)."""
    return CopyStream(GoldenDataPoint._meta.db_table, columns) if is_postgres() else None


# --------------------------------------------------------------------------------------------------
# COPY text format (PostgreSQL): tab-separated, \N for NULL, backslash escapes


_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _copy(table: str, columns: Sequence[str], lines: Iterable[str]) -> None:
    with CopyStream(table, columns) as stream:
        stream.write(lines)


class CopyStream:
    """A COPY FROM STDIN left open for several writes, until `close` (PostgreSQL). Each COPY waits at its end for
    the server to parse the last rows it sent; a stream kept open across writes waits once, so the server parses
    the rows of one write while the caller makes those of the next. No other statement can run on the connection
    meanwhile. As a context manager, it is closed on the way out (abandoned if an exception leaves it)."""

    def __init__(self, table: str, columns: Sequence[str]) -> None:
        self._open = contextlib.ExitStack()
        cursor = self._open.enter_context(connection.cursor())
        self._copy = self._open.enter_context(cursor.cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN"))

    def write(self, lines: Iterable[str]) -> None:
        """Send `lines` (COPY text, each ending in a newline) in blocks of COPY_BLOCK_ROWS."""
        block: list[str] = []
        for line in lines:
            block.append(line)
            if len(block) >= COPY_BLOCK_ROWS:
                self._copy.write("".join(block))
                block.clear()
        if block:
            self._copy.write("".join(block))

    def close(self, error: BaseException | None = None) -> None:
        """End the COPY, once the server has taken every row; with `error`, abandon it (its rows are not kept)."""
        self._open.__exit__(None if error is None else type(error), error, None)

    def __enter__(self) -> CopyStream:
        return self

    def __exit__(self, kind: Any, error: BaseException | None, traceback: Any) -> None:
        self.close(error)


def _text(value: str) -> str:
    """A string as a COPY text field: backslash, tab and line ends escaped; NUL refused as psycopg does."""
    if value.isprintable() and "\\" not in value:
        return value
    if "\x00" in value:
        from psycopg import DataError

        raise DataError("PostgreSQL text fields cannot contain NUL (0x00) bytes")
    return value.translate(_ESCAPES)


def _numeric(value: Any) -> str:
    if type(value) is Decimal and not value.is_finite():
        if value.is_nan():
            return "NaN"
        return "-Infinity" if value.is_signed() else "Infinity"
    return str(value)


def _field(value: Any) -> str:
    """Any non-JSON column value as a COPY text field."""
    if value is None:
        return "\\N"
    kind = type(value)
    if kind is str:
        return _text(value)
    if kind is bool:
        return "t" if value else "f"
    if kind is int or kind is Decimal or kind is float:
        return _numeric(value) if kind is not float else repr(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, dict | list):
        return _json_field(value)
    return _text(str(value))


def _json_field(value: Any) -> str:
    """A JSON column value as a COPY text field."""
    if value is None:
        return "\\N"
    kind = type(value)
    if kind is JsonText:
        text = value
    elif kind is JsonDict:
        text = value.json
    else:
        text = json.dumps(value)
    if "\\" in text or "\n" in text or "\r" in text or "\t" in text:  # e.g. JsonText with whitespace
        return text.translate(_ESCAPES)
    return text
