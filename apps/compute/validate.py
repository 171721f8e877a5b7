"""Validate normalized records against the contract version they were delivered under.

A contract version is compiled once (`compile_validator`) into one closure per field, and the
fields into one function that tests each value inline and calls a field's closure only when the
value may be wrong (`_unrolled_fields`): validating a valid record is a dictionary lookup and a
few inline tests per field, with no dispatch on strings. Records arrive normalized: str, int,
Decimal, float, bool, date, aware datetime, dict, list or None.

Record level (`RecordValidator.validate`): for each contract field, in contract order,

- type: integer = int (not bool); number = int, float or Decimal (not bool), finite; boolean
  = bool; string = str; date = date (not datetime); timestamp = datetime with a time zone (a
  naive one is reported as "timestamp without a time zone"); object = dict; array = list.
  A value of the wrong type gets no further checks.
- required: missing or None. A primary key field that is not required but null is reported
  as rule "primary_key".
- pattern: `re.search`, compiled once. On a field of another type than string (the importer
  keeps such a pattern as the custom property aurum.pattern) it is matched against
  `str(value)`, i.e. ISO 8601 for dates.
- minimum / maximum (inclusive): integer and number fields only; on other types they are
  not used.
- allowed_values: membership, after converting the listed values to the field's type (ISO
  strings → date/datetime; numbers compare by decimal value, so Decimal("0.1") matches 0.1).
- max_length: strings (characters); not used on other types.
- unique: a second record of the batch with the same non-null value. primary_key: the tuple
  of primary key fields (ordered by primary_key_position, then contract order) repeated.
  Both are errors that name the position of the first record (0-based, counted since the
  validator was built or last `reset()`). Only records without errors register their keys,
  so a rejected record never makes a later valid one a duplicate. The state is the keys
  themselves (key → first position, compared as a dict compares: no false positives as
  with hashes), in key books (compute/keybook.py) that keep `keys_in_memory` of them in
  memory and the rest in a temporary file, so memory does not grow with the batch. Across
  batches is the pipeline's job: `unique_fields`, `unique_keys` and `primary_key` say what
  to check in the database. A record that the caller rejects for a reason of its own (a
  normalization problem, a value accepted in an earlier batch) is validated with
  `rejected=True`: it registers none of its keys either.
- fields the contract does not have: `extra_fields="warn"` (default; rule "unknown_field",
  warning, the record is accepted), "reject" (error) or "ignore".

A violation of a field attribute is an error; a quality rule's violation has the rule's
severity. `is_rejected(violations)`: any error.

Batch level: `validate` also accumulates the batch's `BatchProfile` (records, nulls per
field, duplicate records by the digest the caller passes, e.g. records.record_hash; the
newest value of each time field; the failures of the quality rules that have a tolerance),
and `batch_violations(profile, rules, now=…)` evaluates the batch rules with their
severity. An error-severity batch violation means the batch fails that rule; what follows
(reject the batch, keep the valid records) is the pipeline's quality-gate policy. Use the
validator's own profile (`validator.profile`, or `validator.batch_violations(now=…)`): a
standalone BatchProfile filled with `add(record, digest)` has counts, nulls, newest times
and duplicates, but not the failures that only validation counts, so tolerant rules,
completeness with missing_values and keyed duplicate_ratio rules are then reported as "not
measured".

How each quality rule kind reads `threshold` and `params` (as apps/host/odcs/mapping.py
writes them: the QualityRule help text, "allowed failure level: % for ratios and
completeness, rows otherwise"):

- Failure-count kinds — not_null, allowed_values, pattern, range, unique (rows by default)
  and duplicate_ratio, completeness (percent by default). `threshold` is the allowed
  failure level (ODCS `mustBe: 0` → 0, `mustBeLessOrEqualTo: N` → N); None means 0.
  `params.unit` "percent" (or "%") measures in percent of the batch's records, "rows" in
  rows; the importer writes `unit: rows` for completeness/duplicate_ratio rules not in
  percent, and keeps the unit of the others when the document gave one. Any other ODCS
  operator arrives as `params.operator` + `params.value` (a number; [low, high] for
  mustBeBetween / mustNotBeBetween, bounds inclusive) and is applied, exactly as written,
  to the failure count (or percentage); the threshold is then not used.
  With a failure level of 0 and no operator, the record-level kinds (not_null,
  allowed_values, pattern, range, unique) are checked per record: each failing record gets
  a violation with the rule's severity. With a tolerance (threshold > 0 or an operator) the
  rule is about the batch, as in ODCS: a failing record gets a *warning* that says so, the
  failures are counted, and `batch_violations` reports the rule (with its severity) when
  the count breaks the level.
  - not_null: the field's value is missing or None.
  - allowed_values: params.values (ODCS arguments.validValues), a list.
  - pattern: params.pattern (ODCS arguments.pattern), `re.search`.
  - range: params.min and/or params.max, inclusive; numbers for integer and number fields,
    ISO 8601 strings for date and timestamp fields. ODCS has no metric for range: it only
    comes back from Aurum's own custom rules, with the params Aurum wrote.
  - unique: the key is params.properties (ODCS arguments.properties, a compound key) when
    given, else the rule's field, else (a dataset rule) the whole record, by digest. Null
    keys (any null part) are not compared. Behaves like the unique flag.
  - duplicate_ratio: duplicates / records × 100, where a duplicate is a record whose key
    (as for unique) appeared earlier in the batch: n copies are n - 1 duplicates. Every
    record counts here, rejected or not (it measures the feed).
  - completeness: missing / records × 100, where missing is None, absent, or one of
    params.missing_values (ODCS arguments.missingValues); on the rule's field, or, for a
    dataset rule, over every field's cells (missing cells / (records × fields)).
- row_count: params.min / params.max (inclusive; ODCS mustBeGreaterOrEqualTo,
  mustBeLessOrEqualTo, mustBeBetween), else params.operator + params.value applied to the
  count; with none of them, the count must be above 0 (what the exporter writes for such a
  rule: `mustBeGreaterThan: 0`). threshold is not used.
- freshness: the newest value of the rule's field, else of the contract's time field
  (role "time"), must be no older than params.max_age_seconds, else params.max_age_hours,
  else params.max_age (ISO 8601 duration: PnW, PnD, PTnHnMnS, PnY as 365 days; no months).
  A date counts as the end of its day (its next midnight) in `tz` (UTC unless given): data
  for yesterday is 0 hours old at midnight. threshold is not used. A batch without a time
  value fails the rule.

A rule that cannot be evaluated (unknown kind, params missing or malformed, a field that is
not in the contract, a record-level kind without a field, a severity other than error or
warning) does not stop validation: `batch_violations` reports it, with its severity, as
"cannot be evaluated", every batch. Field attributes that cannot be compiled (an unknown
logical type, an invalid pattern) raise ContractSpecError.

Gaps between the importer and this module (what it writes that means something else, or
nothing, here):

- completeness: the importer (and the model's help text) store the *allowed % missing*:
  `missingValues mustBeLessOrEqualTo: 5, unit: percent` → threshold 5. This module reads
  it so. The demo's rule (apps/host/demo.py, `returns`, threshold 95) reads as if it meant
  "at least 95 % complete", which here (and in its own ODCS export, `mustBeLessOrEqualTo:
  95 percent`) means "at most 95 % missing": the demo should say threshold 5.
- ODCS failure counts are dataset metrics, so `mustBeLessOrEqualTo: N` on nullValues or
  invalidValues cannot reject single records; hence the tolerant mode above. ODCS does not
  say whether the first of n copies counts as a duplicate; here it does not.
- ODCS has no row-level meaning for a dataset-level not_null, allowed_values, pattern or
  range (the importer can produce one from a schema-level rule): such a rule cannot be
  evaluated and is reported.
- The version's SLA (sla_freshness, sla_completeness) is not a quality rule; the importer
  puts ODCS freshness/latency SLAs there and never writes a freshness rule (freshness rules
  only come from Aurum's own custom rules). A pipeline wanting the SLA checked can add
  `RuleSpec("freshness", params={"max_age_seconds": sla.total_seconds()})`.
- Validated field attributes are only those the importer models: logicalTypeOptions such
  as minLength, exclusiveMinimum, multipleOf, format, maxItems, and nested
  properties/items of objects and arrays, stay in the field's `extra` and are not checked.
  A numeric minimum/maximum on a date or string field (aurum.minimum) is not used.
- Rules the importer only carries (type sql, text, custom of other engines, invalidValues
  with both validValues and pattern) are in `extra` / the stored document and are not
  evaluated. Severities other than error/warning were already read as warning on import.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from decimal import Decimal, InvalidOperation
from typing import Any

from apps.compute.keybook import KEYS_IN_MEMORY, KeyBook
from apps.host.choices import FieldRoleChoices, LogicalTypeChoices, QualityRuleKindChoices, SeverityChoices

ERROR = SeverityChoices.ERROR.value
WARNING = SeverityChoices.WARNING.value
SEVERITIES = frozenset((ERROR, WARNING))

STRING = LogicalTypeChoices.STRING.value
INTEGER = LogicalTypeChoices.INTEGER.value
NUMBER = LogicalTypeChoices.NUMBER.value
BOOLEAN = LogicalTypeChoices.BOOLEAN.value
DATE = LogicalTypeChoices.DATE.value
TIMESTAMP = LogicalTypeChoices.TIMESTAMP.value
OBJECT = LogicalTypeChoices.OBJECT.value
ARRAY = LogicalTypeChoices.ARRAY.value

NOT_NULL = QualityRuleKindChoices.NOT_NULL.value
UNIQUE = QualityRuleKindChoices.UNIQUE.value
ALLOWED_VALUES = QualityRuleKindChoices.ALLOWED_VALUES.value
RANGE = QualityRuleKindChoices.RANGE.value
PATTERN = QualityRuleKindChoices.PATTERN.value
ROW_COUNT = QualityRuleKindChoices.ROW_COUNT.value
DUPLICATE_RATIO = QualityRuleKindChoices.DUPLICATE_RATIO.value
FRESHNESS = QualityRuleKindChoices.FRESHNESS.value
COMPLETENESS = QualityRuleKindChoices.COMPLETENESS.value

RECORD_KINDS = frozenset((NOT_NULL, ALLOWED_VALUES, RANGE, PATTERN, UNIQUE))
BATCH_KINDS = frozenset((ROW_COUNT, DUPLICATE_RATIO, FRESHNESS, COMPLETENESS))
_PERCENT_KINDS = frozenset((DUPLICATE_RATIO, COMPLETENESS))  # threshold in % unless params.unit says rows
EXTRA_FIELDS_MODES = ("warn", "reject", "ignore")
VALUE_CHARS = 200


class ContractSpecError(ValueError):
    """The contract's fields cannot be compiled into a validator."""


@dataclass(frozen=True, slots=True)
class Violation:
    """One problem of a record (field = its field) or of the batch (field = "" unless the rule has one)."""

    field: str
    rule: str
    message: str
    value: str = ""
    severity: str = ERROR

    def __str__(self) -> str:
        return f"{self.message} [{self.rule}, {self.severity}]"


def is_rejected(violations: Iterable[Violation]) -> bool:
    """Whether any of the violations is an error (the record, or the batch, fails)."""
    return any(v.severity == ERROR for v in violations)


# --- specs: what the validator needs of a contract version ----------------------------------
def _attr(source: Any, name: str, default: Any = None) -> Any:
    value = source.get(name, default) if isinstance(source, Mapping) else getattr(source, name, default)
    return default if value is None else value


@dataclass(frozen=True)
class FieldSpec:
    """A contract field (ContractField's attribute names)."""

    name: str
    logical_type: str = STRING
    required: bool = False
    unique: bool = False
    primary_key: bool = False
    primary_key_position: int | None = None
    pattern: str = ""
    minimum: float | None = None
    maximum: float | None = None
    allowed_values: tuple[Any, ...] = dataclasses.field(default=(), hash=False)
    max_length: int | None = None
    classification: str = "internal"
    role: str = FieldRoleChoices.ATTRIBUTE.value

    @classmethod
    def of(cls, source: Any) -> FieldSpec:
        """From a ContractField row, a dict of its attributes, or a FieldSpec."""
        if isinstance(source, FieldSpec):
            return source
        allowed = _attr(source, "allowed_values", ())
        return cls(
            name=str(_attr(source, "name", "")),
            logical_type=str(_attr(source, "logical_type", STRING)),
            required=bool(_attr(source, "required", False)),
            unique=bool(_attr(source, "unique", False)),
            primary_key=bool(_attr(source, "primary_key", False)),
            primary_key_position=_attr(source, "primary_key_position"),
            pattern=str(_attr(source, "pattern", "")),
            minimum=_attr(source, "minimum"),
            maximum=_attr(source, "maximum"),
            allowed_values=tuple(allowed) if isinstance(allowed, list | tuple) else (allowed,),
            max_length=_attr(source, "max_length"),
            classification=str(_attr(source, "classification", "internal")),
            role=str(_attr(source, "role", FieldRoleChoices.ATTRIBUTE.value)),
        )


@dataclass(frozen=True)
class RuleSpec:
    """A quality rule (QualityRule's attribute names; `field` is a field name or None for the dataset).

    Equal rules are the same rule to a BatchProfile (params are compared, not hashed); `id`
    (the row's primary key, when there is one) is for the caller and is not compared.
    """

    kind: str
    field: str | None = None
    severity: str = ERROR
    threshold: float | None = None
    params: Mapping[str, Any] = dataclasses.field(default_factory=dict, hash=False)
    id: Any = dataclasses.field(default=None, compare=False)

    @classmethod
    def of(cls, source: Any, field_names: Mapping[Any, str] | None = None) -> RuleSpec:
        """From a QualityRule row (`field_names`: field pk → name, saves a query per rule) or a dict."""
        if isinstance(source, RuleSpec):
            return source
        if isinstance(source, Mapping):
            target = source.get("field")
            target = _attr(target, "name", None) if target is not None and not isinstance(target, str) else target
        else:
            field_id = getattr(source, "field_id", None)
            if field_id is None:
                target = None
            elif field_names is not None and field_id in field_names:
                target = field_names[field_id]
            else:
                target = source.field.name
        params = _attr(source, "params", {})
        return cls(
            kind=str(_attr(source, "kind", "")),
            field=target or None,
            severity=str(_attr(source, "severity", ERROR)),
            threshold=_attr(source, "threshold"),
            params=params if isinstance(params, Mapping) else {},
            id=_attr(source, "pk", None) if not isinstance(source, Mapping) else source.get("id"),
        )


def specs_from_version(version: Any) -> tuple[list[FieldSpec], list[RuleSpec]]:
    """The fields and rules of a ContractVersion (duck-typed: `.fields.all()`, `.quality_rules.all()`)."""
    rows = list(version.fields.all())
    names = {getattr(row, "pk", None): row.name for row in rows}
    return [FieldSpec.of(row) for row in rows], [RuleSpec.of(rule, names) for rule in version.quality_rules.all()]


def specs_from_dicts(
    fields: Iterable[Mapping[str, Any]], rules: Iterable[Mapping[str, Any]] = ()
) -> tuple[list[FieldSpec], list[RuleSpec]]:
    """Fields and rules written as contract_version_create takes them (rules name their field by `field`)."""
    return [FieldSpec.of(f) for f in fields], [RuleSpec.of(r) for r in rules]


# --- showing values ------------------------------------------------------------------------
def _show(value: Any) -> str:
    """A value as a message shows it: repr for text and numbers, ISO 8601 for dates, ≤ 200 characters."""
    if isinstance(value, date):
        text = value.isoformat()
    elif isinstance(value, Decimal):
        text = str(value)
    else:
        text = repr(value)
    return text if len(text) <= VALUE_CHARS else text[: VALUE_CHARS - 1] + "…"


def _show_list(values: Sequence[Any], limit: int = 10) -> str:
    shown = ", ".join(_show(v) for v in values[:limit])
    return shown + (f", … ({len(values)} values)" if len(values) > limit else "")


def _num(value: Any) -> str:
    """A bound or limit as people write it: 5 rather than 5.0, 1000000 rather than 1e+06."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


# --- types ---------------------------------------------------------------------------------
_ARTICLE = {
    STRING: "a string",
    INTEGER: "an integer",
    NUMBER: "a number",
    BOOLEAN: "a boolean",
    DATE: "a date",
    TIMESTAMP: "a timestamp",
    OBJECT: "an object",
    ARRAY: "an array",
}


def _expected(logical_type: str) -> Callable[[Any], str]:
    article = _ARTICLE[logical_type]
    return lambda value: f"expected {article}, got {type(value).__name__} {_show(value)}"


def _guard(logical_type: str) -> Callable[[Any], str | None]:
    """The full type test: None when `value` (not None) is of the type, else why not."""
    wrong = _expected(logical_type)
    if logical_type == STRING:
        return lambda v: None if isinstance(v, str) else wrong(v)
    if logical_type == BOOLEAN:
        return lambda v: None if isinstance(v, bool) else wrong(v)
    if logical_type == OBJECT:
        return lambda v: None if isinstance(v, dict) else wrong(v)
    if logical_type == ARRAY:
        return lambda v: None if isinstance(v, list) else wrong(v)
    if logical_type == INTEGER:
        return lambda v: None if isinstance(v, int) and not isinstance(v, bool) else wrong(v)
    if logical_type == DATE:
        return lambda v: None if isinstance(v, date) and not isinstance(v, datetime) else wrong(v)
    if logical_type == NUMBER:

        def number(v: Any) -> str | None:
            if isinstance(v, bool) or not isinstance(v, int | float | Decimal):
                return wrong(v)
            finite = v.is_finite() if isinstance(v, Decimal) else math.isfinite(v)
            return None if finite else f"{_show(v)} is not a finite number"

        return number
    if logical_type == TIMESTAMP:

        def timestamp(v: Any) -> str | None:
            if not isinstance(v, datetime):
                return wrong(v)
            if v.tzinfo is None or v.utcoffset() is None:
                return f"timestamp without a time zone ({v.isoformat()})"
            return None

        return timestamp
    raise ContractSpecError(f"unknown logical type {logical_type!r}")


_EXACT: dict[str, type] = {
    STRING: str,
    INTEGER: int,
    BOOLEAN: bool,
    DATE: date,
    OBJECT: dict,
    ARRAY: list,
    NUMBER: int,  # floats are checked for finiteness, Decimals too
    TIMESTAMP: type(None),  # never exact: the time zone is always looked at
}

Check = Callable[[Any, list[Violation]], None]


# The test under which each logical type's closure below takes its fast path (an exact type) and finds nothing wrong
# with the type itself: a template of `v` and the constants it names (see _clean_when).
_TYPE_CLEAN: dict[str, tuple[str, tuple[Any, ...]]] = {
    **{kind: ("type(v) is {0}", (exact,)) for kind, exact in _EXACT.items() if kind not in (NUMBER, TIMESTAMP)},
    NUMBER: ("type(v) is {0} or (type(v) is {1} and v.is_finite())", (int, Decimal)),
    TIMESTAMP: ("type(v) is {0} and v.tzinfo is not None", (datetime,)),
}


def _clean_when(check: Check, template: str, *constants: Any) -> Check:
    """Note on `check` the Python expression of its value `v` under which it reports nothing and changes nothing:
    `template`, with `{0}`, `{1}`… for `constants`. _unrolled_fields inlines it, so that a valid value costs no
    call; a check without one is always called. The expression must be what the check itself tests, negated."""
    check.clean = [(template, constants)]  # type: ignore[attr-defined]
    return check


def _unrolled_fields(
    plan: Sequence[tuple[int, str, Check, Any]],
) -> Callable[[dict[str, Any], list[Violation], list[int]], None]:
    """The per-field part of `validate`, `(record, out, nulls)`, as one function made for the contract: for each
    field in contract order, a missing or None value is counted in `nulls` and reported by the field's null
    check; another value is given to the field's check, unless the check's own test for a value it finds nothing
    wrong with (_clean_when), written inline, passes. The same as calling each check in a loop, without a call per
    valid value (a quarter less time for the benchmark's records). The source names the fields, checks and
    constants by their index only; their values are bound in the function's namespace, so nothing a contract
    says becomes code."""
    source = ["def check_fields(record, out, nulls):", "    get = record.get"]
    namespace: dict[str, Any] = {}
    for i, name, check, on_null in plan:
        namespace[f"name{i}"], namespace[f"check{i}"], namespace[f"null{i}"] = name, check, on_null
        source += [f"    v = get(name{i})", "    if v is None:", f"        nulls[{i}] += 1"]
        if on_null is not None:
            source.append(f"        null{i}(record, out)")
        tests = []
        for j, (template, constants) in enumerate(getattr(check, "clean", None) or ()):
            names = [f"c{i}_{j}_{k}" for k in range(len(constants))]
            namespace.update(zip(names, constants, strict=True))
            tests.append(f"({template.format(*names)})")
        source += [f"    elif not ({' and '.join(tests)}):" if tests else "    else:", f"        check{i}(v, out)"]
    exec(compile("\n".join(source), "<validate: fields>", "exec"), namespace)  # noqa: S102 - see the docstring
    return namespace["check_fields"]


def _field_check(name: str, logical_type: str, constraints: Sequence[Check]) -> Check:
    """One closure: the type test (a fast path for the usual exact type), then the constraints; noted with the
    expression under which it reports nothing, where every constraint has one (_clean_when)."""
    check = _type_and_constraints_check(name, logical_type, constraints)
    tests = [getattr(constraint, "clean", None) for constraint in constraints]
    if all(test is not None for test in tests):
        check.clean = [_TYPE_CLEAN[logical_type], *(t for test in tests for t in test)]  # type: ignore[attr-defined]
    return check


def _type_and_constraints_check(name: str, logical_type: str, constraints: Sequence[Check]) -> Check:
    guard = _guard(logical_type)
    exact = _EXACT[logical_type]

    def fail(value: Any, message: str, out: list[Violation]) -> None:
        out.append(Violation(name, "type", f"{name}: {message}", _show(value), ERROR))

    if logical_type == NUMBER:
        cons = tuple(constraints)

        def check_number(v: Any, out: list[Violation]) -> None:
            t = type(v)
            if t is float:
                if v - v != 0.0:  # NaN and ±inf
                    fail(v, f"{_show(v)} is not a finite number", out)
                    return
            elif t is Decimal:
                if not v.is_finite():
                    fail(v, f"{_show(v)} is not a finite number", out)
                    return
            elif t is not int:
                message = guard(v)
                if message is not None:
                    fail(v, message, out)
                    return
            for constraint in cons:
                constraint(v, out)

        return check_number
    if logical_type == TIMESTAMP:
        cons = tuple(constraints)

        def check_timestamp(v: Any, out: list[Violation]) -> None:
            if type(v) is not datetime or v.tzinfo is None:
                message = guard(v)
                if message is not None:
                    fail(v, message, out)
                    return
            for constraint in cons:
                constraint(v, out)

        return check_timestamp
    if not constraints:

        def check_type(v: Any, out: list[Violation]) -> None:
            if type(v) is not exact:
                message = guard(v)
                if message is not None:
                    fail(v, message, out)

        return check_type
    if len(constraints) == 1:
        (only,) = constraints

        def check_one(v: Any, out: list[Violation]) -> None:
            if type(v) is not exact:
                message = guard(v)
                if message is not None:
                    fail(v, message, out)
                    return
            only(v, out)

        return check_one
    cons = tuple(constraints)

    def check_all(v: Any, out: list[Violation]) -> None:
        if type(v) is not exact:
            message = guard(v)
            if message is not None:
                fail(v, message, out)
                return
        for constraint in cons:
            constraint(v, out)

    return check_all


def _dec(value: Any) -> Decimal | None:
    """A number's decimal value (floats by their shortest repr), for comparing allowed values."""
    if isinstance(value, bool):
        return None
    if isinstance(value, Decimal):
        return value if value.is_finite() else None
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(repr(value)) if math.isfinite(value) else None
    return None


def _as_type(value: Any, logical_type: str) -> Any:
    """A listed value (JSON) as the field's type holds it; unchanged when it does not convert."""
    if isinstance(value, str):
        try:
            if logical_type == DATE:
                return date.fromisoformat(value)
            if logical_type == TIMESTAMP:
                return datetime.fromisoformat(value)
            if logical_type == NUMBER:
                return Decimal(value)
        except (ValueError, InvalidOperation):
            return value
    return value


def _membership(values: Sequence[Any], logical_type: str) -> Callable[[Any], bool]:
    """`value in values`, compiled: a set when the values hash, by decimal value for numbers."""
    converted = [_as_type(v, logical_type) for v in values]
    try:
        if logical_type in (OBJECT, ARRAY):  # the values (dicts, lists) do not hash
            raise TypeError
        exact = frozenset(converted)
    except TypeError:
        listed = tuple(converted)
        return lambda v: v in listed
    if logical_type != NUMBER:
        return exact.__contains__
    decimals = frozenset(d for d in map(_dec, converted) if d is not None)

    def contains(v: Any) -> bool:
        return v in exact or _dec(v) in decimals

    return contains


def _freeze(value: Any) -> Any:
    """A hashable stand-in for dicts and lists (keys of object/array fields, whole records)."""
    if isinstance(value, dict):
        return ("{}", tuple(sorted((str(k), _freeze(v)) for k, v in value.items())))
    if isinstance(value, list | tuple):
        return ("[]", tuple(_freeze(v) for v in value))
    return value


# --- failure levels (thresholds) ------------------------------------------------------------
def _number(value: Any) -> bool:
    return isinstance(value, int | float | Decimal) and not isinstance(value, bool) and math.isfinite(value)


_OPERATORS: dict[str, Callable[[float, Any], bool]] = {
    "mustBe": lambda m, v: m == v,
    "mustNotBe": lambda m, v: m != v,
    "mustBeGreaterThan": lambda m, v: m > v,
    "mustBeGreaterOrEqualTo": lambda m, v: m >= v,
    "mustBeLessThan": lambda m, v: m < v,
    "mustBeLessOrEqualTo": lambda m, v: m <= v,
    "mustBeBetween": lambda m, v: v[0] <= m <= v[1],
    "mustNotBeBetween": lambda m, v: not v[0] <= m <= v[1],
}
_OPERATOR_WORDS = {
    "mustBe": "must be",
    "mustNotBe": "must not be",
    "mustBeGreaterThan": "must be above",
    "mustBeGreaterOrEqualTo": "must be at least",
    "mustBeLessThan": "must be below",
    "mustBeLessOrEqualTo": "must be at most",
    "mustBeBetween": "must be between",
    "mustNotBeBetween": "must not be between",
}


class _Problem(Exception):
    """A rule that cannot be evaluated, and why."""


def _operator(params: Mapping[str, Any]) -> tuple[str, Any] | None:
    if "operator" not in params:
        return None
    operator, value = params.get("operator"), params.get("value")
    if operator not in _OPERATORS:
        raise _Problem(f"unknown operator {operator!r}")
    if operator.endswith("Between"):
        if not (isinstance(value, list | tuple) and len(value) == 2 and all(_number(v) for v in value)):
            raise _Problem(f"{operator} needs [low, high], got {_show(value)}")
        return operator, (value[0], value[1])
    if not _number(value):
        raise _Problem(f"{operator} needs a number, got {_show(value)}")
    return operator, value


def _describe(operator: str, value: Any, unit: str) -> str:
    shown = f"{_num(value[0])} and {_num(value[1])}" if operator.endswith("Between") else _num(value)
    return f"{_OPERATOR_WORDS[operator]} {shown}{unit}"


@dataclass(frozen=True, slots=True)
class _Level:
    """How many failures a rule allows in a batch: `limit` (rows or %), or an ODCS operator and value."""

    percent: bool
    limit: float = 0.0
    operator: str | None = None
    value: Any = None

    @property
    def strict(self) -> bool:
        return self.operator is None and self.limit == 0

    @property
    def unit(self) -> str:
        return "%" if self.percent else " rows"

    def measure(self, failures: int, total: int) -> float:
        if not self.percent:
            return failures
        return failures * 100 / total if total else 0.0

    def passes(self, measured: float) -> bool:
        if self.operator is None:
            return measured <= self.limit
        return _OPERATORS[self.operator](measured, self.value)

    def describe(self) -> str:
        if self.operator is None:
            return f"at most {_num(self.limit)}{self.unit}"
        return _describe(self.operator, self.value, self.unit)


def _level(rule: RuleSpec) -> _Level:
    params = rule.params
    unit = params.get("unit")
    if unit not in (None, "rows", "percent", "%"):
        raise _Problem(f"unknown unit {unit!r} (rows or percent)")
    percent = unit != "rows" if rule.kind in _PERCENT_KINDS else unit in ("percent", "%")
    operator = _operator(params)
    if operator is not None:
        return _Level(percent, operator=operator[0], value=operator[1])
    threshold = rule.threshold
    if threshold is None:
        return _Level(percent)
    if not _number(threshold) or threshold < 0:
        raise _Problem(f"threshold {_show(threshold)} is not a failure level (a number ≥ 0)")
    return _Level(percent, float(threshold))


# --- rules, parsed --------------------------------------------------------------------------
@dataclass(frozen=True)
class _Parsed:
    """A rule as the validator and batch_violations use it."""

    rule: RuleSpec
    level: _Level | None = None
    key: tuple[str, ...] | None = None  # unique, duplicate_ratio: the key fields; None: the whole record
    test: Callable[[Any], bool] | None = None  # allowed_values, pattern: the value passes
    low: Any = None  # range, row_count
    high: Any = None
    count_operator: tuple[str, Any] | None = None  # row_count
    missing_values: Callable[[Any], bool] | None = None  # completeness
    max_age: timedelta | None = None  # freshness
    time_field: str | None = None  # freshness


_DURATION = re.compile(
    r"^P(?!$)(?:(\d+(?:[.,]\d+)?)Y)?(?:(\d+(?:[.,]\d+)?)W)?(?:(\d+(?:[.,]\d+)?)D)?"
    r"(?:T(?=\d)(?:(\d+(?:[.,]\d+)?)H)?(?:(\d+(?:[.,]\d+)?)M)?(?:(\d+(?:[.,]\d+)?)S)?)?$"
)
_DURATION_SECONDS = (365 * 86400, 7 * 86400, 86400, 3600, 60, 1)


def parse_duration(text: str) -> timedelta:
    """An ISO 8601 duration without months (PnY counts 365 days): "PT36H", "P1DT12H", "P2W"."""
    match = _DURATION.match(text.strip().upper()) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f"{text!r} is not an ISO 8601 duration like PT36H (months are not supported)")
    seconds = sum(
        float(part.replace(",", ".")) * size
        for part, size in zip(match.groups(), _DURATION_SECONDS, strict=True)
        if part
    )
    return timedelta(seconds=seconds)


def _max_age(params: Mapping[str, Any]) -> timedelta:
    for key, size in (("max_age_seconds", 1), ("max_age_hours", 3600)):
        if key in params:
            value = params[key]
            if not _number(value) or value < 0:
                raise _Problem(f"params.{key} must be a number ≥ 0, got {_show(value)}")
            return timedelta(seconds=float(value) * size)
    if "max_age" in params:
        value = params["max_age"]
        if isinstance(value, timedelta):
            return value
        try:
            return parse_duration(value)
        except ValueError as exc:
            raise _Problem(f"params.max_age: {exc}") from None
    raise _Problem("needs params.max_age_hours, max_age_seconds or max_age (ISO 8601, e.g. PT36H)")


def _bound(value: Any, logical_type: str, name: str) -> Any:
    if value is None:
        return None
    if logical_type in (INTEGER, NUMBER):
        if not _number(value):
            raise _Problem(f"params.{name} must be a number, got {_show(value)}")
        return value
    if logical_type in (DATE, TIMESTAMP):
        converted = _as_type(value, logical_type) if isinstance(value, str) else value
        ok = isinstance(converted, datetime) if logical_type == TIMESTAMP else type(converted) is date
        if not ok:
            raise _Problem(f"params.{name} must be an ISO 8601 {logical_type}, got {_show(value)}")
        if logical_type == TIMESTAMP and converted.tzinfo is None:
            raise _Problem(f"params.{name} needs a time zone, got {_show(value)}")
        return converted
    raise _Problem(f"range applies to numbers, dates and timestamps, not to a {logical_type} field")


def _parse(rule: RuleSpec, fields: Mapping[str, FieldSpec], time_field: str | None) -> _Parsed:
    """The rule, checked against the contract's fields, or _Problem."""
    kind, params = rule.kind, rule.params
    if rule.severity not in SEVERITIES:
        raise _Problem(f"unknown severity {rule.severity!r}")
    if rule.field is not None and rule.field not in fields:
        raise _Problem(f"no field {rule.field!r} in the contract")
    spec = fields.get(rule.field) if rule.field is not None else None
    if kind in (NOT_NULL, ALLOWED_VALUES, RANGE, PATTERN) and spec is None:
        raise _Problem(f"a {kind} rule needs a field")
    if kind == NOT_NULL:
        return _Parsed(rule, _level(rule))
    if kind == ALLOWED_VALUES:
        values = params.get("values")
        if not isinstance(values, list | tuple):
            raise _Problem("needs params.values, a list")
        return _Parsed(rule, _level(rule), test=_membership(values, spec.logical_type))
    if kind == PATTERN:
        pattern = params.get("pattern")
        if not isinstance(pattern, str) or not pattern:
            raise _Problem("needs params.pattern, a regular expression")
        try:
            search = re.compile(pattern).search
        except re.error as exc:
            raise _Problem(f"params.pattern is not a valid regular expression: {exc}") from None
        return _Parsed(rule, _level(rule), test=search)
    if kind == RANGE:
        low = _bound(params.get("min"), spec.logical_type, "min")
        high = _bound(params.get("max"), spec.logical_type, "max")
        if low is None and high is None:
            raise _Problem("needs params.min and/or params.max")
        if low is not None and high is not None and low > high:
            raise _Problem("params.min is above params.max")
        return _Parsed(rule, _level(rule), low=low, high=high)
    if kind in (UNIQUE, DUPLICATE_RATIO):
        properties = params.get("properties")
        if properties is not None:
            if isinstance(properties, str):
                properties = [properties]
            if not isinstance(properties, list | tuple) or not properties:
                raise _Problem("params.properties must be a list of field names")
            unknown = [p for p in properties if p not in fields]
            if unknown:
                raise _Problem(f"params.properties names no field of the contract: {_show_list(unknown)}")
            key: tuple[str, ...] | None = tuple(properties)
        else:
            key = (rule.field,) if rule.field is not None else None
        return _Parsed(rule, _level(rule), key=key)
    if kind == COMPLETENESS:
        missing = params.get("missing_values")
        test = None
        if missing is not None:
            if not isinstance(missing, list | tuple):
                raise _Problem("params.missing_values must be a list")
            listed = [v for v in missing if v is not None]
            if listed:
                test = _membership(listed, spec.logical_type if spec else STRING)
        return _Parsed(rule, _level(rule), missing_values=test)
    if kind == ROW_COUNT:
        low, high = params.get("min"), params.get("max")
        for name, value in (("min", low), ("max", high)):
            if value is not None and not _number(value):
                raise _Problem(f"params.{name} must be a number, got {_show(value)}")
        if low is not None or high is not None:
            return _Parsed(rule, low=low, high=high)
        return _Parsed(rule, count_operator=_operator(params) or ("mustBeGreaterThan", 0))
    if kind == FRESHNESS:
        target = rule.field or time_field
        if target is None:
            raise _Problem("the contract has no time field (role 'time') and the rule names no field")
        if fields[target].logical_type not in (DATE, TIMESTAMP):
            raise _Problem(f"{target} is a {fields[target].logical_type}, not a date or timestamp")
        return _Parsed(rule, max_age=_max_age(params), time_field=target)
    raise _Problem(f"unknown kind {kind!r}")


def _measured_by_validator(parsed: _Parsed) -> bool:
    """Whether batch_violations needs counts only a validator compiled with this rule keeps."""
    kind = parsed.rule.kind
    if kind in RECORD_KINDS:
        return not parsed.level.strict  # its failures are counted while validating
    if kind == DUPLICATE_RATIO:
        return parsed.key is not None
    if kind == COMPLETENESS:
        return parsed.missing_values is not None
    return False


# --- the batch profile ----------------------------------------------------------------------
class BatchProfile:
    """What the batch rules need, accumulated while a batch's records are validated.

    `count` records; nulls per field (None or absent); `duplicate_records`, records whose
    digest (given by the caller, or computed when a rule needs it) was seen before in the
    batch, among `digested` records that had one; `newest`, the newest valid value of each
    time field; `failures`, per tolerant quality rule (and per completeness rule with
    missing_values, per keyed duplicate_ratio rule), how many records broke it; `rules`,
    the rules the validator counted failures for.
    """

    __slots__ = (
        "_digests",
        "_index",
        "_nulls",
        "_times",
        "count",
        "digested",
        "duplicate_records",
        "failures",
        "field_names",
        "fields",
        "newest",
        "rules",
        "time_field",
    )

    def __init__(self, fields: Iterable[Any], rules: Iterable[RuleSpec] = (), time_fields: Iterable[str] | None = None):
        self.fields = tuple(FieldSpec(f) if isinstance(f, str) else FieldSpec.of(f) for f in fields)
        self.field_names = tuple(f.name for f in self.fields)
        self._index = {name: i for i, name in enumerate(self.field_names)}
        self._nulls = [0] * len(self.fields)
        times = [f.name for f in self.fields if f.role == FieldRoleChoices.TIME]
        self.time_field: str | None = times[0] if times else None
        if time_fields is None:
            time_fields = [
                f.name for f in self.fields if f.name == self.time_field and f.logical_type in (DATE, TIMESTAMP)
            ]
        self.newest: dict[str, Any] = dict.fromkeys(time_fields)
        types = {f.name: f.logical_type for f in self.fields}
        self._times = tuple((name, types.get(name) == TIMESTAMP) for name in self.newest)
        self._digests: set[Any] = set()
        self.count = 0
        self.digested = 0
        self.duplicate_records = 0
        self.failures: dict[RuleSpec, int] = {}
        self.rules = frozenset(rules)

    def add(self, record: Mapping[str, Any], digest: Any = None) -> None:
        """Count one record, for a profile that no RecordValidator feeds: nulls, the newest time values,
        and duplicates by `digest`. (Failures of tolerant rules are only counted by a validator.)"""
        self.count += 1
        get = record.get
        nulls = self._nulls
        for i, name in enumerate(self.field_names):
            if get(name) is None:
                nulls[i] += 1
        for name, aware in self._times:
            _note_time(self.newest, name, get(name), aware)
        if digest is not None:
            self.digested += 1
            if digest in self._digests:
                self.duplicate_records += 1
            else:
                self._digests.add(digest)

    @property
    def duplicates(self) -> int:
        return self.duplicate_records

    @duplicates.setter
    def duplicates(self, value: int) -> None:
        """Duplicate records the caller counted itself, over every record of the batch."""
        self.duplicate_records = value
        self.digested = self.count

    def nulls(self, name: str) -> int:
        return self._nulls[self._index[name]]

    def non_null(self, name: str) -> int:
        return self.count - self._nulls[self._index[name]]

    @property
    def non_null_counts(self) -> dict[str, int]:
        return {name: self.count - nulls for name, nulls in zip(self.field_names, self._nulls, strict=True)}

    def __repr__(self) -> str:
        return f"<BatchProfile {self.count} records, {self.duplicate_records} duplicates, newest {self.newest}>"


# --- the record validator -------------------------------------------------------------------
def compile_validator(
    fields: Iterable[Any], rules: Iterable[Any] = (), *, extra_fields: str = "warn", keys_in_memory: int | None = None
) -> RecordValidator:
    """A validator for a contract version: fields and rules as specs, model rows or dicts."""
    return RecordValidator(fields, rules, extra_fields=extra_fields, keys_in_memory=keys_in_memory)


Report = Callable[[list[Violation], Any, int], None]


class RecordValidator:
    """Validates the records of a batch, one `validate` call each; `reset()` starts the next batch.

    State across calls: the keys seen (unique fields, the primary key, unique and
    duplicate_ratio rules, record digests) and the batch's `profile`. The keys are kept in
    `KeyBook`s: at most `keys_in_memory` of them (all books together) as Python objects, the
    others on disk; `prefetch(records)` before validating a chunk reads those it needs at once.
    """

    def __init__(
        self,
        fields: Iterable[Any],
        rules: Iterable[Any] = (),
        *,
        extra_fields: str = "warn",
        keys_in_memory: int | None = None,
    ):
        if extra_fields not in EXTRA_FIELDS_MODES:
            raise ValueError(f"extra_fields must be one of {', '.join(EXTRA_FIELDS_MODES)}, not {extra_fields!r}")
        self.fields: tuple[FieldSpec, ...] = tuple(FieldSpec.of(f) for f in fields)
        self.rules: tuple[RuleSpec, ...] = tuple(RuleSpec.of(r) for r in rules)
        self.extra_fields = extra_fields
        self._closed = extra_fields != "ignore"
        by_name: dict[str, FieldSpec] = {}
        problems = []
        for spec in self.fields:
            if not spec.name:
                problems.append("a field without a name")
            elif spec.name in by_name:
                problems.append(f"field {spec.name!r} appears twice")
            elif spec.logical_type not in _ARTICLE:
                problems.append(f"{spec.name}: unknown logical type {spec.logical_type!r}")
            by_name[spec.name] = spec
        if problems:
            raise ContractSpecError("; ".join(problems))
        times = [f.name for f in self.fields if f.role == FieldRoleChoices.TIME]
        self.time_field: str | None = times[0] if times else None
        order = sorted(
            (i for i, f in enumerate(self.fields) if f.primary_key),
            key=lambda i: (self.fields[i].primary_key_position is None, self.fields[i].primary_key_position or 0, i),
        )
        self.primary_key: tuple[str, ...] = tuple(self.fields[i].name for i in order)

        self.problems: dict[RuleSpec, str] = {}  # rules that cannot be evaluated, and why
        parsed: list[_Parsed] = []
        for rule in self.rules:
            try:
                parsed.append(_parse(rule, by_name, self.time_field))
            except _Problem as exc:
                self.problems[rule] = str(exc)
        self._parsed = tuple(parsed)
        single_unique = [p.key[0] for p in parsed if p.rule.kind == UNIQUE and p.key is not None and len(p.key) == 1]
        self.unique_fields: tuple[str, ...] = tuple(
            dict.fromkeys([f.name for f in self.fields if f.unique] + single_unique)
        )
        self.unique_keys: tuple[tuple[str, ...], ...] = tuple(
            dict.fromkeys(p.key for p in parsed if p.rule.kind == UNIQUE and p.key is not None and len(p.key) > 1)
        )
        time_fields = [self.time_field, *(p.time_field for p in parsed if p.time_field)]
        self._time_fields: tuple[tuple[str, bool], ...] = tuple(
            (name, by_name[name].logical_type == TIMESTAMP)
            for name in dict.fromkeys(time_fields)
            if name is not None and by_name[name].logical_type in (DATE, TIMESTAMP)
        )
        self._known = frozenset(by_name)
        self._plan = tuple(
            (i, spec.name, self._compile_field(spec), self._compile_null(spec)) for i, spec in enumerate(self.fields)
        )
        self._check_fields = _unrolled_fields(self._plan)
        self._needs_digest = any(p.key is None and p.rule.kind in (UNIQUE, DUPLICATE_RATIO) for p in parsed)
        trackers = self._compile_trackers()
        self._trackers = tuple(t for t in trackers if t[0] is not None)
        self._whole_record = tuple(t[3] for t in trackers if t[0] is None)
        self._digests = KeyBook()
        budget = KEYS_IN_MEMORY if keys_in_memory is None else keys_in_memory
        books = [self._digests, *(t[4] for t in self._trackers)]
        for book in books:  # the budget shared evenly; the digests' book is used only when a rule needs it
            book.limit = max(1, budget // max(1, len(books) - (not self._needs_digest)))
        self.profile = self._new_profile()

    def __repr__(self) -> str:
        return f"<RecordValidator {len(self.fields)} fields, {len(self.rules)} rules, extra_fields={self.extra_fields}>"

    # -- batches --
    def _new_profile(self) -> BatchProfile:
        return BatchProfile(self.fields, [p.rule for p in self._parsed], [name for name, _ in self._time_fields])

    def reset(self) -> BatchProfile:
        """Start a new batch: forget the keys seen; return the finished batch's profile."""
        finished = self.profile
        self.profile = self._new_profile()
        self._digests.clear()
        for tracker in self._trackers:
            tracker[4].clear()
        return finished

    def prefetch(self, records: Iterable[dict[str, Any]], digests: Iterable[Any] = ()) -> None:
        """Before validating these records (a chunk's, with their digests when they are given to `validate`):
        read at once those of their keys that the batch keeps on disk (see KeyBook). Optional: without it,
        each such key is read when its record is validated."""
        records = list(records)
        for names, single, freeze, _, seen, _ in self._trackers:
            if seen.spilled:
                seen.prefetch(_keys_of(records, names, single, freeze))
        if self._digests.spilled:
            self._digests.prefetch(digests if digests else (_freeze(r) for r in records))

    def batch_violations(self, *, now: datetime, tz: tzinfo = UTC) -> list[Violation]:
        """The current batch's batch-level violations (see batch_violations)."""
        return batch_violations(self.profile, self.rules, now=now, tz=tz)

    # -- compiling --
    def _sink(self, rule: RuleSpec, level: _Level) -> Callable[[list[Violation], str, str, Any], None]:
        """How a record's failure of a quality rule is reported: per record, or counted for the batch."""
        kind, severity = rule.kind, rule.severity
        if level.strict:

            def report(out: list[Violation], name: str, message: str, value: Any) -> None:
                out.append(Violation(name, kind, f"{message} (quality rule {kind})", _show(value), severity))

            return report
        if level.operator is None:
            note = f" (quality rule {kind}: tolerated up to {_num(level.limit)}{level.unit} of the batch)"
        else:
            note = f" (quality rule {kind}, checked for the batch: failures {level.describe()})"

        def count(out: list[Violation], name: str, message: str, value: Any) -> None:
            failures = self.profile.failures
            failures[rule] = failures.get(rule, 0) + 1
            out.append(Violation(name, kind, message + note, _show(value), WARNING))

        return count

    def _compile_null(self, spec: FieldSpec) -> Callable[[dict[str, Any], list[Violation]], None] | None:
        """What a missing or None value of the field breaks (None: nothing)."""
        name = spec.name
        reports: list[Callable[[dict[str, Any], list[Violation]], None]] = []

        def state(record: dict[str, Any]) -> str:
            return "null" if name in record else "missing"

        if spec.required:

            def required(record: dict[str, Any], out: list[Violation]) -> None:
                out.append(Violation(name, "required", f"{name}: required but {state(record)}", "None", ERROR))

            reports.append(required)
        elif spec.primary_key:

            def key_part(record: dict[str, Any], out: list[Violation]) -> None:
                out.append(
                    Violation(
                        name, "primary_key", f"{name}: part of the primary key but {state(record)}", "None", ERROR
                    )
                )

            reports.append(key_part)
        for parsed in self._parsed:
            if parsed.rule.kind == NOT_NULL and parsed.rule.field == name:
                sink = self._sink(parsed.rule, parsed.level)

                def not_null(record: dict[str, Any], out: list[Violation], sink: Any = sink) -> None:
                    sink(out, name, f"{name}: {state(record)}", None)

                reports.append(not_null)
        if not reports:
            return None
        if len(reports) == 1:
            return reports[0]
        every = tuple(reports)

        def all_reports(record: dict[str, Any], out: list[Violation]) -> None:
            for report in every:
                report(record, out)

        return all_reports

    def _compile_field(self, spec: FieldSpec) -> Check:
        name, logical_type = spec.name, spec.logical_type
        constraints: list[Check] = []
        if spec.pattern:
            constraints.append(_pattern_check(name, logical_type, spec.pattern))
        if logical_type in (INTEGER, NUMBER) and (spec.minimum is not None or spec.maximum is not None):
            constraints.append(_bounds_check(name, spec.minimum, spec.maximum))
        if spec.allowed_values:
            allowed = _membership(spec.allowed_values, logical_type)
            listed = _show_list(spec.allowed_values)

            def check_allowed(v: Any, out: list[Violation]) -> None:
                if not allowed(v):
                    shown = _show(v)
                    out.append(Violation(name, "allowed_values", f"{name}: {shown} is not one of {listed}", shown))

            constraints.append(_clean_when(check_allowed, "{0}(v)", allowed))
        if spec.max_length is not None and logical_type == STRING:
            most = spec.max_length

            def check_length(v: Any, out: list[Violation]) -> None:
                if len(v) > most:
                    message = f"{name}: {len(v)} characters, more than the maximum length {most}"
                    out.append(Violation(name, "max_length", message, _show(v)))

            constraints.append(_clean_when(check_length, "len(v) <= {0}", most))
        for parsed in self._parsed:
            kind = parsed.rule.kind
            if parsed.rule.field == name and kind in (ALLOWED_VALUES, PATTERN, RANGE):
                constraints.append(self._compile_rule(parsed, name, logical_type))
            elif kind == COMPLETENESS and parsed.missing_values is not None and parsed.rule.field in (name, None):
                constraints.append(self._compile_missing(parsed))
        return _field_check(name, logical_type, constraints)

    def _compile_rule(self, parsed: _Parsed, name: str, logical_type: str) -> Check:
        sink = self._sink(parsed.rule, parsed.level)
        kind, params, test = parsed.rule.kind, parsed.rule.params, parsed.test
        if kind == ALLOWED_VALUES:
            listed = _show_list(list(params["values"]))

            def check_rule_allowed(v: Any, out: list[Violation]) -> None:
                if not test(v):
                    sink(out, name, f"{name}: {_show(v)} is not one of {listed}", v)

            return _clean_when(check_rule_allowed, "{0}(v)", test)
        if kind == PATTERN:
            pattern = params["pattern"]
            if logical_type == STRING:

                def check_rule_pattern(v: Any, out: list[Violation]) -> None:
                    if test(v) is None:
                        sink(out, name, f"{name}: {_show(v)} does not match {pattern}", v)

                return _clean_when(check_rule_pattern, "{0}(v) is not None", test)

            def check_rule_pattern_text(v: Any, out: list[Violation]) -> None:
                if test(str(v)) is None:
                    sink(out, name, f"{name}: {_show(v)} does not match {pattern}", v)

            return _clean_when(check_rule_pattern_text, "{0}(str(v)) is not None", test)
        low, high = parsed.low, parsed.high
        shown = f"{'…' if low is None else _show(low)} to {'…' if high is None else _show(high)}"
        if low is not None and high is not None:

            def check_rule_range(v: Any, out: list[Violation]) -> None:
                if not low <= v <= high:
                    sink(out, name, f"{name}: {_show(v)} is outside the range {shown}", v)

            return _clean_when(check_rule_range, "{0} <= v <= {1}", low, high)
        if low is not None:

            def check_rule_low(v: Any, out: list[Violation]) -> None:
                if v < low:
                    sink(out, name, f"{name}: {_show(v)} is outside the range {shown}", v)

            return _clean_when(check_rule_low, "not v < {0}", low)

        def check_rule_high(v: Any, out: list[Violation]) -> None:
            if v > high:
                sink(out, name, f"{name}: {_show(v)} is outside the range {shown}", v)

        return _clean_when(check_rule_high, "not v > {0}", high)

    def _compile_missing(self, parsed: _Parsed) -> Check:
        """Completeness with params.missing_values: count the listed (non-null) values as missing."""
        rule, missing = parsed.rule, parsed.missing_values

        def check_missing(v: Any, out: list[Violation]) -> None:
            try:
                hit = missing(v)
            except TypeError:  # an unhashable value is not one of the listed missing values
                return
            if hit:
                failures = self.profile.failures
                failures[rule] = failures.get(rule, 0) + 1

        return check_missing

    def _compile_trackers(self) -> list[tuple[Any, ...]]:
        """Key checks: (key names or None for the whole record, the single name or None, freeze, report,
        seen keys → first position, register every record (True) or only those without errors)."""
        trackers: list[tuple[Any, ...]] = []
        types = {f.name: f.logical_type for f in self.fields}

        def track(names: tuple[str, ...] | None, report: Report, always: bool) -> None:
            freeze = names is not None and any(types[n] in (OBJECT, ARRAY) for n in names)
            single = names[0] if names is not None and len(names) == 1 else None
            trackers.append((names, single, freeze, report, KeyBook(), always))

        for spec in self.fields:
            if spec.unique:
                name = spec.name

                def report_unique(out: list[Violation], key: Any, first: int, name: str = name) -> None:
                    shown = _show(key)
                    message = f"{name}: {shown} is not unique: first seen at record {first}"
                    out.append(Violation(name, "unique", message, shown))

                track((name,), report_unique, False)
        if self.primary_key:
            names, label = self.primary_key, ", ".join(self.primary_key)

            def report_key(out: list[Violation], key: Any, first: int) -> None:
                shown = _show_key(names, key)
                message = f"{label}: duplicate primary key {shown}: first seen at record {first}"
                out.append(Violation(label, "primary_key", message, shown))

            track(names, report_key, False)
        for parsed in self._parsed:
            if parsed.rule.kind == UNIQUE:
                sink, key_names = self._sink(parsed.rule, parsed.level), parsed.key
                label = ", ".join(key_names) if key_names else ""

                def report_rule(
                    out: list[Violation],
                    key: Any,
                    first: int,
                    sink: Any = sink,
                    names: Any = key_names,
                    label: str = label,
                ) -> None:
                    if names is None:
                        sink(out, "", f"record: a duplicate of record {first}", key)
                    else:
                        message = f"{label}: {_show_key(names, key)} is not unique: first seen at record {first}"
                        sink(out, label, message, key if len(names) == 1 else _show_key(names, key))

                track(key_names, report_rule, key_names is None)
            elif parsed.rule.kind == DUPLICATE_RATIO and parsed.key is not None:

                def count_duplicate(out: list[Violation], key: Any, first: int, rule: RuleSpec = parsed.rule) -> None:
                    failures = self.profile.failures
                    failures[rule] = failures.get(rule, 0) + 1

                track(parsed.key, count_duplicate, True)
        return trackers

    # -- validating --
    def validate(self, record: dict[str, Any], digest: Any = None, *, rejected: bool = False) -> list[Violation]:
        """The record's violations (empty when valid). `digest` identifies the whole record (e.g.
        records.record_hash) for duplicate records; without one it is computed only when a rule needs it.
        `rejected`: the caller already rejects the record for a reason found outside the validator (a
        normalization problem, a unique value accepted in an earlier batch), so it registers no keys."""
        profile = self.profile
        position = profile.count
        profile.count = position + 1
        out: list[Violation] = []
        get = record.get
        self._check_fields(record, out, profile._nulls)
        if self._closed and not self._known.issuperset(record):
            self._unknown_fields(record, out)
        for name, aware in self._time_fields:
            t = get(name)
            if (type(t) is datetime and t.tzinfo is not None) if aware else type(t) is date:
                newest = profile.newest
                try:
                    if newest[name] is None or t > newest[name]:
                        newest[name] = t
                except TypeError:  # a time zone whose offset is unknown
                    pass
        if digest is None and self._needs_digest:
            digest = _freeze(record)
        if digest is not None:
            profile.digested += 1
            first = self._digests.setdefault(digest, position)
            if first != position:
                profile.duplicate_records += 1
                for report in self._whole_record:
                    report(out, digest, first)
        if not self._trackers:
            return out
        pending = []
        for names, single, freeze, report, seen, always in self._trackers:
            if single is not None:
                key = get(single)
                if key is None:
                    continue
            else:
                key = tuple([get(n) for n in names])
                if None in key:
                    continue
            if freeze:
                key = _freeze(key)
            try:
                first = seen.get(key)
            except TypeError:  # an unhashable value in a field of another type, reported as a type error
                continue
            if first is not None:
                report(out, key, first)
            elif always:
                seen[key] = position
            else:
                pending.append((seen, key))
        if pending and not rejected and not (out and is_rejected(out)):  # only accepted records register keys
            for seen, key in pending:
                seen[key] = position
        return out

    def _unknown_fields(self, record: dict[str, Any], out: list[Violation]) -> None:
        severity = ERROR if self.extra_fields == "reject" else WARNING
        for name, value in record.items():
            if name not in self._known:
                out.append(
                    Violation(
                        str(name), "unknown_field", f"{name}: not a field of the contract", _show(value), severity
                    )
                )


def _keys_of(records: list[dict[str, Any]], names: tuple[str, ...], single: str | None, freeze: bool) -> list[Any]:
    """The keys that `validate` looks up for these records (see its tracker loop)."""
    if single is not None:
        keys = [key for r in records if (key := r.get(single)) is not None]
    else:
        keys = [key for r in records if None not in (key := tuple([r.get(n) for n in names]))]
    return [_freeze(key) for key in keys] if freeze else keys


def _note_time(newest: dict[str, Any], name: str, t: Any, aware: bool) -> None:
    """Keep `t` as the newest value of the time field `name` if it is a valid, newer time."""
    if aware:
        if type(t) is not datetime or t.tzinfo is None:
            return
    elif type(t) is not date:
        return
    try:
        if newest[name] is None or t > newest[name]:
            newest[name] = t
    except TypeError:  # a time zone whose offset is unknown
        pass


def _show_key(names: tuple[str, ...], key: Any) -> str:
    if len(names) == 1:
        return _show(key)
    return "(" + ", ".join(f"{n}={_show(v)}" for n, v in zip(names, key, strict=True)) + ")"


def _pattern_check(name: str, logical_type: str, pattern: str) -> Check:
    try:
        search = re.compile(pattern).search
    except re.error as exc:
        raise ContractSpecError(f"{name}: invalid pattern {pattern!r}: {exc}") from None
    if logical_type == STRING:

        def check_pattern(v: Any, out: list[Violation]) -> None:
            if search(v) is None:
                shown = _show(v)
                out.append(Violation(name, "pattern", f"{name}: {shown} does not match {pattern}", shown))

        return _clean_when(check_pattern, "{0}(v) is not None", search)

    def check_pattern_text(v: Any, out: list[Violation]) -> None:
        if search(str(v)) is None:
            shown = _show(v)
            out.append(Violation(name, "pattern", f"{name}: {shown} does not match {pattern}", shown))

    return _clean_when(check_pattern_text, "{0}(str(v)) is not None", search)


def _bounds_check(name: str, minimum: Any, maximum: Any) -> Check:
    for bound in (minimum, maximum):
        if bound is not None and not _number(bound):
            raise ContractSpecError(f"{name}: minimum/maximum {bound!r} is not a number")
    low = -math.inf if minimum is None else minimum
    high = math.inf if maximum is None else maximum

    def check_bounds(v: Any, out: list[Violation]) -> None:
        if v < low:
            shown = _show(v)
            out.append(Violation(name, "minimum", f"{name}: {shown} is below the minimum {_num(low)}", shown))
        elif v > high:
            shown = _show(v)
            out.append(Violation(name, "maximum", f"{name}: {shown} is above the maximum {_num(high)}", shown))

    return _clean_when(check_bounds, "not v < {0} and not v > {1}", low, high)


# --- batch rules ----------------------------------------------------------------------------
def _instant(value: Any, tz: tzinfo) -> datetime:
    """The latest instant a time value stands for: a date, the end of its day (next midnight) in `tz`."""
    if isinstance(value, datetime):
        return value
    return datetime.combine(value + timedelta(days=1), time(), tzinfo=tz)


def _age(delta: timedelta) -> str:
    hours = delta.total_seconds() / 3600
    return f"{hours:.1f} h" if abs(hours) < 48 else f"{hours / 24:.1f} days"


def _cannot(rule: RuleSpec, why: str) -> Violation:
    severity = rule.severity if rule.severity in SEVERITIES else ERROR
    return Violation(rule.field or "", rule.kind, f"{rule.kind} rule cannot be evaluated: {why}", "", severity)


def batch_violations(
    profile: BatchProfile, rules: Iterable[Any], *, now: datetime, tz: tzinfo = UTC
) -> list[Violation]:
    """The batch-level violations of a (finished) batch, each with its rule's severity.

    Evaluated: row_count, duplicate_ratio, completeness, freshness, and record-level kinds
    with a tolerance (threshold > 0 or an operator); a rule that cannot be evaluated is
    reported as such. `now` must be aware; dates are days in `tz` (freshness).
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be an aware datetime")
    fields = {f.name: f for f in profile.fields}
    out: list[Violation] = []
    for rule in (RuleSpec.of(r) for r in rules):
        try:
            parsed = _parse(rule, fields, profile.time_field)
        except _Problem as exc:
            out.append(_cannot(rule, str(exc)))
            continue
        if profile.count and _measured_by_validator(parsed) and rule not in profile.rules:
            out.append(_cannot(rule, "not measured: the batch was validated without this rule"))
            continue
        violation = _evaluate(parsed, profile, now, tz)
        if violation is not None:
            out.append(violation)
    return out


def _evaluate(parsed: _Parsed, profile: BatchProfile, now: datetime, tz: tzinfo) -> Violation | None:
    rule = parsed.rule
    kind, count, severity, target = rule.kind, profile.count, rule.severity, rule.field or ""
    label = target or "batch"
    if kind == ROW_COUNT:
        low, high, operator = parsed.low, parsed.high, parsed.count_operator
        if operator is not None:
            if _OPERATORS[operator[0]](count, operator[1]):
                return None
            wanted = _describe(operator[0], operator[1], "")
        elif (low is None or count >= low) and (high is None or count <= high):
            return None
        elif low is not None and high is not None:
            wanted = f"must be between {_num(low)} and {_num(high)}"
        else:
            wanted = f"must be at least {_num(low)}" if low is not None else f"must be at most {_num(high)}"
        return Violation(target, kind, f"{label}: {count} records; the row count {wanted}", str(count), severity)
    if kind == FRESHNESS:
        return _freshness(parsed, profile, now, tz)
    level = parsed.level
    if kind == COMPLETENESS:
        extra = profile.failures.get(rule, 0)
        if rule.field is not None:
            missing, cells = profile.nulls(rule.field) + extra, count
        else:
            missing, cells = sum(profile._nulls) + extra, count * len(profile.fields)
        measured = level.measure(missing, cells)
        if level.passes(measured):
            return None
        share = f"{missing * 100 / cells:.2f}%" if cells else "0%"
        message = f"{label}: {missing} of {cells} values missing ({share}); missing values {level.describe()}"
        return Violation(target, kind, message, share if level.percent else str(missing), severity)
    if kind == DUPLICATE_RATIO:
        if parsed.key is None:
            if profile.digested < count:
                return _cannot(rule, f"{count - profile.digested} of {count} records were validated without a digest")
            duplicates, what = profile.duplicate_records, "duplicate records"
        else:
            duplicates, what = profile.failures.get(rule, 0), f"duplicate keys ({', '.join(parsed.key)})"
        measured = level.measure(duplicates, count)
        if level.passes(measured):
            return None
        share = f"{duplicates * 100 / count:.2f}%" if count else "0%"
        message = f"{label}: {duplicates} {what} in {count} records ({share}); duplicates {level.describe()}"
        return Violation(target, kind, message, share if level.percent else str(duplicates), severity)
    # not_null, allowed_values, pattern, range, unique: only a tolerance makes them a batch matter
    if level.strict:
        return None
    failures = profile.failures.get(rule, 0)
    measured = level.measure(failures, count)
    if level.passes(measured):
        return None
    share = f"{failures * 100 / count:.2f}%" if count else "0%"
    message = f"{label}: {failures} of {count} records fail the {kind} rule ({share}); failures {level.describe()}"
    return Violation(target, kind, message, share if level.percent else str(failures), severity)


def _freshness(parsed: _Parsed, profile: BatchProfile, now: datetime, tz: tzinfo) -> Violation | None:
    rule, name = parsed.rule, parsed.time_field
    if name not in profile.newest:
        return _cannot(rule, f"the newest {name} was not measured for this batch")
    newest = profile.newest[name]
    if newest is None:
        return Violation(name, FRESHNESS, f"{name}: no valid time value in the batch", "", rule.severity)
    age = now - _instant(newest, tz)
    if age <= parsed.max_age:
        return None
    message = (
        f"{name}: the newest value {_show(newest)} is {_age(age)} old, more than the {_age(parsed.max_age)} allowed"
    )
    return Violation(name, FRESHNESS, message, _show(newest), rule.severity)
