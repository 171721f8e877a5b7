"""Streaming parsers for ingested payloads: a JSON array, NDJSON or CSV, read record by record.

A payload (up to 1 GB) is first spooled to a file with `spool`, which checksums it and enforces
the size limit; `iter_records` then reads it back in `chunk_size` pieces, so memory stays bounded
by the chunk size plus the largest single record, whatever the payload's size:

    digest, size = spool(request_body, spool_file, limit=settings_limit)
    spool_file.seek(0)
    for record in iter_records(spool_file, "ndjson"):
        ...  # record.position (0-based), record.line (1-based), record.payload (a dict)

Bytes are decoded incrementally (a leading byte order mark is skipped). Anything that is not a
well-formed payload of objects raises `MalformedPayload` (400) carrying the 1-based `line`, the
`column` when known and the record `position` when known, e.g. "line 3, column 14: Expecting ','
delimiter". So is a value the raw layer cannot hold though Python's json reads it: NaN, Infinity, a
number beyond a double, U+0000 or a lone surrogate in a string. Records before the problem have been
yielded by then: the caller decides whether a batch is all-or-nothing. Record numbers in messages are the 0-based `position`.

The JSON array is split with `json.JSONDecoder.raw_decode` on a sliding text buffer, NDJSON line by
line, CSV with the `csv` module over decoded lines. An NDJSON line is read with orjson first (about 3x
faster); whenever its result could differ from the json module's (a float: orjson reads integers beyond
64 bits as floats; a nested value; an error, whose message and column come from json), the line is
read again with json, so the records are exactly json's.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import hashlib
import io
import json
import os
import re
import typing
from collections import Counter
from collections.abc import Iterable, Iterator
from typing import Any, NamedTuple

from orjson import loads as fast_loads

from apps.compute.records import plain
from apps.kernel.errors import DomainError
from apps.storage.choices import PayloadFormatChoices

__all__ = [
    "MalformedPayload",
    "ParsedRecord",
    "PayloadTooLarge",
    "SpooledPayload",
    "iter_records",
    "sniff_format",
    "spool",
]

DEFAULT_CHUNK_SIZE = 1 << 20
CSV_DELIMITERS = (",", ";", "\t", "|")

# JSON's own whitespace (str.isspace() would also accept e.g. U+00A0, which JSON does not).
_JSON_WS = re.compile(r"[ \t\n\r]*")
# A syntax error this close to the end of the buffer may just be a value cut by the chunking.
_TRUNCATION_MARGIN = 16


class ParsedRecord(NamedTuple):
    """One record read from a payload: a value (a named tuple: made a million times a batch, it costs half
    what a frozen dataclass does)."""

    position: int  # 0-based index of the record in the payload
    line: int  # 1-based line where the record starts
    payload: dict[str, Any]
    # Known to hold only strings, integers, booleans and nulls (records.plain): its canonical JSON skips the check.
    plain: bool = False


class MalformedPayload(DomainError):
    """400: the payload cannot be read as the declared format; says where ("line 3, column 14: ...")."""

    status_code = 400
    slug = "malformed-payload"
    title = "Malformed payload"

    def __init__(
        self, reason: str, *, line: int, column: int | None = None, position: int | None = None, **extensions: Any
    ) -> None:
        where = f"line {line}" if column is None else f"line {line}, column {column}"
        known = {"column": column, "position": position}
        super().__init__(
            f"{where}: {reason}", line=line, **{k: v for k, v in known.items() if v is not None}, **extensions
        )
        self.reason = reason
        self.line = line
        self.column = column
        self.position = position


class PayloadTooLarge(DomainError):
    """413: the body is larger than the accepted limit (detected while reading, Content-Length or not)."""

    status_code = 413
    slug = "payload-too-large"
    title = "Payload too large"

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"The payload is larger than the limit of {limit:,} bytes ({_human_size(limit)}).", limit=limit
        )
        self.limit = limit


class SpooledPayload(NamedTuple):
    """What `spool` wrote: the SHA-256 (hex) and the size in bytes of the payload."""

    sha256: str
    size: int


# --------------------------------------------------------------------------------------------------
# Spooling and format sniffing


def spool(
    stream: typing.BinaryIO, dest: typing.BinaryIO, *, limit: int, chunk_size: int = DEFAULT_CHUNK_SIZE
) -> SpooledPayload:
    """Copy `stream` to `dest` in chunks, returning (SHA-256 hex digest, size).

    Raises `PayloadTooLarge` as soon as more than `limit` bytes have been read: at most
    `limit + 1` bytes are read and at most `limit` bytes written, even for a chunked body
    without Content-Length.
    """
    if chunk_size <= 0 or limit < 0:
        raise ValueError("chunk_size must be positive and limit not negative")
    digest = hashlib.sha256()
    size = 0
    read, write, update = stream.read, dest.write, digest.update
    while True:
        data = read(min(chunk_size, limit - size + 1))
        if not data:
            return SpooledPayload(digest.hexdigest(), size)
        size += len(data)
        if size > limit:
            raise PayloadTooLarge(limit)
        update(data)
        write(data)


_CONTENT_TYPES = {
    "application/json": PayloadFormatChoices.JSON.value,
    "text/json": PayloadFormatChoices.JSON.value,
    "application/x-ndjson": PayloadFormatChoices.NDJSON.value,
    "application/ndjson": PayloadFormatChoices.NDJSON.value,
    "application/jsonl": PayloadFormatChoices.NDJSON.value,
    "application/x-jsonl": PayloadFormatChoices.NDJSON.value,
    "application/jsonlines": PayloadFormatChoices.NDJSON.value,
    "application/x-jsonlines": PayloadFormatChoices.NDJSON.value,
    "text/csv": PayloadFormatChoices.CSV.value,
    "application/csv": PayloadFormatChoices.CSV.value,
}
_EXTENSIONS = {
    ".json": PayloadFormatChoices.JSON.value,
    ".ndjson": PayloadFormatChoices.NDJSON.value,
    ".jsonl": PayloadFormatChoices.NDJSON.value,
    ".csv": PayloadFormatChoices.CSV.value,
}


def sniff_format(content_type: str | None, filename: str | None = None) -> str | None:
    """The payload format a Content-Type (parameters ignored) or else a file name implies; None if unknown."""
    if content_type:
        media_type = content_type.split(";", 1)[0].strip().lower()
        if media_type in _CONTENT_TYPES:
            return _CONTENT_TYPES[media_type]
    if filename:
        return _EXTENSIONS.get(os.path.splitext(filename.strip())[1].lower())
    return None


# --------------------------------------------------------------------------------------------------
# Reading records


def iter_records(
    stream: typing.BinaryIO,
    fmt: str,
    *,
    encoding: str = "utf-8",
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    csv_delimiter: str = ",",
) -> Iterator[ParsedRecord]:
    """Yield the records of a `fmt` ("json", "ndjson" or "csv") payload read from a binary stream.

    The stream is read `chunk_size` bytes at a time, never whole. Raises ValueError at once for an
    unknown format, encoding or delimiter, and `MalformedPayload` while iterating.
    """
    if chunk_size <= 0:
        raise ValueError("chunk_size must be positive")
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise ValueError(f"Unknown encoding {encoding!r}") from None
    texts = _decoded(stream, encoding, chunk_size)
    if fmt == PayloadFormatChoices.JSON:
        return _iter_json_array(texts)
    if fmt == PayloadFormatChoices.NDJSON:
        return _iter_ndjson(texts)
    if fmt == PayloadFormatChoices.CSV:
        if len(csv_delimiter) != 1 or csv_delimiter in '"\r\n':
            raise ValueError(f"Unsupported CSV delimiter {csv_delimiter!r}; use one of {CSV_DELIMITERS!r}")
        return _iter_csv(texts, csv_delimiter)
    raise ValueError(f"Unknown payload format {fmt!r}; expected one of {', '.join(PayloadFormatChoices.values)}")


def count_records(stream: typing.BinaryIO, fmt: str, *, encoding: str = "utf-8") -> int:
    """The number of records `iter_records` yields for the payload, which it raises `MalformedPayload` for as
    that does. An NDJSON payload in UTF-8 whose every line is an object or blank (the common case) is counted
    from its byte lines, each parsed by orjson and dropped: about half the time of the full parse, whose
    records the caller does not want. Anything else (a BOM, another encoding, a line orjson refuses or that
    is not an object) is counted by the full parse, from the start of the (seekable) stream, so the answer
    and the error are the same."""
    if fmt == PayloadFormatChoices.NDJSON and codecs.lookup(encoding).name == "utf-8":
        fd = _local_file(stream)
        count = _count_plain_ndjson(stream) if fd is None else _count_plain_ndjson_in_halves(fd)
        if count is not None:
            return count
        stream.seek(0)
    return sum(1 for _ in iter_records(stream, fmt, encoding=encoding))


# From this size on, a local NDJSON payload is counted in two halves at once, the second by a fork of this
# process: the database has nothing to do yet, so the other core is idle (the pass takes ~2.4 s for 232 MB).
SPLIT_COUNT_BYTES = 8 << 20
_BLOCK = 1 << 20


def _local_file(stream: typing.BinaryIO) -> int | None:
    """The descriptor of `stream` where it is a local file worth counting in halves (see SPLIT_COUNT_BYTES)."""
    try:
        fd = stream.fileno()
        return fd if os.fstat(fd).st_size >= SPLIT_COUNT_BYTES else None
    except (AttributeError, OSError, io.UnsupportedOperation):  # not a file of this machine (remote storage)
        return None


def _count_plain_ndjson_in_halves(fd: int) -> int | None:
    """_count_plain_ndjson of the whole file, its second half counted by a child process meanwhile. Both read with
    pread, which leaves the descriptor's shared offset alone. None if either half is not plain (nor is the whole)."""
    middle = _next_line_start(fd, os.fstat(fd).st_size // 2)
    reader, writer = os.pipe()
    try:
        child = os.fork()
    except (AttributeError, OSError):  # no fork here, or no process to be had: one pass
        os.close(reader)
        os.close(writer)
        return _count_plain_ndjson(_file_lines(fd, 0, None))
    if child == 0:  # the child: count, answer through the pipe, leave without any clean-up (the parent's to do)
        status = 1
        try:
            os.close(reader)
            count = _count_plain_ndjson(_file_lines(fd, middle, None))
            os.write(writer, b"-" if count is None else str(count).encode())
            status = 0
        finally:
            os._exit(status)
    os.close(writer)
    try:
        first = _count_plain_ndjson(_file_lines(fd, 0, middle))
        answer = b"".join(iter(lambda: os.read(reader, 64), b""))
    finally:
        os.close(reader)
        with contextlib.suppress(ChildProcessError):  # already reaped, where SIGCHLD is ignored
            os.waitpid(child, 0)
    if first is None or not answer.isdigit():  # not plain, or the child failed: the caller parses it all
        return None
    return first + int(answer)


def _next_line_start(fd: int, offset: int) -> int:
    """The offset of the first line that starts at or after `offset` (the end of the file if none does)."""
    if offset == 0:
        return 0
    while block := os.pread(fd, _BLOCK, offset - 1):
        end = block.find(b"\n")
        if end >= 0:
            return offset + end
        offset += len(block)
    return offset


def _file_lines(fd: int, start: int, end: int | None) -> Iterator[bytes]:
    """The lines of the file from `start` to `end` (both line starts; None: its end), read with pread."""
    pending = b""
    while end is None or start < end:
        block = os.pread(fd, _BLOCK if end is None else min(_BLOCK, end - start), start)
        if not block:
            break
        start += len(block)
        lines = (pending + block).split(b"\n")
        pending = lines.pop()
        yield from lines
    if pending:
        yield pending


def _count_plain_ndjson(stream: Iterable[bytes]) -> int | None:
    count = 0
    for line in stream:
        try:
            value = fast_loads(line)
        except ValueError:
            if not line.strip(b" \t\r\n"):
                continue  # a blank line (JSON's whitespace only), as iter_records skips it
            return None
        if type(value) is not dict or (b"\\u" in line and _SUSPECT_BYTES.search(line)):  # the full parse checks it
            return None
        count += 1
    return count


def _decoded(stream: typing.BinaryIO, encoding: str, chunk_size: int) -> Iterator[str]:
    """Decode `stream` incrementally into text chunks, skipping a leading byte order mark.

    Undecodable bytes raise `MalformedPayload` with their line and column, after the text before
    them has been yielded (so the records before the bad bytes are read the same whatever the
    chunk size).
    """
    decoder = codecs.getincrementaldecoder(encoding)("strict")
    decode, read = decoder.decode, stream.read
    newlines = 0  # "\n" in the text yielded so far
    tail = 0  # characters after the last "\n" yielded so far
    offset = 0  # bytes read before `data`
    bom_checked = False
    while True:
        data = read(chunk_size) or b""
        final = not data
        error: UnicodeDecodeError | None = None
        try:
            text = decode(data, final)
        except UnicodeDecodeError as exc:
            error = exc
            # `exc.object` is the decoder's pending bytes followed by `data`; decode what precedes the error.
            pending = len(exc.object) - len(data)
            cut = exc.start - pending
            text = decode(data[:cut]) if cut > 0 else ""
        if not bom_checked and text:
            bom_checked = True
            if text[0] == "\ufeff":
                text = text[1:]
        if text:
            newlines += text.count("\n")
            last = text.rfind("\n")
            tail = len(text) - last - 1 if last >= 0 else tail + len(text)
            yield text
        if error is not None:
            bad = error.object[error.start : error.start + 1].hex()
            where = offset - (len(error.object) - len(data)) + error.start
            raise MalformedPayload(
                f"the payload is not valid {encoding}: {error.reason} (byte 0x{bad} at offset {where})",
                line=newlines + 1,
                column=tail + 1,
            )
        if final:
            return
        offset += len(data)


_JSON_TYPE_NAMES = {list: "a JSON array", str: "a JSON string", int: "a JSON number", float: "a JSON number"}


def _not_an_object(value: Any, position: int, line: int) -> MalformedPayload:
    if value is None or isinstance(value, bool):
        kind = f"JSON {json.dumps(value)}"
    else:
        kind = _JSON_TYPE_NAMES.get(type(value), "not a JSON object")
    return MalformedPayload(f"record {position} is {kind}, not an object", line=line, position=position)


class _Unstorable(ValueError):
    """A value JSON allows (or Python's json reads) that no raw record can hold."""


def _refuse_constant(name: str) -> Any:
    raise _Unstorable(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if value in (_INF, -_INF):
        raise _Unstorable(f"the number {text[:40]} is out of range (a double's)")
    return value


_INF = float("inf")
# The escapes that can make a string unstorable (NUL, a surrogate): a record with one is checked value by value.
_SUSPECT = re.compile(r"\\u(?:0000|[dD][89a-fA-F])")
_SUSPECT_BYTES = re.compile(rb"\\u(?:0000|[dD][89a-fA-F])")
# Python's json reads NaN and Infinity (not JSON), and 1e400 as infinity; PostgreSQL's jsonb, which keeps the raw
# records, refuses those and "\u0000" (NUL) in any string, and a lone surrogate ("\ud800") is no text at all. A
# record with one would fail the chunk that writes it, after earlier chunks were committed: the payload is malformed
# instead, found by the syntax pass before any write.
_strict_decode = json.JSONDecoder(parse_constant=_refuse_constant, parse_float=_finite_float).raw_decode


def _check_storable(value: Any) -> None:
    """Raise _Unstorable for a non-finite float, or a string with NUL or a lone surrogate, anywhere in the value
    (keys included)."""
    if type(value) is str:
        if "\x00" in value:
            raise _Unstorable("a string holds the character U+0000 (NUL), which PostgreSQL cannot store")
        try:
            value.encode()
        except UnicodeEncodeError:
            raise _Unstorable("a string holds a lone surrogate (\\ud800-\\udfff), which is not Unicode text") from None
    elif type(value) is float:
        if value != value or value in (_INF, -_INF):
            raise _Unstorable(f"the number {value} is out of range")
    elif type(value) is dict:
        for key, item in value.items():
            _check_storable(key)
            _check_storable(item)
    elif type(value) is list:
        for item in value:
            _check_storable(item)


class _JsonBuffer:
    """A sliding window over the decoded text that knows the line and column of any index in it."""

    __slots__ = ("buf", "col0", "counted", "eof", "line", "texts")

    def __init__(self, texts: Iterator[str]) -> None:
        self.texts = texts
        self.buf = ""
        self.eof = False
        self.line = 1  # line number at buf[counted]
        self.counted = 0  # buf index up to which "\n" are counted into `line`
        self.col0 = 0  # characters of the line of buf[0] that precede it

    def advance(self, index: int) -> int:
        """The line at `index` (which must not be before the last index asked for)."""
        self.line += self.buf.count("\n", self.counted, index)
        self.counted = index
        return self.line

    def where(self, index: int) -> tuple[int, int]:
        """(line, column), 1-based, of `index` in the buffer."""
        buf = self.buf
        if index >= self.counted:
            line = self.line + buf.count("\n", self.counted, index)
        else:
            line = self.line - buf.count("\n", index, self.counted)
        start = buf.rfind("\n", 0, index)
        return line, (index - start if start >= 0 else self.col0 + index + 1)

    def refill(self, pos: int, want: int = 1) -> int:
        """Drop the text before `pos`, read at least `want` more characters (or to the end); return the new pos."""
        buf = self.buf
        if pos:
            self.advance(pos)
            start = buf.rfind("\n", 0, pos)
            self.col0 = pos - start - 1 if start >= 0 else self.col0 + pos
            self.counted = 0
        parts = [buf[pos:]]
        got = 0
        while got < want:
            text = next(self.texts, None)
            if text is None:
                self.eof = True
                break
            parts.append(text)
            got += len(text)
        self.buf = "".join(parts)
        return 0

    def error(self, reason: str, index: int, position: int | None = None) -> MalformedPayload:
        line, column = self.where(index)
        return MalformedPayload(reason, line=line, column=column, position=position)


def _iter_json_array(texts: Iterator[str]) -> Iterator[ParsedRecord]:
    """Split one top-level JSON array into its elements, each of which must be an object."""
    window = _JsonBuffer(texts)
    raw_decode = _strict_decode
    skip_ws = _JSON_WS.match
    JSONDecodeError = json.JSONDecodeError
    position = 0
    pos = 0

    # The opening bracket.
    while True:
        buf = window.buf
        p = skip_ws(buf, pos).end()
        if p < len(buf):
            break
        if window.eof:
            raise window.error("the payload is empty: expected a JSON array of objects", p)
        pos = window.refill(p)
    if buf[p] != "[":
        hint = " (for one object per line, send NDJSON)" if buf[p] == "{" else ""
        raise window.error(f"expected '[': the payload must be a JSON array of objects{hint}", p)
    pos = p + 1
    expect_value = False  # after "[": a value or "]"; after ",": a value

    while True:
        # A value (or, right after "[", the closing "]").
        buf = window.buf
        n = len(buf)
        p = skip_ws(buf, pos).end()
        if p == n:
            if window.eof:
                raise window.error("Expecting value", p)
            pos = window.refill(p)
            continue
        if not expect_value and buf[p] == "]":
            pos = p + 1
            break
        try:
            value, end = raw_decode(buf, p)
            if _SUSPECT.search(buf, p, end):
                _check_storable(value)
        except JSONDecodeError as exc:
            if not window.eof and (exc.pos >= n - _TRUNCATION_MARGIN or exc.msg.startswith("Unterminated string")):
                pos = window.refill(p, want=max(n - p, 1))  # the element may just be cut: read (geometrically) more
                continue
            raise window.error(exc.msg, exc.pos) from None
        except _Unstorable as exc:
            raise window.error(f"record {position}: {exc}", p, position) from None
        line = window.advance(p)
        if type(value) is not dict:
            raise _not_an_object(value, position, line)
        yield ParsedRecord(position, line, value)
        position += 1
        pos = end

        # The delimiter after it: "," or "]".
        while True:
            buf = window.buf
            p = skip_ws(buf, pos).end()
            if p < len(buf):
                break
            if window.eof:
                raise window.error("Expecting ',' delimiter", p)
            pos = window.refill(p)
        c = buf[p]
        if c == ",":
            pos = p + 1
            expect_value = True
        elif c == "]":
            pos = p + 1
            break
        else:
            raise window.error("Expecting ',' delimiter", p)

    # Only whitespace may follow the closing bracket.
    while True:
        buf = window.buf
        p = skip_ws(buf, pos).end()
        if p < len(buf):
            raise window.error("Extra data after the end of the array", p)
        if window.eof:
            return
        pos = window.refill(p)


def _lines(texts: Iterable[str]) -> Iterator[str]:
    """Re-cut text chunks at line ends ("\\n", "\\r\\n" or "\\r"), each line keeping its line end."""
    pending: list[str] = []
    for text in texts:
        if pending and pending[-1][-1:] == "\r" and text[:1] != "\n":
            # The previous chunk ended with a bare "\r" line end.
            yield from io.StringIO("".join(pending), newline="")
            pending.clear()
        # Cut after the last line end, unless it is a "\r" at the very end (a "\n" may follow).
        cut = max(text.rfind("\n"), text.rfind("\r", 0, len(text) - 1)) + 1
        if not cut:
            pending.append(text)
            continue
        if pending:
            pending.append(text[:cut])
            head = "".join(pending)
            pending.clear()
        else:
            head = text[:cut]
        if cut < len(text):
            pending.append(text[cut:])
        yield from io.StringIO(head, newline="")
    if pending:
        yield "".join(pending)


def _iter_ndjson(texts: Iterator[str]) -> Iterator[ParsedRecord]:
    """One JSON object per line; blank lines are skipped (and counted)."""
    raw_decode, strict_decode = json.JSONDecoder().raw_decode, _strict_decode
    skip_ws = _JSON_WS.match
    JSONDecodeError = json.JSONDecodeError
    position = 0
    line_no = 0  # lines before the current chunk
    pending: list[str] = []
    eof = False
    while not eof:
        text = next(texts, None)
        if text is None:
            eof = True
            if not pending:
                return
            lines = ["".join(pending)]
        else:
            if "\n" not in text:
                pending.append(text)  # no line end yet: joined once a "\n" comes (no quadratic concatenation)
                continue
            if pending:
                pending.append(text)
                text = "".join(pending)
                pending.clear()
            lines = text.split("\n")
            rest = lines.pop()
            if rest:
                pending.append(rest)
        for number, line in enumerate(lines, line_no + 1):
            try:
                value = fast_loads(line)
            except ValueError:
                value = None
            suspect = "\\u" in line and _SUSPECT.search(line)
            if type(value) is dict and plain(value) and not suspect:
                yield ParsedRecord(position, number, value, True)
                position += 1
                continue
            # orjson refuses NaN, Infinity and numbers beyond a double, which json reads: then, only then, strictly.
            decode = raw_decode if value is not None else strict_decode
            try:
                try:
                    value, end = decode(line)
                except JSONDecodeError:
                    start = skip_ws(line).end()
                    if start == len(line):
                        continue  # a blank line
                    try:
                        value, end = decode(line, start)
                    except JSONDecodeError as exc:
                        raise MalformedPayload(exc.msg, line=number, column=exc.pos + 1, position=position) from None
                if suspect:
                    _check_storable(value)
            except _Unstorable as exc:
                raise MalformedPayload(f"record {position}: {exc}", line=number, position=position) from None
            if end != len(line):
                extra = skip_ws(line, end).end()
                if extra != len(line):
                    raise MalformedPayload("Extra data", line=number, column=extra + 1, position=position)
            if type(value) is not dict:
                raise _not_an_object(value, position, number)
            yield ParsedRecord(position, number, value)
            position += 1
        line_no += len(lines)


def _iter_csv(texts: Iterator[str], delimiter: str) -> Iterator[ParsedRecord]:
    """A header row, then one record per row: column name → the value exactly as written."""
    reader = csv.reader(_lines(_without_nul(texts)), delimiter=delimiter, strict=True)
    start = 1  # line where the current record starts
    try:
        for header in reader:
            if header:  # blank lines before the header are skipped
                break
            start = reader.line_num + 1
        else:
            raise MalformedPayload("no header row: the payload is empty", line=max(reader.line_num, 1))
        header_line = reader.line_num
        _check_header(header, header_line)
        columns = len(header)
        position = 0
        start = header_line + 1
        for row in reader:
            if len(row) != columns:
                if not row:  # a blank line
                    start = reader.line_num + 1
                    continue
                raise MalformedPayload(
                    f"{_plural(len(row), 'value')} for {_plural(columns, 'column')} (header: {_header_text(header)})",
                    line=start,
                    position=position,
                )
            yield ParsedRecord(position, start, dict(zip(header, row, strict=True)), True)  # strings only: plain
            position += 1
            start = reader.line_num + 1
    except csv.Error as exc:
        reason = str(exc)
        if reason == "unexpected end of data" and start <= reader.line_num:
            reason = f"unexpected end of data: a quoted field of the record starting on line {start} is never closed"
        raise MalformedPayload(reason, line=max(reader.line_num, 1)) from None


def _without_nul(texts: Iterable[str]) -> Iterator[str]:
    """The texts, unless one holds U+0000 (NUL), which the csv module reads and PostgreSQL cannot store."""
    lines = 0
    for text in texts:
        at = text.find("\x00")
        if at >= 0:
            raise MalformedPayload(
                "the character U+0000 (NUL), which PostgreSQL cannot store", line=lines + text.count("\n", 0, at) + 1
            )
        lines += text.count("\n")
        yield text


def _check_header(header: list[str], line: int) -> None:
    blank = [str(i) for i, name in enumerate(header, 1) if not name.strip()]
    if blank:
        which = f"column {blank[0]}" if len(blank) == 1 else f"columns {', '.join(blank)}"
        raise MalformedPayload(f"empty column name in the header ({which} of {len(header)})", line=line)
    duplicates = [name for name, count in Counter(header).items() if count > 1]
    if duplicates:
        raise MalformedPayload(f"duplicate column names in the header: {', '.join(duplicates)}", line=line)


def _header_text(header: list[str], limit: int = 200) -> str:
    text = ", ".join(header)
    return text if len(text) <= limit else f"{text[:limit].rstrip(', ')}, … ({len(header)} columns)"


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _human_size(size: int) -> str:
    for unit, factor in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= factor:
            return f"{size / factor:.1f}".removesuffix(".0") + f" {unit}"
    return f"{size} bytes"
