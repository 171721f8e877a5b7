"""Schema compatibility follows Confluent Schema Registry's JSON Schema semantics (STANDARDS.md).

BACKWARD: the candidate reads data written with the registered version. FORWARD: the registered
version reads data written with the candidate. FULL: both. *_TRANSITIVE: against every version.
The content model (open / closed / partially open) decides whether adding or removing a property
is safe; `lenient=True` is the explicit per-subject policy accepting optional-field churn.
"""

from __future__ import annotations

import pytest

from apps.utilities.compatibility import Change, CompatibilityMode, Incompatibility, check, diff

M = CompatibilityMode
ALL_MODES = list(CompatibilityMode)

STRING = {"type": "string"}
NUMBER = {"type": "number"}
INTEGER = {"type": "integer"}


def record(properties: dict, *, required: tuple[str, ...] = (), model: str = "open", **extra) -> dict:
    """An object schema; model "closed" sets additionalProperties to false."""
    schema: dict = {"type": "object", "properties": properties, **extra}
    if required:
        schema["required"] = list(required)
    if model == "closed":
        schema["additionalProperties"] = False
    return schema


def kinds(candidate: dict, registered: dict, mode: CompatibilityMode | str, *, lenient: bool = False) -> list[str]:
    """The incompatibility kinds when `candidate` follows the single registered version 1."""
    return [i.kind for i in check(candidate, [(1, registered)], mode, lenient=lenient)]


# --------------------------------------------------------------------------------------------------
# The rule table: every mode, for the six basic changes, in open and closed content models
# --------------------------------------------------------------------------------------------------


def add_optional_field(model: str) -> tuple[dict, dict]:
    return record({"id": STRING}, model=model), record({"id": STRING, "discount": NUMBER}, model=model)


def add_required_field(model: str) -> tuple[dict, dict]:
    new = record({"id": STRING, "discount": NUMBER}, required=("discount",), model=model)
    return record({"id": STRING}, model=model), new


def add_required_field_with_default(model: str) -> tuple[dict, dict]:
    discount = {"type": "number", "default": 0}
    new = record({"id": STRING, "discount": discount}, required=("discount",), model=model)
    return record({"id": STRING}, model=model), new


def remove_optional_field(model: str) -> tuple[dict, dict]:
    return record({"id": STRING, "discount": NUMBER}, model=model), record({"id": STRING}, model=model)


def widen_integer_to_number(model: str) -> tuple[dict, dict]:
    return record({"amount": INTEGER}, model=model), record({"amount": NUMBER}, model=model)


def narrow_number_to_integer(model: str) -> tuple[dict, dict]:
    return record({"amount": NUMBER}, model=model), record({"amount": INTEGER}, model=model)


OPEN_ADD = "OPTIONAL_PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL"
OPEN_ADD_REQUIRED = "REQUIRED_PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL"
OPEN_ADD_DEFAULT = "REQUIRED_PROPERTY_WITH_DEFAULT_ADDED_TO_OPEN_CONTENT_MODEL"
UNOPEN_ADD_REQUIRED = "REQUIRED_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL"
CLOSED_REMOVE = "PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL"
NARROWED = "TYPE_NARROWED"

# change, content model, BACKWARD kinds, FORWARD kinds. FULL = BACKWARD then FORWARD; transitive
# modes equal their base mode when only one version is registered; NONE accepts everything.
RULES = [
    (add_optional_field, "open", [OPEN_ADD], []),
    (add_optional_field, "closed", [], [CLOSED_REMOVE]),
    (add_required_field, "open", [OPEN_ADD_REQUIRED], []),
    (add_required_field, "closed", [UNOPEN_ADD_REQUIRED], [CLOSED_REMOVE]),
    (add_required_field_with_default, "open", [OPEN_ADD_DEFAULT], []),
    (add_required_field_with_default, "closed", [], [CLOSED_REMOVE]),
    (remove_optional_field, "open", [], [OPEN_ADD]),
    (remove_optional_field, "closed", [CLOSED_REMOVE], []),
    (widen_integer_to_number, "open", [], [NARROWED]),
    (widen_integer_to_number, "closed", [], [NARROWED]),
    (narrow_number_to_integer, "open", [NARROWED], []),
    (narrow_number_to_integer, "closed", [NARROWED], []),
]


def expected_for(mode: CompatibilityMode, backward: list[str], forward: list[str]) -> list[str]:
    return {
        M.NONE: [],
        M.BACKWARD: backward,
        M.BACKWARD_TRANSITIVE: backward,
        M.FORWARD: forward,
        M.FORWARD_TRANSITIVE: forward,
        M.FULL: backward + forward,
        M.FULL_TRANSITIVE: backward + forward,
    }[mode]


@pytest.mark.parametrize(
    ("change", "model", "mode", "expected"),
    [
        pytest.param(change, model, mode, expected_for(mode, backward, forward), id=f"{mode}-{change.__name__}-{model}")
        for change, model, backward, forward in RULES
        for mode in ALL_MODES
    ],
)
def test_each_mode_judges_the_basic_changes_by_content_model(change, model, mode, expected):
    old, new = change(model)
    assert kinds(new, old, mode) == expected


def test_full_compatibility_in_the_strict_policy_forbids_adding_an_optional_field_in_either_model():
    # The price of the strict reading: an open model breaks BACKWARD, a closed one breaks FORWARD.
    for model in ("open", "closed"):
        old, new = add_optional_field(model)
        assert kinds(new, old, M.FULL) != []


def test_backward_allows_removing_a_property_from_an_open_model():
    old, new = remove_optional_field("open")
    assert check(new, [(3, old)], M.BACKWARD) == []


def test_backward_rejects_removing_a_property_from_a_closed_model_and_says_why():
    old, new = remove_optional_field("closed")
    assert check(new, [(3, old)], M.BACKWARD) == [
        Incompatibility(
            kind=CLOSED_REMOVE,
            path="#/properties/discount",
            message="field `discount` removed: the new schema has a closed content model, so it rejects "
            "`discount`, which version 3 allows.",
            version=3,
        )
    ]


def test_backward_rejects_adding_an_optional_property_to_an_open_model_because_old_data_may_hold_it():
    old, new = add_optional_field("open")
    [problem] = check(new, [(3, old)], M.BACKWARD)
    assert problem.kind == OPEN_ADD
    assert problem.path == "#/properties/discount"
    assert problem.message == (
        "field `discount` added (optional): version 3 has an open content model, so its documents may "
        "already hold `discount` with any value."
    )


def test_removing_a_required_field_from_an_open_model_is_backward_but_not_forward_compatible():
    old = record({"id": STRING, "sku": STRING}, required=("sku",))
    new = record({"id": STRING})
    assert kinds(new, old, M.BACKWARD) == []
    assert kinds(new, old, M.FORWARD) == [OPEN_ADD_REQUIRED]


# --------------------------------------------------------------------------------------------------
# Transitive modes check every registered version
# --------------------------------------------------------------------------------------------------

# v2 was registered while the subject was NONE; the candidate matches v2 but not v1.
NARROWED_AFTER_V1 = [(1, record({"amount": NUMBER})), (2, record({"amount": INTEGER}))]
WIDENED_AFTER_V1 = [(1, record({"amount": INTEGER})), (2, record({"amount": NUMBER}))]


@pytest.mark.parametrize(
    ("history", "candidate", "mode", "expected"),
    [
        (NARROWED_AFTER_V1, record({"amount": INTEGER}), M.BACKWARD, []),
        (NARROWED_AFTER_V1, record({"amount": INTEGER}), M.BACKWARD_TRANSITIVE, [(1, NARROWED)]),
        (NARROWED_AFTER_V1, record({"amount": INTEGER}), M.FULL, []),
        (NARROWED_AFTER_V1, record({"amount": INTEGER}), M.FULL_TRANSITIVE, [(1, NARROWED)]),
        (NARROWED_AFTER_V1, record({"amount": INTEGER}), M.FORWARD_TRANSITIVE, []),
        (WIDENED_AFTER_V1, record({"amount": NUMBER}), M.FORWARD, []),
        (WIDENED_AFTER_V1, record({"amount": NUMBER}), M.FORWARD_TRANSITIVE, [(1, NARROWED)]),
        (WIDENED_AFTER_V1, record({"amount": NUMBER}), M.FULL_TRANSITIVE, [(1, NARROWED)]),
        (WIDENED_AFTER_V1, record({"amount": NUMBER}), M.BACKWARD_TRANSITIVE, []),
    ],
    ids=lambda value: value.value if isinstance(value, CompatibilityMode) else None,
)
def test_transitive_modes_check_against_all_earlier_versions(history, candidate, mode, expected):
    assert [(i.version, i.kind) for i in check(candidate, history, mode)] == expected


def test_transitive_check_reports_every_breaking_version_oldest_first():
    history = [
        (1, record({"status": {"enum": ["a"]}})),
        (2, record({"status": {"enum": ["a", "b"]}})),
        (3, record({"status": {"enum": ["a", "b", "c"]}})),
    ]
    candidate = record({"status": {"enum": ["a"]}})
    found = check(candidate, history, M.BACKWARD_TRANSITIVE)
    assert [(i.version, i.kind, i.path) for i in found] == [
        (2, "ENUM_ARRAY_NARROWED", "#/properties/status/enum"),
        (3, "ENUM_ARRAY_NARROWED", "#/properties/status/enum"),
    ]
    assert check(candidate, history, M.BACKWARD)[0].version == 3


# --------------------------------------------------------------------------------------------------
# NONE, empty history, mode names
# --------------------------------------------------------------------------------------------------


def test_none_accepts_any_change():
    assert check(record({"amount": STRING}), [(1, record({"amount": INTEGER}, required=("amount",)))], M.NONE) == []
    assert kinds(record({"amount": STRING}), record({"amount": INTEGER}), M.BACKWARD) == ["TYPE_CHANGED"]


@pytest.mark.parametrize("mode", ALL_MODES)
def test_a_subject_without_versions_accepts_any_first_schema(mode):
    assert check(record({"amount": INTEGER}), [], mode) == []


def test_modes_may_be_given_by_name():
    old, new = narrow_number_to_integer("open")
    assert kinds(new, old, "BACKWARD") == [NARROWED]
    with pytest.raises(ValueError, match="SIDEWAYS"):
        check(new, [(1, old)], "SIDEWAYS")


def test_modes_are_the_confluent_names():
    assert [m.value for m in CompatibilityMode] == [
        "NONE",
        "BACKWARD",
        "BACKWARD_TRANSITIVE",
        "FORWARD",
        "FORWARD_TRANSITIVE",
        "FULL",
        "FULL_TRANSITIVE",
    ]


# --------------------------------------------------------------------------------------------------
# The lenient policy: optional fields may come and go whatever the content model
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "model", "mode", "strict", "lenient"),
    [
        (add_optional_field, "open", M.BACKWARD, [OPEN_ADD], []),
        (add_optional_field, "closed", M.FORWARD, [CLOSED_REMOVE], []),
        (add_optional_field, "open", M.FULL, [OPEN_ADD], []),
        (add_optional_field, "closed", M.FULL_TRANSITIVE, [CLOSED_REMOVE], []),
        (remove_optional_field, "closed", M.BACKWARD, [CLOSED_REMOVE], []),
        (remove_optional_field, "open", M.FORWARD, [OPEN_ADD], []),
        (remove_optional_field, "closed", M.FULL, [CLOSED_REMOVE], []),
        (add_required_field_with_default, "open", M.BACKWARD, [OPEN_ADD_DEFAULT], []),
        # What lenient does not forgive: a requirement old data cannot meet, a narrowed type, and a
        # closed old reader meeting a property that new data always carries.
        (add_required_field, "open", M.BACKWARD, [OPEN_ADD_REQUIRED], [OPEN_ADD_REQUIRED]),
        (add_required_field, "closed", M.BACKWARD, [UNOPEN_ADD_REQUIRED], [UNOPEN_ADD_REQUIRED]),
        (add_required_field_with_default, "closed", M.FULL, [CLOSED_REMOVE], [CLOSED_REMOVE]),
        (narrow_number_to_integer, "open", M.BACKWARD, [NARROWED], [NARROWED]),
    ],
    ids=lambda value: value.__name__ if callable(value) else None,
)
def test_lenient_policy_accepts_optional_fields_coming_and_going(change, model, mode, strict, lenient):
    old, new = change(model)
    assert kinds(new, old, mode) == strict
    assert kinds(new, old, mode, lenient=True) == lenient


def test_lenient_policy_still_rejects_removing_a_required_field_from_a_closed_model():
    old = record({"id": STRING, "sku": STRING}, required=("sku",), model="closed")
    new = record({"id": STRING}, model="closed")
    assert kinds(new, old, M.BACKWARD, lenient=True) == [CLOSED_REMOVE]


def test_lenient_policy_still_rejects_closing_an_open_model():
    old, new = record({"id": STRING}), record({"id": STRING}, model="closed")
    assert kinds(new, old, M.BACKWARD, lenient=True) == ["ADDITIONAL_PROPERTIES_REMOVED"]


# --------------------------------------------------------------------------------------------------
# Types, requiredness, enum, bounds, pattern, format
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new", "backward", "forward"),
    [
        pytest.param(STRING, {"type": ["string", "null"]}, [], [NARROWED], id="string gains null"),
        pytest.param(STRING, INTEGER, ["TYPE_CHANGED"], ["TYPE_CHANGED"], id="string to integer"),
        pytest.param({}, STRING, [NARROWED], [], id="any type to string"),
        pytest.param(
            {"type": ["integer", "null"]}, {"type": ["number", "null"]}, [], [NARROWED], id="nullable integer widens"
        ),
        pytest.param({"type": ["string", "integer"]}, {"type": ["integer", "string"]}, [], [], id="same types"),
    ],
)
def test_a_reader_must_accept_every_type_the_writer_allows(old, new, backward, forward):
    assert kinds(record({"x": new}), record({"x": old}), M.BACKWARD) == backward
    assert kinds(record({"x": new}), record({"x": old}), M.FORWARD) == forward


@pytest.mark.parametrize(
    ("old", "new", "backward", "forward"),
    [
        pytest.param(
            record({"email": STRING}),
            record({"email": STRING}, required=("email",)),
            ["REQUIRED_ATTRIBUTE_ADDED"],
            [],
            id="becomes required",
        ),
        pytest.param(
            record({"email": STRING}),
            record({"email": {"type": "string", "default": ""}}, required=("email",)),
            [],
            [],
            id="becomes required with a default",
        ),
        pytest.param(
            record({"email": STRING}, required=("email",)),
            record({"email": STRING}),
            [],
            ["REQUIRED_ATTRIBUTE_ADDED"],
            id="no longer required",
        ),
    ],
)
def test_adding_to_required_needs_a_default_and_removing_from_it_is_fine(old, new, backward, forward):
    assert [(i.kind, i.path) for i in check(new, [(1, old)], M.BACKWARD)] == [
        (k, "#/properties/email") for k in backward
    ]
    assert kinds(new, old, M.FORWARD) == forward


@pytest.mark.parametrize(
    ("old", "new", "backward", "forward"),
    [
        pytest.param(["open"], ["open", "closed"], [], ["ENUM_ARRAY_NARROWED"], id="gains a value"),
        pytest.param(["open", "closed"], ["open"], ["ENUM_ARRAY_NARROWED"], [], id="loses a value"),
        pytest.param(["open"], ["closed"], ["ENUM_ARRAY_CHANGED"], ["ENUM_ARRAY_CHANGED"], id="swaps a value"),
        pytest.param(["open", "closed"], ["closed", "open"], [], [], id="reordered"),
        pytest.param([1, 2], [1.0, 2], [], [], id="1 and 1.0 are the same JSON value"),
        pytest.param(None, ["open"], ["ENUM_ARRAY_ADDED"], [], id="enum added"),
        pytest.param(["open"], None, [], ["ENUM_ARRAY_ADDED"], id="enum removed"),
    ],
)
def test_an_enum_may_gain_values_but_not_lose_them(old, new, backward, forward):
    def status(values):
        return record({"status": {"type": ["string", "integer", "number"]} | ({"enum": values} if values else {})})

    assert [(i.kind, i.path) for i in check(status(new), [(1, status(old))], M.BACKWARD)] == [
        (k, "#/properties/status/enum") for k in backward
    ]
    assert kinds(status(new), status(old), M.FORWARD) == forward


@pytest.mark.parametrize(
    ("old", "new", "backward"),
    [
        pytest.param({"const": "a"}, {"const": "b"}, ["ENUM_ARRAY_CHANGED"], id="const changed"),
        pytest.param({"const": "a"}, {"enum": ["a", "b"]}, [], id="const opened to an enum"),
        pytest.param({"const": "a"}, {}, [], id="const removed"),
        pytest.param({}, {"const": "a"}, ["ENUM_ARRAY_ADDED"], id="const added"),
    ],
)
def test_const_is_a_single_allowed_value(old, new, backward):
    assert kinds(record({"kind": new}), record({"kind": old}), M.BACKWARD) == backward


@pytest.mark.parametrize(
    ("keyword", "old", "new", "backward"),
    [
        ("maxLength", 50, 80, []),
        ("maxLength", 50, 20, ["MAX_LENGTH_DECREASED"]),
        ("maxLength", None, 20, ["MAX_LENGTH_ADDED"]),
        ("maxLength", 50, None, []),
        ("minLength", 5, 2, []),
        ("minLength", 2, 5, ["MIN_LENGTH_INCREASED"]),
        ("minLength", None, 1, ["MIN_LENGTH_ADDED"]),
        ("maximum", 100, 200, []),
        ("maximum", 100, 50, ["MAXIMUM_DECREASED"]),
        ("maximum", 100, None, []),
        ("minimum", 0, -10, []),
        ("minimum", 0, 10, ["MINIMUM_INCREASED"]),
        ("minimum", 1, 1.0, []),
        ("exclusiveMaximum", 10, 20, []),
        ("exclusiveMaximum", 10, 5, ["EXCLUSIVE_MAXIMUM_DECREASED"]),
        ("exclusiveMinimum", 1, 0, []),
        ("exclusiveMinimum", 0, 1, ["EXCLUSIVE_MINIMUM_INCREASED"]),
        ("maxItems", 3, 2, ["MAX_ITEMS_DECREASED"]),
        ("minItems", 1, 0, []),
    ],
)
def test_relaxing_a_bound_is_backward_compatible_and_tightening_it_is_not(keyword, old, new, backward):
    def field(value):
        return record({"field": {} if value is None else {keyword: value}})

    found = check(field(new), [(1, field(old))], M.BACKWARD)
    assert [(i.kind, i.path) for i in found] == [(k, f"#/properties/field/{keyword}") for k in backward]


def test_forward_mirrors_the_bound_rules():
    old, new = record({"name": {"maxLength": 20}}), record({"name": {"maxLength": 50}})
    assert kinds(new, old, M.BACKWARD) == []
    [problem] = check(new, [(7, old)], M.FORWARD)
    assert problem.kind == "MAX_LENGTH_DECREASED"
    assert problem.message == "`name` maxLength 20 → 50: the new schema allows values outside version 7's maxLength."


@pytest.mark.parametrize(
    ("keyword", "old", "new", "backward"),
    [
        ("pattern", None, "^A", ["PATTERN_ADDED"]),
        ("pattern", "^A", None, []),
        ("pattern", "^A", "^B", ["PATTERN_CHANGED"]),
        ("pattern", "^A", "^A", []),
        ("format", None, "email", ["FORMAT_ADDED"]),
        ("format", "email", None, []),
        ("format", "date", "date-time", ["FORMAT_CHANGED"]),
    ],
)
def test_removing_a_pattern_or_format_is_fine_but_adding_or_changing_one_is_not(keyword, old, new, backward):
    def code(value):
        return record({"code": STRING | ({keyword: value} if value else {})})

    found = check(code(new), [(1, code(old))], M.BACKWARD)
    assert [(i.kind, i.path) for i in found] == [(k, f"#/properties/code/{keyword}") for k in backward]


@pytest.mark.parametrize(
    "annotation",
    [
        {"description": "Amount in cents"},
        {"title": "Amount"},
        {"default": 0},
        {"examples": [1, 2]},
        {"$comment": "internal"},
    ],
)
def test_annotation_changes_are_always_compatible(annotation):
    old = record(
        {"amount": INTEGER | {"description": "old"}}, **{"$schema": "https://json-schema.org/draft/2019-09/schema"}
    )
    new = record({"amount": INTEGER | annotation}, **{"$id": "urn:aurum:orders"})
    assert check(new, [(1, old)], M.FULL_TRANSITIVE) == []
    assert {c.path for c in diff(old, new)} == {"#", "#/properties/amount"}  # still shown to the approver


# --------------------------------------------------------------------------------------------------
# Unknown keywords are reported, not waved through
# --------------------------------------------------------------------------------------------------


def test_a_change_to_an_unknown_keyword_is_reported_as_incompatible():
    old = record({"qty": INTEGER})
    new = record({"qty": INTEGER | {"multipleOf": 5}})
    [problem] = check(new, [(1, old)], M.BACKWARD)
    assert (problem.kind, problem.path) == ("UNKNOWN_KEYWORD_CHANGED", "#/properties/qty/multipleOf")
    assert kinds(old, new, M.BACKWARD) == ["UNKNOWN_KEYWORD_CHANGED"]


def test_an_unchanged_unknown_keyword_is_not_reported():
    schema = record({"qty": INTEGER | {"allOf": [{"minimum": 1}]}})
    changed = record({"qty": INTEGER | {"allOf": [{"minimum": 2}]}})
    assert kinds(schema, schema, M.FULL) == []
    assert kinds(changed, schema, M.BACKWARD) == ["UNKNOWN_KEYWORD_CHANGED"]


# --------------------------------------------------------------------------------------------------
# Content models beyond open/closed, nesting and arrays
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new", "backward"),
    [
        pytest.param(None, False, ["ADDITIONAL_PROPERTIES_REMOVED"], id="open to closed"),
        pytest.param(False, None, [], id="closed to open"),
        pytest.param(None, STRING, ["ADDITIONAL_PROPERTIES_NARROWED"], id="open to schema"),
        pytest.param(STRING, True, [], id="schema to open"),
        pytest.param(False, STRING, [], id="closed to schema"),
        pytest.param(STRING, False, ["ADDITIONAL_PROPERTIES_REMOVED"], id="schema to closed"),
        pytest.param(STRING, {"type": ["string", "null"]}, [], id="schema widened"),
        pytest.param({"type": ["string", "null"]}, STRING, [NARROWED], id="schema narrowed"),
    ],
)
def test_closing_or_constraining_the_content_model_is_not_backward_compatible(old, new, backward):
    def model(additional):
        return record({"id": STRING}) | ({} if additional is None else {"additionalProperties": additional})

    found = check(model(new), [(1, model(old))], M.BACKWARD)
    assert [(i.kind, i.path) for i in found] == [(k, "#/additionalProperties") for k in backward]


@pytest.mark.parametrize(
    ("added", "backward", "forward"),
    [
        pytest.param(STRING, [], [], id="matching the additionalProperties schema"),
        pytest.param(
            INTEGER,
            ["PROPERTY_ADDED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL"],
            ["PROPERTY_REMOVED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL"],
            id="not matching it",
        ),
    ],
)
def test_a_partially_open_model_accepts_properties_its_additional_schema_covers(added, backward, forward):
    old = record({"id": STRING}, additionalProperties=STRING)
    new = record({"id": STRING, "note": added}, additionalProperties=STRING)
    assert kinds(new, old, M.BACKWARD) == backward
    assert kinds(new, old, M.FORWARD) == forward
    assert kinds(new, old, M.FORWARD, lenient=True) == []


def test_pattern_properties_decide_the_content_model_for_matching_names():
    old = record({"id": STRING}, patternProperties={"^x_": STRING}, additionalProperties=False)
    covered = record({"id": STRING, "x_note": STRING}, patternProperties={"^x_": STRING}, additionalProperties=False)
    uncovered = record({"id": STRING, "x_qty": INTEGER}, patternProperties={"^x_": STRING}, additionalProperties=False)
    assert kinds(covered, old, M.BACKWARD) == []
    assert kinds(uncovered, old, M.BACKWARD) == ["PROPERTY_ADDED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL"]


def test_nested_objects_are_checked_with_their_own_content_model():
    old = record({"address": record({"city": STRING, "zip": STRING}, model="closed")})
    new = record({"address": record({"zip": INTEGER}, model="closed")})
    found = check(new, [(1, old)], M.BACKWARD)
    assert [(i.kind, i.path) for i in found] == [
        (CLOSED_REMOVE, "#/properties/address/properties/city"),
        ("TYPE_CHANGED", "#/properties/address/properties/zip"),
    ]
    assert found[0].message.startswith("field `address.city` removed: ")


def test_nested_open_objects_reject_new_optional_properties():
    old = record({"address": record({"city": STRING})})
    new = record({"address": record({"city": STRING, "street": STRING})})
    assert [(i.kind, i.path) for i in check(new, [(1, old)], M.BACKWARD)] == [
        (OPEN_ADD, "#/properties/address/properties/street")
    ]


@pytest.mark.parametrize(
    ("old_items", "new_items", "backward"),
    [
        pytest.param(NUMBER, INTEGER, [(NARROWED, "#/properties/tags/items")], id="items narrowed"),
        pytest.param(INTEGER, NUMBER, [], id="items widened"),
        pytest.param(None, STRING, [(NARROWED, "#/properties/tags/items")], id="items constrained"),
        pytest.param(STRING, None, [], id="items unconstrained"),
        pytest.param(
            record({"sku": STRING, "qty": INTEGER}, model="closed"),
            record({"sku": STRING}, model="closed"),
            [(CLOSED_REMOVE, "#/properties/tags/items/properties/qty")],
            id="item objects lose a field",
        ),
        pytest.param({"enum": ["a"]}, {"enum": ["a", "b"]}, [], id="item enum gains a value"),
    ],
)
def test_array_items_are_compared_as_schemas(old_items, new_items, backward):
    def tags(items):
        return record({"tags": {"type": "array"} | ({} if items is None else {"items": items})})

    assert [(i.kind, i.path) for i in check(tags(new_items), [(1, tags(old_items))], M.BACKWARD)] == backward


def test_a_false_property_may_leave_a_closed_model():
    old = record({"id": STRING, "legacy": False}, model="closed")
    new = record({"id": STRING}, model="closed")
    assert kinds(new, old, M.BACKWARD) == []
    assert diff(old, new)[0].kind == "PROPERTY_WITH_FALSE_REMOVED_FROM_CLOSED_CONTENT_MODEL"


def test_paths_are_escaped_json_pointers():
    old, new = record({"a/b~c": STRING}), record({"a/b~c": INTEGER})
    assert [i.path for i in check(new, [(1, old)], M.BACKWARD)] == ["#/properties/a~1b~0c"]


def test_full_reports_both_directions_with_messages_about_the_authors_edit():
    old = record({"code": STRING | {"pattern": "^A"}})
    new = record({"code": STRING | {"pattern": "^B"}})
    assert [i.message for i in check(new, [(2, old)], M.FULL)] == [
        "`code` pattern changed from '^A' to '^B': the new schema may reject strings version 2 allows.",
        "`code` pattern changed from '^A' to '^B': version 2 may reject strings the new schema allows.",
    ]


def test_a_forward_incompatibility_describes_the_edit_not_the_reversed_comparison():
    old, new = widen_integer_to_number("open")
    [problem] = check(new, [(4, old)], M.FORWARD)
    assert problem.kind == NARROWED  # Confluent's name for the reversed (candidate writes) comparison
    assert problem.message == (
        "`amount` widened from integer to number: the new schema allows number values there, which version 4 rejects."
    )


# --------------------------------------------------------------------------------------------------
# diff: a readable, complete change list
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (record({"id": STRING, "store_id": STRING}), record({"id": STRING}), "field `store_id` removed"),
        (record({"id": STRING}), record({"id": STRING, "discount": NUMBER}), "field `discount` added (optional)"),
        (
            record({"id": STRING}),
            record({"id": STRING, "discount": NUMBER}, required=("discount",)),
            "field `discount` added (required)",
        ),
        (
            record({"id": STRING}),
            record({"id": STRING, "discount": NUMBER | {"default": 0}}, required=("discount",)),
            "field `discount` added (required, with default)",
        ),
        (record({"amount": NUMBER}), record({"amount": INTEGER}), "`amount` narrowed from number to integer"),
        (record({"qty": INTEGER}), record({"qty": NUMBER}), "`qty` widened from integer to number"),
        (record({"qty": STRING}), record({"qty": INTEGER}), "`qty` type changed from string to integer"),
        (
            record({"note": STRING}),
            record({"note": {"type": ["string", "null"]}}),
            "`note` widened from string to string or null",
        ),
        (record({"email": STRING}), record({"email": STRING}, required=("email",)), "`email` became required"),
        (record({"email": STRING}, required=("email",)), record({"email": STRING}), "`email` is no longer required"),
        (
            record({"status": {"enum": ["open"]}}),
            record({"status": {"enum": ["open", "closed"]}}),
            "`status` allowed values gained 'closed'",
        ),
        (
            record({"status": {"enum": ["open", "closed"]}}),
            record({"status": {"enum": ["closed"]}}),
            "`status` allowed values lost 'open'",
        ),
        (record({"name": {"maxLength": 50}}), record({"name": {"maxLength": 20}}), "`name` maxLength 50 → 20"),
        (record({"name": {}}), record({"name": {"maxLength": 20}}), "`name` maxLength 20 added"),
        (
            record({"code": {"pattern": "^A"}}),
            record({"code": {"pattern": "^B"}}),
            "`code` pattern changed from '^A' to '^B'",
        ),
        (record({"x": {"description": "a"}}), record({"x": {"description": "b"}}), "description of `x` changed"),
        (record({"x": {"default": 1}}), record({"x": {"default": 2}}), "default of `x` changed from 1 to 2"),
        (
            record({"address": record({"city": STRING})}),
            record({"address": record({})}),
            "field `address.city` removed",
        ),
        (
            record({"tags": {"items": NUMBER}}),
            record({"tags": {"items": INTEGER}}),
            "`tags[]` narrowed from number to integer",
        ),
        (
            record({"id": STRING}),
            record({"id": STRING}, model="closed"),
            "the root schema no longer accepts undeclared properties",
        ),
        (record({"qty": {}}), record({"qty": {"multipleOf": 5}}), "keyword `multipleOf` of `qty` added"),
    ],
)
def test_diff_describes_each_change_in_a_sentence(old, new, message):
    assert [change.message for change in diff(old, new)] == [message]


def test_diff_of_equal_schemas_is_empty():
    schema = record({"a": STRING, "b": {"enum": ["x", "y"]}}, required=("a",), model="closed")
    reordered = record({"b": {"enum": ["y", "x"]}, "a": STRING}, required=("a",), model="closed")
    assert diff(schema, reordered) == []


def test_diff_lists_compatible_and_incompatible_changes_ordered_by_path():
    old = record(
        {"status": {"enum": ["open"]}, "address": record({"city": STRING}), "amount": NUMBER},
        description="Order",
    )
    new = record(
        {
            "status": {"enum": ["open", "closed"]},
            "address": record({"city": INTEGER}, description="Where"),
            "total": NUMBER,
        },
        description="An order",
    )
    assert diff(old, new) == [
        Change("DESCRIPTION_CHANGED", "#", "description of the root schema changed"),
        Change("DESCRIPTION_CHANGED", "#/properties/address", "description of `address` added"),
        Change(
            "TYPE_CHANGED", "#/properties/address/properties/city", "`address.city` type changed from string to integer"
        ),
        Change("PROPERTY_REMOVED_FROM_OPEN_CONTENT_MODEL", "#/properties/amount", "field `amount` removed"),
        Change("ENUM_ARRAY_EXTENDED", "#/properties/status/enum", "`status` allowed values gained 'closed'"),
        Change(OPEN_ADD, "#/properties/total", "field `total` added (optional)"),
    ]


def test_diff_keeps_the_order_of_changes_at_the_same_path():
    old, new = record({"x": NUMBER | {"title": "X"}}), record({"x": INTEGER | {"title": "Y"}})
    assert [c.kind for c in diff(old, new)] == ["TITLE_CHANGED", NARROWED]
