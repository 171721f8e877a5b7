"""Structured logs: every line carries request id, user and tenant; the request id is echoed."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator

import pytest
from rest_framework.test import APIClient

from apps.kernel.logcontext import bind, request_id_var, tenant_var, user_var
from apps.runtime.logging import JsonFormatter, RequestContextFilter

GENERATED_ID = re.compile(r"^[0-9a-f]{32}$")


@pytest.fixture
def json_log() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """A logger wired like the production console handler, writing into a buffer."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RequestContextFilter())
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("tests.runtime.json")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    yield logger, stream
    logger.removeHandler(handler)
    logger.propagate = True


@pytest.fixture
def log_context() -> Iterator[None]:
    tokens = [(var, var.set(var.get())) for var in (request_id_var, user_var, tenant_var)]
    yield
    for var, token in tokens:
        var.reset(token)


def lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_the_json_formatter_writes_one_object_per_line_with_the_request_context(json_log, log_context):
    logger, stream = json_log
    request_id_var.set("req-123")
    bind(user="alice", tenant="tenant-a")

    logger.info("dataset %s published", "sales", extra={"dataset_id": 42})

    [entry] = lines(stream)
    assert entry["message"] == "dataset sales published"
    assert entry["level"] == "INFO" and entry["logger"] == "tests.runtime.json"
    assert (entry["request_id"], entry["user"], entry["tenant"]) == ("req-123", "alice", "tenant-a")
    assert entry["dataset_id"] == 42
    assert entry["ts"].endswith("+00:00")


def test_outside_a_request_the_context_fields_are_dashes(json_log):
    logger, stream = json_log
    logger.warning("from a task")
    [entry] = lines(stream)
    assert (entry["request_id"], entry["user"], entry["tenant"]) == ("-", "-", "-")


def test_an_exception_stays_inside_the_one_json_line(json_log, log_context):
    logger, stream = json_log
    try:
        raise ValueError("bad\nvalue")
    except ValueError:
        logger.exception("it failed")
    assert len(stream.getvalue().splitlines()) == 1
    [entry] = lines(stream)
    assert "ValueError: bad" in entry["exc_info"] and "Traceback" in entry["exc_info"]


def test_a_valid_incoming_request_id_is_echoed(client):
    response = client.get("/health/live", HTTP_X_REQUEST_ID="lb-7f3a.9:zz_01")
    assert response["X-Request-ID"] == "lb-7f3a.9:zz_01"


@pytest.mark.parametrize(
    "incoming",
    ["has spaces in it", "a" * 300, "semi;colon", "<script>", ""],
    ids=["spaces", "too-long", "semicolon", "markup", "empty"],
)
def test_an_invalid_incoming_request_id_is_replaced(client, incoming):
    response = client.get("/health/live", HTTP_X_REQUEST_ID=incoming)
    assert response["X-Request-ID"] != incoming
    assert GENERATED_ID.match(response["X-Request-ID"])


def test_each_request_without_an_id_gets_its_own(client):
    first = client.get("/health/live")["X-Request-ID"]
    second = client.get("/health/live")["X-Request-ID"]
    assert GENERATED_ID.match(first) and GENERATED_ID.match(second)
    assert first != second


def test_the_request_context_does_not_leak_past_the_request(client):
    client.get("/health/live", HTTP_X_REQUEST_ID="only-during-the-request")
    assert request_id_var.get() == "-"


@pytest.mark.django_db
def test_an_api_problem_carries_the_request_id(tenant_a):
    response = APIClient().get("/api/v1/tenants/", HTTP_X_REQUEST_ID="trace-42")
    assert response.status_code == 401
    assert response.json()["request_id"] == "trace-42" == response["X-Request-ID"]


@pytest.mark.django_db
def test_an_api_problem_carries_a_generated_request_id_too(tenant_a):
    response = APIClient().get("/api/v1/tenants/", HTTP_X_REQUEST_ID="not valid")
    body = response.json()
    assert GENERATED_ID.match(body["request_id"])
    assert body["request_id"] == response["X-Request-ID"]


@pytest.mark.django_db
def test_a_log_line_written_during_a_request_names_the_request_user_and_tenant(client, member, tenant_a):
    user = member(tenant_a)
    client.force_login(user)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RequestContextFilter())
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("django.request")  # logs "Not Found: …" inside the middleware chain
    logger.addHandler(handler)
    try:
        response = client.get("/portal/no-such-page/", HTTP_X_REQUEST_ID="req-404")
    finally:
        logger.removeHandler(handler)

    assert response.status_code == 404
    [entry] = [e for e in lines(stream) if "no-such-page" in e["message"]]
    assert entry["request_id"] == "req-404"
    assert entry["user"] == user.username
    assert entry["tenant"] == "tenant-a"
