"""Read ODCS YAML without losing what the standard says, and locate every problem.

Two traps shape this module. YAML 1.1 loaders turn `2022-10-03` into a date object,
yet ODCS values are strings (its schema says so), so the loader here resolves no
timestamps. And a useful error names where it is: every problem carries the JSON path
and the line of the YAML node it concerns, because stewards fix files, not trees.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft201909Validator
from jsonschema.exceptions import ValidationError as SchemaError

from apps.kernel.errors import DomainError

SCHEMA_PATH = Path(__file__).parent / "schema" / "odcs-json-schema-v3.1.0.json"


@dataclass(frozen=True)
class OdcsProblem:
    path: str  # JSON-pointer-like path into the document, e.g. "schema/0/properties/2/logicalType"
    line: int | None  # 1-based line in the YAML source, when known
    message: str

    def __str__(self) -> str:
        where = f"line {self.line}, " if self.line else ""
        return f"{where}{self.path or '(document)'}: {self.message}"


class OdcsError(DomainError):
    """The document is not valid ODCS; `problems` lists every one found (400 in the API)."""

    slug = "invalid-odcs"
    title = "Invalid ODCS document"

    def __init__(self, problems: list[OdcsProblem]) -> None:
        self.problems = problems
        summary = str(problems[0]) if len(problems) == 1 else f"{len(problems)} problems; see errors."
        errors = [
            {"pointer": f"#/{p.path}" if p.path else "#", "line": p.line, "detail": p.message, "code": "invalid"}
            for p in problems
        ]
        super().__init__(summary, errors=errors)
        self.args = ("; ".join(str(p) for p in problems),)


class _StringDatesLoader(yaml.SafeLoader):
    """SafeLoader that leaves timestamps as the strings they were written as."""


_StringDatesLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


@cache
def odcs_validator() -> Draft201909Validator:
    return Draft201909Validator(json.loads(SCHEMA_PATH.read_text()))


def parse(text: str) -> dict[str, Any]:
    """Parse and validate ODCS YAML; returns the document or raises OdcsError."""
    try:
        root = yaml.compose(text, Loader=_StringDatesLoader)
        document = yaml.load(text, Loader=_StringDatesLoader)  # noqa: S506 (a SafeLoader subclass)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise OdcsError([OdcsProblem("", line, f"not valid YAML: {problem}")]) from None
    if not isinstance(document, dict):
        raise OdcsError([OdcsProblem("", 1, "an ODCS document is a mapping (key: value) at the top level")])
    problems = validate(document, root)
    if problems:
        raise OdcsError(problems)
    return document


def validate(document: dict[str, Any], root: yaml.Node | None = None) -> list[OdcsProblem]:
    """Every schema violation of `document`, located; [] when valid."""
    problems = {_problem(error, root) for error in odcs_validator().iter_errors(document)}
    # "Unevaluated properties" at a path is usually the echo of another failure there (a
    # branch of the schema that did not match); report it only when it is the only one.
    real = [p.path for p in problems if not p.message.startswith("Unevaluated properties")]
    problems = {
        p
        for p in problems
        if not (p.message.startswith("Unevaluated properties") and any(_within(r, p.path) for r in real))
    }
    return sorted(problems, key=lambda p: (p.line or 0, p.path, p.message))


def _within(path: str, ancestor: str) -> bool:
    return path == ancestor or path.startswith(f"{ancestor}/") or ancestor == ""


def _problem(error: SchemaError, root: yaml.Node | None) -> OdcsProblem:
    error = _most_specific(error)
    path = list(error.absolute_path)
    if error.validator in ("additionalProperties", "unevaluatedProperties") and isinstance(error.instance, dict):
        # Point at the offending key itself, not at the mapping that holds it.
        known = set(error.schema.get("properties", {}))
        unexpected = [key for key in error.instance if key not in known]
        if len(unexpected) == 1:
            path.append(unexpected[0])
    return OdcsProblem("/".join(str(p) for p in path), _line_of(root, path), _message(error))


def _most_specific(error: SchemaError) -> SchemaError:
    """For oneOf/anyOf failures, the sub-error that got deepest says what is really wrong."""
    while error.context:
        deeper = max(error.context, key=lambda e: (len(e.absolute_path), -len(e.schema_path)))
        if len(deeper.absolute_path) < len(error.absolute_path):
            break
        error = deeper
    return error


def _message(error: SchemaError) -> str:
    if error.validator == "required":
        return error.message.replace("is a required property", "is required")
    if error.validator in ("additionalProperties", "unevaluatedProperties"):
        return f"{error.message} (custom data belongs in customProperties)"
    if error.validator == "oneOf" and isinstance(error.validator_value, list):
        names = sorted({key for branch in error.validator_value for key in branch.get("required", [])})
        if names and "valid under each of" in error.message:
            given = [name for name in names if isinstance(error.instance, dict) and name in error.instance]
            return f"only one of {', '.join(names)} may be given; found {', '.join(given)}"
        if names:
            return f"give exactly one of: {', '.join(names)}"
        return "matches more than one of the allowed shapes; see the ODCS specification"
    if error.validator == "not" and isinstance(error.validator_value, dict):
        forbidden = error.validator_value.get("required", [])
        if forbidden:
            return f"{', '.join(repr(k) for k in forbidden)} is not allowed here"
    return error.message


def locate(text: str, path: str) -> int | None:
    """Line of the node at a slash-separated `path` ("schema/0/properties/2") in YAML `text`."""
    try:
        root = yaml.compose(text, Loader=_StringDatesLoader)
    except yaml.YAMLError:
        return None
    parts = [int(p) if p.isdigit() else p for p in path.split("/")] if path else []
    return _line_of(root, parts)


def _line_of(node: yaml.Node | None, path: list[Any]) -> int | None:
    """Line of the YAML node at `path`, or of its nearest ancestor."""
    if node is None:
        return None
    line = node.start_mark.line + 1
    for key in path:
        child = None
        if isinstance(node, yaml.MappingNode):
            child = next((v for k, v in node.value if k.value == key), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
            child = node.value[key]
        if child is None:
            break
        node, line = child, child.start_mark.line + 1
    return line


def dump(document: dict[str, Any]) -> str:
    """YAML in ODCS's usual key order, readable, dates kept as strings."""
    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True, default_flow_style=False, width=100)
