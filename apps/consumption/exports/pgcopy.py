"""CSV exports straight from PostgreSQL's `COPY … TO STDOUT`: the database formats every value, and
Python only passes the bytes on in large chunks.

The Python writer (`writers.write_csv`) formats a value in a few microseconds; for a million rows
of fifteen columns that is most of an export's time. Here each column is given an SQL expression
that prints exactly what the writer prints (the test suite compares both paths byte for byte), so
the path an export takes never shows in its file or its checksum:
- text: null and empty text are both an empty cell (`NULLIF(x, '')`), as `csv.writer` writes them;
- booleans: `true`/`false`; date-times: ISO 8601 with `T` and `+00:00` (the session is in UTC),
  trailing zeros of a fraction trimmed; decimals and JSON: PostgreSQL's own text, which is what
  the writer receives from the database anyway.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Sequence
from typing import Any

import psycopg
from django.db import connections, transaction
from django.db.models import CharField, F, Func, QuerySet, TextField, Value
from django.db.models.functions import Cast, NullIf
from psycopg import ClientCursor, generators, pq

CHUNK_BYTES = 256 * 1024


class IsoTimestamp(Func):
    """timestamptz as ISO 8601 text: PostgreSQL's own output (ISO DateStyle, the session in UTC:
    `2026-11-01 09:30:00.25+00`) with a `T` and a full offset; cheaper than to_json()."""

    template = "(replace((%(expressions)s)::text, ' ', 'T') || ':00')"
    output_field = TextField()


def _formatted(column: Any) -> Any:
    source = column.expression if column.expression is not None else F(column.path)
    if column.kind == "str":
        return NullIf(source, Value(""))
    if column.kind == "bool":
        return Cast(source, CharField())
    if column.kind == "datetime":
        return IsoTimestamp(source)
    return source


def copyable(queryset: QuerySet) -> bool:
    return connections[queryset.db].vendor == "postgresql"


class CopyCsv:
    """An iterable of CSV bytes (header first) whose `count` is the number of rows sent so far."""

    def __init__(self, queryset: QuerySet, columns: Sequence[Any]) -> None:
        self.queryset = queryset
        self.columns = columns
        self.count = 0

    def __iter__(self) -> Iterator[bytes]:
        header = io.StringIO()
        csv.writer(header, lineterminator="\n").writerow([column.name for column in self.columns])
        yield header.getvalue().encode("utf-8")
        aliases = {f"_copy_{index}": _formatted(column) for index, column in enumerate(self.columns)}
        sql, params = self.queryset.annotate(**aliases).values_list(*aliases).query.sql_with_params()
        connection = connections[self.queryset.db]
        connection.ensure_connection()
        # Atomic: a COPY ended early is cancelled, and the cancel must not spoil an enclosing
        # transaction. A client-side binding cursor: COPY takes no server-side parameters.
        statement = f"COPY ({sql}) TO STDOUT (FORMAT csv)"
        with transaction.atomic(using=self.queryset.db), ClientCursor(connection.connection) as cursor:
            # The text of a timestamptz follows these two settings; Django sets the zone, not the style.
            cursor.execute("SELECT set_config('DateStyle', 'ISO', true), set_config('TimeZone', 'UTC', true)")
            yield from self._rows(cursor, statement, params)

    def _rows(self, cursor: Any, statement: str, params: Any) -> Iterator[bytes]:
        with cursor.copy(statement, params) as copy:
            # psycopg reads a COPY row through a Python generator and a socket wait: ~3 µs a row,
            # as much as PostgreSQL spends writing it. Rows libpq has already received are taken
            # straight from it; only when none is buffered does psycopg wait for more (or the end).
            take = cursor.connection.pgconn.get_copy_data
            parts: list[Any] = []
            size = count = 0
            while True:
                length, row = take(1)  # 1: never block
                if length == 0:
                    row = copy.read()
                    if not row:
                        break
                elif length < 0:
                    _end_of_copy(cursor, copy, length)
                    break
                parts.append(row)
                size += len(row)
                count += 1
                if size >= CHUNK_BYTES:
                    self.count = count
                    yield b"".join(parts)
                    parts.clear()
                    size = 0
            self.count = count
            if parts:
                yield b"".join(parts)


def _end_of_copy(cursor: Any, copy: Any, length: int) -> None:
    """What psycopg does when it meets the end of a COPY itself: read the final result, then mark
    the copy finished (psycopg 3.3's `Copy._finished`) so that leaving the block reads no further."""
    pgconn = cursor.connection.pgconn
    if length == -2:
        raise psycopg.OperationalError(pgconn.get_error_message())
    results = cursor.connection.wait(generators.fetch_many(pgconn))
    if len(results) != 1 or results[0].status != pq.ExecStatus.COMMAND_OK:
        raise psycopg.errors.error_from_result(results[-1], encoding=pgconn._encoding)
    copy._finished = True
