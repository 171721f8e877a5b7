"""Normalization: a contract version's ordered NormalizationRules, compiled once into one fast function.

    normalizer = compile_steps(steps_from_rules(version.normalization_rules.all()))
    record, problems = normalizer({"Umsatz": "1.234,56", ...})

Compilation validates every step's params (a `RuleError` names the step and the param) and turns each step
into a plain closure; the compiled function only calls those closures in order. Nothing is dispatched on
strings and no regular expression is compiled per record. The input record is never mutated: the function
works on a shallow copy and returns it with the list of `Problem`s found. A step that finds a problem leaves
the field unchanged and the later steps still run; the caller rejects a record that has problems.

Kinds and their params (every unknown param is refused, so a typo is an error, not a silent no-op):

    rename        {"from": "old"}  the value moves from "old" to `field`; a missing source does nothing.
    cast          {"to": string|integer|number|boolean|date|timestamp, ...}. None, a missing field and ""
                  stay None/missing without a problem (required-ness is validation's job).
                  number → Decimal (exact), integer → int (only integral values, "2.0" is 2). Separators:
                  "decimal_separator", "thousands_separator" (a string, or a list of them), or "locale"
                  (en, de, fr, ch, ... and "de-CH"-style tags). Thousands separators are only accepted where
                  they group digits by three, so "12,5" in en is a problem, not 125. NaN/Infinity refused.
                  boolean: "true_values"/"false_values" (case-insensitive; defaults true/yes/1/y/t/on and
                  false/no/0/n/f/off). date → datetime.date, timestamp → aware datetime in UTC: ISO 8601 by
                  default, or "formats" (strptime formats, tried in order); a timestamp without an offset is
                  taken in "timezone" (default UTC).
    convert_unit  {"from": "g", "to": "kg"} from the table `UNITS` (refused across dimensions), or
                  {"factor": 0.001, "offset": 0}. Decimal/int in → Decimal out, float in → float out.
    trim          {"collapse": false}  strips strings; "collapse" also turns inner whitespace runs into one space.
    case          {"to": upper|lower|title}
    map_codes     {"mapping": {...}, "default": value for unmapped codes, "strict": unmapped is a problem,
                  "case_insensitive": false}. Without "default" and "strict", unmapped values stay.
    default       {"value": ..., "empty_strings": false}  sets the field when missing or None (or "").
    derive        {"expression": "revenue - returns * unit_price"}  see `compile_expression`.
"""

from __future__ import annotations

import ast
import copy
import dataclasses
import json
import math
import operator
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, time
from decimal import ROUND_HALF_UP, Decimal, DecimalException, DivisionByZero, Overflow
from fractions import Fraction
from typing import Any
from zoneinfo import ZoneInfo

from apps.compute.choices import NormalizationKindChoices as Kind

__all__ = [
    "UNITS",
    "Problem",
    "RuleError",
    "Step",
    "compile_expression",
    "compile_steps",
    "steps_from_rules",
]

Record = dict[str, Any]
Normalizer = Callable[[Mapping[str, Any]], tuple[Record, list["Problem"]]]

_MISSING: Any = object()
_NUM = frozenset({int, Decimal})  # bool is deliberately not a number here
_SHOWN = 200  # Problem.value is cut to this many characters


# --------------------------------------------------------------------------------------------------
# Public types
# --------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Step:
    """One normalization step: what to do (`kind`), to which field, with which params."""

    kind: str
    field: str
    params: dict = dataclasses.field(default_factory=dict)

    @classmethod
    def of(cls, item: Step | Mapping[str, Any] | Any) -> Step:
        """A Step from a Step, a dict {"kind", "field", "params"} or an object with those attributes."""
        if isinstance(item, Step):
            return item
        if isinstance(item, Mapping):
            return cls(str(item.get("kind", "")), item.get("field", ""), dict(item.get("params") or {}))
        return cls(str(item.kind), item.field, dict(item.params or {}))


class RuleError(ValueError):
    """A step that cannot be compiled. `index` is 0-based (the message says "step index+1")."""

    def __init__(self, message: str, *, index: int | None = None, kind: str = "", field: str = "", param: str = ""):
        super().__init__(message)
        self.index, self.kind, self.field, self.param = index, kind, field, param


@dataclasses.dataclass(frozen=True, slots=True)
class Problem:
    """Why a record could not be normalized: the field, the step kind, a message and the offending value."""

    field: str
    rule: str
    message: str
    value: str


def steps_from_rules(rules: Iterable[Any]) -> list[Step]:
    """Steps from NormalizationRule instances (or anything with kind, field, params), in `position` order."""
    items = list(rules)
    items.sort(key=lambda rule: getattr(rule, "position", 0) or 0)  # stable: ties keep the given order
    return [Step.of(rule) for rule in items]


def compile_steps(steps: Sequence[Step | Mapping[str, Any]]) -> Normalizer:
    """Compile the steps into one function: record → (new normalized record, problems)."""
    runners = tuple(_compile_step(index, Step.of(step)) for index, step in enumerate(steps))

    def normalize(record: Mapping[str, Any]) -> tuple[Record, list[Problem]]:
        rec = dict(record)
        problems: list[Problem] = []
        for run in runners:
            run(rec, problems)
        return rec, problems

    return normalize


# --------------------------------------------------------------------------------------------------
# Compilation of one step
# --------------------------------------------------------------------------------------------------


class _ParamError(Exception):
    def __init__(self, param: str, message: str):
        super().__init__(message)
        self.param, self.message = param, message


class _Bad(Exception):
    """This value cannot be normalized (becomes a Problem); raised by converters and derived expressions."""


Runner = Callable[[Record, list[Problem]], None]
_CAST, _CONVERT_UNIT, _MAP_CODES, _DERIVE = (
    Kind.CAST.value,
    Kind.CONVERT_UNIT.value,
    Kind.MAP_CODES.value,
    Kind.DERIVE.value,
)


def _compile_step(index: int, step: Step) -> Runner:
    label = f"step {index + 1} ({step.kind} {step.field})"
    try:
        if not isinstance(step.field, str) or not step.field:
            raise _ParamError("field", "the field name must be a non-empty string")
        if not isinstance(step.params, Mapping):
            raise _ParamError("params", "params must be an object")
        builder = _BUILDERS.get(step.kind)
        if builder is None:
            raise _ParamError("kind", f"unknown kind {step.kind!r} (expected one of {', '.join(Kind.values)})")
        return builder(step.field, dict(step.params))
    except _ParamError as error:
        raise RuleError(
            f"{label}: {error.message}", index=index, kind=step.kind, field=step.field, param=error.param
        ) from None


def _allow(params: dict, *allowed: str, required: Iterable[str] = ()) -> None:
    for name in params:
        if name not in allowed:
            expected = ", ".join(repr(a) for a in allowed) or "none"
            raise _ParamError(name, f"unknown param {name!r} (expected: {expected})")
    for name in required:
        if name not in params:
            raise _ParamError(name, f"the param {name!r} is required")


def _flag(params: dict, name: str) -> bool:
    value = params.get(name, False)
    if not isinstance(value, bool):
        raise _ParamError(name, f"{name!r} must be true or false, not {value!r}")
    return value


def _show(value: Any) -> str:
    text = value if isinstance(value, str) else _to_str(value)
    return text if len(text) <= _SHOWN else text[: _SHOWN - 1] + "…"


def _problem_runner(field: str, kind: str, convert: Callable[[Any], Any]) -> Runner:
    """A runner that replaces the field's value by convert(value); _Bad becomes a Problem."""

    def run(rec: Record, problems: list[Problem]) -> None:
        value = rec.get(field, _MISSING)
        if value is _MISSING:
            return
        try:
            rec[field] = convert(value)
        except _Bad as bad:
            problems.append(Problem(field, kind, bad.args[0], _show(value)))

    return run


# --- rename -----------------------------------------------------------------------------------------


def _build_rename(field: str, params: dict) -> Runner:
    _allow(params, "from", required=["from"])
    source = params["from"]
    if not isinstance(source, str) or not source:
        raise _ParamError("from", f"'from' must be a field name, not {source!r}")
    if source == field:
        raise _ParamError("from", f"renaming {field!r} to itself")

    def run(rec: Record, problems: list[Problem]) -> None:
        if source in rec:
            rec[field] = rec.pop(source)

    return run


# --- cast -------------------------------------------------------------------------------------------

_TYPES = ("string", "integer", "number", "boolean", "date", "timestamp")
_SPACES = (" ", "\u00a0", "\u202f")
_LOCALES: dict[str, tuple[str, tuple[str, ...]]] = {
    "en": (".", (",",)),
    **dict.fromkeys(("de", "es", "it", "nl", "pt", "id", "tr", "da"), (",", (".",))),
    **dict.fromkeys(("fr", "sv", "nb", "fi", "pl", "cs", "ru"), (",", _SPACES)),
    "ch": (".", ("'", "\u2019")),
}
_TRUE = ("true", "yes", "1", "y", "t", "on")
_FALSE = ("false", "no", "0", "n", "f", "off")
_NUMBER_MAX_LENGTH = 100
_MAX_ADJUSTED = 1000  # |exponent| of a number read from a string
_FORMATS_CACHE_SIZE = 4096


def _build_cast(field: str, params: dict) -> Runner:
    to = params.get("to")
    if to not in _TYPES:
        raise _ParamError("to", f"unknown type {to!r} (expected one of {', '.join(_TYPES)})")
    if to in ("integer", "number"):
        _allow(params, "to", "decimal_separator", "thousands_separator", "locale")
        convert = _number_converter(to == "integer", *_separators(params))
    elif to == "boolean":
        _allow(params, "to", "true_values", "false_values")
        convert = _boolean_converter(params)
    elif to == "date":
        _allow(params, "to", "formats")
        convert = _date_converter(_formats(params))
    elif to == "timestamp":
        _allow(params, "to", "formats", "timezone")
        convert = _timestamp_converter(_formats(params), _zone(params))
    else:
        _allow(params, "to")
        convert = _string_converter
    return _problem_runner(field, _CAST, convert)


def _separators(params: dict) -> tuple[str, tuple[str, ...]]:
    decimal, thousands = ".", ()
    if "locale" in params:
        tag = params["locale"]
        if not isinstance(tag, str):
            raise _ParamError("locale", f"'locale' must be a string, not {tag!r}")
        parts = re.split(r"[-_]", tag.strip().lower())
        key = "ch" if len(parts) > 1 and parts[1] == "ch" else parts[0]
        if key not in _LOCALES:
            raise _ParamError("locale", f"unknown locale {tag!r} (known: {', '.join(sorted(_LOCALES))})")
        decimal, thousands = _LOCALES[key]
    if "decimal_separator" in params:
        decimal = params["decimal_separator"]
        if decimal not in (".", ","):
            raise _ParamError("decimal_separator", f"'decimal_separator' must be '.' or ',', not {decimal!r}")
    if "thousands_separator" in params:
        given = params["thousands_separator"]
        given = [given] if isinstance(given, str) else given
        if not isinstance(given, list | tuple) or not all(isinstance(t, str) and len(t) == 1 for t in given):
            raise _ParamError("thousands_separator", "'thousands_separator' must be one character or a list of them")
        thousands = tuple(given)
        for sep in thousands:
            if sep.isdigit() or sep in "+-eE":
                raise _ParamError("thousands_separator", f"{sep!r} cannot be a thousands separator")
    if decimal in thousands:
        param = "thousands_separator" if "thousands_separator" in params else "decimal_separator"
        raise _ParamError(param, f"{decimal!r} cannot be both the decimal and a thousands separator")
    return decimal, thousands


def _number_converter(integer: bool, decimal: str, thousands: tuple[str, ...]) -> Callable[[Any], Any]:
    """A converter to Decimal (or int). Strings are checked cheaply and read by Decimal itself; only a
    string containing a thousands separator is matched against the grouping pattern (by three digits)."""
    grouped = None
    if thousands:
        group, dec = "[" + "".join(re.escape(t) for t in thousands) + "]", re.escape(decimal)
        grouped = re.compile(rf"[+-]?\d{{1,3}}(?:{group}\d{{3}})+(?:{dec}\d*)?", re.ASCII).fullmatch
    dot = decimal == "."

    def finish(number: Decimal | int, value: Any) -> Decimal | int:
        if not integer:
            return Decimal(number) if type(number) is int else number
        if type(number) is int:
            return number
        if number.adjusted() > _MAX_ADJUSTED:  # int() of 1E+999999 would take seconds
            raise _Bad(f"{_show(value)!r} is too large")
        if number != number.to_integral_value():
            raise _Bad(f"{_show(value)!r} is not a whole number")
        return int(number)

    def convert(value: Any) -> Decimal | int | None:
        if type(value) is not str:
            return None if value is None else finish(_finite(value), value)
        s = value.strip()
        if not s:
            return None
        if len(s) > _NUMBER_MAX_LENGTH:
            raise _Bad(f"{_show(value)!r} is too long to be a number")
        if s.isdigit() and s.isascii():  # the common case
            return int(s) if integer else Decimal(s)
        for separator in thousands:
            if separator in s:
                if grouped(s) is None:  # type: ignore[misc]
                    raise _Bad(f"{value!r} is not a number")
                for t in thousands:
                    s = s.replace(t, "")
                break
        if not dot:
            if "." in s:
                raise _Bad(f"{value!r} is not a number")
            s = s.replace(decimal, ".")
        if "_" in s or not s.isascii():  # Decimal would read "1_000" and non-ASCII digits
            raise _Bad(f"{value!r} is not a number")
        try:
            number = Decimal(s)
        except ArithmeticError:  # decimal.InvalidOperation
            raise _Bad(f"{value!r} is not a number") from None
        if not number.is_finite() or abs(number.adjusted()) > _MAX_ADJUSTED:  # NaN, Infinity, 1e99999
            raise _Bad(f"{value!r} is not a number")
        return finish(number, value) if integer else number

    return convert


def _finite(value: Any) -> Decimal | int:
    """A JSON number as int or Decimal; _Bad for anything else (booleans are not numbers)."""
    t = type(value)
    if t is int:
        return value
    if t is float:
        if not math.isfinite(value):
            raise _Bad(f"{value!r} is not a finite number")
        return Decimal(repr(value))
    if t is Decimal:
        if not value.is_finite():
            raise _Bad(f"{value!r} is not a finite number")
        return value
    raise _Bad(f"{_type_name(value)} {_show(value)!r} is not a number")


def _boolean_converter(params: dict) -> Callable[[Any], Any]:
    tokens = {}
    for param, default, result in (("true_values", _TRUE, True), ("false_values", _FALSE, False)):
        values = params.get(param, default)
        if not isinstance(values, list | tuple) or not values or not all(isinstance(v, str) for v in values):
            raise _ParamError(param, f"{param!r} must be a non-empty list of strings")
        for v in values:
            token = v.strip().lower()
            if tokens.get(token, result) is not result:
                raise _ParamError(param, f"{v!r} is both a true and a false value")
            tokens[token] = result

    def to_boolean(value: Any) -> bool | None:
        t = type(value)
        if t is str:
            result = tokens.get(value.lower(), _MISSING)
            if result is _MISSING:
                token = value.strip().lower()
                if not token:
                    return None
                result = tokens.get(token, _MISSING)
                if result is _MISSING:
                    raise _Bad(f"{_show(value)!r} is not a boolean (expected one of {', '.join(tokens)})")
            return result
        if t is bool or value is None:
            return value
        if t in (int, float, Decimal) and value in (0, 1):
            return bool(value)
        raise _Bad(f"{_type_name(value)} {_show(value)!r} is not a boolean")

    return to_boolean


def _zone(params: dict) -> Any:
    name = params.get("timezone", "UTC")
    if not isinstance(name, str) or not name:
        raise _ParamError("timezone", f"'timezone' must be an IANA time zone name, not {name!r}")
    if name.upper() in ("UTC", "Z", "ETC/UTC"):
        return UTC
    try:
        return ZoneInfo(name)
    except (ValueError, OSError, LookupError):  # ZoneInfoNotFoundError is a KeyError
        raise _ParamError("timezone", f"unknown time zone {name!r}") from None


_DIRECTIVES = set("aAwdbBmyYHIpMSfzZjUWcxXGuV%")
_FAST_DIRECTIVES = {
    "d": r"(?P<d>\d{1,2})",
    "m": r"(?P<m>\d{1,2})",
    "Y": r"(?P<Y>\d{4})",
    "y": r"(?P<y>\d{2})",
    "H": r"(?P<H>\d{1,2})",
    "M": r"(?P<M>\d{1,2})",
    "S": r"(?P<S>\d{1,2})",
    "f": r"(?P<f>\d{1,6})",
    "%": "%",
}


def _formats(params: dict) -> list[Callable[[str], datetime]]:
    """One parser per format: a precompiled regex for the common numeric directives, else strptime."""
    if "formats" not in params:
        return []
    formats = params["formats"]
    if isinstance(formats, str):
        formats = [formats]
    if not isinstance(formats, list | tuple) or not formats:
        raise _ParamError("formats", "'formats' must be a non-empty list of strptime formats")
    return [_format_parser(fmt) for fmt in formats]


def _format_parser(fmt: Any) -> Callable[[str], datetime]:
    if not isinstance(fmt, str) or not fmt.strip():
        raise _ParamError("formats", f"{fmt!r} is not a strptime format")
    pattern, seen, fast, i = [], set(), True, 0
    while i < len(fmt):
        char = fmt[i]
        if char == "%":
            directive = fmt[i + 1 : i + 2]
            if directive not in _DIRECTIVES:
                raise _ParamError("formats", f"unknown directive '%{directive}' in format {fmt!r}")
            if directive not in _FAST_DIRECTIVES or directive in seen:
                fast = False
            seen.add(directive)
            pattern.append(_FAST_DIRECTIVES.get(directive, ""))
            i += 2
            continue
        pattern.append(r"\s+" if char.isspace() else re.escape(char))
        i += 1
    if not seen & {"d", "m", "Y", "y", "H", "M", "S", "j", "b", "B", "c", "x", "X"}:
        raise _ParamError("formats", f"format {fmt!r} reads no date or time")
    if not fast or not {"d", "m"} <= seen or not seen & {"Y", "y"}:
        return lambda text: datetime.strptime(text, fmt)  # naive unless %z: the caller applies the zone
    match = re.compile("".join(pattern), re.ASCII | re.IGNORECASE).fullmatch

    def parse(text: str) -> datetime:
        m = match(text)
        if m is None:
            raise ValueError(text)
        g = m.groupdict()
        if "Y" in g:
            year = int(g["Y"])
        else:
            year = int(g["y"])
            year += 2000 if year < 69 else 1900  # as strptime does
        micro = int(g["f"].ljust(6, "0")) if "f" in g else 0
        return datetime(year, int(g["m"]), int(g["d"]), int(g.get("H") or 0), int(g.get("M") or 0),
                        int(g.get("S") or 0), micro)  # fmt: skip

    return parse


def _memo(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    """Dates repeat a lot within a batch: remember the last few thousand parsed strings."""
    cache: dict[str, Any] = {}

    def parse_memo(text: str) -> Any:
        result = cache.get(text)
        if result is None:
            result = parse(text)
            if len(cache) >= _FORMATS_CACHE_SIZE:
                cache.clear()
            cache[text] = result
        return result

    return parse_memo


def _date_converter(parsers: list[Callable[[str], datetime]]) -> Callable[[Any], Any]:
    expected = "an ISO 8601 date (YYYY-MM-DD)" if not parsers else "the formats given"

    def parse(text: str) -> date:
        s = text.strip()
        if parsers:
            for parser in parsers:
                try:
                    return parser(s).date()
                except ValueError:
                    continue
        else:
            try:
                return date.fromisoformat(s)
            except ValueError:
                pass
        raise _Bad(f"{_show(text)!r} is not a date ({expected})")

    parse_text = _memo(parse) if parsers else parse

    def to_date(value: Any) -> date | None:
        if type(value) is str:
            return parse_text(value) if value and not value.isspace() else None
        if value is None:
            return None
        if isinstance(value, datetime):
            return value.date()
        if isinstance(value, date):
            return value
        raise _Bad(f"{_type_name(value)} {_show(value)!r} is not a date")

    return to_date


def _timestamp_converter(parsers: list[Callable[[str], datetime]], zone: Any) -> Callable[[Any], Any]:
    expected = "an ISO 8601 timestamp" if not parsers else "the formats given"

    def to_utc(moment: datetime) -> datetime:
        if moment.tzinfo is None:
            return moment.replace(tzinfo=UTC) if zone is UTC else moment.replace(tzinfo=zone).astimezone(UTC)
        return moment.astimezone(UTC)

    def parse(text: str) -> datetime:
        s = text.strip()
        for parser in parsers or (datetime.fromisoformat,):
            try:
                return to_utc(parser(s))
            except ValueError:
                continue
        raise _Bad(f"{_show(text)!r} is not a timestamp ({expected})")

    parse_text = _memo(parse)

    def to_timestamp(value: Any) -> datetime | None:
        if type(value) is str:
            return parse_text(value) if value and not value.isspace() else None
        if value is None:
            return None
        if isinstance(value, datetime):
            return to_utc(value)
        if isinstance(value, date):
            return to_utc(datetime.combine(value, time()))
        raise _Bad(f"{_type_name(value)} {_show(value)!r} is not a timestamp")

    return to_timestamp


def _string_converter(value: Any) -> str | None:
    if type(value) is str:
        return value or None
    return None if value is None else _to_str(value)


def _to_str(value: Any) -> str:
    t = type(value)
    if t is str:
        return value
    if t is bool:
        return "true" if value else "false"
    if t is int or t is Decimal:
        return str(value)
    if t is float:
        return repr(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict | list | tuple):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
    return str(value)


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float | Decimal):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, datetime):
        return "timestamp"
    if isinstance(value, date):
        return "date"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list | tuple):
        return "array"
    return type(value).__name__


# --- convert_unit -----------------------------------------------------------------------------------

_F = Fraction
#: dimension → unit → factor to the dimension's base unit (exact fractions)
UNITS: dict[str, dict[str, Fraction]] = {
    "mass": {"mg": _F(1, 10**6), "g": _F(1, 1000), "kg": _F(1), "t": _F(1000), "lb": _F("0.45359237"),
             "oz": _F("0.45359237") / 16},
    "length": {"mm": _F(1, 1000), "cm": _F(1, 100), "m": _F(1), "km": _F(1000), "in": _F("0.0254"),
               "ft": _F("0.3048"), "yd": _F("0.9144"), "mi": _F("1609.344")},
    "volume": {"ml": _F(1, 1000), "cl": _F(1, 100), "l": _F(1), "m3": _F(1000), "gal": _F("3.785411784")},
    "time": {"ms": _F(1, 1000), "s": _F(1), "min": _F(60), "h": _F(3600), "d": _F(86400)},
    "energy": {"J": _F(1), "kJ": _F(1000), "MJ": _F(10**6), "Wh": _F(3600), "kWh": _F(3_600_000),
               "MWh": _F(3_600_000_000)},
    "ratio": {"ratio": _F(1), "%": _F(1, 100)},
    "count": {"items": _F(1), "units": _F(1)},
}  # fmt: skip
#: temperature: kelvin = value * scale + offset
_TEMPERATURES = {"K": (_F(1), _F(0)), "C": (_F(1), _F("273.15")), "F": (_F(5, 9), _F("459.67") * _F(5, 9))}
_ALIASES = {
    "L": "l", "mL": "ml", "m³": "m3", "lbs": "lb", "sec": "s", "hr": "h", "percent": "%", "pct": "%",
    "°C": "C", "degC": "C", "celsius": "C", "°F": "F", "degF": "F", "fahrenheit": "F", "kelvin": "K",
}  # fmt: skip
_DIMENSION = {unit: dimension for dimension, units in UNITS.items() for unit in units} | dict.fromkeys(
    _TEMPERATURES, "temperature"
)


def _unit(params: dict, param: str) -> str:
    name = params[param]
    unit = _ALIASES.get(name, name) if isinstance(name, str) else None
    if unit not in _DIMENSION:
        known = ", ".join(sorted(_DIMENSION, key=str.lower))
        raise _ParamError(param, f"unknown unit {name!r} in {param!r} (known: {known})")
    return unit


def _exact(params: dict, param: str, default: Any) -> Fraction:
    value = params.get(param, default)
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        raise _ParamError(param, f"{param!r} must be a number, not {value!r}")
    try:
        exact = Fraction(str(value))
    except (ValueError, ZeroDivisionError):
        raise _ParamError(param, f"{param!r} must be a finite number, not {value!r}") from None
    return exact


def _build_convert_unit(field: str, params: dict) -> Runner:
    if "factor" in params or "offset" in params:
        _allow(params, "factor", "offset", required=["factor"])
        factor, offset = _exact(params, "factor", 1), _exact(params, "offset", 0)
        if factor == 0:
            raise _ParamError("factor", "'factor' must not be 0")
    else:
        _allow(params, "from", "to", required=["from", "to"])
        source, target = _unit(params, "from"), _unit(params, "to")
        if _DIMENSION[source] != _DIMENSION[target]:
            raise _ParamError(
                "to",
                f"cannot convert {source!r} ({_DIMENSION[source]}) to {target!r} ({_DIMENSION[target]})",
            )
        if _DIMENSION[source] == "temperature":
            (s1, o1), (s2, o2) = _TEMPERATURES[source], _TEMPERATURES[target]
            factor, offset = s1 / s2, (o1 - o2) / s2  # kelvin = v*s1 + o1 = w*s2 + o2
        else:
            factor, offset = UNITS[_DIMENSION[source]][source] / UNITS[_DIMENSION[target]][target], _F(0)
    return _affine_runner(field, factor, offset)


def _affine_runner(field: str, factor: Fraction, offset: Fraction) -> Runner:
    """value → value * factor + offset, computed as (value * a + c) / r with integers a, c, r so that a
    Decimal result is rounded once (41 °F is exactly 5 °C, 1500 g is 1.5 kg)."""
    r = math.lcm(factor.denominator, offset.denominator)
    a, c = factor.numerator * (r // factor.denominator), offset.numerator * (r // offset.denominator)
    da, dc, dr = Decimal(a), Decimal(c), Decimal(r)
    fa, fc, fr = float(a), float(c), float(r)

    if c == 0 and r == 1:

        def decimal(value: Decimal) -> Decimal:
            return value * da

    elif c == 0 and a == 1:

        def decimal(value: Decimal) -> Decimal:
            return value / dr

    elif c == 0:

        def decimal(value: Decimal) -> Decimal:
            return value * da / dr

    else:

        def decimal(value: Decimal) -> Decimal:
            return (value * da + dc) / dr

    def run(rec: Record, problems: list[Problem]) -> None:
        value = rec.get(field)
        t = type(value)
        if t is Decimal:
            rec[field] = decimal(value)
        elif t is int:
            rec[field] = decimal(Decimal(value))
        elif t is float:
            rec[field] = (value * fa + fc) / fr
        elif value is not None:
            problems.append(
                Problem(field, _CONVERT_UNIT, f"{_type_name(value)} {_show(value)!r} is not a number", _show(value))
            )

    return run


# --- trim, case, map_codes, default -------------------------------------------------------------------


def _build_trim(field: str, params: dict) -> Runner:
    _allow(params, "collapse")
    if _flag(params, "collapse"):

        def run(rec: Record, problems: list[Problem]) -> None:
            value = rec.get(field)
            if type(value) is str:
                rec[field] = " ".join(value.split())

    else:

        def run(rec: Record, problems: list[Problem]) -> None:
            value = rec.get(field)
            if type(value) is str:
                rec[field] = value.strip()

    return run


_CASES = {"upper": str.upper, "lower": str.lower, "title": str.title}


def _build_case(field: str, params: dict) -> Runner:
    _allow(params, "to", required=["to"])
    change = _CASES.get(params["to"]) if isinstance(params["to"], str) else None
    if change is None:
        raise _ParamError("to", f"unknown case {params['to']!r} (expected one of {', '.join(_CASES)})")

    def run(rec: Record, problems: list[Problem]) -> None:
        value = rec.get(field)
        if type(value) is str:
            rec[field] = change(value)

    return run


_SCALARS = (str, int, float, bool, Decimal, type(None))


def _build_map_codes(field: str, params: dict) -> Runner:
    _allow(params, "mapping", "default", "strict", "case_insensitive", required=["mapping"])
    given, strict, folded = params["mapping"], _flag(params, "strict"), _flag(params, "case_insensitive")
    has_default, default = "default" in params, params.get("default")
    if not isinstance(given, Mapping) or not given:
        raise _ParamError("mapping", "'mapping' must be a non-empty object of code → value")
    if strict and has_default:
        raise _ParamError("strict", "'strict' and 'default' contradict each other: give one of them")
    if not isinstance(default, _SCALARS):
        raise _ParamError("default", "'default' must be a string, number, boolean or null")
    mapping: dict[Any, Any] = {}
    for code, value in given.items():
        if not isinstance(value, _SCALARS):
            raise _ParamError("mapping", f"the value for {code!r} must be a string, number, boolean or null")
        key = code.casefold() if folded and isinstance(code, str) else code
        if key in mapping and mapping[key] != value:
            raise _ParamError("mapping", f"{code!r} is mapped twice (ignoring case) to different values")
        mapping[key] = value

    def unmapped(value: Any, rec: Record, problems: list[Problem]) -> None:
        if has_default:
            rec[field] = default
        elif strict:
            problems.append(Problem(field, _MAP_CODES, f"{_show(value)!r} is not a known code", _show(value)))

    def run(rec: Record, problems: list[Problem]) -> None:
        value = rec.get(field)
        if value is None:
            return
        if type(value) is str:
            result = mapping.get(value.casefold() if folded else value, _MISSING)
        else:
            try:
                result = mapping.get(value, _MISSING)
            except TypeError:  # unhashable: an object or array is never a code
                result = _MISSING
            if result is _MISSING and not isinstance(value, dict | list):
                key = _to_str(value)
                result = mapping.get(key.casefold() if folded else key, _MISSING)
        if result is _MISSING:
            unmapped(value, rec, problems)
        else:
            rec[field] = result

    return run


def _build_default(field: str, params: dict) -> Runner:
    _allow(params, "value", "empty_strings", required=["value"])
    value, empty = params["value"], _flag(params, "empty_strings")
    mutable = isinstance(value, dict | list)

    def run(rec: Record, problems: list[Problem]) -> None:
        current = rec.get(field)
        if current is None or (empty and current == ""):
            rec[field] = copy.deepcopy(value) if mutable else value

    return run


# --- derive -------------------------------------------------------------------------------------------


def _build_derive(field: str, params: dict) -> Runner:
    _allow(params, "expression", required=["expression"])
    text = params["expression"]
    try:
        evaluate = compile_expression(text)
    except _ExpressionError as error:
        raise _ParamError("expression", str(error)) from None

    def run(rec: Record, problems: list[Problem]) -> None:
        try:
            rec[field] = evaluate(rec)
        except _Bad as bad:
            problems.append(Problem(field, _DERIVE, f"{bad.args[0]} in {text!r}", ""))
        except (ArithmeticError, TypeError, ValueError) as error:  # decimal signals, mixed types, ...
            problems.append(Problem(field, _DERIVE, f"cannot evaluate {text!r}: {_describe(error)}", ""))

    return run


def _describe(error: Exception) -> str:
    """A readable reason for an exception raised while evaluating (decimal signals have no message)."""
    if isinstance(error, DivisionByZero | ZeroDivisionError):
        return "division by zero"
    if isinstance(error, Overflow):
        return "the result is too large"
    if isinstance(error, DecimalException):
        return "the result cannot be represented as a decimal number"
    return str(error) or type(error).__name__


_BUILDERS: dict[str, Callable[[str, dict], Runner]] = {
    Kind.RENAME: _build_rename,
    Kind.CAST: _build_cast,
    Kind.CONVERT_UNIT: _build_convert_unit,
    Kind.TRIM: _build_trim,
    Kind.CASE: _build_case,
    Kind.MAP_CODES: _build_map_codes,
    Kind.DEFAULT: _build_default,
    Kind.DERIVE: _build_derive,
}


# --------------------------------------------------------------------------------------------------
# The derive expression language
# --------------------------------------------------------------------------------------------------

_MAX_EXPRESSION_LENGTH = 2000
_MAX_DEPTH = 100
_MAX_EXPONENT = 100
_MAX_POWER_BITS = 100_000
_MAX_ROUND_DIGITS = 28
_QUANTA = {n: Decimal(1).scaleb(-n) for n in range(-_MAX_ROUND_DIGITS, _MAX_ROUND_DIGITS + 1)}
_DUNDER = re.compile(r"__\w*__")
_PLAIN_DECIMAL = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d{1,3})?", re.ASCII).fullmatch

Fn = Callable[[Record], Any]


class _ExpressionError(RuleError):
    """An expression that cannot be compiled (a RuleError without a step)."""


@dataclasses.dataclass(slots=True)
class _Node:
    fn: Fn
    const: bool = False
    value: Any = None


def compile_expression(text: str) -> Fn:
    """Compile a derive expression into a function record → value, without eval/exec of Python code.

    The expression is parsed with `ast.parse(mode="eval")` and each accepted node becomes a closure:
    literals (non-integral numbers are Decimal), field names (unknown fields read None; `field('a b')`
    reads a field whose name is no identifier), + - * / // % ** (exponent ≤ 100; / is exact Decimal
    division), unary - + not, comparisons (in / not in only with a list or tuple literal; `is` only with
    None), and/or (Python semantics: they return an operand), `a if cond else b`, and calls of: abs,
    round(x, n) (half away from zero), min, max, coalesce, lower, upper, strip, concat, len, int,
    float (→ Decimal), str, year, month, day, date.

    Arithmetic, ordering comparisons and `not` with None yield None (SQL-like); == and != compare plainly;
    min/max ignore None; concat reads None as "". Floats read from the record become Decimal (via str).
    Division by zero, type clashes and oversized powers are per-record problems, never exceptions.
    Anything else raises a RuleError naming the construct. Constant sub-expressions are evaluated here,
    once, so "2 ** 10 ** 10" and "x / 0" are refused at compile time.
    """
    if not isinstance(text, str) or not text.strip():
        raise _ExpressionError("the expression must be a non-empty string")
    if len(text) > _MAX_EXPRESSION_LENGTH:
        raise _ExpressionError(f"the expression is longer than {_MAX_EXPRESSION_LENGTH} characters")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError) as error:
        detail = getattr(error, "msg", None) or str(error) or type(error).__name__
        raise _ExpressionError(f"invalid expression {text!r}: {detail}") from None
    node = _ExpressionCompiler(text.strip()).compile(tree.body, 0)
    if node.const:
        value = node.value
        return lambda rec: value
    return node.fn


_REFUSED = {
    ast.Attribute: "attribute access is",
    ast.Subscript: "subscripts are",
    ast.Slice: "slices are",
    ast.Lambda: "lambda is",
    ast.ListComp: "comprehensions are",
    ast.SetComp: "comprehensions are",
    ast.DictComp: "comprehensions are",
    ast.GeneratorExp: "generator expressions are",
    ast.NamedExpr: "assignment expressions (:=) are",
    ast.JoinedStr: "f-strings are",
    ast.FormattedValue: "f-strings are",
    ast.Starred: "star arguments are",
    ast.Dict: "dict literals are",
    ast.Set: "set literals are",
    ast.Await: "await is",
    ast.Yield: "yield is",
    ast.YieldFrom: "yield is",
}
_OPERATOR_SYMBOLS = {
    ast.BitOr: "|", ast.BitAnd: "&", ast.BitXor: "^", ast.LShift: "<<", ast.RShift: ">>", ast.MatMult: "@",
    ast.Invert: "~",
}  # fmt: skip
_ORDERING = {ast.Lt: operator.lt, ast.LtE: operator.le, ast.Gt: operator.gt, ast.GtE: operator.ge}


class _ExpressionCompiler:
    def __init__(self, text: str):
        self.text = text

    def refuse(self, node: ast.AST, what: str) -> _ExpressionError:
        segment = ast.get_source_segment(self.text, node) if hasattr(node, "lineno") else None
        where = f" ({segment!r})" if segment else ""
        return _ExpressionError(f"{what} not allowed{where}")

    def compile(self, node: ast.AST, depth: int) -> _Node:
        if depth > _MAX_DEPTH:
            raise _ExpressionError(f"the expression nests deeper than {_MAX_DEPTH} levels")
        handler = getattr(self, f"_{type(node).__name__}", None)
        if handler is None:
            raise self.refuse(node, _REFUSED.get(type(node), f"the construct {type(node).__name__} is"))
        return handler(node, depth + 1)

    def fold(self, fn: Fn, children: Sequence[_Node], node: ast.AST) -> _Node:
        """Evaluate a node whose children are all constant once, now."""
        if not all(child.const for child in children):
            return _Node(fn)
        try:
            return _constant(fn({}))
        except _Bad as bad:
            raise _ExpressionError(f"{bad.args[0]} in {ast.get_source_segment(self.text, node)!r}") from None
        except (ArithmeticError, TypeError, ValueError) as error:
            segment = ast.get_source_segment(self.text, node)
            raise _ExpressionError(f"cannot evaluate {segment!r}: {_describe(error)}") from None

    # literals and names

    def _Constant(self, node: ast.Constant, depth: int) -> _Node:
        value = node.value
        if value is None or isinstance(value, bool | int):
            return _constant(value)
        if isinstance(value, float):
            source = (ast.get_source_segment(self.text, node) or repr(value)).replace("_", "")
            return _constant(Decimal(source) if _PLAIN_DECIMAL(source) else Decimal(repr(value)))
        if isinstance(value, str):
            if _DUNDER.search(value):
                raise self.refuse(node, "dunder strings are")
            return _constant(value)
        raise self.refuse(node, f"{type(value).__name__} literals are")

    def _Name(self, node: ast.Name, depth: int) -> _Node:
        name = node.id
        if name.startswith("__"):
            raise self.refuse(node, f"the name {name!r} is")
        return _Node(_reader(name))

    # operators

    def _BinOp(self, node: ast.BinOp, depth: int) -> _Node:
        make = _BINARY.get(type(node.op))
        if make is None:
            raise self.refuse(node, f"the operator {_OPERATOR_SYMBOLS.get(type(node.op), '?')!r} is")
        left, right = self.compile(node.left, depth), self.compile(node.right, depth)
        if isinstance(node.op, ast.Mult) and any(c.const and isinstance(c.value, str) for c in (left, right)):
            raise self.refuse(node, "string repetition is")
        constant = right.value if right.const and type(right.value) in _NUM else None
        if isinstance(node.op, ast.Pow) and constant is not None and abs(constant) > _MAX_EXPONENT:
            raise self.refuse(node, f"exponents above {_MAX_EXPONENT} are")
        if isinstance(node.op, ast.Div | ast.FloorDiv | ast.Mod) and constant == 0:
            raise self.refuse(node, "division by zero is")
        return self.fold(make(left, right), (left, right), node)

    def _UnaryOp(self, node: ast.UnaryOp, depth: int) -> _Node:
        make = _UNARY.get(type(node.op))
        if make is None:
            raise self.refuse(node, f"the operator {_OPERATOR_SYMBOLS.get(type(node.op), '?')!r} is")
        operand = self.compile(node.operand, depth)
        return self.fold(make(operand.fn), (operand,), node)

    def _BoolOp(self, node: ast.BoolOp, depth: int) -> _Node:
        values = [self.compile(v, depth) for v in node.values]
        fns = tuple(v.fn for v in values)
        if isinstance(node.op, ast.And):
            if len(fns) == 2:
                first, second = fns
                fn = lambda rec: first(rec) and second(rec)  # noqa: E731
            else:
                fn = _all_of(fns)
        elif len(fns) == 2:
            first, second = fns
            fn = lambda rec: first(rec) or second(rec)  # noqa: E731
        else:
            fn = _any_of(fns)
        return self.fold(fn, values, node)

    def _IfExp(self, node: ast.IfExp, depth: int) -> _Node:
        test, body, orelse = (self.compile(n, depth) for n in (node.test, node.body, node.orelse))
        if test.const:  # only the chosen branch matters
            return body if test.value else orelse
        t, b, o = test.fn, body.fn, orelse.fn
        return _Node(lambda rec: b(rec) if t(rec) else o(rec))

    def _Compare(self, node: ast.Compare, depth: int) -> _Node:
        left = self.compile(node.left, depth)
        children, fns, ops = [left], [left.fn], []
        for op, comparator in zip(node.ops, node.comparators, strict=True):
            if isinstance(op, ast.In | ast.NotIn):
                if not isinstance(comparator, ast.List | ast.Tuple):
                    raise self.refuse(comparator, "'in' needs a list or tuple literal on its right; anything else is")
                items = [self.compile(item, depth) for item in comparator.elts]
                children.extend(items)
                fns.append(_collection(items))
            elif isinstance(op, ast.Is | ast.IsNot):
                if not (isinstance(comparator, ast.Constant) and comparator.value is None):
                    raise self.refuse(node, "'is' with anything but None is")
                none = _constant(None)
                children.append(none)
                fns.append(none.fn)
            else:
                if type(op) not in _ORDERING and not isinstance(op, ast.Eq | ast.NotEq):
                    raise self.refuse(node, f"the comparison {_OPERATOR_SYMBOLS.get(type(op), '?')!r} is")
                right = self.compile(comparator, depth)
                children.append(right)
                fns.append(right.fn)
            ops.append(_comparison(op))
        if len(ops) == 1:
            compare, a, b = ops[0], fns[0], fns[1]
            fn = lambda rec: compare(a(rec), b(rec))  # noqa: E731
        else:
            fn = _chain(tuple(fns), tuple(ops))
        return self.fold(fn, children, node)

    def _List(self, node: ast.List, depth: int) -> _Node:
        raise self.refuse(node, "lists are only allowed on the right of 'in'; elsewhere they are")

    def _Tuple(self, node: ast.Tuple, depth: int) -> _Node:
        raise self.refuse(node, "tuples are only allowed on the right of 'in'; elsewhere they are")

    # calls

    def _Call(self, node: ast.Call, depth: int) -> _Node:
        if not isinstance(node.func, ast.Name):
            raise self.refuse(node, _REFUSED.get(type(node.func), "calling anything but a function name is"))
        name = node.func.id
        spec = _FUNCTIONS.get(name)
        if spec is None:
            raise self.refuse(node, f"the function {name!r} is")
        impl, least, most = spec
        args = list(node.args)
        for keyword in node.keywords:
            if name == "round" and keyword.arg == "ndigits" and len(args) == 1:
                args.append(keyword.value)
            else:
                raise self.refuse(node, f"the keyword argument {keyword.arg or '**'!r} of {name}() is")
        if not least <= len(args) <= (most if most is not None else len(args)):
            count = f"{least}" if least == most else f"{least} to {most}" if most is not None else f"at least {least}"
            raise self.refuse(node, f"{name}() takes {count} arguments; {len(args)}")
        if name == "field":
            if not (isinstance(args[0], ast.Constant) and isinstance(args[0].value, str)):
                raise self.refuse(node, "field() needs a string literal; anything else is")
            return _Node(_reader(args[0].value))
        children = [self.compile(arg, depth) for arg in args]
        fns = tuple(child.fn for child in children)
        if name == "coalesce":
            fn = _coalesce(fns)
        elif name == "round" and len(children) == 2 and children[1].const:
            try:
                fn = _round_to(fns[0], children[1].value)
            except _Bad as bad:
                raise self.refuse(node, f"{bad.args[0]}; anything else is") from None
        elif len(fns) == 1:
            (only,) = fns
            fn = lambda rec: impl(only(rec))  # noqa: E731
        elif len(fns) == 2:
            first, second = fns
            fn = lambda rec: impl(first(rec), second(rec))  # noqa: E731
        else:
            fn = lambda rec: impl(*[f(rec) for f in fns])  # noqa: E731
        return self.fold(fn, children, node)


def _constant(value: Any) -> _Node:
    return _Node(lambda rec: value, True, value)


def _reader(name: str) -> Fn:
    def read(rec: Record) -> Any:
        value = rec.get(name)
        if type(value) is float:
            return Decimal(repr(value)) if math.isfinite(value) else None
        return value

    return read


def _all_of(fns: tuple[Fn, ...]) -> Fn:
    def all_of(rec: Record) -> Any:
        value = None
        for f in fns:
            value = f(rec)
            if not value:
                return value
        return value

    return all_of


def _any_of(fns: tuple[Fn, ...]) -> Fn:
    def any_of(rec: Record) -> Any:
        value = None
        for f in fns:
            value = f(rec)
            if value:
                return value
        return value

    return any_of


def _coalesce(fns: tuple[Fn, ...]) -> Fn:
    def coalesce(rec: Record) -> Any:
        for f in fns:
            value = f(rec)
            if value is not None:
                return value
        return None

    return coalesce


def _collection(items: list[_Node]) -> Fn:
    if all(item.const for item in items):
        values = [item.value for item in items]
        try:
            frozen: Any = frozenset(values)
        except TypeError:
            frozen = tuple(values)
        return lambda rec: frozen
    fns = tuple(item.fn for item in items)
    return lambda rec: tuple(f(rec) for f in fns)


def _comparison(op: ast.cmpop) -> Callable[[Any, Any], Any]:
    if isinstance(op, ast.Eq):
        return operator.eq
    if isinstance(op, ast.NotEq):
        return operator.ne
    if isinstance(op, ast.Is):
        return operator.is_
    if isinstance(op, ast.IsNot):
        return operator.is_not
    if isinstance(op, ast.In):
        return lambda a, b: a in b
    if isinstance(op, ast.NotIn):
        return lambda a, b: a not in b
    order = _ORDERING[type(op)]

    def ordered(a: Any, b: Any) -> Any:
        if a is None or b is None:
            return None
        return order(a, b)

    return ordered


def _chain(fns: tuple[Fn, ...], ops: tuple[Callable[[Any, Any], Any], ...]) -> Fn:
    first, rest = fns[0], tuple(zip(ops, fns[1:], strict=True))

    def chain(rec: Record) -> Any:
        a = first(rec)
        result: Any = True
        for compare, f in rest:
            b = f(rec)
            result = compare(a, b)
            if not result:
                return result
            a = b
        return result

    return chain


def _arithmetic(symbol: str, compute: Callable[[Any, Any], Any], strings: bool = False) -> Callable[..., Fn]:
    def refuse(a: Any, b: Any) -> Any:
        raise _Bad(f"cannot apply {symbol!r} to {_type_name(a)} and {_type_name(b)}")

    def make(left: _Node, right: _Node) -> Fn:
        first = left.fn
        if right.const and type(right.value) in _NUM:  # x * 0.01, x / 100: no call for the constant
            b = right.value

            def with_constant(rec: Record) -> Any:
                a = first(rec)
                if type(a) in _NUM:
                    return compute(a, b)
                return None if a is None else refuse(a, b)

            return with_constant
        second = right.fn

        def binary(rec: Record) -> Any:
            a = first(rec)
            if a is None:
                return None
            b = second(rec)
            if b is None:
                return None
            if type(a) in _NUM and type(b) in _NUM:
                return compute(a, b)
            if strings and type(a) is str and type(b) is str:
                return a + b
            return refuse(a, b)

        return binary

    return make


def _divide(a: Any, b: Any) -> Any:
    if not b:
        raise _Bad("division by zero")
    if type(a) is int and type(b) is int:
        return Decimal(a) / b
    return a / b


def _floor_divide(a: Any, b: Any) -> Any:
    if not b:
        raise _Bad("division by zero")
    return a // b


def _modulo(a: Any, b: Any) -> Any:
    if not b:
        raise _Bad("division by zero")
    return a % b


def _power(a: Any, b: Any) -> Any:
    if abs(b) > _MAX_EXPONENT:
        raise _Bad(f"the exponent {b} is above {_MAX_EXPONENT}")
    if type(a) is int and type(b) is int:
        if b < 0:
            if a == 0:
                raise _Bad("division by zero")
            return Decimal(a) ** b
        if a.bit_length() * b > _MAX_POWER_BITS:
            raise _Bad("the result is too large")
        return a**b
    if a == 0 and b < 0:
        raise _Bad("division by zero")
    return Decimal(a) ** b


_BINARY: dict[type, Callable[[_Node, _Node], Fn]] = {
    ast.Add: _arithmetic("+", operator.add, strings=True),
    ast.Sub: _arithmetic("-", operator.sub),
    ast.Mult: _arithmetic("*", operator.mul),
    ast.Div: _arithmetic("/", _divide),
    ast.FloorDiv: _arithmetic("//", _floor_divide),
    ast.Mod: _arithmetic("%", _modulo),
    ast.Pow: _arithmetic("**", _power),
}


def _signed(symbol: str, compute: Callable[[Any], Any]) -> Callable[[Fn], Fn]:
    def make(operand: Fn) -> Fn:
        def unary(rec: Record) -> Any:
            value = operand(rec)
            if value is None:
                return None
            if type(value) in _NUM:
                return compute(value)
            raise _Bad(f"cannot apply unary {symbol!r} to {_type_name(value)}")

        return unary

    return make


def _negation(operand: Fn) -> Fn:
    def negate(rec: Record) -> Any:
        value = operand(rec)
        return None if value is None else not value

    return negate


_UNARY: dict[type, Callable[[Fn], Fn]] = {
    ast.USub: _signed("-", operator.neg),
    ast.UAdd: _signed("+", operator.pos),
    ast.Not: _negation,
}


# the whitelisted functions: each takes evaluated values (None in → None out unless said otherwise)


def _number_arg(name: str, value: Any) -> Any:
    if type(value) in _NUM:
        return value
    raise _Bad(f"{name}() needs a number, not {_type_name(value)}")


def _fn_abs(x: Any) -> Any:
    return None if x is None else abs(_number_arg("abs", x))


def _fn_round(x: Any, digits: Any = None) -> Any:
    """Commercial rounding (half away from zero); round(x) is an int, round(x, n) a Decimal."""
    if x is None:
        return None
    x = _number_arg("round", x)
    if digits is None:
        if type(x) is int:
            return x
        if x.adjusted() > _MAX_EXPONENT * 10:
            raise _Bad(f"round() cannot make {x} an integer")
        return int(x.to_integral_value(ROUND_HALF_UP))
    if type(digits) is not int or not -_MAX_ROUND_DIGITS <= digits <= _MAX_ROUND_DIGITS:
        raise _Bad(f"round() needs a whole number of digits between -{_MAX_ROUND_DIGITS} and {_MAX_ROUND_DIGITS}")
    if type(x) is int and digits >= 0:
        return x
    rounded = (x if type(x) is Decimal else Decimal(x)).quantize(_QUANTA[digits], ROUND_HALF_UP)
    return int(rounded) if type(x) is int else rounded


def _round_to(number: Fn, digits: Any) -> Fn:
    """round(x, n) with a constant n: the quantum is looked up once."""
    _fn_round(Decimal(0), digits)  # validates n now
    quantum = _QUANTA[digits]

    def round_to(rec: Record) -> Any:
        x = number(rec)
        if type(x) is Decimal:
            return x.quantize(quantum, ROUND_HALF_UP)
        return _fn_round(x, digits)

    return round_to


def _fn_min(*values: Any) -> Any:
    present = [v for v in values if v is not None]
    return min(present) if present else None


def _fn_max(*values: Any) -> Any:
    present = [v for v in values if v is not None]
    return max(present) if present else None


def _string_fn(name: str, method: Callable[[str], Any]) -> Callable[[Any], Any]:
    def apply(x: Any) -> Any:
        if x is None:
            return None
        if type(x) is str:
            return method(x)
        raise _Bad(f"{name}() needs a string, not {_type_name(x)}")

    return apply


def _fn_concat(*parts: Any) -> str:
    return "".join("" if p is None else _to_str(p) for p in parts)


def _parse_decimal(name: str, text: str) -> Decimal:
    s = text.strip()
    if not _PLAIN_DECIMAL(s):
        raise _Bad(f"{name}() cannot read {_show(text)!r} as a number")
    return Decimal(s)


def _fn_int(x: Any) -> Any:
    t = type(x)
    if x is None or t is int:
        return x
    if t is bool:
        return int(x)
    if t is str:
        x = _parse_decimal("int", x)
    elif t is not Decimal:
        raise _Bad(f"int() needs a number or a string, not {_type_name(x)}")
    if not x.is_finite() or x.adjusted() > _MAX_EXPONENT * 10:
        raise _Bad(f"int() cannot convert {x}")
    return int(x)


def _fn_float(x: Any) -> Any:
    t = type(x)
    if x is None or t is Decimal:
        return x
    if t is int or t is bool:
        return Decimal(int(x))
    if t is str:
        return _parse_decimal("float", x)
    raise _Bad(f"float() needs a number or a string, not {_type_name(x)}")


def _fn_str(x: Any) -> Any:
    return None if x is None else _to_str(x)


def _as_date(name: str, x: Any) -> Any:
    if x is None:
        return None
    if isinstance(x, datetime):
        return x.date()
    if isinstance(x, date):
        return x
    if type(x) is str:
        try:
            return date.fromisoformat(x.strip())
        except ValueError:
            raise _Bad(f"{name}() cannot read {_show(x)!r} as an ISO date") from None
    raise _Bad(f"{name}() needs a date, not {_type_name(x)}")


def _date_part(name: str) -> Callable[[Any], Any]:
    def part(x: Any) -> Any:
        d = _as_date(name, x)
        return None if d is None else getattr(d, name)

    return part


#: name → (implementation, least arguments, most arguments or None for any number)
_FUNCTIONS: dict[str, tuple[Callable[..., Any], int, int | None]] = {
    "abs": (_fn_abs, 1, 1),
    "round": (_fn_round, 1, 2),
    "min": (_fn_min, 1, None),
    "max": (_fn_max, 1, None),
    "coalesce": (_fn_min, 1, None),  # compiled lazily by _coalesce
    "lower": (_string_fn("lower", str.lower), 1, 1),
    "upper": (_string_fn("upper", str.upper), 1, 1),
    "strip": (_string_fn("strip", str.strip), 1, 1),
    "concat": (_fn_concat, 1, None),
    "len": (_string_fn("len", len), 1, 1),
    "int": (_fn_int, 1, 1),
    "float": (_fn_float, 1, 1),
    "str": (_fn_str, 1, 1),
    "year": (_date_part("year"), 1, 1),
    "month": (_date_part("month"), 1, 1),
    "day": (_date_part("day"), 1, 1),
    "date": (lambda x: _as_date("date", x), 1, 1),
    "field": (_fn_str, 1, 1),  # compiled as a field read
}
