"""The OpenAPI document describes every API route and the problems each can answer."""

from __future__ import annotations

import re

import pytest
from django.core.exceptions import FieldDoesNotExist
from django.urls import URLPattern, URLResolver, get_resolver
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.validation import validate_schema
from rest_framework import serializers

pytestmark = pytest.mark.django_db
# The schema and its viewers, and the catch-all that answers unknown paths with a problem 404.
DOC_ROUTES = {"/api/v1/schema/", "/api/v1/docs/", "/api/v1/redoc/", "/api/v1/.*"}
# External dialects: their paths and shapes are another product's contract, documented by it, and
# they answer in its error format rather than problem details, so they stay out of Aurum's document.
EXTERNAL_DIALECT_PREFIXES = (
    "/api/v1/registry/",  # Confluent Schema Registry's REST API (apps.utilities.confluent)
)


@pytest.fixture(scope="module")
def schema():
    document = SchemaGenerator().get_schema(request=None, public=True)
    validate_schema(document)
    return document


def api_routes(patterns=None, prefix="/"):
    """Every concrete /api/v1/ route of the URL conf, in OpenAPI path syntax."""
    for pattern in patterns if patterns is not None else get_resolver().url_patterns:
        route = prefix + str(pattern.pattern).lstrip("^").rstrip("$")
        if isinstance(pattern, URLResolver):
            yield from api_routes(pattern.url_patterns, route)
        elif isinstance(pattern, URLPattern) and route.startswith("/api/v1/") and "(?P<format>" not in route:
            yield openapi_path(route)


def openapi_path(route: str) -> str:
    route = re.sub(r"\(\?P<(\w+)>[^)]*\)", r"{\1}", route)  # regex routes (DRF routers)
    route = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", route)  # path() converters
    return route.replace("{pk}", "{id}")


def test_every_api_route_is_documented(schema):
    documented = set(schema["paths"])
    routes = {r for r in api_routes() if not r.startswith(EXTERNAL_DIALECT_PREFIXES)} - DOC_ROUTES
    missing = sorted(r for r in routes if r not in documented)
    assert not missing, f"routes missing from the OpenAPI schema: {missing}"


def test_external_dialects_stay_out_of_the_document(schema):
    leaked = sorted(path for path in schema["paths"] if path.startswith(EXTERNAL_DIALECT_PREFIXES))
    assert not leaked, f"external dialect routes in Aurum's OpenAPI document: {leaked}"


def test_every_operation_documents_its_problem_responses(schema):
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            codes = set(operation["responses"])
            expected = {"401", "403", "429", "500"}
            if "{" in path:
                expected.add("404")
            if method in {"post", "put", "patch"}:
                expected |= {"400", "413", "415"}
            assert expected <= codes, f"{method.upper()} {path} lacks {sorted(expected - codes)}"
            for code in expected:
                content = operation["responses"][code]["content"]
                assert list(content) == ["application/problem+json"], (method, path, code)


def model_serializers():
    """Every ModelSerializer of the project's apps (their modules are imported by the URL conf)."""
    pending, found = [serializers.ModelSerializer], []
    while pending:
        for subclass in pending.pop().__subclasses__():
            pending.append(subclass)
            if subclass.__module__.startswith("apps."):
                found.append(subclass)
    return found


def documented_columns(schema):
    """(serializer, field name, its model column, its documented property) for every field of a
    ModelSerializer documented as a component that reads a concrete column directly."""
    components = schema["components"]["schemas"]
    for serializer_class in model_serializers():
        component = components.get(serializer_class.__name__.removesuffix("Serializer"))
        if component is None:
            continue
        model = serializer_class.Meta.model
        for name, field in serializer_class().fields.items():
            try:
                column = model._meta.get_field(field.source)
            except (FieldDoesNotExist, TypeError):
                continue
            if column.concrete and name in component.get("properties", {}):
                yield serializer_class, name, field, column, component["properties"][name]


def test_fields_over_nullable_columns_are_documented_nullable(schema):
    # DRF renders a field as null when its column is, whatever the field's allow_null: a field declared
    # by hand (e.g. SlugRelatedField(read_only=True) on an optional FK) must still say nullable.
    columns = [(cls, name, prop) for cls, name, _, column, prop in documented_columns(schema) if column.null]
    wrong = [f"{cls.__name__}.{name}" for cls, name, prop in columns if not prop.get("nullable")]
    assert columns and not wrong, f"fields over nullable columns not documented nullable: {wrong}"
    components = schema["components"]["schemas"]
    assert components["ContractVersion"]["properties"]["decided_by"]["nullable"]
    assert components["Policy"]["properties"]["contract"]["nullable"]
    assert components["DataProduct"]["properties"]["owner"]["nullable"]


def test_read_only_fields_over_blank_columns_document_the_empty_string(schema):
    # DRF drops allow_blank from read-only fields, but renders a blank column as "": a choice, URL or
    # slug field over one must still accept "" in the document.
    def accepts_blank(prop):
        options = prop.get("oneOf", []) + prop.get("anyOf", [])
        if any(option.get("$ref", "").endswith("/BlankEnum") or option.get("enum") == [""] for option in options):
            return True
        return "" in prop.get("enum", [""]) and not {"format", "pattern", "$ref", "minLength"} & set(prop)

    columns = [
        (cls, name, prop)
        for cls, name, field, column, prop in documented_columns(schema)
        if field.read_only and column.blank and column.empty_strings_allowed
    ]
    wrong = [f"{cls.__name__}.{name}" for cls, name, prop in columns if not accepts_blank(prop)]
    assert columns and not wrong, f"read-only fields over blank columns that refuse '': {wrong}"
    assert "" in schema["components"]["schemas"]["Source"]["properties"]["pull_url"]["anyOf"][1]["enum"]


def test_responses_are_documented_as_they_are_sent(schema):
    paths = schema["paths"]
    diff = paths["/api/v1/contract-versions/{id}/diff/"]["get"]
    # A plain list: neither paginated nor filtered like the versions list.
    assert diff["responses"]["200"]["content"]["application/json"]["schema"]["type"] == "array"
    assert {p["name"] for p in diff["parameters"]} == {"id", "against"}
    # A YAML document parses to an object, not a string.
    odcs = paths["/api/v1/contract-versions/{id}/odcs/"]["get"]["responses"]["200"]["content"]
    assert odcs["application/yaml"]["schema"]["type"] == "object"
    # An export in JSON is an array of rows, the other formats files.
    export = paths["/api/v1/exports/gdps/"]["get"]["responses"]["200"]["content"]
    assert export["application/json"]["schema"]["type"] == "array"
    assert export["text/csv"]["schema"] == {"type": "string", "format": "binary"}
    # Field problems may carry the source line (ODCS import) besides pointer, detail and code.
    field_problem = schema["components"]["schemas"]["FieldProblem"]
    assert set(field_problem["required"]) == {"pointer", "detail", "code"}
    assert field_problem["properties"]["line"]["nullable"]


def test_only_reads_are_documented_as_paginated(schema):
    # drf-spectacular wraps any list response of a viewset with a pagination class in a page, but
    # only list reads paginate: an action answering a plain list sets pagination_class=None.
    paginated = [
        f"{method.upper()} {path}"
        for path, operations in schema["paths"].items()
        for method, operation in operations.items()
        for response in operation["responses"].values()
        for content in response.get("content", {}).values()
        if "/Paginated" in content["schema"].get("$ref", "") and method != "get"
    ]
    assert not paginated, f"writes documented as answering a page: {paginated}"


def test_writes_document_what_their_views_require_and_refuse(schema):
    # The views validate with one all-optional serializer and check the rest themselves; the document
    # must still say which fields a create needs and leave out those an update refuses to change.
    def body(path, method):
        content = schema["paths"][path][method]["requestBody"]["content"]["application/json"]["schema"]
        return schema["components"]["schemas"][content["$ref"].rsplit("/", 1)[-1]]

    assert set(body("/api/v1/sources/", "post")["required"]) == {"key", "name", "contract"}
    assert {"key", "contract"}.isdisjoint(body("/api/v1/sources/{id}/", "patch")["properties"])
    assert set(body("/api/v1/policies/", "post")["required"]) == {"kind", "name", "parameters"}
    assert body("/api/v1/policies/{id}/revise/", "post")["required"] == ["parameters"]
    assert set(body("/api/v1/contract-versions/", "post")["required"]) == {"contract", "version"}
    assert "contract" not in body("/api/v1/contract-versions/{id}/", "patch")["properties"]
    assert body("/api/v1/contract-versions/{id}/reject/", "post")["required"] == ["comment"]
    assert {"key", "platform"}.isdisjoint(body("/api/v1/calendars/{id}/", "patch")["properties"])


def test_the_conflict_response_is_documented_where_it_can_happen(schema):
    assert "409" in schema["paths"]["/api/v1/memberships/"]["post"]["responses"]


def test_bearer_tokens_are_the_documented_security_scheme(schema):
    schemes = schema["components"]["securitySchemes"]
    assert schemes["apiToken"] == {
        "type": "http",
        "scheme": "bearer",
        "description": schemes["apiToken"]["description"],
    }


def test_the_schema_and_its_viewers_are_served(client):
    assert client.get("/api/v1/schema/").status_code == 200
    assert client.get("/api/v1/schema/?format=json").json()["info"]["title"] == "Aurum API"
    swagger = client.get("/api/v1/docs/")
    assert swagger.status_code == 200
    assert b"swagger-ui" in swagger.content and b"cdn.jsdelivr" not in swagger.content
    redoc = client.get("/api/v1/redoc/")
    assert redoc.status_code == 200 and b"cdn.jsdelivr" not in redoc.content
