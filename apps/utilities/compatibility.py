"""Schema compatibility for the schema registry: Confluent Schema Registry semantics for JSON Schema.

Pure Python, no Django. Two questions are answered here:

* `check` — may this candidate be registered under a subject's compatibility mode? It returns the
  incompatibilities (empty list = compatible), each tied to the registered version it breaks.
* `diff` — what changed between two versions, in sentences an approver can read?

Every compatibility question reduces to one directional test: can a *reader* schema read every
document a *writer* schema accepts? BACKWARD makes the candidate the reader and the registered
version the writer (new consumers read old data); FORWARD swaps them (old consumers read new data);
FULL needs both. The rules below are written in terms of that writer → reader test, and the kinds
they report are Confluent's difference types (`io.confluent.kafka.schemaregistry.json.diff`) for that
comparison, so the registry API can later return the names Confluent clients know. The messages, in
contrast, always describe the edit the author made (registered version → candidate), whichever
direction is being tested, followed by why it breaks.

The content model decides what happens when a property appears or disappears, because JSON Schema
validates documents rather than decoding fields:

* open (`additionalProperties` absent, `true` or `{}`): any undeclared property may hold any value;
* closed (`additionalProperties: false`): undeclared properties are rejected;
* partially open (`additionalProperties` is a schema): undeclared properties must match it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

__all__ = ["Change", "CompatibilityMode", "Incompatibility", "check", "diff"]


class CompatibilityMode(StrEnum):
    """The subject-level compatibility setting, named as in Confluent Schema Registry."""

    NONE = "NONE"
    BACKWARD = "BACKWARD"
    BACKWARD_TRANSITIVE = "BACKWARD_TRANSITIVE"
    FORWARD = "FORWARD"
    FORWARD_TRANSITIVE = "FORWARD_TRANSITIVE"
    FULL = "FULL"
    FULL_TRANSITIVE = "FULL_TRANSITIVE"

    @property
    def transitive(self) -> bool:
        """Transitive modes check against every registered version, not just the latest."""
        return self.name.endswith("_TRANSITIVE")

    @property
    def backward(self) -> bool:
        """The candidate must read data written with the registered version(s)."""
        return self.name.startswith(("BACKWARD", "FULL"))

    @property
    def forward(self) -> bool:
        """The registered version(s) must read data written with the candidate."""
        return self.name.startswith(("FORWARD", "FULL"))


@dataclass(frozen=True)
class Incompatibility:
    """One reason a candidate may not be registered.

    `kind` is a stable machine name (Confluent's difference type where one exists), `path` a JSON
    pointer into the schema ("#/properties/amount"), `message` a readable sentence, and `version` the
    registered version the candidate was checked against.
    """

    kind: str
    path: str
    message: str
    version: int | None = None


@dataclass(frozen=True)
class Change:
    """One difference between two versions, for humans (the admin diff shown before approval)."""

    kind: str
    path: str
    message: str


# --------------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------------


def check(
    candidate: dict,
    existing: list[tuple[int, dict]],
    mode: CompatibilityMode | str,
    *,
    lenient: bool = False,
) -> list[Incompatibility]:
    """Return why `candidate` may not join a subject whose registered versions are `existing`.

    `existing` holds `(version, schema)` pairs, oldest first. BACKWARD, FORWARD and FULL compare with
    the latest version only: a chain of individually compatible steps is all they promise. The
    *_TRANSITIVE modes compare with every version, because consumers may still hold data (or run
    readers) from any of them. NONE and an empty history accept anything.

    `lenient=True` is the explicit per-subject "lenient" policy: adding or removing an *optional*
    property is accepted whatever the content model. It is not the default because under the strict
    reading an open model's old data may already carry a value of any type under the new name, and a
    closed reader rejects a property it no longer declares.

    Results are ordered by version (oldest first), then the backward test before the forward one,
    then by path.
    """
    mode = CompatibilityMode(mode)
    if mode is CompatibilityMode.NONE or not existing:
        return []
    targets = existing if mode.transitive else existing[-1:]
    found: list[Incompatibility] = []
    for version, schema in targets:
        registered = f"version {version}"
        if mode.backward:
            found += _incompatibilities(
                writer=schema,
                reader=candidate,
                candidate_reads=True,
                labels=(registered, _CANDIDATE),
                version=version,
                lenient=lenient,
            )
        if mode.forward:
            found += _incompatibilities(
                writer=candidate,
                reader=schema,
                candidate_reads=False,
                labels=(_CANDIDATE, registered),
                version=version,
                lenient=lenient,
            )
    return found


def diff(old: dict, new: dict) -> list[Change]:
    """Return every difference between `old` and `new`, ordered by path (stable within a path).

    Compatible and incompatible changes alike are listed, annotations (description, title, default…)
    included: an approver needs the whole picture, not only what blocks registration. Kinds are those
    the BACKWARD test (old writes, new reads) reports.
    """
    comparison = _Comparison(candidate_reads=True, lenient=False)
    comparison.schema(old, new, "#", "")
    return [Change(f.kind, f.path, f.change) for f in _ordered(comparison.findings)]


# --------------------------------------------------------------------------------------------------
# Engine
# --------------------------------------------------------------------------------------------------

_CANDIDATE = "the new schema"

# Keywords with no effect on validation: any change to them is compatible (and shown by `diff`).
_ANNOTATIONS = {
    "description": "DESCRIPTION_CHANGED",
    "title": "TITLE_CHANGED",
    "default": "DEFAULT_CHANGED",
    "$id": "ID_CHANGED",
    "$schema": "SCHEMA_URI_CHANGED",
    "$comment": "ANNOTATION_CHANGED",
    "examples": "ANNOTATION_CHANGED",
    "deprecated": "ANNOTATION_CHANGED",
    "readOnly": "ANNOTATION_CHANGED",
    "writeOnly": "ANNOTATION_CHANGED",
}

# Numeric limits: (keyword, Confluent stem, True when the keyword is an upper limit).
# Raising an upper limit or lowering a lower one lets the reader accept more: compatible.
_LIMITS = (
    ("maxLength", "MAX_LENGTH", True),
    ("minLength", "MIN_LENGTH", False),
    ("maximum", "MAXIMUM", True),
    ("minimum", "MINIMUM", False),
    ("exclusiveMaximum", "EXCLUSIVE_MAXIMUM", True),
    ("exclusiveMinimum", "EXCLUSIVE_MINIMUM", False),
    ("maxItems", "MAX_ITEMS", True),
    ("minItems", "MIN_ITEMS", False),
    ("maxProperties", "MAX_PROPERTIES", True),
    ("minProperties", "MIN_PROPERTIES", False),
)

_UNDERSTOOD = {
    *_ANNOTATIONS,
    *(keyword for keyword, _, _ in _LIMITS),
    "type",
    "enum",
    "const",
    "pattern",
    "format",
    "uniqueItems",
    "properties",
    "required",
    "additionalProperties",
    "items",
}


@dataclass(frozen=True)
class _Finding:
    """A difference seen by the writer → reader test.

    `change` describes the edit from the registered version to the candidate; `reason` says why it
    breaks, with "{writer}" and "{reader}" standing for the two schemas' names.
    """

    kind: str
    path: str
    compatible: bool
    change: str
    reason: str = ""


class _Comparison:
    """One directional test: can `reader` read every document `writer` accepts?

    `candidate_reads` tells which side is the candidate, so that messages describe the author's edit
    (before → after) even when the forward test puts the candidate in the writer's seat.
    """

    def __init__(self, *, candidate_reads: bool, lenient: bool) -> None:
        self.candidate_reads = candidate_reads
        self.lenient = lenient
        self.findings: list[_Finding] = []

    # -- helpers --------------------------------------------------------------------------------

    def _edit(self, writer_side: Any, reader_side: Any) -> tuple[Any, Any]:
        """Map (writer, reader) values to (before, after) values of the author's edit."""
        return (writer_side, reader_side) if self.candidate_reads else (reader_side, writer_side)

    def _add(self, kind: str, path: str, compatible: bool, change: str, reason: str = "") -> None:
        self.findings.append(_Finding(kind, path, compatible, change, reason))

    def _sub_compatible(self, writer: Any, reader: Any, path: str, field: str) -> bool:
        """Whether `reader` reads all `writer` accepts, without recording the details."""
        sub = _Comparison(candidate_reads=self.candidate_reads, lenient=self.lenient)
        sub.schema(writer, reader, path, field)
        return all(f.compatible for f in sub.findings)

    # -- entry ----------------------------------------------------------------------------------

    def schema(self, writer: Any, reader: Any, path: str, field: str) -> None:
        """Compare two (sub)schemas found at `path`; `field` is the dotted field name for messages."""
        writer, reader = _as_schema(writer), _as_schema(reader)
        if writer is None or reader is None:
            self._false_schema(writer, reader, path, field)
            return
        self._annotations(writer, reader, path, field)
        self._type(writer, reader, path, field)
        self._allowed_values(writer, reader, path, field)
        self._limits(writer, reader, path, field)
        self._string_constraint("pattern", "PATTERN", writer, reader, path, field)
        self._string_constraint("format", "FORMAT", writer, reader, path, field)
        self._unique_items(writer, reader, path, field)
        self._required_and_properties(writer, reader, path, field)
        self._additional_properties(writer, reader, path, field)
        self._items(writer, reader, path, field)
        self._unknown_keywords(writer, reader, path, field)

    # -- rules ----------------------------------------------------------------------------------

    def _false_schema(self, writer: dict | None, reader: dict | None, path: str, field: str) -> None:
        """`false` accepts nothing: a false writer produces no data, a false reader reads none."""
        if writer is None and reader is None:
            return
        _, after = self._edit(writer, reader)
        verb = "now forbids" if after is None else "no longer forbids"
        change = f"{_name(field)} {verb} every value"
        if writer is None:
            self._add("TYPE_EXTENDED", path, True, change)
        else:
            self._add("TYPE_CHANGED", path, False, change, "{reader} rejects every value, and {writer} allows some")

    def _annotations(self, writer: dict, reader: dict, path: str, field: str) -> None:
        """Annotations do not constrain documents, so changing them never breaks a reader."""
        for keyword, kind in _ANNOTATIONS.items():
            if keyword not in writer and keyword not in reader:
                continue
            if keyword in writer and keyword in reader and _canon(writer[keyword]) == _canon(reader[keyword]):
                continue
            before_has, after_has = self._edit(keyword in writer, keyword in reader)
            before, after = self._edit(writer.get(keyword), reader.get(keyword))
            if not before_has:
                change = f"{keyword} of {_name(field)} added"
            elif not after_has:
                change = f"{keyword} of {_name(field)} removed"
            elif keyword == "default":
                change = f"default of {_name(field)} changed from {_show(before)} to {_show(after)}"
            else:
                change = f"{keyword} of {_name(field)} changed"
            self._add(kind, path, True, change)

    def _type(self, writer: dict, reader: dict, path: str, field: str) -> None:
        """A reader must accept every type the writer allows; integer is a subset of number.

        integer → number widens (TYPE_EXTENDED), number → integer narrows (TYPE_NARROWED), adding a
        type such as "null" widens (SUM_TYPE_EXTENDED); anything else is TYPE_CHANGED.
        """
        wtypes, rtypes = _types(writer), _types(reader)
        relation = _type_relation(wtypes, rtypes)
        if relation is None:
            return
        before, after = self._edit(wtypes, rtypes)
        edit = _type_relation(before, after)
        verb = {"extended": "widened", "narrowed": "narrowed"}.get(edit or "", "type changed")
        change = f"{_name(field)} {verb} from {_show_types(before)} to {_show_types(after)}"
        if relation == "extended":
            added = set(rtypes or ()) - set(wtypes or ()) - ({"number"} if "integer" in (wtypes or ()) else set())
            self._add("SUM_TYPE_EXTENDED" if added and wtypes is not None else "TYPE_EXTENDED", path, True, change)
            return
        if wtypes is None:
            reason = f"{{writer}} allows any type there, {{reader}} only {_show_types(rtypes)}"
        else:
            lost = " or ".join(t for t in wtypes if not _covers(rtypes, t))
            reason = f"{{writer}} allows {lost} values there, which {{reader}} rejects"
        self._add("TYPE_NARROWED" if relation == "narrowed" else "TYPE_CHANGED", path, False, change, reason)

    def _allowed_values(self, writer: dict, reader: dict, path: str, field: str) -> None:
        """enum/const: the reader must allow every value the writer allows; gaining values is safe."""
        wvals, rvals = _allowed(writer), _allowed(reader)
        if wvals is None and rvals is None:
            return
        keyword = "enum" if "enum" in writer or "enum" in reader else "const"
        at = f"{path}/{keyword}"
        before, after = self._edit(wvals, rvals)
        if wvals is None:
            change = _allowed_change(field, before, after)
            self._add("ENUM_ARRAY_ADDED", at, False, change, "{reader} allows only a fixed set of values, {writer} any")
            return
        if rvals is None:
            self._add("ENUM_ARRAY_REMOVED", at, True, _allowed_change(field, before, after))
            return
        if wvals.keys() == rvals.keys():
            return
        change = _allowed_change(field, before, after)
        if rvals.keys() >= wvals.keys():
            self._add("ENUM_ARRAY_EXTENDED", at, True, change)
            return
        lost = ", ".join(_show(v) for k, v in wvals.items() if k not in rvals)
        kind = "ENUM_ARRAY_NARROWED" if rvals.keys() <= wvals.keys() else "ENUM_ARRAY_CHANGED"
        self._add(kind, at, False, change, f"{{writer}} allows {lost}, which {{reader}} rejects")

    def _limits(self, writer: dict, reader: dict, path: str, field: str) -> None:
        """Relaxing a limit is safe for the reader; adding or tightening one rejects old values."""
        for keyword, stem, upper in _LIMITS:
            wval, rval = writer.get(keyword), reader.get(keyword)
            if wval is None and rval is None:
                continue
            if not (_is_number(wval) or wval is None) or not (_is_number(rval) or rval is None):
                self._unknown(keyword, writer, reader, path, field)
                continue
            if wval == rval:
                continue
            before, after = self._edit(wval, rval)
            if before is None:
                change = f"{_name(field)} {keyword} {_show(after)} added"
            elif after is None:
                change = f"{_name(field)} {keyword} {_show(before)} removed"
            else:
                change = f"{_name(field)} {keyword} {_show(before)} → {_show(after)}"
            if wval is None:
                kind, ok = f"{stem}_ADDED", False
            elif rval is None:
                kind, ok = f"{stem}_REMOVED", True
            elif rval > wval:
                kind, ok = f"{stem}_INCREASED", upper
            else:
                kind, ok = f"{stem}_DECREASED", not upper
            reason = "" if ok else f"{{writer}} allows values outside {{reader}}'s {keyword}"
            self._add(kind, f"{path}/{keyword}", ok, change, reason)

    def _string_constraint(self, keyword: str, stem: str, writer: dict, reader: dict, path: str, field: str) -> None:
        """pattern and format: removing one is safe; adding or changing one may reject old strings.

        Two different regular expressions (or formats) are not compared for inclusion: a change is
        treated as incompatible, as Confluent does for patterns.
        """
        wval, rval = writer.get(keyword), reader.get(keyword)
        if wval == rval:
            return
        before, after = self._edit(wval, rval)
        if before is None:
            change = f"{_name(field)} {keyword} {_show(after)} added"
        elif after is None:
            change = f"{_name(field)} {keyword} {_show(before)} removed"
        else:
            change = f"{_name(field)} {keyword} changed from {_show(before)} to {_show(after)}"
        at = f"{path}/{keyword}"
        if rval is None:
            self._add(f"{stem}_REMOVED", at, True, change)
        else:
            kind = f"{stem}_ADDED" if wval is None else f"{stem}_CHANGED"
            self._add(kind, at, False, change, "{reader} may reject strings {writer} allows")

    def _unique_items(self, writer: dict, reader: dict, path: str, field: str) -> None:
        """uniqueItems: dropping it is safe, requiring it rejects arrays with duplicates."""
        wval, rval = bool(writer.get("uniqueItems", False)), bool(reader.get("uniqueItems", False))
        if wval == rval:
            return
        _, after = self._edit(wval, rval)
        change = f"{_name(field)} {'now requires' if after else 'no longer requires'} unique items"
        if rval:
            self._add("UNIQUE_ITEMS_ADDED", f"{path}/uniqueItems", False, change, "{writer} allows duplicate items")
        else:
            self._add("UNIQUE_ITEMS_REMOVED", f"{path}/uniqueItems", True, change)

    def _required_and_properties(self, writer: dict, reader: dict, path: str, field: str) -> None:
        """Walk the union of declared and required property names and judge each one."""
        wprops, rprops = _properties(writer), _properties(reader)
        wreq, rreq = _required(writer), _required(reader)
        names = list(dict.fromkeys([*wprops, *rprops, *wreq, *rreq]))
        for name in names:
            child_path = f"{path}/properties/{_escape(name)}"
            child_field = f"{field}.{name}" if field else name
            if name in wprops and name in rprops:
                self._requiredness(name in wreq, name in rreq, rprops[name], child_path, child_field)
                self.schema(wprops[name], rprops[name], child_path, child_field)
            elif name in wprops:
                self._dropped_by_reader(writer, reader, name, child_path, child_field)
            elif name in rprops:
                self._new_to_reader(writer, reader, name, child_path, child_field)
            else:
                self._requiredness(name in wreq, name in rreq, None, child_path, child_field)

    def _requiredness(self, w_req: bool, r_req: bool, r_schema: Any, path: str, field: str) -> None:
        """A reader requiring a property old data may lack breaks, unless the reader has a default.

        Dropping a requirement is always safe: the reader just stops insisting.
        """
        if w_req == r_req:
            return
        _, after = self._edit(w_req, r_req)
        has_default = isinstance(r_schema, dict) and "default" in r_schema
        change = f"`{field}` became required" if after else f"`{field}` is no longer required"
        if not r_req:
            self._add("REQUIRED_ATTRIBUTE_REMOVED", path, True, change)
        elif has_default:
            self._add("REQUIRED_ATTRIBUTE_WITH_DEFAULT_ADDED", path, True, change)
        else:
            reason = f"{{writer}} allows documents without `{field}`, which {{reader}} requires and has no default for"
            self._add("REQUIRED_ATTRIBUTE_ADDED", path, False, change, reason)

    def _dropped_by_reader(self, writer: dict, reader: dict, name: str, path: str, field: str) -> None:
        """The writer declares `name`, the reader does not: the reader's content model decides.

        Open reader: it accepts the property whatever its value (compatible). Closed reader: it
        rejects documents carrying it (incompatible, unless the writer's schema for it was `false`).
        Partially open reader: compatible only if its additionalProperties schema reads the writer's
        property schema. The lenient policy accepts it when the writer held it as optional.
        """
        wschema = _properties(writer)[name]
        optional = name not in _required(writer)
        change = self._presence_change(
            writer_has=True, field=field, required=not optional, has_default=_has_default(wschema)
        )
        if name in _required(reader):
            self._requiredness(not optional, True, None, path, field)
        model, cover = _content_model(reader, name)
        excused = self.lenient and optional
        if model == "open":
            self._add("PROPERTY_REMOVED_FROM_OPEN_CONTENT_MODEL", path, True, change)
        elif model == "closed":
            if _as_schema(wschema) is None:
                self._add("PROPERTY_WITH_FALSE_REMOVED_FROM_CLOSED_CONTENT_MODEL", path, True, change)
            else:
                reason = f"{{reader}} has a closed content model, so it rejects `{field}`, which {{writer}} allows"
                self._add("PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL", path, excused, change, reason)
        elif self._sub_compatible(wschema, cover, path, field):
            self._add("PROPERTY_REMOVED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL", path, True, change)
        else:
            reason = f"{{reader}}'s additionalProperties schema rejects values of `{field}` that {{writer}} allows"
            self._add("PROPERTY_REMOVED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL", path, excused, change, reason)

    def _new_to_reader(self, writer: dict, reader: dict, name: str, path: str, field: str) -> None:
        """The reader declares `name`, the writer does not: the writer's content model decides.

        Open writer: its documents may already hold `name` with any value, so only a property with an
        unconstrained schema is safe. Closed writer: its documents never hold `name`, so an optional
        property (or a required one with a default) is safe. Partially open writer: safe when the
        reader's property schema reads the writer's additionalProperties schema. A required property
        without a default always breaks: old documents lack it. The lenient policy accepts the
        content-model objections for optional properties and properties with a default.
        """
        rschema = _properties(reader)[name]
        required = name in _required(reader)
        has_default = _has_default(rschema)
        change = self._presence_change(writer_has=False, field=field, required=required, has_default=has_default)
        if name in _required(writer):
            self._requiredness(True, required, rschema, path, field)
        missing = f"{{writer}} allows documents without `{field}`, which {{reader}} requires and has no default for"
        model, cover = _content_model(writer, name)
        excused = self.lenient and (not required or has_default)
        if model == "open":
            reason = f"{{writer}} has an open content model, so its documents may already hold `{field}` with any value"
            if required and not has_default:
                self._add("REQUIRED_PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL", path, False, change, missing)
            elif _is_unconstrained(rschema):
                self._add("PROPERTY_WITH_EMPTY_SCHEMA_ADDED_TO_OPEN_CONTENT_MODEL", path, True, change)
            elif required:
                self._add("REQUIRED_PROPERTY_WITH_DEFAULT_ADDED_TO_OPEN_CONTENT_MODEL", path, excused, change, reason)
            else:
                self._add("OPTIONAL_PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL", path, excused, change, reason)
        elif required and not has_default:
            self._add("REQUIRED_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL", path, False, change, missing)
        elif model == "closed":
            kind = "REQUIRED_PROPERTY_WITH_DEFAULT" if required else "OPTIONAL_PROPERTY"
            self._add(f"{kind}_ADDED_TO_UNOPEN_CONTENT_MODEL", path, True, change)
        elif self._sub_compatible(cover, rschema, path, field):
            self._add("PROPERTY_ADDED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL", path, True, change)
        else:
            reason = f"{{writer}}'s additionalProperties schema allows values under `{field}` that {{reader}} rejects"
            self._add("PROPERTY_ADDED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL", path, excused, change, reason)

    def _presence_change(self, *, writer_has: bool, field: str, required: bool, has_default: bool) -> str:
        """'field `x` added (optional)' or 'field `x` removed', seen from the author's edit."""
        before_has, _ = self._edit(writer_has, not writer_has)
        if before_has:
            return f"field `{field}` removed"
        detail = "required, with default" if required and has_default else "required" if required else "optional"
        return f"field `{field}` added ({detail})"

    def _additional_properties(self, writer: dict, reader: dict, path: str, field: str) -> None:
        """Closing or constraining the content model rejects undeclared properties old data may hold.

        Opening it (closed → open, schema → open, closed → schema) is safe; two schemas are compared
        like any other pair of schemas.
        """
        wkind, rkind = _additional_kind(writer), _additional_kind(reader)
        at = f"{path}/additionalProperties"
        if wkind == rkind == "schema":
            sub_field = f"{field}.*" if field else "*"
            self.schema(writer["additionalProperties"], reader["additionalProperties"], at, sub_field)
            return
        if wkind == rkind:
            return
        _, after = self._edit(wkind, rkind)
        change = {
            "open": f"{_name(field)} now accepts any undeclared property",
            "closed": f"{_name(field)} no longer accepts undeclared properties",
            "schema": f"{_name(field)} now constrains undeclared properties with a schema",
        }[after]
        reason = "{writer} allows undeclared properties that {reader} rejects"
        if wkind == "closed":
            self._add("ADDITIONAL_PROPERTIES_ADDED", at, True, change)
        elif rkind == "open":
            self._add("ADDITIONAL_PROPERTIES_EXTENDED", at, True, change)
        elif rkind == "closed":
            self._add("ADDITIONAL_PROPERTIES_REMOVED", at, False, change, reason)
        else:
            self._add("ADDITIONAL_PROPERTIES_NARROWED", at, False, change, reason)

    def _items(self, writer: dict, reader: dict, path: str, field: str) -> None:
        """Array items are compared as schemas; a missing `items` means any item (`{}`)."""
        if "items" not in writer and "items" not in reader:
            return
        witems, ritems = writer.get("items", {}), reader.get("items", {})
        if isinstance(witems, list) or isinstance(ritems, list):
            # Tuple validation is not a form Aurum generates: report it rather than guess.
            self._unknown("items", writer, reader, path, field)
            return
        self.schema(witems, ritems, f"{path}/items", f"{field}[]" if field else "[]")

    def _unknown_keywords(self, writer: dict, reader: dict, path: str, field: str) -> None:
        """A keyword this engine does not evaluate cannot be proven safe, so a change to it fails."""
        for keyword in dict.fromkeys([*writer, *reader]):
            if keyword not in _UNDERSTOOD:
                self._unknown(keyword, writer, reader, path, field)

    def _unknown(self, keyword: str, writer: dict, reader: dict, path: str, field: str) -> None:
        if keyword in writer and keyword in reader and _canon(writer[keyword]) == _canon(reader[keyword]):
            return
        before_has, after_has = self._edit(keyword in writer, keyword in reader)
        verb = "changed" if before_has and after_has else "added" if after_has else "removed"
        change = f"keyword `{keyword}` of {_name(field)} {verb}"
        reason = f"Aurum does not evaluate `{keyword}`, so it cannot prove the change safe"
        self._add("UNKNOWN_KEYWORD_CHANGED", f"{path}/{_escape(keyword)}", False, change, reason)


def _incompatibilities(
    *, writer: dict, reader: dict, candidate_reads: bool, labels: tuple[str, str], version: int, lenient: bool
) -> list[Incompatibility]:
    """Run one directional test and phrase its incompatible findings; `labels` names (writer, reader)."""
    comparison = _Comparison(candidate_reads=candidate_reads, lenient=lenient)
    comparison.schema(writer, reader, "#", "")
    writer_label, reader_label = labels
    result = []
    for finding in _ordered(comparison.findings):
        if finding.compatible:
            continue
        reason = finding.reason.replace("{writer}", writer_label).replace("{reader}", reader_label)
        message = f"{finding.change}: {reason}." if reason else f"{finding.change}."
        result.append(Incompatibility(finding.kind, finding.path, message, version))
    return result


# --------------------------------------------------------------------------------------------------
# Schema helpers
# --------------------------------------------------------------------------------------------------


def _as_schema(schema: Any) -> dict | None:
    """Normalise a (sub)schema: `true` is `{}`, `false` is None (accepts nothing)."""
    if schema is True:
        return {}
    if schema is False:
        return None
    if isinstance(schema, dict):
        return schema
    raise TypeError(f"a JSON Schema must be an object or a boolean, not {type(schema).__name__}")


def _is_unconstrained(schema: Any) -> bool:
    """True for a schema accepting every value: `true`, `{}` or only annotations."""
    normalised = _as_schema(schema)
    return normalised is not None and all(keyword in _ANNOTATIONS for keyword in normalised)


def _has_default(schema: Any) -> bool:
    return isinstance(schema, dict) and "default" in schema


def _properties(schema: dict) -> dict[str, Any]:
    properties = schema.get("properties")
    return properties if isinstance(properties, dict) else {}


def _required(schema: dict) -> set[str]:
    required = schema.get("required")
    return {name for name in required if isinstance(name, str)} if isinstance(required, list) else set()


def _additional_kind(schema: dict) -> str:
    """Classify `additionalProperties` alone: "open", "closed" or "schema"."""
    additional = schema.get("additionalProperties", True)
    if additional is False:
        return "closed"
    if not isinstance(additional, (bool, dict)) or _is_unconstrained(additional):
        return "open"
    return "schema"


def _content_model(schema: dict, name: str) -> tuple[str, dict | None]:
    """The content model `schema` applies to an undeclared property called `name`.

    Returns ("open", {}), ("closed", None) or ("partial", covering schema). A matching
    `patternProperties` entry takes precedence over `additionalProperties`, as in validation.
    """
    patterns = schema.get("patternProperties")
    cover: Any = schema.get("additionalProperties", True)
    if isinstance(patterns, dict):
        for pattern, subschema in patterns.items():
            try:
                matched = re.search(pattern, name) is not None
            except re.error:
                matched = False
            if matched:
                cover = subschema
                break
    if cover is False:
        return "closed", None
    if not isinstance(cover, (bool, dict)) or _is_unconstrained(cover):
        return "open", {}
    return "partial", _as_schema(cover)


def _types(schema: dict) -> tuple[str, ...] | None:
    """The instance types a schema allows, or None for any type."""
    declared = schema.get("type")
    if isinstance(declared, str):
        return (declared,)
    if isinstance(declared, list):
        return tuple(dict.fromkeys(t for t in declared if isinstance(t, str)))
    return None


def _covers(types: tuple[str, ...] | None, instance_type: str) -> bool:
    """Whether `types` accepts every value of `instance_type` (every integer is a number)."""
    return types is None or instance_type in types or (instance_type == "integer" and "number" in types)


def _type_relation(writer: tuple[str, ...] | None, reader: tuple[str, ...] | None) -> str | None:
    """None when equivalent, else "extended" (reader accepts more), "narrowed" or "changed"."""
    if writer == reader or (writer is not None and reader is not None and set(writer) == set(reader)):
        return None
    if reader is None or (writer is not None and all(_covers(reader, t) for t in writer)):
        return "extended"
    if writer is None or all(_covers(writer, t) for t in reader):
        return "narrowed"
    return "changed"


def _show_types(types: tuple[str, ...] | None) -> str:
    return "any type" if types is None else " or ".join(types)


def _canon(value: Any) -> str:
    """A canonical text for a JSON value: equal JSON values (1 and 1.0 included) give equal texts."""

    def normalise(item: Any) -> Any:
        if isinstance(item, float) and item.is_integer():
            return int(item)
        if isinstance(item, list):
            return [normalise(x) for x in item]
        if isinstance(item, dict):
            return {k: normalise(v) for k, v in item.items()}
        return item

    return json.dumps(normalise(value), sort_keys=True)


def _allowed(schema: dict) -> dict[str, Any] | None:
    """The values enum/const allow (canonical text → value, in order), or None when unrestricted."""
    values: dict[str, Any] | None = None
    if isinstance(schema.get("enum"), list):
        values = {_canon(v): v for v in schema["enum"]}
    if "const" in schema:
        const = {_canon(schema["const"]): schema["const"]}
        values = const if values is None else {k: v for k, v in values.items() if k in const}
    return values


def _allowed_change(field: str, before: dict[str, Any] | None, after: dict[str, Any] | None) -> str:
    if before is None:
        return f"{_name(field)} restricted to {_show_values(after or {})}"
    if after is None:
        return f"{_name(field)} no longer restricted to fixed values"
    gained = {k: v for k, v in after.items() if k not in before}
    lost = {k: v for k, v in before.items() if k not in after}
    parts = []
    if gained:
        parts.append(f"gained {_show_values(gained)}")
    if lost:
        parts.append(f"lost {_show_values(lost)}")
    return f"{_name(field)} allowed values {' and '.join(parts)}"


def _show_values(values: dict[str, Any]) -> str:
    return ", ".join(_show(v) for v in values.values()) if values else "nothing"


def _show(value: Any) -> str:
    """Strings in single quotes ('closed'), everything else as JSON (20, true, null)."""
    return f"'{value}'" if isinstance(value, str) else json.dumps(value)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _name(field: str) -> str:
    return f"`{field}`" if field else "the root schema"


def _escape(token: str) -> str:
    """Escape a JSON pointer reference token (RFC 6901)."""
    return token.replace("~", "~0").replace("/", "~1")


def _ordered(findings: list[_Finding]) -> list[_Finding]:
    """Order by path, segment by segment so that a field's own changes precede its children's; stable."""
    return sorted(findings, key=lambda f: f.path.split("/"))
