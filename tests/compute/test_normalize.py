"""Normalization steps compile once into a function: record → (new normalized record, problems).

Bad params are refused when compiling (a RuleError naming the step and the param); bad values are
per-record Problems (the caller rejects the record). Derived fields use a small, safe expression
language translated from Python's AST: nothing is ever eval'd.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest

from apps.compute.models import NormalizationRule
from apps.compute.normalize import Problem, RuleError, Step, compile_steps, steps_from_rules


def run(record: dict[str, Any], *steps: tuple[str, str, dict]) -> tuple[dict[str, Any], list[Problem]]:
    """Normalize one record with the steps given as (kind, field, params)."""
    return compile_steps([Step(kind, field, params) for kind, field, params in steps])(record)


def value(raw: Any, kind: str, params: dict) -> Any:
    """The normalized value of field "x" (asserting that there was no problem)."""
    record, problems = run({"x": raw}, (kind, "x", params))
    assert problems == [], problems
    return record["x"]


def problem(raw: Any, kind: str, params: dict) -> Problem:
    """The single problem normalizing field "x" finds."""
    record, problems = run({"x": raw}, (kind, "x", params))
    assert len(problems) == 1, problems
    assert record["x"] == raw, "a step with a problem leaves the value unchanged"
    return problems[0]


def refused(kind: str, params: dict, field: str = "x") -> RuleError:
    with pytest.raises(RuleError) as caught:
        compile_steps([Step(kind, field, params)])
    return caught.value


def derive(expression: str) -> Any:
    """The value of an expression that reads no field."""
    return _derived(expression, {})


def _derived(expression: str, record: dict[str, Any]) -> Any:
    """The value derived from the record (asserting that there was no problem)."""
    result, problems = run(record, ("derive", "out", {"expression": expression}))
    assert problems == [], problems
    return result["out"]


# --------------------------------------------------------------------------------------------------
# Steps, compilation and the compiled function
# --------------------------------------------------------------------------------------------------


def test_steps_come_from_rule_rows_in_position_order() -> None:
    rules = [
        NormalizationRule(position=2, kind="cast", field="revenue", params={"to": "number"}),
        NormalizationRule(position=1, kind="rename", field="revenue", params={"from": "Umsatz"}),
    ]
    assert steps_from_rules(rules) == [
        Step("rename", "revenue", {"from": "Umsatz"}),
        Step("cast", "revenue", {"to": "number"}),
    ]
    assert steps_from_rules([SimpleNamespace(kind="trim", field="a", params=None)]) == [Step("trim", "a", {})]


def test_steps_may_be_given_as_dicts() -> None:
    normalize = compile_steps([{"kind": "case", "field": "a", "params": {"to": "upper"}}])
    assert normalize({"a": "x"}) == ({"a": "X"}, [])


def test_no_steps_copy_the_record() -> None:
    record = {"a": 1}
    normalized, problems = compile_steps([])(record)
    assert normalized == record and normalized is not record and problems == []


def test_the_input_record_is_not_mutated() -> None:
    record = {"Umsatz": "1.234,56", "name": "  x ", "region": "N", "temp": 41}
    before = dict(record)
    normalized, _ = run(
        record,
        ("rename", "revenue", {"from": "Umsatz"}),
        ("cast", "revenue", {"to": "number", "locale": "de"}),
        ("trim", "name", {}),
        ("map_codes", "region", {"mapping": {"N": "north"}}),
        ("convert_unit", "temp", {"from": "F", "to": "C"}),
        ("default", "channel", {"value": "web"}),
        ("derive", "double", {"expression": "revenue * 2"}),
    )
    assert record == before
    assert normalized == {"revenue": Decimal("1234.56"), "name": "x", "region": "north", "temp": Decimal(5),
                          "channel": "web", "double": Decimal("2469.12")}  # fmt: skip


def test_the_compiled_function_is_reusable_and_keeps_no_state_between_records() -> None:
    normalize = compile_steps([Step("cast", "n", {"to": "integer"}), Step("default", "n", {"value": 0})])
    assert normalize({"n": "x"})[1][0].field == "n"
    assert normalize({"n": "7"}) == ({"n": 7}, [])
    assert normalize({}) == ({"n": 0}, [])


def test_a_rule_error_names_the_step_and_the_param() -> None:
    with pytest.raises(RuleError, match=r"^step 3 \(cast revenue\): unknown type 'money'") as caught:
        compile_steps([Step("trim", "a", {}), Step("trim", "b", {}), Step("cast", "revenue", {"to": "money"})])
    error = caught.value
    assert isinstance(error, ValueError)
    assert (error.index, error.kind, error.field, error.param) == (2, "cast", "revenue", "to")


@pytest.mark.parametrize(
    ("step", "param", "message"),
    [
        (Step("shout", "a", {}), "kind", "unknown kind 'shout'"),
        (Step("trim", "", {}), "field", "field name"),
        (Step("trim", "a", {"colapse": True}), "colapse", "unknown param 'colapse'"),
        (Step("trim", "a", {"collapse": "yes"}), "collapse", "true or false"),
        (Step("rename", "a", {}), "from", "'from' is required"),
        (Step("rename", "a", {"from": "a"}), "from", "itself"),
        (Step("cast", "a", {"to": "date", "locale": "de"}), "locale", "unknown param 'locale'"),
        (Step("cast", "a", {"to": "number", "locale": "xx"}), "locale", "unknown locale 'xx'"),
        (Step("cast", "a", {"to": "number", "decimal_separator": ";"}), "decimal_separator", "'.' or ','"),
        (Step("cast", "a", {"to": "number", "locale": "de", "thousands_separator": ","}), "thousands_separator",
         "both"),
        (Step("cast", "a", {"to": "date", "formats": ["%d.%m.%Q"]}), "formats", "unknown directive '%Q'"),
        (Step("cast", "a", {"to": "date", "formats": "nonsense"}), "formats", "reads no date"),
        (Step("cast", "a", {"to": "timestamp", "timezone": "Mars/Olympus"}), "timezone", "unknown time zone"),
        (Step("cast", "a", {"to": "boolean", "true_values": ["ja"], "false_values": ["JA"]}), "false_values",
         "both a true and a false"),
        (Step("case", "a", {"to": "shouty"}), "to", "unknown case 'shouty'"),
        (Step("map_codes", "a", {"mapping": {}}), "mapping", "non-empty"),
        (Step("map_codes", "a", {"mapping": {"n": "north"}, "strict": True, "default": "x"}), "strict",
         "contradict"),
        (Step("map_codes", "a", {"mapping": {"n": "north", "N": "nord"}, "case_insensitive": True}), "mapping",
         "twice"),
        (Step("map_codes", "a", {"mapping": {"n": {"nested": 1}}}), "mapping", "string, number"),
        (Step("default", "a", {}), "value", "'value' is required"),
        (Step("convert_unit", "a", {"from": "kg"}), "to", "'to' is required"),
        (Step("convert_unit", "a", {"from": "parsec", "to": "m"}), "from", "unknown unit 'parsec'"),
        (Step("convert_unit", "a", {"factor": 0}), "factor", "must not be 0"),
        (Step("convert_unit", "a", {"factor": "lots"}), "factor", "finite number"),
        (Step("convert_unit", "a", {"factor": 2, "from": "kg"}), "from", "unknown param 'from'"),
        (Step("derive", "a", {"expression": ""}), "expression", "non-empty"),
        (Step("derive", "a", {"expression": "1 +"}), "expression", "invalid expression"),
    ],
)  # fmt: skip
def test_bad_params_are_refused_at_compile_time(step: Step, param: str, message: str) -> None:
    with pytest.raises(RuleError, match=message) as caught:
        compile_steps([step])
    assert caught.value.param == param
    assert str(caught.value).startswith(f"step 1 ({step.kind} {step.field}): ")


def test_steps_run_in_order_so_rename_then_cast_casts_the_renamed_field() -> None:
    rename_then_cast = (("rename", "revenue", {"from": "Umsatz"}), ("cast", "revenue", {"to": "number"}))
    assert run({"Umsatz": "12.5"}, *rename_then_cast) == ({"revenue": Decimal("12.5")}, [])
    cast_then_rename = (("cast", "revenue", {"to": "number"}), ("rename", "revenue", {"from": "Umsatz"}))
    assert run({"Umsatz": "12.5"}, *cast_then_rename) == ({"revenue": "12.5"}, [])


def test_a_problem_does_not_stop_later_steps_and_all_problems_are_returned() -> None:
    record, problems = run(
        {"a": "x", "b": "y", "c": " keep "},
        ("cast", "a", {"to": "integer"}),
        ("derive", "d", {"expression": "a * 2"}),  # sees the unchanged "x"
        ("cast", "b", {"to": "date"}),
        ("trim", "c", {}),
    )
    assert record == {"a": "x", "b": "y", "c": "keep"}
    assert [(p.field, p.rule) for p in problems] == [("a", "cast"), ("d", "derive"), ("b", "cast")]
    assert problems[0] == Problem("a", "cast", "'x' is not a number", "x")


def test_problems_are_small_immutable_values() -> None:
    found = problem("z" * 1000, "cast", {"to": "number"})
    assert len(found.value) <= 200
    with pytest.raises(AttributeError):
        found.message = "changed"  # type: ignore[misc]


# --------------------------------------------------------------------------------------------------
# rename
# --------------------------------------------------------------------------------------------------


def test_rename_moves_the_value_and_a_missing_source_does_nothing() -> None:
    step = ("rename", "revenue", {"from": "Umsatz"})
    assert run({"Umsatz": None, "x": 1}, step) == ({"x": 1, "revenue": None}, [])
    assert run({"x": 1}, step) == ({"x": 1}, [])
    assert run({"Umsatz": 2, "revenue": 1}, step) == ({"revenue": 2}, [])


# --------------------------------------------------------------------------------------------------
# cast
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "params", "expected"),
    [
        ("1.234,56", {"locale": "de"}, "1234.56"),
        ("-1.234.567,8", {"locale": "de"}, "-1234567.8"),
        ("1234,5", {"locale": "de"}, "1234.5"),
        ("12,5", {"locale": "es"}, "12.5"),
        ("1.234", {"locale": "it"}, "1234"),
        ("1 234,5", {"locale": "fr"}, "1234.5"),
        ("1\u00a0234,5", {"locale": "fr"}, "1234.5"),
        ("1\u202f234\u202f567,25", {"locale": "sv"}, "1234567.25"),
        ("1,234.5", {"locale": "en"}, "1234.5"),
        ("1,234,567", {"locale": "en"}, "1234567"),
        ("1'234.50", {"locale": "ch"}, "1234.50"),
        ("1'234.50", {"locale": "de-CH"}, "1234.50"),
        ("1.234,56", {"locale": "de_DE"}, "1234.56"),
        ("1;234,5", {"decimal_separator": ",", "thousands_separator": ";"}, "1234.5"),
        ("1.234,56", {"locale": "en", "decimal_separator": ",", "thousands_separator": "."}, "1234.56"),
        (" 42 ", {}, "42"),
        ("-0.5", {}, "-0.5"),
        ("+.5", {}, "0.5"),
        ("1e3", {}, "1E+3"),
        ("2,5e-3", {"locale": "de"}, "0.0025"),
        (".5", {}, "0.5"),
    ],
)
def test_cast_number_reads_locale_formatted_numbers_exactly(raw: str, params: dict, expected: str) -> None:
    result = value(raw, "cast", {"to": "number", **params})
    assert type(result) is Decimal and result == Decimal(expected)


@pytest.mark.parametrize(
    ("raw", "params"),
    [
        ("12,5x", {"locale": "de"}),
        ("12,5", {"locale": "en"}),  # a misplaced thousands separator is not silently 125
        ("1,2345.5", {"locale": "en"}),
        ("1.5", {"locale": "de"}),  # "." groups thousands in German
        ("1.5", {"locale": "fr"}),
        ("1,5", {}),  # the default is "." and no thousands separator
        ("1 234", {}),
        ("1_000", {}),
        ("NaN", {}),
        ("-Infinity", {}),
        ("inf", {}),
        ("٣", {}),  # non-ASCII digits
        ("0x10", {}),
        ("1.2.3", {}),
        ("1e99999", {}),
        ("12" * 60, {}),
        ("--1", {}),
        ("1;5", {"decimal_separator": ",", "thousands_separator": ";"}),
    ],
)
def test_cast_number_rejects_what_is_not_a_number(raw: str, params: dict) -> None:
    found = problem(raw, "cast", {"to": "number", **params})
    assert found.field == "x" and found.rule == "cast" and found.value == raw
    assert "number" in found.message


def test_cast_number_message_quotes_the_value() -> None:
    assert problem("12,5x", "cast", {"to": "number", "locale": "de"}).message == "'12,5x' is not a number"


def test_cast_number_keeps_json_numbers_and_reads_floats_exactly() -> None:
    assert value(3, "cast", {"to": "number"}) == Decimal(3)
    assert type(value(3, "cast", {"to": "number"})) is Decimal
    assert value(0.1, "cast", {"to": "number"}) == Decimal("0.1")
    assert value(Decimal("2.50"), "cast", {"to": "number"}) == Decimal("2.50")
    _, problems = run({"x": float("nan")}, ("cast", "x", {"to": "number"}))
    assert problems == [Problem("x", "cast", "nan is not a finite number", "nan")]
    assert "finite" in problem(Decimal("Infinity"), "cast", {"to": "number"}).message
    assert problem(True, "cast", {"to": "number"}).message == "boolean 'true' is not a number"
    assert problem([1], "cast", {"to": "number"}).message == "array '[1]' is not a number"


def test_cast_integer_accepts_integral_values_only() -> None:
    assert value("42", "cast", {"to": "integer"}) == 42
    assert value("-7", "cast", {"to": "integer"}) == -7
    assert value("2.0", "cast", {"to": "integer"}) == 2
    assert value("1.234", "cast", {"to": "integer", "locale": "de"}) == 1234
    assert value("1e3", "cast", {"to": "integer"}) == 1000
    assert value(7, "cast", {"to": "integer"}) == 7
    assert value(2.0, "cast", {"to": "integer"}) == 2
    assert type(value(2.0, "cast", {"to": "integer"})) is int
    assert problem("1.5", "cast", {"to": "integer"}).message == "'1.5' is not a whole number"
    assert problem(2.5, "cast", {"to": "integer"}).message == "'2.5' is not a whole number"
    assert problem("x", "cast", {"to": "integer"}).message == "'x' is not a number"
    assert problem(Decimal("1E+999999"), "cast", {"to": "integer"}).message == "'1E+999999' is too large"


@pytest.mark.parametrize("to", ["string", "integer", "number", "boolean", "date", "timestamp"])
def test_cast_treats_none_and_empty_strings_as_none_and_leaves_missing_fields_missing(to: str) -> None:
    assert value(None, "cast", {"to": to}) is None
    assert value("", "cast", {"to": to}) is None
    assert run({}, ("cast", "x", {"to": to})) == ({}, [])
    if to != "string":
        assert value("   ", "cast", {"to": to}) is None


def test_cast_boolean_with_default_and_custom_values() -> None:
    for raw in ("true", "Yes", "1", "y", "T", "ON", " on ", True, 1):
        assert value(raw, "cast", {"to": "boolean"}) is True, raw
    for raw in ("false", "NO", "0", "n", "f", "Off", False, 0):
        assert value(raw, "cast", {"to": "boolean"}) is False, raw
    assert "not a boolean" in problem("maybe", "cast", {"to": "boolean"}).message
    assert "not a boolean" in problem(2, "cast", {"to": "boolean"}).message
    german = {"to": "boolean", "true_values": ["ja", "wahr"], "false_values": ["nein"]}
    assert value("JA", "cast", german) is True
    assert value("Nein", "cast", german) is False
    assert problem("yes", "cast", german).rule == "cast"


def test_cast_date_reads_iso_8601_by_default() -> None:
    assert value("2024-02-29", "cast", {"to": "date"}) == date(2024, 2, 29)
    assert value(date(2024, 1, 2), "cast", {"to": "date"}) == date(2024, 1, 2)
    assert value(datetime(2024, 1, 2, 23, 0, tzinfo=UTC), "cast", {"to": "date"}) == date(2024, 1, 2)
    assert problem("2023-02-29", "cast", {"to": "date"}).message == (
        "'2023-02-29' is not a date (an ISO 8601 date (YYYY-MM-DD))"
    )
    assert problem("01.02.2024", "cast", {"to": "date"}).rule == "cast"
    assert problem(20240101, "cast", {"to": "date"}).message == "number '20240101' is not a date"


def test_cast_date_tries_the_given_formats_in_order() -> None:
    params = {"to": "date", "formats": ["%d.%m.%Y", "%m/%d/%y", "%d %b %Y", "%Y%m%d"]}
    assert value("01.02.2024", "cast", params) == date(2024, 2, 1)
    assert value("1.2.2024", "cast", params) == date(2024, 2, 1)
    assert value("02/01/24", "cast", params) == date(2024, 2, 1)
    assert value("02/01/99", "cast", params) == date(1999, 2, 1)
    assert value("1 Feb 2024", "cast", params) == date(2024, 2, 1)
    assert value("20240201", "cast", params) == date(2024, 2, 1)
    assert value(" 01.02.2024 ", "cast", params) == date(2024, 2, 1)
    assert problem("31.02.2024", "cast", params).message == "'31.02.2024' is not a date (the formats given)"
    assert problem("2024-02-01", "cast", params).rule == "cast"
    # the same string twice (parsed values are remembered) gives the same answer
    assert value("01.02.2024", "cast", params) == date(2024, 2, 1)


def test_cast_timestamp_reads_iso_8601_and_converts_to_aware_utc() -> None:
    params = {"to": "timestamp"}
    expected = datetime(2024, 7, 1, 10, 0, tzinfo=UTC)
    assert value("2024-07-01T10:00:00Z", "cast", params) == expected
    assert value("2024-07-01T12:00:00+02:00", "cast", params) == expected
    assert value("2024-07-01 10:00", "cast", params) == expected  # no offset: UTC
    assert value("2024-07-01T10:00:00.250Z", "cast", params) == expected.replace(microsecond=250000)
    assert value(datetime(2024, 7, 1, 10, 0), "cast", params) == expected  # naive: taken as UTC
    assert value(date(2024, 7, 1), "cast", params) == datetime(2024, 7, 1, tzinfo=UTC)
    result = value("2024-07-01T12:00:00+02:00", "cast", params)
    assert result.tzinfo is UTC and result.utcoffset().total_seconds() == 0
    assert problem("yesterday", "cast", params).message == "'yesterday' is not a timestamp (an ISO 8601 timestamp)"


def test_cast_timestamp_without_offset_is_taken_in_the_given_time_zone() -> None:
    berlin = {"to": "timestamp", "timezone": "Europe/Berlin"}
    assert value("2024-07-01T12:00:00", "cast", berlin) == datetime(2024, 7, 1, 10, 0, tzinfo=UTC)  # summer time
    assert value("2024-01-15T12:00:00", "cast", berlin) == datetime(2024, 1, 15, 11, 0, tzinfo=UTC)
    assert value("2024-01-15T12:00:00Z", "cast", berlin) == datetime(2024, 1, 15, 12, 0, tzinfo=UTC)  # has offset
    german = {**berlin, "formats": ["%d.%m.%Y %H:%M", "%d.%m.%Y %H:%M:%S,%f", "%d.%m.%Y %H:%M %z"]}
    assert value("15.01.2024 12:00", "cast", german) == datetime(2024, 1, 15, 11, 0, tzinfo=UTC)
    assert value("15.01.2024 12:00:00,5", "cast", german) == datetime(2024, 1, 15, 11, 0, 0, 500000, tzinfo=UTC)
    assert value("15.01.2024 12:00 +0000", "cast", german) == datetime(2024, 1, 15, 12, 0, tzinfo=UTC)
    assert value("15.1.2024 7:05", "cast", german) == datetime(2024, 1, 15, 6, 5, tzinfo=UTC)
    assert problem("15.01.2024 25:00", "cast", german).rule == "cast"


def test_cast_string_writes_values_as_text() -> None:
    assert value(12, "cast", {"to": "string"}) == "12"
    assert value(Decimal("1.50"), "cast", {"to": "string"}) == "1.50"
    assert value(True, "cast", {"to": "string"}) == "true"
    assert value(date(2024, 1, 2), "cast", {"to": "string"}) == "2024-01-02"
    assert value(" a ", "cast", {"to": "string"}) == " a "
    assert value({"b": 1}, "cast", {"to": "string"}) == '{"b":1}'


# --------------------------------------------------------------------------------------------------
# convert_unit
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "source", "target", "expected"),
    [
        (Decimal("1500"), "g", "kg", Decimal("1.5")),
        (1500, "g", "kg", Decimal("1.5")),
        (Decimal("2"), "t", "kg", Decimal("2000")),
        (Decimal("1"), "lb", "kg", Decimal("0.45359237")),
        (Decimal("16"), "oz", "lb", Decimal("1")),
        (Decimal("1"), "mi", "km", Decimal("1.609344")),
        (Decimal("12"), "in", "ft", Decimal("1")),
        (Decimal("250"), "mm", "cm", Decimal("25")),
        (Decimal("1"), "m3", "l", Decimal("1000")),
        (Decimal("1"), "gal", "l", Decimal("3.785411784")),
        (Decimal("500"), "ml", "l", Decimal("0.5")),
        (Decimal("90"), "min", "h", Decimal("1.5")),
        (Decimal("1"), "d", "s", Decimal("86400")),
        (Decimal("1500"), "ms", "s", Decimal("1.5")),
        (Decimal("1"), "kWh", "MJ", Decimal("3.6")),
        (Decimal("2"), "MWh", "kWh", Decimal("2000")),
        (Decimal("3600"), "J", "Wh", Decimal("1")),
        (Decimal("12.5"), "%", "ratio", Decimal("0.125")),
        (Decimal("0.2"), "ratio", "%", Decimal("20")),
        (7, "items", "units", Decimal("7")),
        (Decimal("100"), "C", "F", Decimal("212")),
        (Decimal("41"), "F", "C", Decimal("5")),
        (Decimal("-40"), "C", "F", Decimal("-40")),
        (Decimal("0"), "C", "K", Decimal("273.15")),
        (Decimal("0"), "K", "C", Decimal("-273.15")),
        (Decimal("32"), "°F", "K", Decimal("273.15")),
        (Decimal("5"), "L", "ml", Decimal("5000")),
    ],
)
def test_convert_unit_uses_the_built_in_table_exactly(raw: Any, source: str, target: str, expected: Decimal) -> None:
    result = value(raw, "convert_unit", {"from": source, "to": target})
    assert type(result) is Decimal and result == expected


def test_convert_unit_keeps_floats_floats() -> None:
    assert value(1500.0, "convert_unit", {"from": "g", "to": "kg"}) == pytest.approx(1.5)
    assert value(100.0, "convert_unit", {"from": "C", "to": "F"}) == pytest.approx(212.0)
    assert type(value(1500.0, "convert_unit", {"from": "g", "to": "kg"})) is float


def test_convert_unit_is_refused_between_dimensions() -> None:
    error = refused("convert_unit", {"from": "kg", "to": "m"}, field="weight")
    assert str(error) == "step 1 (convert_unit weight): cannot convert 'kg' (mass) to 'm' (length)"
    assert refused("convert_unit", {"from": "C", "to": "kWh"}).param == "to"
    assert refused("convert_unit", {"from": "%", "to": "items"}).param == "to"


def test_convert_unit_with_an_explicit_factor_and_offset() -> None:
    assert value(Decimal("10"), "convert_unit", {"factor": 0.001}) == Decimal("0.01")
    assert value(Decimal("10"), "convert_unit", {"factor": "1.5", "offset": -2}) == Decimal("13")
    assert value(10, "convert_unit", {"factor": 2, "offset": 1}) == Decimal("21")


def test_convert_unit_reports_non_numbers_and_ignores_none() -> None:
    found = problem("1500", "convert_unit", {"from": "g", "to": "kg"})
    assert found == Problem("x", "convert_unit", "string '1500' is not a number", "1500")
    assert problem(True, "convert_unit", {"from": "g", "to": "kg"}).rule == "convert_unit"
    assert value(None, "convert_unit", {"from": "g", "to": "kg"}) is None
    assert run({}, ("convert_unit", "x", {"from": "g", "to": "kg"})) == ({}, [])


# --------------------------------------------------------------------------------------------------
# trim, case
# --------------------------------------------------------------------------------------------------


def test_trim_strips_strings_and_optionally_collapses_inner_whitespace() -> None:
    assert value("  a  b \t", "trim", {}) == "a  b"
    assert value("  a  \n b \t", "trim", {"collapse": True}) == "a b"
    assert value(5, "trim", {}) == 5
    assert value(None, "trim", {}) is None


def test_case_changes_strings_only() -> None:
    assert value("München", "case", {"to": "upper"}) == "MÜNCHEN"
    assert value("ABC", "case", {"to": "lower"}) == "abc"
    assert value("new york", "case", {"to": "title"}) == "New York"
    assert value(5, "case", {"to": "upper"}) == 5


# --------------------------------------------------------------------------------------------------
# map_codes
# --------------------------------------------------------------------------------------------------

REGIONS = {"N": "north", "S": "south", "1": "one"}


def test_map_codes_maps_known_codes_and_by_default_leaves_unknown_ones() -> None:
    assert value("N", "map_codes", {"mapping": REGIONS}) == "north"
    assert value("X", "map_codes", {"mapping": REGIONS}) == "X"
    assert value("n", "map_codes", {"mapping": REGIONS}) == "n"
    assert value(1, "map_codes", {"mapping": REGIONS}) == "one"  # JSON keys are strings
    assert value(None, "map_codes", {"mapping": REGIONS}) is None


def test_map_codes_default_replaces_unknown_codes() -> None:
    assert value("X", "map_codes", {"mapping": REGIONS, "default": "unknown"}) == "unknown"
    assert value("X", "map_codes", {"mapping": REGIONS, "default": None}) is None
    assert value("S", "map_codes", {"mapping": REGIONS, "default": "unknown"}) == "south"


def test_map_codes_strict_makes_an_unknown_code_a_problem() -> None:
    found = problem("X", "map_codes", {"mapping": REGIONS, "strict": True})
    assert found == Problem("x", "map_codes", "'X' is not a known code", "X")
    assert problem({"a": 1}, "map_codes", {"mapping": REGIONS, "strict": True}).rule == "map_codes"


def test_map_codes_case_insensitive() -> None:
    params = {"mapping": {"N": "north", "süd": "south"}, "case_insensitive": True, "strict": True}
    assert value("n", "map_codes", params) == "north"
    assert value("SÜD", "map_codes", params) == "south"
    assert problem("w", "map_codes", params).rule == "map_codes"


# --------------------------------------------------------------------------------------------------
# default
# --------------------------------------------------------------------------------------------------


def test_default_fills_missing_and_none_and_optionally_empty_strings() -> None:
    assert run({}, ("default", "x", {"value": "web"})) == ({"x": "web"}, [])
    assert value(None, "default", {"value": "web"}) == "web"
    assert value("", "default", {"value": "web"}) == ""
    assert value("", "default", {"value": "web", "empty_strings": True}) == "web"
    assert value("shop", "default", {"value": "web", "empty_strings": True}) == "shop"
    assert value(0, "default", {"value": 5}) == 0


def test_a_mutable_default_is_not_shared_between_records() -> None:
    normalize = compile_steps([Step("default", "tags", {"value": []})])
    first, _ = normalize({})
    first["tags"].append("changed")
    assert normalize({}) == ({"tags": []}, [])


# --------------------------------------------------------------------------------------------------
# derive
# --------------------------------------------------------------------------------------------------


def test_derive_arithmetic_is_exact_decimal() -> None:
    record = {"revenue": Decimal("100.10"), "returns": 2, "unit_price": Decimal("0.05")}
    assert _derived("revenue - returns * unit_price", record) == Decimal("100.00")
    assert derive("0.1 + 0.2") == Decimal("0.3")
    assert derive("7 / 2") == Decimal("3.5")
    assert type(derive("6 / 3")) is Decimal
    assert derive("7 // 2") == 3 and derive("7 % 4") == 3
    assert derive("2 ** 10") == 1024 and derive("2 ** -1") == Decimal("0.5")
    assert derive("-(3 - 5) * +2") == 4
    assert derive("(1 + 2) * 3") == 9
    assert _derived("price * 1.1", {"price": Decimal("10")}) == Decimal("11.0")
    assert _derived("a + b", {"a": "ab", "b": "cd"}) == "abcd"


def test_derive_mixes_floats_ints_and_decimals_without_type_errors() -> None:
    assert _derived("a + b", {"a": 0.1, "b": 0.2}) == Decimal("0.3")
    assert _derived("a * b + c", {"a": Decimal("1.5"), "b": 0.5, "c": 1}) == Decimal("1.75")
    assert _derived("a / b", {"a": 1, "b": 0.5}) == Decimal(2)


def test_derive_with_none_yields_none_not_a_problem() -> None:
    assert _derived("revenue - returns * unit_price", {"revenue": Decimal(1), "returns": None, "unit_price": 2}) is None
    assert _derived("revenue * 2", {}) is None
    assert _derived("-revenue", {}) is None
    assert _derived("revenue > 5", {}) is None
    assert _derived("not revenue", {}) is None
    assert _derived("revenue == None", {}) is True
    assert _derived("revenue is None", {}) is True
    assert _derived("revenue is not None", {"revenue": 0}) is True


def test_derive_comparisons_and_boolean_logic() -> None:
    assert _derived("amount >= 100 and amount < 200", {"amount": 150}) is True
    assert _derived("0 < amount <= 10", {"amount": 11}) is False
    assert _derived("region in ('north', 'south')", {"region": "north"}) is True
    assert _derived("region not in ['north', 'south']", {"region": "east"}) is True
    assert _derived("region in (home, 'south')", {"region": "x", "home": "x"}) is True
    assert _derived("a or b", {"a": None, "b": 3}) == 3
    assert _derived("a != b", {"a": 1, "b": Decimal("1.0")}) is False
    assert _derived("not flag", {"flag": False}) is True


def test_derive_conditional_expressions() -> None:
    expression = "'big' if amount > 100 else 'small'"
    assert _derived(expression, {"amount": 101}) == "big"
    assert _derived(expression, {"amount": 5}) == "small"
    assert _derived(expression, {}) == "small"  # None > 100 is unknown, not true
    assert _derived("1 if True else x / y", {"x": 1, "y": 0}) == 1  # the other branch is not evaluated


@pytest.mark.parametrize(
    ("expression", "record", "expected"),
    [
        ("abs(x)", {"x": Decimal("-2.5")}, Decimal("2.5")),
        ("round(x)", {"x": Decimal("2.5")}, 3),  # half away from zero, not banker's rounding
        ("round(x)", {"x": Decimal("-2.5")}, -3),
        ("round(x, 2)", {"x": Decimal("1.005")}, Decimal("1.01")),
        ("round(x, ndigits=1)", {"x": 0.25}, Decimal("0.3")),
        ("round(x, -2)", {"x": 1250}, 1300),
        ("round(x, 2)", {"x": 7}, 7),
        ("round(x, n)", {"x": Decimal("1.234"), "n": 1}, Decimal("1.2")),
        ("min(a, b, c)", {"a": 3, "b": None, "c": Decimal("1.5")}, Decimal("1.5")),
        ("max(a, b)", {"a": 3, "b": None}, 3),
        ("max(a, b)", {}, None),
        ("coalesce(a, b, 0)", {"b": 2}, 2),
        ("coalesce(a, b, 0)", {}, 0),
        ("lower(s)", {"s": "ABC"}, "abc"),
        ("upper(s)", {"s": "abc"}, "ABC"),
        ("strip(s)", {"s": " a "}, "a"),
        ("concat(a, '-', b, '-', n)", {"a": "x", "n": Decimal("1.5")}, "x--1.5"),
        ("len(s)", {"s": "four"}, 4),
        ("len(s)", {}, None),
        ("int(x)", {"x": Decimal("2.9")}, 2),
        ("int(x)", {"x": " 42 "}, 42),
        ("float(x)", {"x": "2.5"}, Decimal("2.5")),
        ("float(x)", {"x": 2}, Decimal(2)),
        ("str(x)", {"x": Decimal("2.50")}, "2.50"),
        ("str(x)", {"x": None}, None),
        ("year(d) * 100 + month(d)", {"d": date(2024, 3, 9)}, 202403),
        ("day(d)", {"d": "2024-03-09"}, 9),
        ("year(t)", {"t": datetime(2024, 3, 9, tzinfo=UTC)}, 2024),
        ("date(s)", {"s": "2024-03-09"}, date(2024, 3, 9)),
        ("date(s) == d", {"s": "2024-03-09", "d": date(2024, 3, 9)}, True),
        ("field('unit price') * 2", {"unit price": 3}, 6),
        ("upper('x')", {}, "X"),
    ],
)
def test_derive_whitelisted_functions(expression: str, record: dict[str, Any], expected: Any) -> None:
    result = _derived(expression, record)
    assert result == expected and type(result) is type(expected)


@pytest.mark.parametrize(
    ("expression", "record", "message"),
    [
        ("a / b", {"a": 1, "b": 0}, "division by zero in 'a / b'"),
        ("a / b", {"a": Decimal(1), "b": Decimal("0.0")}, "division by zero"),
        ("a // b", {"a": 1, "b": 0}, "division by zero"),
        ("a % b", {"a": 1, "b": 0}, "division by zero"),
        ("b ** -1", {"b": 0}, "division by zero"),
        ("a ** b", {"a": 2, "b": 101}, "exponent"),
        ("a ** 100 ** 1", {"a": 2**2000}, "too large"),
        ("name * n", {"name": "x", "n": 10**9}, "cannot apply '*' to string and number"),
        ("name + 1", {"name": "x"}, "cannot apply '+' to string and number"),
        ("flag + 1", {"flag": True}, "cannot apply '+' to boolean and number"),
        ("a < b", {"a": "x", "b": 1}, "cannot evaluate"),
        ("lower(n)", {"n": 1}, "lower() needs a string, not number"),
        ("int(s)", {"s": "abc"}, "int() cannot read 'abc' as a number"),
        ("date(s)", {"s": "2024-02-30"}, "date() cannot read '2024-02-30' as an ISO date"),
        ("round(x, n)", {"x": 1, "n": 99}, "round() needs a whole number of digits"),
        ("abs(s)", {"s": "x"}, "abs() needs a number"),
        ("round(c)", {"c": Decimal("1E+999999")}, "round() cannot make 1E+999999 an integer"),
        ("round(c, 2)", {"c": Decimal("1E+999999")}, "cannot be represented as a decimal number"),
        ("c * c", {"c": Decimal("1E+999999")}, "the result is too large"),
        ("int(c)", {"c": Decimal("1E+999999")}, "int() cannot convert"),
    ],
)
def test_derive_problems_are_reported_per_record(expression: str, record: dict[str, Any], message: str) -> None:
    normalized, problems = run(record, ("derive", "out", {"expression": expression}))
    assert len(problems) == 1
    assert problems[0].field == "out" and problems[0].rule == "derive"
    assert message in problems[0].message
    assert "out" not in normalized


def test_a_failed_derivation_leaves_an_existing_value_unchanged() -> None:
    normalized, problems = run({"ratio": "keep", "a": 1, "b": 0}, ("derive", "ratio", {"expression": "a / b"}))
    assert normalized["ratio"] == "keep" and problems[0].message == "division by zero in 'a / b'"


@pytest.mark.parametrize(
    ("expression", "construct"),
    [
        ("__import__('os').system('x')", "attribute access"),
        ("__import__('os')", "the function '__import__'"),
        ("().__class__", "attribute access"),
        ("x.__class__", "attribute access"),
        ("open('x')", "the function 'open'"),
        ("exec('1')", "the function 'exec'"),
        ("eval('1')", "the function 'eval'"),
        ("getattr(x, 'y')", "the function 'getattr'"),
        ("[x for x in y]", "comprehensions"),
        ("(x for x in y)", "generator expressions"),
        ("lambda: 1", "lambda"),
        ("a.b", "attribute access"),
        ("a[0]", "subscripts"),
        ("'x' * 10**9", "string repetition"),
        ("10**9 * 'x'", "string repetition"),
        ("2 ** 10 ** 10", "exponents above 100"),
        ("2 ** 101", "exponents above 100"),
        ("x / 0", "division by zero"),
        ("'__class__'", "dunder strings"),
        ("__builtins__", "the name '__builtins__'"),
        ("f'{x}'", "f-strings"),
        ("(x := 1)", "assignment expressions"),
        ("{'a': 1}", "dict literals"),
        ("{1}", "set literals"),
        ("(1, 2)", "tuples are only allowed on the right of 'in'"),
        ("[1]", "lists are only allowed on the right of 'in'"),
        ("x in y", "'in' needs a list or tuple literal"),
        ("x is 1", "'is' with anything but None"),
        ("~x", "the operator '~'"),
        ("x | y", "the operator '|'"),
        ("x << 2", "the operator '<<'"),
        ("min(*x)", "star arguments"),
        ("min(x, key=abs)", "the keyword argument 'key' of min()"),
        ("round(x, digits=2)", "the keyword argument 'digits' of round()"),
        ("concat(**x)", "the keyword argument '**' of concat()"),
        ("abs(1, 2)", "abs() takes 1 arguments; 2"),
        ("round(x, 99)", "round() needs a whole number of digits"),
        ("field(x)", "field() needs a string literal"),
        ("x()", "the function 'x'"),
        ("(lambda: 1)()", "lambda"),
        ("(a or b)(1)", "calling anything but a function name"),
        ("1j", "complex literals"),
        ("b'x'", "bytes literals"),
        ("...", "ellipsis literals"),
        ("yield x", "invalid expression"),
        ("x = 1", "invalid expression"),
        ("import os", "invalid expression"),
        ("'a' + 1", "cannot apply '+' to string and number"),
        ("-(" * 150 + "x" + ")" * 150, "nests deeper"),
        ("x" + " + x" * 600, "longer than"),
    ],
)
def test_hostile_or_unsupported_expressions_are_refused_at_compile_time(expression: str, construct: str) -> None:
    error = refused("derive", {"expression": expression}, field="out")
    assert error.param == "expression"
    assert str(error).startswith("step 1 (derive out): ")
    assert construct in str(error)


def test_derive_sums_of_many_fields_compile() -> None:
    fields = [f"f{i}" for i in range(60)]
    assert _derived(" + ".join(fields), dict.fromkeys(fields, 1)) == 60


def test_derived_fields_are_visible_to_later_steps() -> None:
    record, problems = run(
        {"net": Decimal("100"), "vat_rate": Decimal("19")},
        ("convert_unit", "vat_rate", {"from": "%", "to": "ratio"}),
        ("derive", "gross", {"expression": "round(net * (1 + vat_rate), 2)"}),
        ("derive", "label", {"expression": "concat('gross: ', gross)"}),
    )
    assert problems == []
    assert record["gross"] == Decimal("119.00") and record["label"] == "gross: 119.00"
