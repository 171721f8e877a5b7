"""The evidence ledger's hashes, byte for byte, so anyone can re-verify a chain outside Aurum.

content_hash
    SHA-256 (lowercase hex) of the UTF-8 bytes of the *canonical JSON* of an entry's
    content: ``json.dumps(content, sort_keys=True, separators=(",", ":"),
    ensure_ascii=False, allow_nan=False)``. Before that, `canonical_content` has turned
    decimals, dates, times, datetimes and UUIDs into strings (``str(Decimal)``,
    ``isoformat()``, ``str(uuid)``), tuples into lists and floats with an integral value
    into integers (``1.0`` → ``1``; PostgreSQL's jsonb would store ``1e+20`` back as
    ``100000000000000000000``, and the hash must survive the round trip). The ledger
    stores exactly this canonical content, so hashing what is stored reproduces the hash.

entry_hash
    SHA-256 (lowercase hex) of the UTF-8 bytes of seven fields joined by a line feed
    (``\\n``, 0x0A), with no trailing line feed::

        previous_hash   64 lowercase hex digits; 64 zeros ("0" * 64) for entry 1
        sequence        decimal, no leading zeros (1, 2, 3 …)
        kind            e.g. contract.approved
        subject         e.g. contract orders 1.1.0
        content_hash    64 lowercase hex digits
        recorded_at     UTC, ISO 8601 with microseconds: 2026-11-25T09:30:00.123456+00:00
        actor           the acting user's id in decimal, or the empty string when none

    Kind and subject never contain control characters (the service refuses them), so the
    line feeds are unambiguous. With coreutils::

        printf '%s\\n%s\\n%s\\n%s\\n%s\\n%s\\n%s' "$prev" "$seq" "$kind" "$subject" \\
            "$content_hash" "$recorded_at" "$actor" | sha256sum
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import uuid
from decimal import Decimal
from typing import Any

ZERO_HASH = "0" * 64


def canonical_content(value: Any) -> Any:
    """The JSON value the ledger stores and hashes: only dicts, lists, strings, ints, floats, bools, None."""
    if isinstance(value, dict):
        return {str(key): canonical_content(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [canonical_content(item) for item in value]
    if isinstance(value, bool) or value is None or isinstance(value, int | str):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"evidence content cannot hold {value!r}: JSON has no such number")
        return int(value) if value.is_integer() else value
    if isinstance(value, Decimal | uuid.UUID):
        return str(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    raise TypeError(f"evidence content cannot hold a {type(value).__name__}: use JSON values, decimals or dates")


def canonical_json(content: Any) -> str:
    """Sorted keys, no whitespace, unescaped Unicode: one text per value, whatever the key order."""
    return json.dumps(
        canonical_content(content), sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )


def content_hash(content: Any) -> str:
    return hashlib.sha256(canonical_json(content).encode("utf-8")).hexdigest()


def recorded_at_text(moment: dt.datetime) -> str:
    """The timestamp as it enters the entry hash: UTC, microseconds, `+00:00`."""
    if moment.tzinfo is None:
        raise ValueError("recorded_at must be timezone-aware")
    return moment.astimezone(dt.UTC).isoformat(timespec="microseconds")


def entry_hash(
    *,
    previous_hash: str,
    sequence: int,
    kind: str,
    subject: str,
    content_hash: str,
    recorded_at: dt.datetime,
    actor_id: int | None,
) -> str:
    """SHA-256 over the line-feed-joined fields (layout in the module docstring)."""
    fields = (
        previous_hash,
        str(sequence),
        kind,
        subject,
        content_hash,
        recorded_at_text(recorded_at),
        "" if actor_id is None else str(actor_id),
    )
    return hashlib.sha256("\n".join(fields).encode("utf-8")).hexdigest()
