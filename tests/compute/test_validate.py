"""Records are validated against their contract version: field attributes (errors), quality rules (with their
severity), uniqueness within the batch, and batch-level rules with thresholds read as the ODCS importer writes them."""

from __future__ import annotations

import enum
import math
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest

from apps.compute.validate import (
    BatchProfile,
    ContractSpecError,
    FieldSpec,
    RecordValidator,
    RuleSpec,
    Violation,
    batch_violations,
    compile_validator,
    is_rejected,
    parse_duration,
    specs_from_dicts,
    specs_from_version,
)

NOW = datetime(2024, 3, 2, 12, tzinfo=UTC)


def one(fields: list[dict[str, Any]], rules: list[dict[str, Any]] | None = None, **kwargs: Any) -> RecordValidator:
    return compile_validator(fields, rules or [], **kwargs)


def rules_of(violations: list[Violation]) -> list[tuple[str, str, str]]:
    return [(v.field, v.rule, v.severity) for v in violations]


# --- types ----------------------------------------------------------------------------------
class Colour(enum.IntEnum):
    RED = 1


TYPE_CASES = [
    ("integer", 5, True),
    ("integer", -(2**70), True),
    ("integer", Colour.RED, True),  # an int subclass is an int
    ("integer", True, False),  # bool is not an integer
    ("integer", 5.0, False),
    ("integer", Decimal(5), False),
    ("integer", "5", False),
    ("number", 5, True),
    ("number", 2.5, True),
    ("number", Decimal("2.50"), True),
    ("number", False, False),  # bool is not a number
    ("number", math.nan, False),
    ("number", math.inf, False),
    ("number", -math.inf, False),
    ("number", Decimal("NaN"), False),
    ("number", Decimal("-Infinity"), False),
    ("number", "2.5", False),
    ("boolean", True, True),
    ("boolean", 1, False),
    ("boolean", "true", False),
    ("string", "x", True),
    ("string", "", True),
    ("string", 5, False),
    ("string", b"x", False),
    ("date", date(2024, 1, 1), True),
    ("date", datetime(2024, 1, 1, tzinfo=UTC), False),  # a datetime is not a date
    ("date", "2024-01-01", False),
    ("timestamp", datetime(2024, 1, 1, 10, tzinfo=UTC), True),
    ("timestamp", datetime(2024, 1, 1, 10, tzinfo=timezone(timedelta(hours=-5))), True),
    ("timestamp", date(2024, 1, 1), False),
    ("timestamp", "2024-01-01T10:00:00Z", False),
    ("object", {"a": 1}, True),
    ("object", [1], False),
    ("array", [1, 2], True),
    ("array", (1, 2), False),
    ("array", {"a": 1}, False),
]


@pytest.mark.parametrize(("logical_type", "value", "valid"), TYPE_CASES)
def test_each_logical_type_accepts_its_python_type_only(logical_type: str, value: Any, valid: bool) -> None:
    validator = one([{"name": "x", "logical_type": logical_type}])
    violations = validator.validate({"x": value})
    if valid:
        assert violations == []
    else:
        assert rules_of(violations) == [("x", "type", "error")]
        assert violations[0].message.startswith("x: ")
        assert is_rejected(violations)


def test_type_messages_name_the_expected_type_and_the_value() -> None:
    validator = one([{"name": "units", "logical_type": "integer"}, {"name": "revenue", "logical_type": "number"}])
    units, revenue = validator.validate({"units": True, "revenue": math.nan})
    assert units.message == "units: expected an integer, got bool True"
    assert units.value == "True"
    assert revenue.message == "revenue: nan is not a finite number"


def test_a_naive_timestamp_is_a_timestamp_without_a_time_zone() -> None:
    validator = one([{"name": "at", "logical_type": "timestamp"}])
    (violation,) = validator.validate({"at": datetime(2024, 1, 1, 10)})
    assert violation.rule == "type"
    assert violation.message == "at: timestamp without a time zone (2024-01-01T10:00:00)"


def test_a_value_of_the_wrong_type_gets_no_further_checks() -> None:
    validator = one([{"name": "code", "logical_type": "string", "pattern": "^A", "max_length": 1}])
    assert rules_of(validator.validate({"code": 12345})) == [("code", "type", "error")]


# --- required, pattern, min/max, allowed values, max length ----------------------------------
def test_required_means_present_and_not_null() -> None:
    validator = one(
        [{"name": "a", "logical_type": "string", "required": True}, {"name": "b", "logical_type": "string"}]
    )
    assert validator.validate({"a": "x"}) == []  # an optional field may be missing
    assert validator.validate({"a": "x", "b": None}) == []
    (missing,) = validator.validate({"b": "y"})
    assert (missing.field, missing.rule, missing.message) == ("a", "required", "a: required but missing")
    (null,) = validator.validate({"a": None})
    assert null.message == "a: required but null"


def test_pattern_is_searched_and_the_message_shows_value_and_pattern() -> None:
    validator = one([{"name": "store_id", "logical_type": "string", "pattern": "^S[0-9]{3}$"}])
    assert validator.validate({"store_id": "S042"}) == []
    (violation,) = validator.validate({"store_id": "S42"})
    assert violation == Violation("store_id", "pattern", "store_id: 'S42' does not match ^S[0-9]{3}$", "'S42'", "error")
    assert str(violation) == "store_id: 'S42' does not match ^S[0-9]{3}$ [pattern, error]"
    unanchored = one([{"name": "note", "logical_type": "string", "pattern": "[0-9]"}])
    assert unanchored.validate({"note": "room 5 please"}) == []  # re.search, not re.match


def test_a_pattern_on_another_type_matches_its_text() -> None:
    validator = one([{"name": "zip", "logical_type": "integer", "pattern": "^[0-9]{5}$"}])
    assert validator.validate({"zip": 10115}) == []
    assert rules_of(validator.validate({"zip": 999})) == [("zip", "pattern", "error")]


@pytest.mark.parametrize(
    ("value", "rule"),
    [(0, None), (10, None), (Decimal("0.0"), None), (5.5, None), (-1, "minimum"), (Decimal("-0.01"), "minimum"),
     (10.000001, "maximum"), (11, "maximum")],
)  # fmt: skip
def test_minimum_and_maximum_are_inclusive(value: Any, rule: str | None) -> None:
    validator = one([{"name": "n", "logical_type": "number", "minimum": 0, "maximum": 10}])
    violations = validator.validate({"n": value})
    assert [v.rule for v in violations] == ([rule] if rule else [])


def test_minimum_and_maximum_messages() -> None:
    validator = one([{"name": "units", "logical_type": "integer", "minimum": 0, "maximum": 100}])
    (low,) = validator.validate({"units": -3})
    (high,) = validator.validate({"units": 101})
    assert low.message == "units: -3 is below the minimum 0"
    assert high.message == "units: 101 is above the maximum 100"


def test_minimum_and_maximum_are_not_used_on_dates_and_strings() -> None:
    validator = one(
        [{"name": "d", "logical_type": "date", "minimum": 5}, {"name": "s", "logical_type": "string", "maximum": 1}]
    )
    assert validator.validate({"d": date(2024, 1, 1), "s": "zzz"}) == []


def test_allowed_values() -> None:
    validator = one([{"name": "region", "logical_type": "string", "allowed_values": ["north", "south"]}])
    assert validator.validate({"region": "north"}) == []
    (violation,) = validator.validate({"region": "up"})
    assert (violation.rule, violation.value) == ("allowed_values", "'up'")
    assert violation.message == "region: 'up' is not one of 'north', 'south'"


def test_allowed_values_compare_as_the_field_type() -> None:
    numbers = one([{"name": "rate", "logical_type": "number", "allowed_values": [0.1, 0.25, 1]}])
    for value in (0.1, Decimal("0.1"), Decimal("0.10"), Decimal("0.25"), 1, Decimal(1), 1.0):
        assert numbers.validate({"rate": value}) == [], value
    assert rules_of(numbers.validate({"rate": Decimal("0.2")})) == [("rate", "allowed_values", "error")]
    dates = one([{"name": "d", "logical_type": "date", "allowed_values": ["2024-01-01"]}])
    assert dates.validate({"d": date(2024, 1, 1)}) == []
    assert len(dates.validate({"d": date(2024, 1, 2)})) == 1
    objects = one([{"name": "o", "logical_type": "object", "allowed_values": [{"a": 1}]}])
    assert objects.validate({"o": {"a": 1}}) == []
    assert len(objects.validate({"o": {"a": 2}})) == 1


def test_max_length_counts_characters_of_strings() -> None:
    validator = one([{"name": "email", "logical_type": "string", "max_length": 5}])
    assert validator.validate({"email": "äöüßé"}) == []
    (violation,) = validator.validate({"email": "a@b.com"})
    assert (violation.rule, violation.message) == ("max_length", "email: 7 characters, more than the maximum length 5")


def test_long_values_are_truncated_to_200_characters() -> None:
    validator = one([{"name": "s", "logical_type": "string", "max_length": 3}])
    (violation,) = validator.validate({"s": "x" * 1000})
    assert len(violation.value) == 200 and violation.value.endswith("…")


# --- unknown fields ---------------------------------------------------------------------------
@pytest.mark.parametrize(("mode", "expected"), [("warn", "warning"), ("reject", "error"), ("ignore", None)])
def test_fields_the_contract_does_not_have(mode: str, expected: str | None) -> None:
    validator = one([{"name": "a", "logical_type": "string"}], extra_fields=mode)
    violations = validator.validate({"a": "x", "colour": "red"})
    if expected is None:
        assert violations == []
    else:
        assert rules_of(violations) == [("colour", "unknown_field", expected)]
        assert violations[0].message == "colour: not a field of the contract"
        assert violations[0].value == "'red'"
        assert is_rejected(violations) is (expected == "error")


def test_warning_about_extra_fields_is_the_default() -> None:
    assert one([{"name": "a"}]).extra_fields == "warn"
    with pytest.raises(ValueError, match="extra_fields"):
        one([{"name": "a"}], extra_fields="drop")


# --- uniqueness within the batch -----------------------------------------------------------------
def test_unique_fields_are_unique_within_the_batch() -> None:
    validator = one([{"name": "email", "logical_type": "string", "unique": True}])
    assert validator.unique_fields == ("email",)
    assert validator.validate({"email": "a@x"}) == []
    assert validator.validate({"email": None}) == []
    assert validator.validate({"email": None}) == []  # nulls are not compared
    assert validator.validate({"email": "b@x"}) == []
    (violation,) = validator.validate({"email": "a@x"})
    assert (violation.field, violation.rule, violation.severity) == ("email", "unique", "error")
    assert violation.message == "email: 'a@x' is not unique: first seen at record 0"
    validator.reset()
    assert validator.validate({"email": "a@x"}) == []  # a new batch


def test_a_rejected_record_does_not_make_a_later_one_a_duplicate() -> None:
    validator = one(
        [{"name": "id", "logical_type": "integer", "unique": True}, {"name": "n", "logical_type": "integer"}]
    )
    assert rules_of(validator.validate({"id": 1, "n": "bad"})) == [("n", "type", "error")]
    assert validator.validate({"id": 1, "n": 2}) == []
    assert [v.rule for v in validator.validate({"id": 1, "n": 3})] == ["unique"]


def test_primary_key_duplicates_name_the_earlier_position() -> None:
    validator = one(
        [
            {"name": "day", "logical_type": "date", "primary_key": True, "primary_key_position": 2},
            {"name": "store", "logical_type": "string", "primary_key": True, "primary_key_position": 1},
            {"name": "revenue", "logical_type": "number"},
        ]
    )
    assert validator.primary_key == ("store", "day")
    assert validator.validate({"store": "S1", "day": date(2024, 1, 1), "revenue": 1}) == []
    assert validator.validate({"store": "S1", "day": date(2024, 1, 2), "revenue": 1}) == []
    assert validator.validate({"store": "S2", "day": date(2024, 1, 1), "revenue": 1}) == []
    (violation,) = validator.validate({"store": "S1", "day": date(2024, 1, 2), "revenue": 2})
    assert (violation.field, violation.rule, violation.severity) == ("store, day", "primary_key", "error")
    assert violation.message == "store, day: duplicate primary key (store='S1', day=2024-01-02): first seen at record 1"


def test_a_primary_key_part_may_not_be_null() -> None:
    validator = one([{"name": "id", "logical_type": "string", "primary_key": True}])
    assert rules_of(validator.validate({"id": None})) == [("id", "primary_key", "error")]
    assert rules_of(validator.validate({})) == [("id", "primary_key", "error")]


def test_key_state_grows_with_distinct_keys_only() -> None:
    validator = one([{"name": "id", "logical_type": "integer", "primary_key": True}])
    for i in range(1000):
        validator.validate({"id": i % 10})
    (tracker,) = validator._trackers
    assert len(tracker[4]) == 10


# --- record-level quality rules ---------------------------------------------------------------
FIELDS = [
    {"name": "store_id", "logical_type": "string"},
    {"name": "region", "logical_type": "string"},
    {"name": "revenue", "logical_type": "number"},
    {"name": "day", "logical_type": "date", "role": "time"},
    {"name": "at", "logical_type": "timestamp"},
    {"name": "email", "logical_type": "string"},
]
GOOD = {"store_id": "S001", "region": "north", "revenue": Decimal(10), "day": date(2024, 3, 1), "email": "a@x"}
RECORD_RULES = [
    ("not_null", "store_id", {}, {"store_id": None}, "store_id: null (quality rule not_null)"),
    ("not_null", "store_id", {}, {"store_id": "missing"}, "store_id: missing (quality rule not_null)"),
    ("allowed_values", "region", {"values": ["north", "south"]}, {"region": "up"},
     "region: 'up' is not one of 'north', 'south' (quality rule allowed_values)"),
    ("range", "revenue", {"min": 0, "max": 1000000}, {"revenue": Decimal(-1)},
     "revenue: -1 is outside the range 0 to 1000000 (quality rule range)"),
    ("range", "revenue", {"min": 0}, {"revenue": Decimal(-1)},
     "revenue: -1 is outside the range 0 to … (quality rule range)"),
    ("range", "revenue", {"max": 50}, {"revenue": 60.5},
     "revenue: 60.5 is outside the range … to 50 (quality rule range)"),
    ("range", "day", {"min": "2024-01-01", "max": "2024-12-31"}, {"day": date(2023, 12, 31)},
     "day: 2023-12-31 is outside the range 2024-01-01 to 2024-12-31 (quality rule range)"),
    ("range", "at", {"min": "2024-01-01T00:00:00Z"}, {"at": datetime(2023, 12, 31, 23, tzinfo=UTC)},
     "at: 2023-12-31T23:00:00+00:00 is outside the range 2024-01-01T00:00:00+00:00 to … (quality rule range)"),
    ("pattern", "email", {"pattern": "^[^@]+@[^@]+$"}, {"email": "nobody"},
     "email: 'nobody' does not match ^[^@]+@[^@]+$ (quality rule pattern)"),
]  # fmt: skip


@pytest.mark.parametrize("severity", ["error", "warning"])
@pytest.mark.parametrize(("kind", "target", "params", "change", "message"), RECORD_RULES)
def test_record_level_quality_rules_have_their_severity(
    severity: str, kind: str, target: str, params: dict[str, Any], change: dict[str, Any], message: str
) -> None:
    validator = one(FIELDS, [{"field": target, "kind": kind, "severity": severity, "params": params}])
    assert validator.problems == {}
    assert validator.validate(dict(GOOD, at=datetime(2024, 6, 1, tzinfo=UTC))) == []
    record = {k: v for k, v in {**GOOD, **change}.items() if v != "missing"}
    (violation,) = validator.validate(record)
    assert (violation.field, violation.rule, violation.severity) == (target, kind, severity)
    assert violation.message == message
    assert is_rejected([violation]) is (severity == "error")


@pytest.mark.parametrize("severity", ["error", "warning"])
def test_a_unique_quality_rule_behaves_like_the_unique_flag(severity: str) -> None:
    validator = one(FIELDS, [{"field": "email", "kind": "unique", "severity": severity}])
    assert validator.unique_fields == ("email",)
    assert validator.validate(GOOD) == []
    (violation,) = validator.validate(GOOD)
    assert (violation.field, violation.rule, violation.severity) == ("email", "unique", severity)
    assert violation.message == "email: 'a@x' is not unique: first seen at record 0 (quality rule unique)"


def test_a_unique_rule_on_a_compound_key_reads_params_properties() -> None:
    rule = {"field": None, "kind": "unique", "params": {"properties": ["store_id", "day"]}}
    validator = one(FIELDS, [rule])
    assert validator.unique_keys == (("store_id", "day"),)
    assert validator.validate(GOOD) == []
    assert validator.validate(dict(GOOD, day=date(2024, 3, 2))) == []
    (violation,) = validator.validate(dict(GOOD, email="other"))
    assert violation.field == "store_id, day"
    assert violation.message.startswith("store_id, day: (store_id='S001', day=2024-03-01) is not unique")


def test_a_dataset_unique_rule_without_properties_means_no_duplicate_records() -> None:
    validator = one(FIELDS, [{"field": None, "kind": "unique", "severity": "warning"}])
    assert validator.validate(GOOD, "h1") == []
    assert validator.validate(dict(GOOD, email="b"), "h2") == []
    (violation,) = validator.validate(GOOD, "h1")
    assert (violation.field, violation.rule, violation.severity) == ("", "unique", "warning")
    assert violation.message == "record: a duplicate of record 0 (quality rule unique)"
    # without digests the validator computes them, as the rule needs them
    validator.reset()
    assert validator.validate(dict(GOOD)) == []
    assert len(validator.validate(dict(GOOD))) == 1


def test_a_not_null_rule_and_required_report_separately() -> None:
    validator = one([{"name": "a", "logical_type": "string", "required": True}], [{"field": "a", "kind": "not_null"}])
    assert [v.rule for v in validator.validate({"a": None})] == ["required", "not_null"]


# --- tolerances: failure levels of record-level rules ------------------------------------------
def test_a_threshold_makes_a_record_rule_a_batch_tolerance_in_rows() -> None:
    rule = {"field": "store_id", "kind": "not_null", "severity": "error", "threshold": 1}
    validator = one(FIELDS, [rule])
    (violation,) = validator.validate(dict(GOOD, store_id=None))
    assert violation.severity == "warning"  # counted for the batch, the record is kept
    assert violation.message == "store_id: null (quality rule not_null: tolerated up to 1 rows of the batch)"
    assert validator.batch_violations(now=NOW) == []
    validator.validate(dict(GOOD, store_id=None))
    (batch,) = validator.batch_violations(now=NOW)
    assert (batch.field, batch.rule, batch.severity, batch.value) == ("store_id", "not_null", "error", "2")
    assert batch.message == "store_id: 2 of 2 records fail the not_null rule (100.00%); failures at most 1 rows"


@pytest.mark.parametrize("severity", ["error", "warning"])
def test_a_threshold_in_percent_when_params_unit_says_so(severity: str) -> None:
    rule = {"field": "region", "kind": "allowed_values", "severity": severity, "threshold": 10,
            "params": {"values": ["north"], "unit": "percent"}}  # fmt: skip
    validator = one(FIELDS, [rule])
    for i in range(10):
        validator.validate(dict(GOOD, region="south" if i == 0 else "north"))
    assert validator.batch_violations(now=NOW) == []  # 10 % of the batch
    validator.validate(dict(GOOD, region="south"))
    (batch,) = validator.batch_violations(now=NOW)
    assert (batch.rule, batch.severity, batch.value) == ("allowed_values", severity, "18.18%")


def test_an_odcs_operator_is_applied_to_the_failure_count() -> None:
    rule = {"field": "email", "kind": "pattern", "params": {"pattern": "@", "operator": "mustBeLessThan", "value": 2}}
    validator = one(FIELDS, [rule])
    (violation,) = validator.validate(dict(GOOD, email="nobody"))
    assert violation.severity == "warning"
    assert "failures must be below 2 rows" in violation.message
    assert validator.batch_violations(now=NOW) == []
    validator.validate(dict(GOOD, email="nobody"))
    (batch,) = validator.batch_violations(now=NOW)
    assert batch.message.endswith("failures must be below 2 rows")


# --- batch-level rules --------------------------------------------------------------------------
def run_batch(rules: list[dict[str, Any]], records: list[dict[str, Any]], *, digests: list[Any] | None = None,
              now: datetime = NOW) -> list[Violation]:  # fmt: skip
    validator = one(FIELDS, rules)
    for i, record in enumerate(records):
        validator.validate(record, None if digests is None else digests[i])
    return validator.batch_violations(now=now)


@pytest.mark.parametrize("severity", ["error", "warning"])
@pytest.mark.parametrize(
    ("params", "count", "fails"),
    [({"min": 1, "max": 3}, 0, True), ({"min": 1, "max": 3}, 1, False), ({"min": 1, "max": 3}, 3, False),
     ({"min": 1, "max": 3}, 4, True), ({"min": 2}, 1, True), ({"max": 2}, 3, True), ({}, 0, True), ({}, 1, False),
     ({"operator": "mustBeGreaterThan", "value": 2}, 2, True), ({"operator": "mustBeBetween", "value": [2, 4]}, 4, False),
     ({"operator": "mustNotBe", "value": 3}, 3, True)],
)  # fmt: skip
def test_row_count(severity: str, params: dict[str, Any], count: int, fails: bool) -> None:
    rule = {"field": None, "kind": "row_count", "severity": severity, "params": params}
    violations = run_batch([rule], [dict(GOOD, email=str(i)) for i in range(count)])
    assert rules_of(violations) == ([("", "row_count", severity)] if fails else [])
    if fails:
        assert violations[0].value == str(count)
        assert violations[0].message.startswith(f"batch: {count} records; the row count must")


def test_row_count_message() -> None:
    (violation,) = run_batch([{"kind": "row_count", "params": {"min": 1, "max": 100000}}], [])
    assert violation.message == "batch: 0 records; the row count must be between 1 and 100000"


@pytest.mark.parametrize("severity", ["error", "warning"])
def test_duplicate_ratio_of_whole_records_by_digest(severity: str) -> None:
    rule = {"field": None, "kind": "duplicate_ratio", "severity": severity, "threshold": 20}
    records = [dict(GOOD, email=str(i)) for i in range(10)]
    assert run_batch([rule], records, digests=[0, 1, 2, 3, 4, 5, 6, 7, 0, 0]) == []  # 2 of 10 = 20 %
    (violation,) = run_batch([rule], records, digests=[0, 1, 2, 3, 4, 5, 6, 0, 0, 0])
    assert (violation.field, violation.rule, violation.severity, violation.value) == (
        "", "duplicate_ratio", severity, "30.00%",
    )  # fmt: skip
    assert violation.message == "batch: 3 duplicate records in 10 records (30.00%); duplicates at most 20%"


def test_duplicate_ratio_without_digests_computes_them() -> None:
    rule = {"field": None, "kind": "duplicate_ratio", "threshold": 0}
    assert run_batch([rule], [dict(GOOD), dict(GOOD, email="x")]) == []
    assert len(run_batch([rule], [dict(GOOD), dict(GOOD)])) == 1


def test_duplicate_ratio_of_a_field_and_in_rows() -> None:
    rule = {"field": "store_id", "kind": "duplicate_ratio", "threshold": 1, "params": {"unit": "rows"}}
    records = [dict(GOOD, email=str(i)) for i in range(3)]
    (violation,) = run_batch([rule], records)  # S001 three times: 2 duplicates
    assert violation.value == "2"
    assert violation.message == "store_id: 2 duplicate keys (store_id) in 3 records (66.67%); duplicates at most 1 rows"
    assert run_batch([rule], records[:2]) == []


@pytest.mark.parametrize("severity", ["error", "warning"])
def test_completeness_threshold_is_the_allowed_percentage_missing(severity: str) -> None:
    # As the ODCS importer writes it: missingValues mustBeLessOrEqualTo 5 (percent) -> threshold 5.
    rule = {"field": "email", "kind": "completeness", "severity": severity, "threshold": 5}
    records = [dict(GOOD, email=None if i < 5 else "a") for i in range(100)]
    assert run_batch([rule], records) == []  # 5 % missing
    records[5]["email"] = None
    (violation,) = run_batch([rule], records)
    assert (violation.field, violation.rule, violation.severity, violation.value) == (
        "email", "completeness", severity, "6.00%",
    )  # fmt: skip
    assert violation.message == "email: 6 of 100 values missing (6.00%); missing values at most 5%"


def test_completeness_without_threshold_allows_nothing_missing_and_absent_counts_as_missing() -> None:
    rule = {"field": "email", "kind": "completeness"}
    assert run_batch([rule], [GOOD]) == []
    assert len(run_batch([rule], [GOOD, {k: v for k, v in GOOD.items() if k != "email"}])) == 1


def test_completeness_in_rows_with_missing_values() -> None:
    rule = {"field": "email", "kind": "completeness", "threshold": 1,
            "params": {"unit": "rows", "missing_values": [None, "", "n/a"]}}  # fmt: skip
    assert run_batch([rule], [dict(GOOD, email="n/a"), GOOD]) == []
    (violation,) = run_batch([rule], [dict(GOOD, email="n/a"), dict(GOOD, email=""), dict(GOOD, email=None)])
    assert violation.value == "3"
    assert violation.message == "email: 3 of 3 values missing (100.00%); missing values at most 1 rows"


def test_completeness_of_the_dataset_counts_every_cell() -> None:
    rule = {"field": None, "kind": "completeness", "threshold": 40}
    # each GOOD record has 5 of the 6 fields
    assert run_batch([rule], [GOOD, GOOD]) == []
    (violation,) = run_batch([rule], [GOOD, {"store_id": "S1"}])
    assert violation.message == "batch: 6 of 12 values missing (50.00%); missing values at most 40%"


@pytest.mark.parametrize("severity", ["error", "warning"])
@pytest.mark.parametrize(
    "params", [{"max_age_hours": 36}, {"max_age_seconds": 36 * 3600}, {"max_age": "PT36H"}, {"max_age": "P1DT12H"}]
)
def test_freshness_of_a_timestamp(severity: str, params: dict[str, Any]) -> None:
    fields = [{"name": "at", "logical_type": "timestamp", "role": "time"}]
    rule = {"field": None, "kind": "freshness", "severity": severity, "params": params}
    validator = one(fields, [rule])
    validator.validate({"at": NOW - timedelta(hours=40)})
    validator.validate({"at": NOW - timedelta(hours=36)})  # the newest counts
    validator.validate({"at": datetime(2030, 1, 1)})  # naive: a type error, not a time
    assert validator.batch_violations(now=NOW) == []
    (violation,) = validator.batch_violations(now=NOW + timedelta(seconds=1))
    assert (violation.field, violation.rule, violation.severity) == ("at", "freshness", severity)
    assert (
        violation.message
        == "at: the newest value 2024-03-01T00:00:00+00:00 is 36.0 h old, more than the 36.0 h allowed"
    )


def test_freshness_of_a_date_counts_from_the_end_of_its_day() -> None:
    rule = {"kind": "freshness", "params": {"max_age_hours": 36}, "severity": "warning"}
    records = [dict(GOOD, day=date(2024, 3, 1)), dict(GOOD, day=date(2024, 2, 1))]
    assert run_batch([rule], records, now=datetime(2024, 3, 3, 12, tzinfo=UTC)) == []  # 36 h after 2024-03-02 00:00
    (violation,) = run_batch([rule], records, now=datetime(2024, 3, 3, 13, tzinfo=UTC))
    assert violation.field == "day" and violation.value == "2024-03-01"
    validator = one(FIELDS, [rule])
    validator.validate(dict(GOOD, day=date(2024, 3, 1)))
    new_york = timezone(timedelta(hours=-5))  # its 2024-03-01 ends at 2024-03-02 05:00 UTC
    assert len(validator.batch_violations(now=datetime(2024, 3, 3, 13, tzinfo=UTC))) == 1
    assert validator.batch_violations(now=datetime(2024, 3, 3, 13, tzinfo=UTC), tz=new_york) == []
    assert len(validator.batch_violations(now=datetime(2024, 3, 3, 17, 1, tzinfo=UTC), tz=new_york)) == 1


def test_freshness_without_time_values_fails() -> None:
    (violation,) = run_batch([{"kind": "freshness", "params": {"max_age_hours": 1}}], [{"store_id": "S1"}])
    assert violation.message == "day: no valid time value in the batch"
    assert violation.severity == "error"


def test_freshness_needs_an_aware_now() -> None:
    with pytest.raises(ValueError, match="aware"):
        run_batch([], [], now=datetime(2024, 1, 1))


def test_iso_8601_durations() -> None:
    assert parse_duration("PT36H") == timedelta(hours=36)
    assert parse_duration("P1DT12H30M") == timedelta(hours=36, minutes=30)
    assert parse_duration("P2W") == timedelta(days=14)
    assert parse_duration("PT0.5S") == timedelta(milliseconds=500)
    for bad in ("P1M", "PT", "P", "36h", ""):
        with pytest.raises(ValueError, match="ISO 8601"):
            parse_duration(bad)


# --- rules that cannot be evaluated; contracts that cannot be compiled -------------------------
@pytest.mark.parametrize(
    ("rule", "why"),
    [({"kind": "sql"}, "unknown kind 'sql'"),
     ({"kind": "not_null"}, "a not_null rule needs a field"),
     ({"kind": "allowed_values", "field": "region"}, "needs params.values, a list"),
     ({"kind": "pattern", "field": "region", "params": {"pattern": "("}}, "not a valid regular expression"),
     ({"kind": "range", "field": "region", "params": {"min": 1}}, "range applies to numbers, dates and timestamps"),
     ({"kind": "range", "field": "revenue", "params": {}}, "needs params.min and/or params.max"),
     ({"kind": "not_null", "field": "nope"}, "no field 'nope' in the contract"),
     ({"kind": "not_null", "field": "region", "severity": "info"}, "unknown severity 'info'"),
     ({"kind": "not_null", "field": "region", "params": {"unit": "kg"}}, "unknown unit 'kg'"),
     ({"kind": "not_null", "field": "region", "params": {"operator": "mustBeSmall", "value": 1}}, "unknown operator"),
     ({"kind": "freshness", "params": {"max_age": "P1M"}}, "months are not supported"),
     ({"kind": "freshness", "field": "region", "params": {"max_age_hours": 1}}, "not a date or timestamp"),
     ({"kind": "unique", "params": {"properties": ["nope"]}}, "params.properties names no field")],
)  # fmt: skip
def test_a_rule_that_cannot_be_evaluated_is_reported_every_batch(rule: dict[str, Any], why: str) -> None:
    rule = {"severity": "warning", **rule}
    validator = one(FIELDS, [rule])
    assert why in next(iter(validator.problems.values()))
    assert validator.validate(GOOD) == []  # the other checks go on
    (violation,) = validator.batch_violations(now=NOW)
    assert violation.rule == rule["kind"]
    assert violation.message.startswith(f"{rule['kind']} rule cannot be evaluated: ")
    assert why in violation.message
    assert violation.severity == ("error" if rule["severity"] == "info" else "warning")


def test_fields_that_cannot_be_compiled_raise() -> None:
    with pytest.raises(ContractSpecError, match="invalid pattern"):
        one([{"name": "a", "logical_type": "string", "pattern": "("}])
    with pytest.raises(ContractSpecError, match="unknown logical type 'time'"):
        one([{"name": "a", "logical_type": "time"}])
    with pytest.raises(ContractSpecError, match="appears twice"):
        one([{"name": "a"}, {"name": "a"}])


def test_a_rule_the_validator_did_not_count_is_not_measured() -> None:
    validator = one(FIELDS)
    validator.validate(GOOD)
    rule = RuleSpec("not_null", "store_id", threshold=1)
    (violation,) = batch_violations(validator.profile, [rule], now=NOW)
    assert "not measured" in violation.message
    assert batch_violations(validator.profile, [RuleSpec("row_count", params={"min": 1})], now=NOW) == []


# --- profiles and specs ---------------------------------------------------------------------------
def test_the_profile_counts_records_nulls_duplicates_and_the_newest_time() -> None:
    validator = one(FIELDS)
    validator.validate(GOOD, "a")
    validator.validate(dict(GOOD, email=None, day=date(2024, 3, 5)), "b")
    validator.validate(GOOD, "a")
    validator.validate(dict(GOOD, day=datetime(2030, 1, 1, tzinfo=UTC)), "c")  # a datetime is not a date
    profile = validator.reset()
    assert profile.count == 4
    assert profile.digested == 4 and profile.duplicate_records == 1
    assert profile.non_null("email") == 3 and profile.nulls("at") == 4
    assert profile.non_null_counts["store_id"] == 4
    assert profile.newest == {"day": date(2024, 3, 5)}
    assert validator.profile.count == 0


def test_a_standalone_profile_evaluates_batch_rules() -> None:
    profile = BatchProfile(FIELDS)
    for i in range(10):
        profile.add(dict(GOOD, email=None if i < 3 else "x", day=date(2024, 3, i + 1)), digest=i % 8)
    assert (profile.count, profile.nulls("email"), profile.duplicate_records) == (10, 3, 2)
    assert profile.newest == {"day": date(2024, 3, 10)}
    rules = [
        {"kind": "row_count", "params": {"max": 5}, "severity": "warning"},
        {"kind": "completeness", "field": "email", "threshold": 30},
        {"kind": "duplicate_ratio", "threshold": 10},
        {"kind": "freshness", "params": {"max_age_hours": 12}},
        {"kind": "not_null", "field": "email", "threshold": 5},  # only a validator counts its failures
    ]
    violations = batch_violations(profile, rules, now=datetime(2024, 3, 11, 13, tzinfo=UTC))
    assert [(v.rule, v.value) for v in violations] == [("row_count", "10"), ("duplicate_ratio", "20.00%"),
                                                       ("freshness", "2024-03-10"), ("not_null", "")]  # fmt: skip
    assert "not measured" in violations[-1].message
    profile.duplicates = 0  # counted by the caller, over every record
    assert [v.rule for v in batch_violations(profile, rules[2:3], now=NOW)] == []


def test_specs_from_dicts_and_rows_are_equal() -> None:
    fields, rules = specs_from_dicts(
        [{"name": "a", "logical_type": "integer", "allowed_values": [1, 2], "minimum": None}],
        [{"field": "a", "kind": "range", "params": {"min": 0}}],
    )
    assert fields == [FieldSpec("a", "integer", allowed_values=(1, 2))]
    assert rules == [RuleSpec("range", "a", params={"min": 0})]
    assert hash(rules[0]) == hash(RuleSpec("range", "a", params={"min": 0}, id=7))


def test_specs_from_a_version_take_field_names_without_a_query_per_rule() -> None:
    field_row = SimpleNamespace(
        pk=3, name="revenue", logical_type="number", required=True, unique=False, primary_key=False,
        primary_key_position=None, pattern="", minimum=0.0, maximum=None, allowed_values=[], max_length=None,
        classification="internal", role="measure",
    )  # fmt: skip

    class Rule:
        pk, field_id, kind, severity, threshold, params = 9, 3, "range", "warning", None, {"max": 10}

        @property
        def field(self) -> Any:
            raise AssertionError("a query per rule")

    dataset_rule = SimpleNamespace(pk=10, field_id=None, kind="row_count", severity="error", threshold=None, params={})
    version = SimpleNamespace(
        fields=SimpleNamespace(all=lambda: [field_row]),
        quality_rules=SimpleNamespace(all=lambda: [Rule(), dataset_rule]),
    )
    fields, rules = specs_from_version(version)
    assert fields == [FieldSpec("revenue", "number", required=True, minimum=0.0, role="measure")]
    assert rules == [RuleSpec("range", "revenue", "warning", params={"max": 10}), RuleSpec("row_count")]
    assert rules[0].id == 9
    validator = compile_validator(fields, rules)
    assert [v.rule for v in validator.validate({"revenue": 11})] == ["range"]


@pytest.mark.django_db
def test_specs_from_a_saved_version(django_assert_num_queries: Any) -> None:
    from apps.host.models import ContractField, QualityRule
    from tests.factories import ContractVersionFactory

    version = ContractVersionFactory()
    store = ContractField.objects.create(version=version, position=0, name="store_id", logical_type="string",
                                         required=True, pattern="^S[0-9]{3}$")  # fmt: skip
    ContractField.objects.create(version=version, position=1, name="revenue", logical_type="number", minimum=0)
    QualityRule.objects.create(version=version, field=store, kind="not_null", severity="warning")
    QualityRule.objects.create(version=version, kind="row_count", params={"min": 1})
    with django_assert_num_queries(2):
        fields, rules = specs_from_version(version)
    assert [f.name for f in fields] == ["store_id", "revenue"]
    assert [(r.kind, r.field, r.severity) for r in rules] == [
        ("not_null", "store_id", "warning"),
        ("row_count", None, "error"),
    ]
    validator = compile_validator(fields, rules)
    assert rules_of(validator.validate({"store_id": "S42", "revenue": -1})) == [
        ("store_id", "pattern", "error"),
        ("revenue", "minimum", "error"),
    ]


def test_the_demo_contract_compiles_without_problems() -> None:
    from apps.host.demo import STORE_SALES_FIELDS, STORE_SALES_RULES

    validator = compile_validator(STORE_SALES_FIELDS, STORE_SALES_RULES)
    assert validator.problems == {}
    assert validator.time_field == "sale_date"
    record = {"sale_date": date(2024, 3, 1), "store_id": "S042", "region": "north", "channel": "store",
              "revenue": Decimal("12.50"), "units": 3, "returns": 0, "manager_email": "m@example.com"}  # fmt: skip
    assert validator.validate(record) == []
    assert validator.batch_violations(now=datetime(2024, 3, 2, 6, tzinfo=UTC)) == []


# --- the per-field checks, unrolled ---------------------------------------------------------
# Every constraint a field can have, on every type: the unrolled function (validate.py, _unrolled_fields) skips a
# field's check where the check's own inline test passes, so it must report exactly what calling each check does.
# For each inline test there is a value that only it finds wrong (so a test that passes too much fails here).
UNROLLED_FIELDS = [
    {"name": "code", "logical_type": "string", "required": True, "pattern": "^[A-Z]{2}[0-9]$", "max_length": 3,
     "allowed_values": ["AB1", "CD2", "abc"]},
    {"name": "label", "logical_type": "string"},
    {"name": "count", "logical_type": "integer", "minimum": 0, "maximum": 10, "allowed_values": [1, 2, 3, 11]},
    {"name": "amount", "logical_type": "number", "minimum": -1.5, "pattern": "^[0-9.-]+$"},
    {"name": "flag", "logical_type": "boolean", "allowed_values": [True]},
    {"name": "day", "logical_type": "date", "pattern": "^2024-"},
    {"name": "at", "logical_type": "timestamp"},
    {"name": "blob", "logical_type": "object"},
    {"name": "tags", "logical_type": "array"},
    {"name": "note", "logical_type": "string", "primary_key": True},
    {"name": "size", "logical_type": "number"},
    {"name": "word", "logical_type": "string", "max_length": 3},
    {"name": "score", "logical_type": "integer"},
]  # fmt: skip
UNROLLED_RULES = [
    {"field": "label", "kind": "allowed_values", "severity": "warning", "params": {"values": ["x", "y"]}},
    {"field": "label", "kind": "pattern", "severity": "error", "params": {"pattern": "^[a-x]$"}},
    {"field": "count", "kind": "range", "severity": "error", "params": {"min": 2}},
    {"field": "score", "kind": "range", "severity": "error", "params": {"min": 2, "max": 9}},
    {"field": "amount", "kind": "range", "severity": "warning", "params": {"max": 1000}},
    {"field": "size", "kind": "range", "severity": "warning", "params": {"max": 100}, "threshold": 10},
    {"field": "day", "kind": "range", "severity": "error", "params": {"min": "2024-01-01", "max": "2024-12-31"}},
    {"field": "day", "kind": "pattern", "severity": "warning", "params": {"pattern": "-01$"}},
    {"field": "note", "kind": "not_null", "severity": "warning"},
    {"field": "note", "kind": "completeness", "severity": "warning", "threshold": 50,
     "params": {"missing_values": ["n/a"]}},
]  # fmt: skip
UNROLLED_VALUES = [
    None, "", "AB1", "AB12", "abc", "wxyz", "a", "y", 10, 200, Decimal("1E+2"), date(2024, 5, 5), "x", "zz", "n/a", 0, 1, 3, 11, -1, True, False, 2.5, math.nan, math.inf,
    Decimal("1.0"), Decimal("-2"), Decimal("NaN"), Decimal("sNaN"), Decimal("Infinity"), Decimal("200"),
    date(2024, 1, 1), date(2023, 5, 1), datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 1, 1),
    {"a": 1}, [1, 2], Colour.RED,
]  # fmt: skip


def test_the_unrolled_field_checks_report_what_each_check_reports() -> None:
    """For every value in every field (alone, the others absent), the unrolled function reports the same
    violations, counts the same nulls and the same tolerated failures as the checks called one by one."""
    for field in UNROLLED_FIELDS:
        for value in UNROLLED_VALUES:
            record = {field["name"]: value}
            unrolled, looped = one(UNROLLED_FIELDS, UNROLLED_RULES), one(UNROLLED_FIELDS, UNROLLED_RULES)
            out_unrolled: list[Violation] = []
            unrolled._check_fields(record, out_unrolled, unrolled.profile._nulls)
            out_looped: list[Violation] = []
            for i, name, check, on_null in looped._plan:
                v = record.get(name)
                if v is None:
                    looped.profile._nulls[i] += 1
                    if on_null is not None:
                        on_null(record, out_looped)
                else:
                    check(v, out_looped)
            assert out_unrolled == out_looped, (field["name"], value)
            assert unrolled.profile._nulls == looped.profile._nulls
            assert dict(unrolled.profile.failures) == dict(looped.profile.failures)


def test_the_unrolled_field_checks_inline_tests_for_the_checks_that_have_them() -> None:
    validator = one(UNROLLED_FIELDS, UNROLLED_RULES)
    clean = {name: getattr(check, "clean", None) for _, name, check, _ in validator._plan}
    assert clean["code"] is not None and len(clean["code"]) == 4  # the type, pattern, allowed values, length
    assert clean["note"] is None  # completeness with missing values counts a failure: it is always called
    assert validator.validate({"code": "AB1", "count": 3, "amount": Decimal("1.5"), "note": "n"}) == []


def test_field_names_and_values_of_a_contract_are_never_code() -> None:
    """The unrolled function names fields and constants by index: a field name or a listed value that looks like
    Python is data."""
    name = 'x"), __import__("os").system("false"), ("'
    validator = one([{"name": name, "logical_type": "string", "required": True, "allowed_values": ['")or("']}])
    assert validator.validate({name: '")or("'}) == []
    assert rules_of(validator.validate({name: "other"})) == [(name, "allowed_values", "error")]
    assert rules_of(validator.validate({})) == [(name, "required", "error")]
