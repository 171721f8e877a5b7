"""ODCS v3 documents ⇄ Aurum contract versions: what Aurum reads from a document, and what it writes back.

What Aurum models (read on import, written over the stored document on export):

- Contract: `key` (the slug of `dataProduct`, else `name`, else the first schema object's
  name, else `id`; ids are usually UUIDs, so they come last; the caller may override it),
  `name`, `domain`, `description.purpose`. These belong to the contract, not to one
  version: on export they overwrite the document when the contract has a value and leave
  the document's own value alone when it has none.
- Version: `version`; `status` (Aurum's lifecycle status, exported by its name: an imported
  document always becomes a "draft"); the dataset, which is `schema[0]` — Aurum models ONE
  dataset per contract version, so other schema objects only round-trip.
- Fields: each property of `schema[0]`, in order: `name`, `logicalType`, `required`,
  `unique`, `primaryKey`, `primaryKeyPosition`, `classification` (public, internal,
  confidential, restricted, case-insensitively; any other value keeps the original and
  reads as "internal"), `description`, `logicalTypeOptions.pattern`/`maxLength` (string)
  and `minimum`/`maximum` (numbers), and Aurum's own attributes as property custom
  properties `aurum.role`, `aurum.unit`, `aurum.allowedValues` (plus `aurum.pattern`,
  `aurum.maxLength`, `aurum.minimum`, `aurum.maximum` when the logical type's options
  cannot hold them, e.g. a minimum on a date). Everything else of a property — nested
  `properties`/`items`, relationships, tags, physical names, quality rules Aurum does not
  model — is kept verbatim in the field's `extra`.
- Quality rules (on `schema[0]` and on its properties), library metrics only:
  nullValues → not_null; missingValues → completeness (`arguments.missingValues` →
  params.missing_values); invalidValues with `validValues` → allowed_values
  (params.values) or with `pattern` → pattern (params.pattern); duplicateValues → unique,
  or duplicate_ratio when its unit is percent (`arguments.properties`, a compound key, →
  params.properties); rowCount → row_count. Operators: for the failure-count kinds,
  `mustBe: 0` and `mustBeLessOrEqualTo: N` are the allowed failure level (`threshold`, in
  rows, or in percent when params.unit says so; completeness and duplicate_ratio count in
  percent unless params.unit says rows); for row_count, `mustBeGreaterOrEqualTo`,
  `mustBeLessOrEqualTo` and `mustBeBetween` become params.min/max. Any other operator is
  kept as params.operator + params.value, exactly as written. Bounds of `mustBeBetween` and
  `mustNotBeBetween` are inclusive. Severity: error or warning; anything else (info,
  critical, …) reads as warning and the original is kept; no severity reads as error (the
  model's default) and is exported as `severity: error`.
  Aurum kinds ODCS has no metric for (range, freshness), and any Aurum rule whose library
  form would not read back identically, are exported as `type: custom, engine: aurum`
  with the rule in `implementation` (`kind`, `params`, `threshold`), which the import
  reads back.
- SLA: the first `slaProperties` entry named freshness, else latency, else frequency, whose
  value and unit convert (s/sec/second(s), m/min/minute(s), h/hr/hour(s), d/day(s),
  w/week(s), y/yr/year(s) as 365 days) → sla_freshness; `availability` → sla_availability
  and `completeness` → sla_completeness (percent, when the unit is absent, % or percent).
  errorRate is not a completeness target and only round-trips. `support[]` → support.

What only round-trips (kept in `ContractVersion.odcs` or in `extra`, written back as it was):
everything else — other schema objects, servers, team, roles, price, tags, custom
properties, relationships, authoritative definitions, other SLA entries, and quality
rules of type sql, custom (other engines) and text, and library rules Aurum cannot read
(e.g. invalidValues with both validValues and pattern). Those of a property stay in the
field's `extra["quality"]`; those of the dataset stay in the stored document.

What export may write differently from what was imported (the normalisations):
`status` is Aurum's; a property without `logicalType` gets `logicalType: string` (Aurum
needs a type); a rule without severity gets `severity: error`; a completeness rule in
rows gets `unit: rows`; Aurum's rules of a property or dataset come before the rules it
only carries, and its `aurum.*` custom properties come after the others; an unset
threshold of a failure-count kind is exported as `mustBe: 0`; SLA availability and
completeness are rounded to the model's precision; when Aurum's freshness SLA is cleared,
every entry the import would read as freshness is removed. When a field's type changes in
Aurum, logical type options, nested properties and items the new type does not allow are
dropped. Keys are written in the order of the ODCS specification.

The rule behind the round trip: a modelled attribute whose value Aurum cannot write back
exactly as written (`classification: Sensitive`, `logicalType: time`,
`primaryKeyPosition: -1`, `required: false`, `severity: info`) is also kept, verbatim, in
`extra`; on export the kept original wins as long as it still reads as Aurum's value.
"""

from __future__ import annotations

import copy
import json
import math
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from django.utils.text import slugify

from apps.host.choices import ClassificationChoices, FieldRoleChoices, LogicalTypeChoices, SeverityChoices
from apps.host.choices import QualityRuleKindChoices as K

API_VERSION = "v3.1.0"
AURUM_ENGINE = "aurum"  # `engine` of the custom rules Aurum writes for kinds ODCS has no metric for
CONTRACT_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:aurum:odcs:contract")


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()  # "no such key", distinct from None (YAML null)


@dataclass
class VersionSpec:
    """What an ODCS document means to Aurum: the arguments of contract_create and contract_version_create."""

    key: str
    name: str
    domain: str
    description: str
    version: str
    dataset: str
    fields: list[dict[str, Any]]  # ContractField attribute names
    quality_rules: list[dict[str, Any]]  # QualityRule attribute names + "field" (a field name or None)
    sla_freshness: timedelta | None
    sla_completeness: Decimal | None
    sla_availability: Decimal | None
    support: list[Any]
    odcs: dict[str, Any]  # the whole original document
    # Where each value came from: Aurum's error keys ("fields/3/pattern", "quality_rules/0",
    # "version", "key") → the ODCS path ("schema/0/properties/3/logicalTypeOptions/pattern").
    sources: dict[str, str] = field(default_factory=dict)

    def version_attrs(self) -> dict[str, Any]:
        """The keyword arguments of contract_version_create besides version, fields and rules."""
        return {
            "dataset": self.dataset,
            "sla_freshness": self.sla_freshness,
            "sla_completeness": self.sla_completeness,
            "sla_availability": self.sla_availability,
            "support": self.support,
            "odcs": self.odcs,
        }

    def source_of(self, error_key: str) -> str:
        """The ODCS path of an Aurum validation error key, or of its nearest known ancestor."""
        parts = error_key.split("/")
        while parts:
            path = self.sources.get("/".join(parts))
            if path is not None:
                return path
            parts.pop()
        return ""


# --- small helpers -------------------------------------------------------------------------
def _same(a: Any, b: Any) -> bool:
    """Equal as YAML writes them: 1, 1.0 and true are three different things."""
    if a is MISSING or b is MISSING:
        return a is b
    return json.dumps(a, sort_keys=True, default=str) == json.dumps(b, sort_keys=True, default=str)


def _get(node: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return MISSING
        node = node[key]
    return node


def _pop(node: dict[str, Any], path: tuple[str, ...]) -> Any:
    """Remove and return the value at `path`; a parent mapping this empties goes too."""
    *parents, last = path
    holder = _get(node, tuple(parents))
    if not isinstance(holder, dict) or last not in holder:
        return MISSING
    value = holder.pop(last)
    if parents and not holder:
        _pop(node, tuple(parents))
    return value


def _put(node: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    *parents, last = path
    for key in parents:
        if not isinstance(node.get(key), dict):
            node[key] = {}
        node = node[key]
    node[last] = value


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _plain(value: Any) -> Any:
    """A number as YAML should show it: 5 rather than 5.0."""
    if isinstance(value, Decimal):
        value = float(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _list(node: Any, key: str) -> list[Any]:
    value = node.get(key) if isinstance(node, dict) else None
    return value if isinstance(value, list) else []


def _numeric(value: Any) -> float | None:
    """A finite number, also when written as a string ("99.9")."""
    if _is_number(value):
        return float(value)
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
        return number if math.isfinite(number) else None
    return None


# --- attributes Aurum models, and how each reads and writes --------------------------------
@dataclass(frozen=True)
class _Attr:
    """One modelled attribute: where ODCS keeps it, what it is to Aurum, and back.

    `derive` turns an ODCS value into Aurum's (MISSING when Aurum cannot hold it: the
    attribute then takes `default`); `emit` turns Aurum's value into ODCS (MISSING to leave
    the key out). `paths` lists where the value may be written, the usual place first.
    """

    name: str
    paths: tuple[tuple[str, ...], ...]
    default: Any
    derive: Callable[[Any], Any]
    emit: Callable[[Any], Any]

    def read(self, value: Any) -> Any:
        derived = MISSING if value is MISSING else self.derive(value)
        return copy.copy(self.default) if derived is MISSING else derived


def _take(source: dict[str, Any], attrs: Iterable[_Attr], target: dict[str, Any]) -> dict[str, tuple[str, ...]]:
    """Move the modelled attributes from `source` (the rest stays) into `target`; return where each was.

    An original that Aurum cannot write back exactly as it was stays in `source`, so that
    export can restore it (see _give).
    """
    found: dict[str, tuple[str, ...]] = {}
    for attr in attrs:
        target[attr.name] = copy.copy(attr.default)
        for path in attr.paths:
            original = _get(source, path)
            if original is MISSING:
                continue
            found.setdefault(attr.name, path)
            if attr.derive(original) is MISSING:
                continue  # not Aurum's to read (e.g. a date minimum); it stays as it is
            found[attr.name] = path
            _pop(source, path)
            target[attr.name] = attr.read(original)
            if not _same(attr.emit(target[attr.name]), original):
                _put(source, path, original)
            break
    return found


def _give(target: dict[str, Any], attrs: Iterable[_Attr], values: Callable[[str], Any]) -> None:
    """Write Aurum's values into `target` (the kept rest); a kept original wins while it still reads the same."""
    for attr in attrs:
        current = values(attr.name)
        if any(_get(target, path) is not MISSING and attr.read(_get(target, path)) == current for path in attr.paths):
            continue
        for path in attr.paths:
            value = _get(target, path)
            if value is not MISSING and attr.derive(value) is not MISSING:
                _pop(target, path)
        out = attr.emit(current)
        if out is not MISSING:
            _put(target, attr.paths[0], out)


def _as_bool(value: Any) -> Any:
    return value if isinstance(value, bool) else MISSING


def _true_only(value: Any) -> Any:
    return True if value else MISSING


def _as_text(value: Any) -> Any:
    return value if isinstance(value, str) else MISSING


def _non_empty(value: Any) -> Any:
    return value if value else MISSING


def _as_count(value: Any) -> Any:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else MISSING


def _as_float(value: Any) -> Any:
    return float(value) if _is_number(value) else MISSING


def _optional(value: Any) -> Any:
    return MISSING if value is None else _plain(value)


def _as_logical_type(value: Any) -> Any:
    return value if value in LogicalTypeChoices.values else MISSING


def _as_classification(value: Any) -> Any:
    if isinstance(value, str) and value.strip().lower() in ClassificationChoices.values:
        return value.strip().lower()
    return MISSING


def _unless(default: Any) -> Callable[[Any], Any]:
    return lambda value: MISSING if value == default else value


def _as_is(value: Any) -> Any:
    return value


def _custom(name: str) -> tuple[str, ...]:
    return (f"aurum.{name}",)  # a custom property, lifted to a pseudo key while mapping (see _lift)


PROPERTY_ATTRS = (
    _Attr("logical_type", (("logicalType",),), LogicalTypeChoices.STRING, _as_logical_type, _as_is),
    _Attr("required", (("required",),), False, _as_bool, _true_only),
    _Attr("unique", (("unique",),), False, _as_bool, _true_only),
    _Attr("primary_key", (("primaryKey",),), False, _as_bool, _true_only),
    _Attr("primary_key_position", (("primaryKeyPosition",),), None, _as_count, _optional),
    _Attr("pattern", (("logicalTypeOptions", "pattern"), _custom("pattern")), "", _as_text, _non_empty),
    _Attr("max_length", (("logicalTypeOptions", "maxLength"), _custom("maxLength")), None, _as_count, _optional),
    _Attr("minimum", (("logicalTypeOptions", "minimum"), _custom("minimum")), None, _as_float, _optional),
    _Attr("maximum", (("logicalTypeOptions", "maximum"), _custom("maximum")), None, _as_float, _optional),
    _Attr(
        "classification",
        (("classification",),),
        ClassificationChoices.INTERNAL,
        _as_classification,
        _unless(ClassificationChoices.INTERNAL),
    ),
    _Attr("description", (("description",),), "", _as_text, _non_empty),
    # Aurum's own attributes: passed through as written, so the model's validation names a bad one.
    _Attr("role", (_custom("role"),), FieldRoleChoices.ATTRIBUTE, _as_is, _unless(FieldRoleChoices.ATTRIBUTE)),
    _Attr("unit", (_custom("unit"),), "", _as_is, _non_empty),
    _Attr("allowed_values", (_custom("allowedValues"),), [], _as_is, _non_empty),
)
AURUM_CUSTOM_PROPERTIES = tuple(
    path[0] for attr in PROPERTY_ATTRS for path in attr.paths if path[0].startswith("aurum.")
)

# Where the options Aurum models are valid ODCS; elsewhere they travel as aurum.* custom properties.
_OPTION_TYPES = {
    "pattern": {"string"},
    "maxLength": {"string"},
    "minimum": {"integer", "number"},
    "maximum": {"integer", "number"},
}
# logicalTypeOptions each logical type allows (ODCS v3.1.0); a type not listed allows any.
_NUMBER_OPTIONS = {"multipleOf", "maximum", "exclusiveMaximum", "minimum", "exclusiveMinimum", "format"}
_DATE_OPTIONS = {"format", "exclusiveMaximum", "maximum", "exclusiveMinimum", "minimum"}
_TYPE_OPTIONS = {
    "string": {"minLength", "maxLength", "pattern", "format"},
    "date": _DATE_OPTIONS,
    "timestamp": _DATE_OPTIONS | {"timezone", "defaultTimezone"},
    "time": _DATE_OPTIONS | {"timezone", "defaultTimezone"},
    "integer": _NUMBER_OPTIONS,
    "number": _NUMBER_OPTIONS,
    "object": {"maxProperties", "minProperties", "required"},
    "array": {"maxItems", "minItems", "uniqueItems"},
}


def _as_severity(value: Any) -> Any:
    if isinstance(value, str) and value.strip().lower() in SeverityChoices.values:
        return value.strip().lower()
    return SeverityChoices.WARNING  # info, critical, … : reported, not rejected


RULE_ATTRS = (
    _Attr("severity", (("severity",),), SeverityChoices.ERROR, _as_severity, _as_is),
    _Attr("description", (("description",),), "", _as_text, _non_empty),
)


def _lift(prop: dict[str, Any]) -> dict[str, int]:
    """Move plain `aurum.*` custom properties to pseudo keys of `prop`; return their original positions."""
    entries = prop.get("customProperties")
    if not isinstance(entries, list):
        return {}
    positions: dict[str, int] = {}
    rest = []
    for index, entry in enumerate(entries):
        name = entry.get("property") if isinstance(entry, dict) else None
        if name in AURUM_CUSTOM_PROPERTIES and name not in positions and set(entry) == {"property", "value"}:
            prop[name] = entry["value"]
            positions[name] = index
        else:
            rest.append(entry)
    if positions:
        if rest:
            prop["customProperties"] = rest
        else:
            del prop["customProperties"]
    return positions


def _lower(prop: dict[str, Any]) -> None:
    """Turn the pseudo keys back into custom properties, after the others."""
    lifted = [{"property": name, "value": prop.pop(name)} for name in AURUM_CUSTOM_PROPERTIES if name in prop]
    if lifted:
        prop["customProperties"] = [*prop.get("customProperties", []), *lifted]


# --- quality rules ---------------------------------------------------------------------------
OPERATORS = (
    "mustBe",
    "mustNotBe",
    "mustBeGreaterThan",
    "mustBeGreaterOrEqualTo",
    "mustBeLessThan",
    "mustBeLessOrEqualTo",
    "mustBeBetween",
    "mustNotBeBetween",
)
_FAILURE_KINDS = {K.NOT_NULL, K.UNIQUE, K.DUPLICATE_RATIO, K.ALLOWED_VALUES, K.PATTERN, K.COMPLETENESS}
_PERCENT_KINDS = {K.DUPLICATE_RATIO, K.COMPLETENESS}  # their threshold is a percentage unless params.unit says rows
_METRIC = {
    K.NOT_NULL: "nullValues",
    K.COMPLETENESS: "missingValues",
    K.ALLOWED_VALUES: "invalidValues",
    K.PATTERN: "invalidValues",
    K.UNIQUE: "duplicateValues",
    K.DUPLICATE_RATIO: "duplicateValues",
    K.ROW_COUNT: "rowCount",
}
_ARGUMENT = {  # kind → (ODCS argument, params key)
    K.ALLOWED_VALUES: ("validValues", "values"),
    K.PATTERN: ("pattern", "pattern"),
    K.COMPLETENESS: ("missingValues", "missing_values"),
    K.UNIQUE: ("properties", "properties"),
    K.DUPLICATE_RATIO: ("properties", "properties"),
}


def _library_kind(rule: dict[str, Any]) -> str | None:
    if rule.get("type", "library") != "library":
        return None
    arguments = rule.get("arguments") if isinstance(rule.get("arguments"), dict) else {}
    metric = rule.get("metric")
    if metric == "duplicateValues":
        return K.DUPLICATE_RATIO if rule.get("unit") == "percent" else K.UNIQUE
    if metric == "invalidValues":
        values, pattern = "validValues" in arguments, "pattern" in arguments
        if values != pattern:
            return K.ALLOWED_VALUES if values else K.PATTERN
        return None
    return {"nullValues": K.NOT_NULL, "missingValues": K.COMPLETENESS, "rowCount": K.ROW_COUNT}.get(metric)


def _threshold_of(operator: str, value: Any) -> float | None:
    """The allowed failure level an operator states, for the failure-count kinds."""
    if operator == "mustBe" and _is_number(value) and value == 0:
        return 0.0
    if operator == "mustBeLessOrEqualTo" and _is_number(value):
        return float(value)
    return None


def _failure_operator(threshold: float | None) -> tuple[str, Any]:
    if not threshold:
        return "mustBe", 0
    return "mustBeLessOrEqualTo", _plain(threshold)


def _rule_from_odcs(rule: Any) -> dict[str, Any] | None:
    """The Aurum rule (kind, severity, threshold, params, description, extra) an ODCS rule means, or None."""
    if not isinstance(rule, dict):
        return None
    rest = copy.deepcopy(rule)
    if (
        rule.get("type") == "custom"
        and rule.get("engine") == AURUM_ENGINE
        and isinstance(rule.get("implementation"), dict)
    ):
        implementation = rest.pop("implementation")
        del rest["type"], rest["engine"]
        spec = {
            "kind": implementation.pop("kind", ""),
            "threshold": implementation.pop("threshold", None),
            "params": implementation.pop("params", {}),
        }
        if implementation:
            rest["implementation"] = implementation
    else:
        kind = _library_kind(rule)
        operator = next((name for name in OPERATORS if name in rule), None)
        if kind is None or operator is None:
            return None
        spec = {"kind": kind, **_library_rule(kind, operator, rest)}
    _take(rest, RULE_ATTRS, spec)
    spec["extra"] = rest
    return spec


def _library_rule(kind: str, operator: str, rest: dict[str, Any]) -> dict[str, Any]:
    """Threshold and params of a library rule; consumes what it reads from `rest`."""
    rest.pop("metric")
    value = rest.pop(operator)
    params: dict[str, Any] = {}
    arguments = rest.pop("arguments", MISSING)
    if kind in _ARGUMENT and isinstance(arguments, dict) and _ARGUMENT[kind][0] in arguments:
        arguments = dict(arguments)
        params[_ARGUMENT[kind][1]] = arguments.pop(_ARGUMENT[kind][0])
        if arguments:
            rest["arguments"] = arguments
    elif arguments is not MISSING:
        rest["arguments"] = arguments
    unit = rest.pop("unit", MISSING)
    threshold = None
    if kind == K.ROW_COUNT:
        if operator == "mustBeGreaterOrEqualTo":
            params["min"] = value
        elif operator == "mustBeLessOrEqualTo":
            params["max"] = value
        elif operator == "mustBeBetween":
            params["min"], params["max"] = value
        else:
            params["operator"], params["value"] = operator, value
    else:
        threshold = _threshold_of(operator, value)
        canonical = _failure_operator(threshold)
        if threshold is None or canonical[0] != operator or not _same(canonical[1], value):
            params["operator"], params["value"] = operator, value
    if kind in _PERCENT_KINDS:
        if unit != "percent":
            params["unit"] = "rows" if unit is MISSING else unit
    elif unit is not MISSING:
        params["unit"] = unit
    return {"threshold": threshold, "params": params}


def _rule_to_odcs(kind: str, severity: str, threshold: float | None, params: dict[str, Any], description: str,
                  extra: dict[str, Any]) -> dict[str, Any]:  # fmt: skip
    """An Aurum rule as ODCS: a library metric when it reads back the same, else a custom rule of engine aurum."""
    out = copy.deepcopy(extra) if isinstance(extra, dict) else {}
    library = _library_form(kind, threshold, params or {})
    if library is not None:
        kept_arguments = out.pop("arguments", MISSING)  # arguments Aurum does not read stay
        for name in ("type", "engine", "implementation", "metric", "unit", *OPERATORS):
            if name != "type" or out.get("type") not in (None, "library"):
                out.pop(name, None)
        out.update(library)
        if isinstance(kept_arguments, dict) and isinstance(library.get("arguments"), dict):
            out["arguments"] = {**kept_arguments, **library["arguments"]}
        elif kept_arguments is not MISSING and "arguments" not in library:
            out["arguments"] = kept_arguments
    else:
        for name in ("metric", "arguments", "unit", "query", *OPERATORS):
            out.pop(name, None)
        implementation = out.pop("implementation", None)
        implementation = dict(implementation) if isinstance(implementation, dict) else {}
        implementation["kind"] = kind
        if params:
            implementation["params"] = copy.deepcopy(params)
        if threshold is not None:
            implementation["threshold"] = _plain(threshold)
        out.update({"type": "custom", "engine": AURUM_ENGINE, "implementation": implementation})
    aurum = {"severity": severity, "description": description}
    _give(out, RULE_ATTRS, aurum.__getitem__)
    return out


def _library_form(kind: str, threshold: float | None, params: dict[str, Any]) -> dict[str, Any] | None:
    if kind not in _METRIC:
        return None
    rest = dict(params)
    out: dict[str, Any] = {"metric": _METRIC[kind]}
    if kind in _ARGUMENT:
        argument, name = _ARGUMENT[kind]
        if name in rest:
            out["arguments"] = {argument: rest.pop(name)}
    operator, value = rest.pop("operator", MISSING), rest.pop("value", MISSING)
    if kind == K.ROW_COUNT:
        low, high = rest.pop("min", None), rest.pop("max", None)
        if operator in OPERATORS and value is not MISSING and low is None and high is None:
            out[operator] = value
        elif low is not None and high is not None:
            out["mustBeBetween" if low != high else "mustBe"] = [low, high] if low != high else low
        elif low is not None:
            out["mustBeGreaterOrEqualTo"] = low
        elif high is not None:
            out["mustBeLessOrEqualTo"] = high
        else:
            out["mustBeGreaterThan"] = 0
    elif operator in OPERATORS and value is not MISSING and (_threshold_of(operator, value) or 0) == (threshold or 0):
        out[operator] = value
    else:
        name, value = _failure_operator(threshold)
        out[name] = value
    unit = rest.pop("unit", MISSING)
    if unit is MISSING and kind in _PERCENT_KINDS:
        unit = "percent"
    if unit is not MISSING:
        out["unit"] = unit
    back = _rule_from_odcs(out)  # the library form only if it reads back as the same rule
    if back is None or back["kind"] != kind or back["params"] != params:
        return None
    if kind in _FAILURE_KINDS:
        same_threshold = (back["threshold"] or 0) == (threshold or 0)  # no threshold: no failure allowed
    else:
        same_threshold = back["threshold"] == threshold
    return out if same_threshold else None


# --- SLA -------------------------------------------------------------------------------------
_SECONDS = {
    **dict.fromkeys(("s", "sec", "secs", "second", "seconds"), 1),
    **dict.fromkeys(("m", "min", "mins", "minute", "minutes"), 60),
    **dict.fromkeys(("h", "hr", "hrs", "hour", "hours"), 3600),
    **dict.fromkeys(("d", "day", "days"), 86400),
    **dict.fromkeys(("w", "week", "weeks"), 7 * 86400),
    **dict.fromkeys(("y", "yr", "yrs", "year", "years"), 365 * 86400),
}
_FRESHNESS = ("freshness", "latency", "frequency")  # in order of preference
_PERCENT_UNITS = (MISSING, None, "%", "percent")


def _sla_name(entry: Any) -> str:
    return str(entry.get("property", "")).strip().lower() if isinstance(entry, dict) else ""


def _duration(entry: dict[str, Any]) -> timedelta | None:
    value, unit = _numeric(entry.get("value")), entry.get("unit")
    if value is None or value < 0 or not isinstance(unit, str) or unit.strip().lower() not in _SECONDS:
        return None
    return timedelta(seconds=value * _SECONDS[unit.strip().lower()])


def _freshness_indexes(sla: list[Any]) -> list[int]:
    """Entries the import reads as the freshness SLA, the one it takes first."""
    found = [i for i, entry in enumerate(sla) if _sla_name(entry) in _FRESHNESS and _duration(entry) is not None]
    return sorted(found, key=lambda i: (_FRESHNESS.index(_sla_name(sla[i])), i))


def _duration_entry(value: timedelta) -> dict[str, Any]:
    seconds = value.total_seconds()
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds and seconds % size == 0:
            return {"value": int(seconds // size), "unit": unit}
    return {"value": _plain(seconds), "unit": "s"}


@dataclass(frozen=True)
class _Percent:
    """An SLA percentage: sla_availability (3 decimals) or sla_completeness (2)."""

    attr: str
    property: str
    places: str

    def index(self, sla: list[Any]) -> int | None:
        return next((i for i, entry in enumerate(sla) if self.read(entry) is not None), None)

    def read(self, entry: Any) -> Decimal | None:
        if _sla_name(entry) != self.property or entry.get("unit", MISSING) not in _PERCENT_UNITS:
            return None
        value = _numeric(entry.get("value"))
        if value is None:
            return None
        try:
            return Decimal(str(value)).quantize(Decimal(self.places))
        except InvalidOperation:
            return None


_PERCENTS = (
    _Percent("sla_availability", "availability", "0.001"),
    _Percent("sla_completeness", "completeness", "0.01"),
)


# --- ODCS → Aurum ------------------------------------------------------------------------------
def odcs_to_version_spec(document: dict[str, Any], *, key: str | None = None) -> VersionSpec:
    """What a (valid) ODCS document means to Aurum. `key` overrides the contract key derived from it."""
    document = copy.deepcopy(document)
    schema = document.get("schema") if isinstance(document.get("schema"), list) else []
    dataset = schema[0] if schema and isinstance(schema[0], dict) else {}
    sources: dict[str, str] = {"version": "version", "dataset": "schema/0/name", "support": "support"}
    fields: list[dict[str, Any]] = []
    rules: list[dict[str, Any]] = []
    for index, prop in enumerate(_list(dataset, "properties")):
        path = f"schema/0/properties/{index}"
        spec, where, positions = _field_from_property(prop if isinstance(prop, dict) else {})
        sources[f"fields/{index}"] = path
        sources[f"fields/{index}/name"] = f"{path}/name"
        for name, location in where.items():
            if location[0] in positions:
                location = ("customProperties", str(positions[location[0]]), "value")
            sources[f"fields/{index}/{name}"] = "/".join((path, *location))
        kept = []
        for q, rule in enumerate(_list(prop, "quality")):
            aurum = _rule_from_odcs(rule)
            if aurum is None:
                kept.append(rule)
                continue
            sources[f"quality_rules/{len(rules)}"] = f"{path}/quality/{q}"
            rules.append({"field": spec["name"], **aurum})
        if kept or (isinstance(prop, dict) and prop.get("quality") == []):
            spec["extra"]["quality"] = kept
        fields.append(spec)
    for q, rule in enumerate(_list(dataset, "quality")):
        aurum = _rule_from_odcs(rule)
        if aurum is not None:
            sources[f"quality_rules/{len(rules)}"] = f"schema/0/quality/{q}"
            rules.append({"field": None, **aurum})
    sla = document.get("slaProperties") if isinstance(document.get("slaProperties"), list) else []
    freshness = _freshness_indexes(sla)
    sla_freshness = _duration(sla[freshness[0]]) if freshness else None
    if freshness:
        sources["sla_freshness"] = f"slaProperties/{freshness[0]}/value"
    percents: dict[str, Decimal | None] = {}
    for percent in _PERCENTS:
        at = percent.index(sla)
        percents[percent.attr] = None if at is None else percent.read(sla[at])
        if at is not None:
            sources[percent.attr] = f"slaProperties/{at}/value"
    key_source, derived_key = _contract_key(document, dataset)
    sources["key"] = "" if key else key_source
    description = document.get("description") if isinstance(document.get("description"), dict) else {}
    name_source = next((n for n in ("name", "dataProduct") if isinstance(document.get(n), str) and document[n]), None)
    sources.update({"name": name_source or key_source, "domain": "domain", "description": "description/purpose"})
    support = document.get("support")
    return VersionSpec(
        key=key or derived_key,
        name=document[name_source] if name_source else str(dataset.get("name") or key or derived_key),
        domain=str(document.get("domain") or ""),
        description=str(description.get("purpose") or ""),
        version=str(document.get("version", "")),
        dataset=str(dataset.get("name") or ""),
        fields=fields,
        quality_rules=rules,
        sla_freshness=sla_freshness,
        sla_completeness=percents["sla_completeness"],
        sla_availability=percents["sla_availability"],
        support=copy.deepcopy(support) if isinstance(support, list) else [],
        odcs=document,
        sources=sources,
    )


def _contract_key(document: dict[str, Any], dataset: dict[str, Any]) -> tuple[str, str]:
    """(ODCS path, slug) of the contract key: dataProduct, name, the dataset's name, then id."""
    for path, value in (
        ("dataProduct", document.get("dataProduct")),
        ("name", document.get("name")),
        ("schema/0/name", dataset.get("name")),
        ("id", document.get("id")),
    ):
        slug = slugify(str(value or ""))[:100].strip("-_")
        if slug:
            return path, slug
    return "id", "contract"


def _field_from_property(prop: dict[str, Any]) -> tuple[dict[str, Any], dict[str, tuple[str, ...]], dict[str, int]]:
    """(ContractField attributes, where each modelled one was, positions of aurum.* custom properties)."""
    rest = copy.deepcopy(prop)
    rest.pop("quality", None)  # the caller splits the rules
    spec: dict[str, Any] = {"name": rest.pop("name", "")}
    positions = _lift(rest)
    where = _take(rest, PROPERTY_ATTRS, spec)
    _lower(rest)
    spec["extra"] = rest
    return spec, where, positions


# --- Aurum → ODCS ------------------------------------------------------------------------------
def contract_odcs_id(contract: Any) -> str:
    """A stable ODCS id for a contract Aurum created: the same for every version, tenant and key bound."""
    return str(uuid.uuid5(CONTRACT_NAMESPACE, f"{contract.tenant.slug}/{contract.key}"))


def version_to_odcs(version: Any) -> dict[str, Any]:
    """The ODCS document of a contract version: the stored document with everything Aurum models written over."""
    contract = version.contract
    document = copy.deepcopy(version.odcs) if isinstance(version.odcs, dict) and version.odcs else {}
    document.setdefault("apiVersion", API_VERSION)
    document.setdefault("kind", "DataContract")
    document.setdefault("id", contract_odcs_id(contract))
    document["version"] = version.version
    document["status"] = str(version.status)
    if contract.name:
        document["name"] = contract.name
    if contract.domain:
        document["domain"] = contract.domain
    if contract.description:
        description = document.get("description") if isinstance(document.get("description"), dict) else {}
        description["purpose"] = contract.description
        document["description"] = description
    fields = list(version.fields.all())
    rules = list(version.quality_rules.all())
    _export_schema(document, version, fields, rules)
    _export_sla(document, version)
    if version.support:
        document["support"] = copy.deepcopy(version.support)
    else:
        document.pop("support", None)
    return _tidy(document)


def _export_schema(document: dict[str, Any], version: Any, fields: list[Any], rules: list[Any]) -> None:
    schema = document.get("schema") if isinstance(document.get("schema"), list) else []
    if not (fields or rules or version.dataset or schema):
        return
    first = schema[0] if schema else {}
    if version.dataset:
        first["name"] = version.dataset
    first.setdefault("name", version.contract.key)
    by_field: dict[Any, list[dict[str, Any]]] = {}
    for rule in rules:
        odcs = _rule_to_odcs(rule.kind, rule.severity, rule.threshold, rule.params, rule.description, rule.extra)
        by_field.setdefault(rule.field_id, []).append(odcs)
    if fields or "properties" in first:
        first["properties"] = [_field_to_property(f, by_field.get(f.pk, [])) for f in fields]
    quality = [*by_field.get(None, []), *(r for r in first.get("quality") or [] if _rule_from_odcs(r) is None)]
    if quality or first.get("quality") == []:
        first["quality"] = quality
    else:
        first.pop("quality", None)
    document["schema"] = [first, *schema[1:]]


def _field_to_property(row: Any, rules: list[dict[str, Any]]) -> dict[str, Any]:
    prop = copy.deepcopy(row.extra) if isinstance(row.extra, dict) else {}
    kept_rules = prop.pop("quality", MISSING)
    _lift(prop)
    _give(prop, PROPERTY_ATTRS, lambda name: getattr(row, name))
    logical_type = prop.get("logicalType")
    for option, types in _OPTION_TYPES.items():
        value = _get(prop, ("logicalTypeOptions", option))
        if value is MISSING or logical_type in types:
            continue
        if option in ("minimum", "maximum") and not _is_number(value):
            continue  # the document's own (a date's minimum); not Aurum's
        prop[f"aurum.{option}"] = _pop(prop, ("logicalTypeOptions", option))
    allowed = _TYPE_OPTIONS.get(logical_type)
    options = prop.get("logicalTypeOptions")
    if allowed is not None and isinstance(options, dict):  # stale options of the type before a change
        for option in set(options) - allowed:
            del options[option]
    if logical_type != "object":
        prop.pop("properties", None)
    if logical_type != "array":
        prop.pop("items", None)
    _lower(prop)
    quality = [*rules, *([] if kept_rules is MISSING else kept_rules)]
    if quality or kept_rules is not MISSING:
        prop["quality"] = quality
    return {"name": row.name, **prop}


def _export_sla(document: dict[str, Any], version: Any) -> None:
    sla = copy.deepcopy(document.get("slaProperties")) if isinstance(document.get("slaProperties"), list) else []
    current = version.sla_freshness
    found = _freshness_indexes(sla)
    if current is None:
        sla = [entry for i, entry in enumerate(sla) if i not in found]
    elif not found:
        sla.append({"property": "latency", **_duration_entry(current)})
    elif _duration(sla[found[0]]) != current:
        sla[found[0]].update(_duration_entry(current))
    for percent in _PERCENTS:
        value = getattr(version, percent.attr)
        at = percent.index(sla)
        if value is None:
            if at is not None:
                del sla[at]
        elif at is None:
            sla.append({"property": percent.property, "value": _plain(value), "unit": "percent"})
        elif percent.read(sla[at]) != Decimal(str(value)):
            sla[at]["value"] = _plain(value)
    if sla or document.get("slaProperties") == []:
        document["slaProperties"] = sla
    else:
        document.pop("slaProperties", None)


# --- key order ---------------------------------------------------------------------------------
# PostgreSQL's jsonb does not keep key order, so the document is put back into the order of
# the ODCS specification before it is shown; keys it does not list keep their order, after.
_TOP = ("apiVersion", "kind", "id", "name", "version", "status", "tenant", "domain", "dataProduct",
        "authoritativeDefinitions", "description", "tags", "schema", "servers", "support", "price", "team",
        "roles", "slaDefaultElement", "slaProperties", "customProperties", "contractCreatedTs")  # fmt: skip
_OBJECT = ("id", "name", "physicalName", "physicalType", "logicalType", "businessName", "description",
           "authoritativeDefinitions", "tags", "dataGranularityDescription", "relationships", "properties",
           "quality", "customProperties")  # fmt: skip
_PROPERTY = ("id", "name", "physicalName", "businessName", "logicalType", "logicalTypeOptions", "physicalType",
             "description", "required", "unique", "primaryKey", "primaryKeyPosition", "partitioned",
             "partitionKeyPosition", "classification", "criticalDataElement", "encryptedName",
             "transformSourceObjects", "transformLogic", "transformDescription", "examples", "tags",
             "authoritativeDefinitions", "relationships", "properties", "items", "quality",
             "customProperties")  # fmt: skip
_RULE = ("id", "name", "type", "metric", "rule", "arguments", "query", "engine", "implementation", *OPERATORS,
         "unit", "description", "dimension", "severity", "businessImpact", "method", "schedule", "scheduler",
         "tags", "authoritativeDefinitions", "customProperties")  # fmt: skip
_FIRST = ("id", "property", "server", "channel", "role", "username", "name", "type", "value", "unit", "url", "usage",
          "purpose", "limitations")  # fmt: skip
_CHILD_ORDER = {"schema": _OBJECT, "properties": _PROPERTY, "items": _PROPERTY, "quality": _RULE}
_VERBATIM = {"implementation", "examples", "value", "valueExt", "arguments"}  # user data: left as it is


def _ordered(node: dict[str, Any], order: tuple[str, ...]) -> dict[str, Any]:
    return {**{k: node[k] for k in order if k in node}, **{k: v for k, v in node.items() if k not in order}}


def _tidy(node: Any, order: tuple[str, ...] = _TOP) -> Any:
    """`node` with the keys of every mapping in it in the specification's order."""
    if isinstance(node, list):
        return [_tidy(item, order) for item in node]
    if not isinstance(node, dict):
        return node
    return {
        key: value if key in _VERBATIM else _tidy(value, _CHILD_ORDER.get(key, _FIRST))
        for key, value in _ordered(node, order).items()
    }
