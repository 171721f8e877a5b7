"""From a validated record to its Golden Data Point candidates: key, dimensions, time, values."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson

from apps.host.choices import FieldRoleChoices as Role

_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def canonical_json(value: Any, *, known_plain: bool = False) -> str:
    """json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str), with one
    encoder made once instead of one per call; by orjson (7x faster, the same text) for a flat object of
    strings, integers, booleans and nulls (`known_plain`: the caller knows it is one)."""
    if type(value) is dict and (known_plain or plain(value)):
        try:
            return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
        except TypeError:  # an integer beyond 64 bits, a key that is not a string
            pass
    return _CANONICAL.encode(value)


_PLAIN_TYPES = frozenset({str, int, bool, type(None)})


def plain(record: dict[str, Any]) -> bool:
    """Whether orjson and json agree on this object, read or written: only strings, integers, booleans and nulls
    as values (orjson writes floats with other exponents, and reads integers beyond 64 bits as floats)."""
    return _PLAIN_TYPES.issuperset(map(type, record.values()))


def record_hash(payload: dict[str, Any]) -> str:
    """Identity of a record as received, independent of key order."""
    return hashlib.sha256(canonical_json(payload).encode()).hexdigest()


def hashed_json(payload: dict[str, Any], *, known_plain: bool = False) -> tuple[str, str]:
    """(canonical JSON text, record_hash) of a payload, serialized once: the pipeline stores the text as the
    raw record's payload on PostgreSQL (jsonb keeps no key order, so it is the same value)."""
    text = canonical_json(payload, known_plain=known_plain)
    return text, hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class Shape:
    """Which contract fields play which role, read once per batch from the contract version."""

    entity_keys: tuple[str, ...]
    dimensions: tuple[str, ...]
    time_field: str | None
    measures: tuple[tuple[str, str], ...]  # (field, unit)

    @classmethod
    def of(cls, fields: Sequence[Any]) -> Shape:
        by_role: dict[str, list[Any]] = {}
        for field in fields:
            by_role.setdefault(field.role, []).append(field)
        times = by_role.get(Role.TIME, [])
        entity = sorted(by_role.get(Role.ENTITY_KEY, []), key=lambda f: (f.primary_key_position or 0, f.position))
        return cls(
            entity_keys=tuple(f.name for f in entity),
            dimensions=tuple(f.name for f in by_role.get(Role.DIMENSION, [])),
            time_field=times[0].name if times else None,
            measures=tuple((f.name, f.unit) for f in by_role.get(Role.MEASURE, [])),
        )

    def problems(self) -> list[str]:
        """Why records of this contract cannot become GDPs (empty when they can)."""
        missing = []
        if not self.measures:
            missing.append("no field has the role 'measure'")
        if not self.time_field:
            missing.append("no field has the role 'time'")
        return missing

    def keys_follow(self, primary_key: Sequence[str], logical_types: dict[str, str]) -> bool:
        """Whether accepted records of one batch never share a GDP key, because the validator rejects a repeated
        `primary_key` and records that differ in it differ in their keys: every part of it is the entity key, a
        dimension or the time, and each of those gives equal key parts only for equal values. So the entity key
        must be one field (a compound one is its values joined with "|": ("a|b", "c") and ("a", "b|c") give one
        text), and a time in the primary key must be a date or a timestamp (the validator then has date or
        datetime objects, equal when they are the same moment; two texts of one moment would differ)."""
        parts = {*self.entity_keys, *self.dimensions, self.time_field}
        return (
            bool(primary_key)
            and len(self.entity_keys) == 1
            and set(primary_key) <= parts
            and (self.time_field not in primary_key or logical_types.get(self.time_field) in ("date", "timestamp"))
        )


def make_candidates(shape: Shape, tenant_id: int, contract_id: int) -> Callable[[dict[str, Any]], tuple[Any, ...]]:
    """A function: validated record → its GDP candidates, (entity_key, dimensions, dimensions_key, observed_at,
    [(measure, value, unit, key_hash), one per measure]). A dimension set and a time repeat a lot, so what
    they give (the dimensions as a JsonDict that carries its canonical JSON text, their key, the UTC time,
    the key hash's text but the entity key) is made once per pair (bounded cache). A value is a Decimal, or an int
    where the measure is one (written as its text and compared as a number alike: no Decimal made for it)."""
    from apps.storage.bulk import JsonDict
    from apps.storage.models import KEY_MD5, key_prefix, key_rest_head

    # storage.models.key_hash in parts: each measure's prefix is made once per batch, the rest once per record.
    measures = [(measure, unit, key_prefix(tenant_id, contract_id, measure).encode()) for measure, unit in
                shape.measures]  # fmt: skip
    entity_fields, dimension_fields, time_field = shape.entity_keys, shape.dimensions, shape.time_field
    single_entity = entity_fields[0] if len(entity_fields) == 1 else None
    made: dict[tuple[Any, ...], tuple[Any, ...]] = {}  # (dimension values, time) → (dims, key, UTC time, head)

    def make(values: tuple[Any, ...], moment: Any) -> tuple[Any, ...]:
        dims = JsonDict({name: _jsonable(value) for name, value in zip(dimension_fields, values, strict=True)})
        dims.json = canonical_json(dims)
        dims_key = hashlib.sha256(dims.json.encode()).hexdigest()
        observed_at = as_utc_datetime(moment)
        head = None if observed_at is None else key_rest_head(dims_key, observed_at)
        return dims, dims_key, observed_at, head

    def candidates(record: dict[str, Any]) -> tuple[Any, ...]:
        get = record.get
        if single_entity is not None:
            entity = get(single_entity)
            entity_key = "" if entity is None else str(entity)
        else:
            entity_key = "|".join("" if get(name) is None else str(get(name)) for name in entity_fields)
        pair = (tuple([get(name) for name in dimension_fields]), get(time_field))
        try:
            dims, dims_key, observed_at, head = made[pair]
        except KeyError:
            dims, dims_key, observed_at, head = made[pair] = make(*pair)
            if len(made) > 100_000:
                made.clear()
        except TypeError:  # an unhashable value (a list in a dimension): not cached
            dims, dims_key, observed_at, head = make(*pair)
        if head is None:
            return (
                entity_key,
                dims,
                dims_key,
                None,
                [(measure, as_decimal(get(measure)), unit, None) for measure, unit, _ in measures],
            )
        rest = (head + entity_key).encode()
        return entity_key, dims, dims_key, observed_at, [
            (measure, value if (kind := type(value := get(measure))) is Decimal or kind is int else as_decimal(value), unit,
             KEY_MD5(prefix + rest).hexdigest())
            for measure, unit, prefix in measures
        ]  # fmt: skip

    return candidates


def as_utc_datetime(value: Any) -> datetime | None:
    """Dates are taken as midnight UTC; aware datetimes are converted to UTC."""
    if isinstance(value, datetime):
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    if isinstance(value, str):
        try:
            return as_utc_datetime(datetime.fromisoformat(value))
        except ValueError:
            return None
    return None


def as_decimal(value: Any) -> Decimal | None:
    if type(value) is int:
        return Decimal(value)
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, Decimal):
        return value
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def _jsonable(value: Any) -> Any:
    if isinstance(value, date | datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value
