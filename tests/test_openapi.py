"""The OpenAPI document describes every API route and the problems each can answer."""

from __future__ import annotations

import re

import pytest
from django.urls import URLPattern, URLResolver, get_resolver
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.validation import validate_schema

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
