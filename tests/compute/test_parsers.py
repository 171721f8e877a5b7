"""Ingested payloads are read as a stream of records: JSON array, NDJSON or CSV, in bounded memory.

Every problem is a MalformedPayload (400) that says where: the 1-based line, the column when
known and the record position when known.
"""

from __future__ import annotations

import codecs
import contextlib
import hashlib
import io
import json
import os
import time
import tracemalloc
from collections.abc import Iterable, Iterator
from typing import Any

import pytest

from apps.compute.ingest import parsers
from apps.compute.ingest.parsers import (
    MalformedPayload,
    ParsedRecord,
    PayloadTooLarge,
    SpooledPayload,
    count_records,
    iter_records,
    sniff_format,
    spool,
)
from apps.kernel.errors import DomainError


class GeneratedStream(io.RawIOBase):
    """A read-only binary stream served from a generator of byte blocks: never held whole."""

    def __init__(self, blocks: Iterable[bytes]) -> None:
        self._blocks = iter(blocks)
        self._rest = b""
        self.served = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[override]
        while not self._rest:
            self._rest = next(self._blocks, b"")
            if not self._rest:
                return 0
        size = min(len(buffer), len(self._rest))
        buffer[:size] = self._rest[:size]
        self._rest = self._rest[size:]
        self.served += size
        return size


class RecordingStream(io.BytesIO):
    """A BytesIO that remembers the size of every read."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.sizes: list[int | None] = []

    def read(self, size: int | None = -1) -> bytes:
        self.sizes.append(size)
        return super().read(size)


def records(data: bytes | str, fmt: str, **options) -> list[ParsedRecord]:
    if isinstance(data, str):
        data = data.encode()
    return list(iter_records(io.BytesIO(data), fmt, **options))


def failure(data: bytes | str, fmt: str, **options) -> tuple[list[ParsedRecord], MalformedPayload]:
    """The records read before the payload turned out malformed, and the error."""
    if isinstance(data, str):
        data = data.encode()
    read: list[ParsedRecord] = []
    with pytest.raises(MalformedPayload) as info:
        read.extend(iter_records(io.BytesIO(data), fmt, **options))
    return read, info.value


def summary(parsed: list[ParsedRecord]) -> list[tuple[int, int, dict]]:
    return [(r.position, r.line, r.payload) for r in parsed]


PRETTY_ARRAY = """[
  {"id": 1, "name": "Ada"},
  {
    "id": 2,
    "name": "Grace"
  },

  {"id": 3, "name": "Linus", "tags": ["a", "b"]}
]
"""

# Values chosen so that chunk boundaries fall inside multi-byte characters, escapes, numbers and literals.
TRICKY_ARRAY = (
    '[{"name": "Zoë Ångström", "city": "東京", "escaped": "\\u00e9\\"\\\\\\n", "amount": -12345.678e-3,'
    ' "flags": [true, false, null], "nested": {"deep": [{"x": 1}, []]}},\n'
    '{"emoji": "🙂", "empty": {}, "zero": 0}]'
)


# --------------------------------------------------------------------------------------------------
# JSON array


def test_a_json_array_is_read_record_by_record():
    assert summary(records(PRETTY_ARRAY, "json")) == [
        (0, 2, {"id": 1, "name": "Ada"}),
        (1, 3, {"id": 2, "name": "Grace"}),
        (2, 8, {"id": 3, "name": "Linus", "tags": ["a", "b"]}),
    ]


def test_a_record_is_a_frozen_value():
    record = records('[{"a": 1}]', "json")[0]
    assert record == ParsedRecord(position=0, line=1, payload={"a": 1})
    with pytest.raises(AttributeError):
        record.line = 2  # type: ignore[misc]


def test_the_stream_is_read_in_chunks_never_whole():
    stream = RecordingStream(PRETTY_ARRAY.encode())
    assert len(list(iter_records(stream, "json", chunk_size=16))) == 3
    assert stream.sizes and set(stream.sizes) == {16}


@pytest.mark.parametrize("chunk_size", [1, 2, 3, 7, 64])
def test_a_json_array_spread_over_tiny_chunks_gives_the_same_records(chunk_size):
    assert records(PRETTY_ARRAY, "json", chunk_size=chunk_size) == records(PRETTY_ARRAY, "json")


def test_an_element_split_across_chunk_boundaries_is_reassembled():
    expected = json.loads(TRICKY_ARRAY)
    size = len(TRICKY_ARRAY.encode())
    for chunk_size in range(1, size + 2):
        parsed = records(TRICKY_ARRAY, "json", chunk_size=chunk_size)
        assert [r.payload for r in parsed] == expected, chunk_size
        assert [r.line for r in parsed] == [1, 2], chunk_size


def test_an_element_larger_than_many_chunks_is_read_whole():
    big = {"blob": "x" * 100_000, "numbers": list(range(5_000))}
    payload = json.dumps([{"a": 1}, big, {"b": 2}])
    assert [r.payload for r in records(payload, "json", chunk_size=1000)] == [{"a": 1}, big, {"b": 2}]


@pytest.mark.parametrize("body", ["[]", "  [ \n ]  \n", "\n[\n]"])
def test_an_empty_json_array_yields_nothing(body):
    assert records(body, "json") == []


def test_a_missing_comma_is_reported_with_its_line_and_column():
    body = '[\n  {"id": 1, "name": "a"},\n  {"id": 2 "name": "b"}\n]\n'
    for chunk_size in (1, 7, 1 << 20):
        read, error = failure(body, "json", chunk_size=chunk_size)
        assert error.detail == "line 3, column 12: Expecting ',' delimiter"
        assert (error.line, error.column) == (3, 12)
        assert [r.payload for r in read] == [{"id": 1, "name": "a"}]


def test_a_malformed_payload_is_a_400_problem_that_says_where():
    _, error = failure('[\n{"a": 1}\n{"b": 2}]', "json")
    assert isinstance(error, DomainError)
    assert (error.status_code, error.slug, error.title) == (400, "malformed-payload", "Malformed payload")
    assert error.extensions == {"line": 3, "column": 1}
    assert error.detail == "line 3, column 1: Expecting ',' delimiter"


SYNTAX_ERRORS = [
    '[\n  {"id": 1},\n  {"id": 2,}\n]',  # trailing comma in an object
    '[{"id": 1},]',  # trailing comma in the array
    '[{"id": 1}, {"name": "unterminated}]',
    '[{"id": 1}, {"name": "a\nb"}]',  # raw newline in a string
    '[{"ok": tru}]',
    '[{"id": 1} {"id": 2}]',
    '[{"id": 1}',
    "[",
    "",
    "   \n  ",
    '[{"a": 1}]\n\n  x',
    '[{"a": 1}] [',
    '[{"a": 1}, {"b": [1, 2}]',
    '[{"a": "\\x"}]',
    '[{"a": 1.}]',
    "[{'a': 1}]",
    '  ]  [{"a": 1}]',
]


@pytest.mark.parametrize("body", SYNTAX_ERRORS)
def test_json_syntax_errors_are_located_like_the_json_module_does(body):
    with pytest.raises(json.JSONDecodeError) as reference:
        json.loads(body)
    for chunk_size in (1, 2, 5, 7, 1 << 20):
        _, error = failure(body, "json", chunk_size=chunk_size)
        assert (error.line, error.column) == (reference.value.lineno, reference.value.colno), (body, chunk_size)


def test_trailing_garbage_after_the_closing_bracket_is_refused():
    _, error = failure('[{"a": 1}]\n\n  {"b": 2}\n', "json")
    assert error.detail == "line 3, column 3: Extra data after the end of the array"


def test_only_whitespace_may_follow_the_closing_bracket():
    assert len(records('[{"a": 1}]' + " \n\t\r\n" * 1000, "json", chunk_size=7)) == 1


def test_a_body_that_is_not_an_array_is_refused():
    _, error = failure('{"a": 1}\n{"a": 2}\n', "json")
    assert error.detail.startswith("line 1, column 1: expected '[': the payload must be a JSON array of objects")
    assert "NDJSON" in error.detail


@pytest.mark.parametrize(
    ("element", "kind"),
    [
        ('"five"', "a JSON string"),
        ("5", "a JSON number"),
        ("5.5", "a JSON number"),
        ("[1, 2]", "a JSON array"),
        ("true", "JSON true"),
        ("null", "JSON null"),
    ],
)
def test_an_element_that_is_not_an_object_is_refused_with_its_position(element, kind):
    body = "[\n" + "".join(f'  {{"n": {i}}},\n' for i in range(5)) + f"  {element}\n]"
    read, error = failure(body, "json", chunk_size=3)
    assert len(read) == 5
    assert error.detail == f"line 7: record 5 is {kind}, not an object"
    assert (error.line, error.position) == (7, 5)
    assert error.extensions == {"line": 7, "position": 5}


def test_a_byte_order_mark_before_the_array_is_skipped():
    data = codecs.BOM_UTF8 + b'[{"a": 1}]'
    for chunk_size in (1, 2, 3, 4, 1 << 20):
        assert records(data, "json", chunk_size=chunk_size) == [ParsedRecord(0, 1, {"a": 1})]


def test_other_encodings_are_decoded():
    assert records('[{"a": "é"}]'.encode("utf-16"), "json", encoding="utf-16", chunk_size=3)[0].payload == {"a": "é"}
    assert records(b"name\ncaf\xe9\n", "csv", encoding="latin-1")[0].payload == {"name": "café"}


# --------------------------------------------------------------------------------------------------
# NDJSON

NDJSON = '{"id": 1}\n\n{"id": 2, "note": "two"}\r\n   \n{"id": 3}\n\n'


def test_ndjson_is_read_line_by_line_and_blank_lines_still_count():
    assert summary(records(NDJSON, "ndjson")) == [
        (0, 1, {"id": 1}),
        (1, 3, {"id": 2, "note": "two"}),
        (2, 5, {"id": 3}),
    ]


@pytest.mark.parametrize("chunk_size", range(1, 12))
def test_ndjson_lines_split_across_chunks_are_reassembled(chunk_size):
    assert records(NDJSON, "ndjson", chunk_size=chunk_size) == records(NDJSON, "ndjson")
    assert records(TRICKY_ARRAY[1:-1].replace("},\n{", "}\n{"), "ndjson", chunk_size=chunk_size) == [
        ParsedRecord(i, i + 1, payload) for i, payload in enumerate(json.loads(TRICKY_ARRAY))
    ]


def test_the_last_ndjson_line_needs_no_line_end():
    assert summary(records('{"a": 1}\r\n{"b": 2}', "ndjson", chunk_size=4)) == [(0, 1, {"a": 1}), (1, 2, {"b": 2})]
    assert records("", "ndjson") == []
    assert records("\n\r\n  \n", "ndjson") == []


def test_a_bad_ndjson_line_is_reported_with_its_line_and_column():
    body = '{"id": 1}\n\n{"id": 3 "name": "c"}\n{"id": 4}\n'
    for chunk_size in (1, 5, 1 << 20):
        read, error = failure(body, "ndjson", chunk_size=chunk_size)
        assert error.detail == "line 3, column 10: Expecting ',' delimiter"
        assert (error.line, error.column, error.position) == (3, 10, 1)
        assert [r.payload for r in read] == [{"id": 1}]


def test_an_indented_ndjson_line_reports_columns_on_the_line():
    _, error = failure('{"a": 1}\n   {"b": }\n', "ndjson")
    assert (error.line, error.column) == (2, 10)


def test_two_values_on_one_ndjson_line_are_refused():
    _, error = failure('{"a": 1}\n{"b": 2} {"c": 3}\n', "ndjson")
    assert error.detail == "line 2, column 10: Extra data"


def test_an_ndjson_line_that_is_not_an_object_is_refused():
    _, error = failure('{"a": 1}\n\n["a"]\n', "ndjson")
    assert error.detail == "line 3: record 1 is a JSON array, not an object"
    assert error.position == 1


def test_a_pretty_printed_object_is_not_ndjson():
    _, error = failure('{\n  "a": 1\n}\n', "ndjson")
    assert error.line == 1


# --------------------------------------------------------------------------------------------------
# CSV


def test_a_csv_row_becomes_a_record_of_strings_exactly_as_written():
    body = 'id,name,amount,note\r\n1,Ada, 12.50 ,\r\n007,"Hopper, Grace",,"said ""hi"""\r\n'
    assert summary(records(body, "csv")) == [
        (0, 2, {"id": "1", "name": "Ada", "amount": " 12.50 ", "note": ""}),
        (1, 3, {"id": "007", "name": "Hopper, Grace", "amount": "", "note": 'said "hi"'}),
    ]


def test_a_quoted_field_may_span_lines_and_later_lines_are_still_counted():
    body = 'id,comment\n1,"first line\nsecond line\r\nthird"\n2,plain\n\n3,"x\ny"\n4,last'
    expected = [
        (0, 2, {"id": "1", "comment": "first line\nsecond line\r\nthird"}),
        (1, 5, {"id": "2", "comment": "plain"}),
        (2, 7, {"id": "3", "comment": "x\ny"}),
        (3, 9, {"id": "4", "comment": "last"}),
    ]
    for chunk_size in (1, 2, 3, 5, 1 << 20):
        assert summary(records(body, "csv", chunk_size=chunk_size)) == expected, chunk_size


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"])
def test_csv_line_ends_split_across_chunks_make_no_phantom_rows(newline):
    body = newline.join(["a,b", "1,2", "3,4", "5,6"]) + newline
    for chunk_size in range(1, 8):
        assert summary(records(body, "csv", chunk_size=chunk_size)) == [
            (0, 2, {"a": "1", "b": "2"}),
            (1, 3, {"a": "3", "b": "4"}),
            (2, 4, {"a": "5", "b": "6"}),
        ], chunk_size


def test_a_row_with_the_wrong_number_of_values_is_refused_with_its_line():
    body = "a,b,c,d\n" + "1,2,3,4\n" * 8 + '1,"two\nlines",3,4\n' + "1,2,3,4,5\n" + "1,2,3,4\n"
    read, error = failure(body, "csv", chunk_size=10)
    assert len(read) == 9
    assert error.detail == "line 12: 5 values for 4 columns (header: a, b, c, d)"
    assert (error.line, error.position) == (12, 9)


def test_a_short_row_is_refused_too():
    _, error = failure("a,b\n1\n", "csv")
    assert error.detail == "line 2: 1 value for 2 columns (header: a, b)"


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ("", "line 1: no header row: the payload is empty"),
        ("\n\n", "line 2: no header row: the payload is empty"),
        ("id,name,id\n1,a,2\n", "line 1: duplicate column names in the header: id"),
        ("id,,name\n", "line 1: empty column name in the header (column 2 of 3)"),
        ("\nid, ,\n", "line 2: empty column name in the header (columns 2, 3 of 3)"),
    ],
)
def test_header_problems_are_refused(body, detail):
    _, error = failure(body, "csv")
    assert error.detail == detail


def test_blank_lines_are_skipped_and_a_header_alone_yields_nothing():
    assert records("a,b\n", "csv") == []
    assert summary(records("\na,b\n\n1,2\n\n", "csv")) == [(0, 4, {"a": "1", "b": "2"})]


@pytest.mark.parametrize("delimiter", [";", "\t", "|"])
def test_another_delimiter_can_be_chosen(delimiter):
    body = f"id{delimiter}price\n1{delimiter}3,50\n"
    assert records(body, "csv", csv_delimiter=delimiter)[0].payload == {"id": "1", "price": "3,50"}


def test_a_byte_order_mark_is_not_part_of_the_first_column_name():
    data = codecs.BOM_UTF8 + "id;nom\r\n1;Zoé\r\n".encode()
    for chunk_size in (1, 2, 1 << 20):
        assert records(data, "csv", csv_delimiter=";", chunk_size=chunk_size)[0].payload == {"id": "1", "nom": "Zoé"}


def test_an_unclosed_quote_is_refused():
    _, error = failure('a,b\n1,2\n3,"never closed\n4,5\n', "csv")
    assert error.detail == (
        "line 4: unexpected end of data: a quoted field of the record starting on line 3 is never closed"
    )


def test_text_after_a_closing_quote_is_refused():
    _, error = failure('a,b\n1,"x"y\n', "csv")
    assert error.line == 2
    assert "expected after" in error.detail


# --------------------------------------------------------------------------------------------------
# Encoding, options


@pytest.mark.parametrize(
    ("fmt", "body"),
    [
        ("json", b'[{"a": 1},\n  {"b": "caf\xff"}]'),
        ("ndjson", b'{"a": 1}\n  {"b": "caf\xff"}\n'),
        ("csv", b'a,b\n1,x\n"caf\xff",y\n'),
    ],
)
def test_undecodable_bytes_are_reported_with_their_line(fmt, body):
    line = body.count(b"\n", 0, body.index(b"\xff")) + 1
    for chunk_size in (1, 3, 1 << 20):
        read, error = failure(body, fmt, chunk_size=chunk_size)
        assert error.line == line, chunk_size
        assert len(read) == 1, chunk_size  # the records before the bad bytes, whatever the chunking
        assert "not valid utf-8" in error.detail
    assert failure(b'[{"a": 1},\n  {"b": "caf\xff"}]', "json")[1].detail == (
        "line 2, column 13: the payload is not valid utf-8: invalid start byte (byte 0xff at offset 23)"
    )


def test_a_truncated_character_at_the_end_is_reported():
    _, error = failure('{"a": "é"}\n{"b": "é'.encode()[:-1], "ndjson", chunk_size=4)
    assert error.line == 2
    assert "unexpected end of data" in error.detail


def test_unknown_formats_encodings_and_delimiters_are_programming_errors():
    with pytest.raises(ValueError, match="Unknown payload format 'xml'"):
        iter_records(io.BytesIO(b""), "xml")
    with pytest.raises(ValueError, match="Unknown encoding"):
        iter_records(io.BytesIO(b""), "csv", encoding="no-such-codec")
    with pytest.raises(ValueError, match="delimiter"):
        iter_records(io.BytesIO(b""), "csv", csv_delimiter=";;")
    with pytest.raises(ValueError, match="chunk_size"):
        iter_records(io.BytesIO(b""), "csv", chunk_size=0)


# --------------------------------------------------------------------------------------------------
# Format sniffing


@pytest.mark.parametrize(
    ("content_type", "filename", "fmt"),
    [
        ("application/json", None, "json"),
        ("application/json; charset=utf-8", None, "json"),
        ("Application/JSON", None, "json"),
        ("application/x-ndjson", None, "ndjson"),
        ("application/ndjson", None, "ndjson"),
        ("application/jsonl", None, "ndjson"),
        ("text/csv; charset=utf-8; header=present", None, "csv"),
        (None, "export.json", "json"),
        (None, "export.NDJSON", "ndjson"),
        (None, "dump.jsonl", "ndjson"),
        ("application/octet-stream", "customers.csv", "csv"),
        ("", "customers.csv", "csv"),
        ("application/xml", None, None),
        (None, "customers.xlsx", None),
        (None, None, None),
    ],
)
def test_the_format_is_sniffed_from_the_content_type_or_else_the_file_name(content_type, filename, fmt):
    assert sniff_format(content_type, filename) == fmt


# --------------------------------------------------------------------------------------------------
# Spooling


def test_spooling_copies_the_body_and_returns_its_checksum_and_size():
    data = b"".join(b'{"id": %d}\n' % i for i in range(50_000))
    dest = io.BytesIO()
    result = spool(GeneratedStream(data[i : i + 4096] for i in range(0, len(data), 4096)), dest, limit=len(data))
    assert result == SpooledPayload(hashlib.sha256(data).hexdigest(), len(data))
    digest, size = result
    assert (digest, size) == (hashlib.sha256(data).hexdigest(), len(data))
    assert dest.getvalue() == data


def test_an_empty_body_spools_to_nothing():
    assert spool(io.BytesIO(), io.BytesIO(), limit=10) == (hashlib.sha256(b"").hexdigest(), 0)


def test_spooling_stops_as_soon_as_the_limit_is_exceeded_even_without_a_length():
    stream = GeneratedStream(b"x" * 65536 for _ in range(1000))  # 64 MB, chunked, no Content-Length
    dest = io.BytesIO()
    with pytest.raises(PayloadTooLarge) as info:
        spool(stream, dest, limit=1_000_000, chunk_size=1 << 16)
    error = info.value
    assert (error.status_code, error.slug, error.title) == (413, "payload-too-large", "Payload too large")
    assert error.extensions == {"limit": 1_000_000}
    assert "1,000,000 bytes" in error.detail
    assert stream.served == 1_000_001
    assert len(dest.getvalue()) <= 1_000_000


# --------------------------------------------------------------------------------------------------
# Memory

PAD = "x" * 1000
MB = 1024 * 1024


def generated_payload(fmt: str, size: int) -> Iterator[bytes]:
    """About `size` bytes of `fmt` records (1 KB each), produced lazily in 64 KB blocks."""
    rows_per_block = 64
    count = size // (len(PAD) + 40)
    if fmt == "json":
        yield b"[\n"
    elif fmt == "csv":
        yield b"id,name,pad\r\n"
    for first in range(0, count, rows_per_block):
        block = []
        for i in range(first, min(first + rows_per_block, count)):
            if fmt == "csv":
                block.append(f"{i},customer {i},{PAD}\r\n")
            else:
                separator = ",\n" if fmt == "json" and i < count - 1 else "\n"
                block.append(f'{{"id": {i}, "name": "customer {i}", "pad": "{PAD}"}}{separator}')
        yield "".join(block).encode()
    if fmt == "json":
        yield b"]\n"


@pytest.mark.parametrize(("fmt", "size"), [("ndjson", 50 * MB), ("json", 25 * MB), ("csv", 25 * MB)])
def test_a_large_payload_is_parsed_in_bounded_memory(fmt, size):
    # Buffered like a spooled file: every read(chunk_size) returns a full 1 MB chunk.
    stream = GeneratedStream(generated_payload(fmt, size))
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        started = time.perf_counter()
        count = 0
        last = None
        for record in iter_records(io.BufferedReader(stream, buffer_size=64 * 1024), fmt):
            count += 1
            last = record
        elapsed = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert stream.served > 0.95 * size
    assert last is not None and last.position == count - 1
    assert last.payload["id"] in (count - 1, str(count - 1))
    assert peak < 20 * 1024 * 1024, f"peak {peak / 1e6:.1f} MB"
    print(
        f"{fmt}: {count} records, {stream.served / 1e6:.0f} MB, peak {peak / 1e6:.1f} MB, {count / elapsed:,.0f} records/s"
    )


# --- NDJSON lines are read with orjson where it agrees with json, else with json --------------------------
AWKWARD_LINES = [
    '{"a": 1.5, "b": 1e16, "c": 1e-07}',  # floats: orjson would write other exponents
    '{"big": 123456789012345678901234567890}',  # orjson would read a float
    '{"nested": {"x": [1, 2.0, null]}, "s": "t"}',
    '{"pair": "\\ud83d\\ude00", "e": "\\u00e9"}',  # a surrogate pair is one character: storable
    '{"dup": 1, "dup": 2}',
    '{"u": "\\u00e9t\\u00e9 \\u2028", "e": "", "z": null, "t": true, "i": -9223372036854775808}',
    '   {"padded": "x"}   \r',
]


def test_every_ndjson_record_is_exactly_what_json_reads():
    body = "\n".join(AWKWARD_LINES).encode()
    records = [record.payload for record in iter_records(io.BytesIO(body), "ndjson")]
    expected = [json.loads(line) for line in AWKWARD_LINES]
    assert len(records) == len(expected)
    for got, want in zip(records, expected, strict=True):
        assert json.dumps(got, sort_keys=True) == json.dumps(want, sort_keys=True)
        assert [type(v) for v in got.values()] == [type(v) for v in want.values()]
    assert type(records[1]["big"]) is int


def test_a_malformed_ndjson_line_is_still_reported_with_json_s_line_and_column():
    with pytest.raises(MalformedPayload) as caught:
        list(iter_records(io.BytesIO(b'{"a": "1"}\n{"a": 1,, "b": 2}\n'), "ndjson"))
    assert (caught.value.line, caught.value.column) == (2, 9)


@pytest.mark.parametrize("line", [*AWKWARD_LINES, '{"a": "x", "b": 2}', '{"\\u0000\\u001f\\"\\\\": "\\t\\n\\b"}'])
def test_the_canonical_json_of_a_record_is_json_s_whichever_encoder_writes_it(line):
    from apps.compute.records import canonical_json

    payload = json.loads(line)
    assert canonical_json(payload) == json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


# --- count_records: the syntax pass's count, the same as the records' -----------------------------------------


COUNTED = [
    b'{"a": 1}\n{"a": 2}\n',
    b'{"a": 1}\r\n\r\n  \t\n{"a": "x"}',  # CRLF, blank lines, no final line end
    b'\xef\xbb\xbf{"a": 1}\n{"a": 2}\n',  # a BOM: counted by the full parse
    b'{"a": 1.5e3}\n{"b": {"c": [1, 2]}}\n',  # not plain: json reads them again
    b'{"a": 123456789012345678901234567890}\n',  # beyond 64 bits
    b'{"a": "' + b"x" * 100 + b'"}\n{"a": 1}\n{"a": 2}\n',  # the middle of the file inside the first line
    b'{"a": 1}\n' * 1000 + b'{"b": 1.5}\n',  # not plain in the second half only
]
COUNTED_IDS = ["plain", "blank-lines", "bom", "floats", "big-int", "long-first-line", "floats-at-the-end"]
MALFORMED = [
    b'{"a": 1}\n[1, 2]\n',  # not an object
    b'{"a": 1}\n\x0c\n',  # a form feed is not JSON whitespace
    b'{"a": 1}\n{"a": \xff}\n',  # not UTF-8
    b'{"a": 1}\n{"a": 1\n',  # truncated
    b'{"a": 1\n' + b'{"a": 1}\n' * 1000,  # truncated, in the first half
]
MALFORMED_IDS = ["array", "form-feed", "bad-utf8", "truncated", "truncated-first"]


@pytest.fixture(params=["stream", "file-in-halves"])
def counted_from(request, tmp_path, monkeypatch) -> Any:
    """count_records's input: an in-memory stream, or a local file counted in two halves at once (the second by a
    forked process), whatever its size. `forks` lists the children."""
    forks: list[int] = []
    if request.param == "stream":
        return lambda payload: contextlib.nullcontext(io.BytesIO(payload))
    monkeypatch.setattr(parsers, "SPLIT_COUNT_BYTES", 1)
    real_fork = os.fork

    def fork() -> int:
        child = real_fork()
        if child:
            forks.append(child)
        return child

    monkeypatch.setattr(os, "fork", fork)

    def on_disk(payload: bytes) -> Any:
        path = tmp_path / "payload.ndjson"
        path.write_bytes(payload)
        return path.open("rb")

    on_disk.forks = forks
    return on_disk


@pytest.mark.parametrize("payload", COUNTED, ids=COUNTED_IDS)
def test_the_count_is_the_number_of_records_the_parse_yields(payload, counted_from):
    with counted_from(payload) as stream:
        assert count_records(stream, "ndjson") == sum(1 for _ in iter_records(io.BytesIO(payload), "ndjson"))
    if hasattr(counted_from, "forks"):
        assert len(counted_from.forks) == 1


@pytest.mark.parametrize("payload", MALFORMED, ids=MALFORMED_IDS)
def test_a_malformed_payload_is_refused_by_the_count_as_by_the_parse(payload, counted_from):
    with pytest.raises(MalformedPayload) as parsed:
        list(iter_records(io.BytesIO(payload), "ndjson"))
    with pytest.raises(MalformedPayload) as counted, counted_from(payload) as stream:
        count_records(stream, "ndjson")
    assert str(counted.value) == str(parsed.value)


def test_halves_are_counted_where_lines_start(tmp_path):
    payload = b'{"a": 1}\n{"a": 22}\n{"a": 333}\n'
    path = tmp_path / "payload.ndjson"
    path.write_bytes(payload)
    with path.open("rb") as file:
        fd = file.fileno()
        starts = {parsers._next_line_start(fd, offset) for offset in range(1, len(payload) + 1)}
        assert starts == {9, 19, len(payload)}
        assert list(parsers._file_lines(fd, 9, 19)) == [b'{"a": 22}']
        assert list(parsers._file_lines(fd, 0, None)) == [b'{"a": 1}', b'{"a": 22}', b'{"a": 333}']


def test_other_formats_are_counted_by_their_parse():
    payload = b"a,b\n1,2\n\n3,4\n"
    assert count_records(io.BytesIO(payload), "csv") == 2


# --- values no raw record can hold ------------------------------------------------------------------------------
# PostgreSQL's jsonb keeps the raw records: it refuses NaN and Infinity (which Python's json reads, JSON has not),
# numbers beyond a double that json reads as infinity, and U+0000 in any string. Such a payload is malformed, found
# by the syntax pass (count_records) before anything is written, with its line.

UNSTORABLE = [
    ('{"id": 1, "v": NaN}', "NaN is not a JSON number"),
    ('{"id": 1, "v": -Infinity}', "-Infinity is not a JSON number"),
    ('{"id": 1, "v": 1e400}', "the number 1e400 is out of range"),
    ('{"id": 1, "v": "a\\u0000b"}', "U+0000 (NUL)"),
    ('{"id": 1, "a\\u0000": "b"}', "U+0000 (NUL)"),
    ('{"id": 1, "v": {"deep": ["x", "\\u0000"]}}', "U+0000 (NUL)"),
    ('{"id": 1, "v": "\\ud800 lone"}', "a lone surrogate"),
    ('{"id": 1, "v": "\\uDFFF"}', "a lone surrogate"),
]


@pytest.mark.parametrize(("record", "reason"), UNSTORABLE)
@pytest.mark.parametrize("fmt", ["json", "ndjson"])
def test_a_value_no_raw_record_can_hold_makes_the_payload_malformed(fmt, record, reason):
    good = '{"id": 0, "v": "\\\\u0000 is text here", "w": 1.5}'  # an escaped backslash: no NUL; a float
    body = f"[\n{good},\n{record}\n]" if fmt == "json" else f"{good}\n{record}\n"
    read, error = failure(body, fmt)
    assert [r.payload["id"] for r in read] == [0]
    assert read[0].payload["v"] == "\\u0000 is text here"
    assert (error.line, error.position) == (3 if fmt == "json" else 2, 1)
    assert reason in error.reason and error.reason.startswith("record 1: ")
    with pytest.raises(MalformedPayload) as counted:
        count_records(io.BytesIO(body.encode()), fmt)
    assert counted.value.reason == error.reason


def test_a_nul_in_a_csv_payload_makes_it_malformed():
    read, error = failure("id,v\n1,a\n2,b\x00c\n", "csv")
    assert read == []  # found in the text before the rows are read: nothing of the payload is read
    assert error.line == 3 and "U+0000 (NUL)" in error.reason


def test_a_split_count_works_where_children_are_reaped_for_it(counted_from):
    """A process that ignores SIGCHLD (its children are reaped at once) gets the same count, no error."""
    import signal

    payload = b'{"a": 1}\n' * 100
    previous = signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    try:
        with counted_from(payload) as stream:
            assert count_records(stream, "ndjson") == 100
    finally:
        signal.signal(signal.SIGCHLD, previous)
