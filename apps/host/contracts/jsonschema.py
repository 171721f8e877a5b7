"""A contract version's schema as JSON Schema: what the registry stores and compares.

The content model is closed (`additionalProperties: false`): a contract says exactly
which fields a record has. Under Confluent's semantics that makes adding an optional
field backward compatible and removing any field a breaking change, which is what
data consumers expect of a contract. An optional field may also be null.
"""

from __future__ import annotations

from typing import Any

from apps.host.choices import LogicalTypeChoices as T

_TYPES = {
    T.STRING: {"type": "string"},
    T.INTEGER: {"type": "integer"},
    T.NUMBER: {"type": "number"},
    T.BOOLEAN: {"type": "boolean"},
    T.DATE: {"type": "string", "format": "date"},
    T.TIMESTAMP: {"type": "string", "format": "date-time"},
    T.OBJECT: {"type": "object"},
    T.ARRAY: {"type": "array"},
}


def field_schema(field: Any) -> dict[str, Any]:
    schema: dict[str, Any] = dict(_TYPES[field.logical_type])
    if not field.required:
        schema["type"] = [schema["type"], "null"]
    if field.description:
        schema["description"] = field.description
    if field.allowed_values:
        schema["enum"] = list(field.allowed_values) + ([] if field.required else [None])
    if field.pattern:
        schema["pattern"] = field.pattern
    if field.max_length is not None:
        schema["maxLength"] = field.max_length
    if field.minimum is not None:
        schema["minimum"] = _number(field.minimum)
    if field.maximum is not None:
        schema["maximum"] = _number(field.maximum)
    return schema


def version_json_schema(version: Any, fields: list[Any] | None = None) -> dict[str, Any]:
    fields = list(version.fields.all()) if fields is None else fields
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": version.contract.key,
        "type": "object",
        "properties": {field.name: field_schema(field) for field in fields},
        "required": [field.name for field in fields if field.required],
        "additionalProperties": False,
    }


def _number(value: float) -> int | float:
    return int(value) if float(value).is_integer() else value
