"""The policy kinds: what each governs and the JSON Schema its parameters must satisfy."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

from django.core.exceptions import ValidationError
from jsonschema import Draft202012Validator

from apps.host.choices import ClassificationChoices
from apps.host.choices import PolicyKindChoices as K

_PERCENT = {"type": "number", "minimum": 0, "maximum": 100}
_DAYS = {"type": "integer", "minimum": 1, "maximum": 36500}
_TREATMENT = {"enum": ["allowed", "masked", "encrypted", "excluded"]}
EXPORT_FORMATS = ["csv", "json", "ndjson", "parquet", "xlsx"]
LINEAGE_REQUIREMENTS = ["kpi_values_traceable_to_raw", "sources_under_active_contract", "contract_active"]


@dataclass(frozen=True)
class PolicyKind:
    kind: str
    summary: str
    schema: dict[str, Any]
    example: dict[str, Any]


def _object(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": required, "additionalProperties": False}


KINDS: dict[str, PolicyKind] = {
    K.RETENTION: PolicyKind(
        K.RETENTION,
        "How many days each storage layer keeps data before the retention job may delete it.",
        _object(
            {"raw_days": _DAYS, "gdp_days": _DAYS, "kpi_days": _DAYS, "published_days": _DAYS, "lineage_days": _DAYS},
            [],
        )
        | {"minProperties": 1},
        {"raw_days": 90, "gdp_days": 730, "published_days": 3650},
    ),
    K.CLASSIFICATION_HANDLING: PolicyKind(
        K.CLASSIFICATION_HANDLING,
        "What fields of each classification get when data leaves: allowed, masked, encrypted or excluded.",
        _object({level: _TREATMENT for level in ClassificationChoices.values}, []) | {"minProperties": 1},
        {"confidential": "masked", "restricted": "excluded"},
    ),
    K.QUALITY_GATE: PolicyKind(
        K.QUALITY_GATE,
        "Minimum pass rates: for a batch to be accepted, and for an output to be published.",
        _object(
            {
                "min_batch_pass_rate": _PERCENT,
                "min_publish_pass_rate": _PERCENT,
                "on_failure": {"enum": ["refuse_batch", "accept_valid_records"]},
            },
            ["min_batch_pass_rate"],
        ),
        {"min_batch_pass_rate": 95, "min_publish_pass_rate": 99, "on_failure": "accept_valid_records"},
    ),
    K.PUBLICATION_APPROVAL: PolicyKind(
        K.PUBLICATION_APPROVAL,
        "Whether publishing needs a second person's approval (four eyes).",
        _object({"four_eyes": {"type": "boolean"}}, ["four_eyes"]),
        {"four_eyes": True},
    ),
    K.EXPORT_CONTROL: PolicyKind(
        K.EXPORT_CONTROL,
        "Which export formats are allowed, how many rows, and the most sensitive classification that may leave.",
        _object(
            {
                "allowed_formats": {
                    "type": "array",
                    "items": {"enum": EXPORT_FORMATS},
                    "minItems": 1,
                    "uniqueItems": True,
                },
                "max_rows": {"type": "integer", "minimum": 1},
                "max_classification": {"enum": ClassificationChoices.values},
            },
            [],
        )
        | {"minProperties": 1},
        {"allowed_formats": ["csv", "parquet"], "max_rows": 1000000, "max_classification": "internal"},
    ),
    K.LINEAGE_OBLIGATION: PolicyKind(
        K.LINEAGE_OBLIGATION,
        "What must be traceable before an output may be published.",
        _object(
            {
                "requirements": {"type": "array", "items": {"enum": LINEAGE_REQUIREMENTS}, "uniqueItems": True},
                "retain_lineage_days": _DAYS,
            },
            ["requirements"],
        ),
        {"requirements": ["contract_active", "kpi_values_traceable_to_raw"], "retain_lineage_days": 365},
    ),
}


@cache
def _validator(kind: str) -> Draft202012Validator:
    return Draft202012Validator(KINDS[kind].schema)


def validate_parameters(kind: str, parameters: Any) -> dict[str, Any]:
    """The parameters if valid for `kind`; else ValidationError listing each problem with its path."""
    if kind not in KINDS:
        raise ValidationError({"kind": f"Unknown policy kind {kind!r}; use one of {', '.join(KINDS)}."})
    if not isinstance(parameters, dict):
        raise ValidationError({"parameters": "Parameters are a JSON object."})
    problems = []
    for error in sorted(_validator(kind).iter_errors(parameters), key=lambda e: list(e.absolute_path)):
        where = "/".join(str(p) for p in error.absolute_path)
        problems.append(f"{where}: {error.message}" if where else error.message)
    if problems:
        raise ValidationError({"parameters": problems})
    return parameters
