"""Writers: rows in, bytes out, in chunks, in constant memory.

Each writer is `write(columns, rows) -> Iterator[bytes]`: `columns` name and type the values
of each row tuple, `rows` is an iterator (a database cursor read in chunks). Nothing holds
more than one chunk of rows (CSV, JSON, NDJSON), one row group (Parquet), or a temporary file
on disk (XLSX, whose zip container is assembled when the workbook closes).

Column kinds: `int`, `str`, `bool`, `decimal`, `datetime`, `json` (JSON text from the database).
"""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime
from decimal import Decimal
from itertools import islice
from typing import Any, Protocol

CHUNK_ROWS = 2000
PARQUET_ROW_GROUP = 32_768
PARQUET_SLICE = 8192  # rows turned into Arrow arrays at a time
FILE_CHUNK_BYTES = 256 * 1024
XLSX_MAX_ROWS = 1_048_575  # Excel's sheet limit, minus the header row


class ColumnLike(Protocol):
    name: str
    kind: str


CONTENT_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "json": "application/json",
    "ndjson": "application/x-ndjson",
    "parquet": "application/vnd.apache.parquet",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


def _iso(value: datetime | None) -> str | None:
    """ISO 8601 as PostgreSQL's JSON encoding writes it: a fraction's trailing zeros trimmed."""
    if value is None:
        return None
    text = value.isoformat()
    if value.microsecond:
        whole, rest = text.split(".", 1)
        fraction, offset = rest[:6].rstrip("0"), rest[6:]
        text = f"{whole}.{fraction}{offset}"
    return text


def _plain_decimal(value: Decimal | None) -> str | None:
    """Positional notation, never `1E-7`, as PostgreSQL prints a numeric."""
    return None if value is None else format(value, "f")


def _text_converters(columns: Sequence[ColumnLike]) -> list[tuple[int, Callable[[Any], Any]]]:
    """Per column index, how a value becomes text in CSV (only where str() would not do)."""
    converters: list[tuple[int, Callable[[Any], Any]]] = []
    for index, column in enumerate(columns):
        if column.kind == "datetime":
            converters.append((index, _iso))
        elif column.kind == "decimal":
            converters.append((index, _plain_decimal))
        elif column.kind == "bool":
            converters.append((index, lambda v: "" if v is None else ("true" if v else "false")))
    return converters


def write_csv(columns: Sequence[ColumnLike], rows: Iterable[Sequence[Any]]) -> Iterator[bytes]:
    """CSV with a header row, UTF-8, `\\n` line ends (as PostgreSQL's COPY writes them, see
    `pgcopy`); an empty cell for null and for empty text; RFC 4180 quoting."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([column.name for column in columns])
    converters = _text_converters(columns)
    rows = iter(rows)
    while chunk := list(islice(rows, CHUNK_ROWS)):
        if converters:
            converted = []
            for row in chunk:
                row = list(row)
                for index, convert in converters:
                    row[index] = convert(row[index])
                converted.append(row)
            chunk = converted
        writer.writerows(chunk)
        yield buffer.getvalue().encode("utf-8")
        buffer.seek(0)
        buffer.truncate()
    if buffer.tell():
        yield buffer.getvalue().encode("utf-8")


def _json_value(kind: str) -> Callable[[Any], Any]:
    if kind == "datetime":
        return _iso
    if kind == "decimal":  # as text, like the API: no precision lost to binary floating point
        return _plain_decimal
    if kind == "json":
        return lambda v: None if v is None else (json.loads(v) if isinstance(v, str) else v)
    return lambda v: v


def _json_objects(columns: Sequence[ColumnLike], rows: Iterable[Sequence[Any]]) -> Iterator[list[str]]:
    names = [column.name for column in columns]
    converters = [_json_value(column.kind) for column in columns]
    dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
    rows = iter(rows)
    while chunk := list(islice(rows, CHUNK_ROWS)):
        yield [
            dumps({name: convert(value) for name, convert, value in zip(names, converters, row, strict=True)})
            for row in chunk
        ]


def write_ndjson(columns: Sequence[ColumnLike], rows: Iterable[Sequence[Any]]) -> Iterator[bytes]:
    """One JSON object per line."""
    for lines in _json_objects(columns, rows):
        yield ("\n".join(lines) + "\n").encode("utf-8")


def write_json(columns: Sequence[ColumnLike], rows: Iterable[Sequence[Any]]) -> Iterator[bytes]:
    """One JSON array of objects, written element by element."""
    yield b"["
    first = True
    for lines in _json_objects(columns, rows):
        text = ",\n".join(lines)
        yield (("\n" if first else ",\n") + text).encode("utf-8")
        first = False
    yield b"\n]\n" if not first else b"]\n"


class _Sink:
    """A write-only file for pyarrow whose bytes are taken out after each row group."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.closed = False
        self.position = 0

    def write(self, data: Any) -> int:
        chunk = bytes(data)
        self.parts.append(chunk)
        self.position += len(chunk)
        return len(chunk)

    def tell(self) -> int:
        return self.position

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def readable(self) -> bool:
        return False

    def drain(self) -> bytes:
        data = b"".join(self.parts)
        self.parts.clear()
        return data


def parquet_schema(columns: Sequence[ColumnLike]) -> Any:
    import pyarrow as pa

    types = {
        "int": pa.int64(),
        "str": pa.string(),
        "bool": pa.bool_(),
        "decimal": pa.decimal128(30, 10),
        "datetime": pa.timestamp("us", tz="UTC"),
        "json": pa.string(),  # JSON text, as stored
    }
    return pa.schema([pa.field(column.name, types[column.kind]) for column in columns])


def write_parquet(columns: Sequence[ColumnLike], rows: Iterable[Sequence[Any]]) -> Iterator[bytes]:
    """Parquet (zstd), one row group per 32,768 rows, bytes handed out after each row group.

    Rows become Arrow arrays a slice at a time: a row group waits as compact Arrow batches, not
    as 32,768 tuples of Python objects (which would cost several times its encoded size)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    # Arrow's default pool (mimalloc) keeps the segments a row group used: some 20 MB more peak RSS
    # over a million rows than the C library's allocator, which hands them back.
    pa.set_memory_pool(pa.system_memory_pool())
    schema = parquet_schema(columns)
    sink = _Sink()
    writer = pq.ParquetWriter(pa.PythonFile(sink, mode="w"), schema, compression="zstd")
    batches: list[Any] = []
    buffered = 0
    try:
        rows = iter(rows)
        while chunk := list(islice(rows, PARQUET_SLICE)):
            arrays = [
                pa.array(values, type=field.type)
                for values, field in zip(zip(*chunk, strict=True), schema, strict=True)
            ]
            batches.append(pa.RecordBatch.from_arrays(arrays, schema=schema))
            buffered += len(chunk)
            del chunk, arrays
            if buffered >= PARQUET_ROW_GROUP:
                writer.write_table(pa.Table.from_batches(batches, schema=schema))
                batches.clear()
                buffered = 0
                yield sink.drain()
        if batches:
            writer.write_table(pa.Table.from_batches(batches, schema=schema))
            batches.clear()
    finally:
        writer.close()
    yield sink.drain()


def write_xlsx(columns: Sequence[ColumnLike], rows: Iterable[Sequence[Any]]) -> Iterator[bytes]:
    """One worksheet, header row first. XlsxWriter's constant-memory mode spools rows to a
    temporary file; the workbook is sent once it is closed. Text is never read as a formula,
    URL or number; date-times are written in UTC; decimals become Excel numbers (15 digits)."""
    import xlsxwriter

    handle, path = tempfile.mkstemp(prefix="aurum-export-", suffix=".xlsx")
    os.close(handle)
    try:
        workbook = xlsxwriter.Workbook(path, {
            "constant_memory": True, "strings_to_formulas": False, "strings_to_urls": False,
            "strings_to_numbers": False, "remove_timezone": True, "default_date_format": "yyyy-mm-dd hh:mm:ss",
        })  # fmt: skip
        sheet = workbook.add_worksheet("export")
        sheet.write_row(0, 0, [column.name for column in columns])
        decimals = [index for index, column in enumerate(columns) if column.kind == "decimal"]
        number = 0
        for number, row in enumerate(rows, start=1):
            if number > XLSX_MAX_ROWS:
                raise ValueError(f"An XLSX sheet holds at most {XLSX_MAX_ROWS:,} rows.")
            if decimals:
                row = list(row)
                for index in decimals:
                    if row[index] is not None:
                        row[index] = float(row[index])
            sheet.write_row(number, 0, row)
        workbook.close()
        with open(path, "rb") as stream:
            while data := stream.read(FILE_CHUNK_BYTES):
                yield data
    finally:
        os.unlink(path)


WRITERS: dict[str, Callable[[Sequence[ColumnLike], Iterable[Sequence[Any]]], Iterator[bytes]]] = {
    "csv": write_csv,
    "json": write_json,
    "ndjson": write_ndjson,
    "parquet": write_parquet,
    "xlsx": write_xlsx,
}
