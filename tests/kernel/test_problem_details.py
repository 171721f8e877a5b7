"""Every API error is an RFC 9457 problem: application/problem+json with type, title, status, detail."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from apps.host.api.views import MembershipViewSet
from apps.kernel.api.throttling import PrincipalRateThrottle
from apps.kernel.roles import RoleChoices

pytestmark = pytest.mark.django_db


def assert_problem(response, status: int, slug: str) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status
    assert body["type"] == f"urn:aurum:problem:{slug}"
    assert body["title"]
    assert body["detail"]
    assert body["instance"].startswith("/api/v1/")
    assert body["request_id"] == response["X-Request-ID"]
    return body


def test_validation_errors_list_each_field_with_a_pointer(tenant_a, token_client):
    client = token_client(tenant_a, RoleChoices.ADMIN)
    body = assert_problem(client.post("/api/v1/memberships/", {"username": "", "role": "overlord"}), 400, "validation")
    pointers = {e["pointer"]: e for e in body["errors"]}
    assert set(pointers) == {"#/username", "#/role"}
    assert pointers["#/role"]["code"] == "invalid_choice"
    assert "overlord" in pointers["#/role"]["detail"]


def test_malformed_json_is_a_400_problem(tenant_a, token_client):
    client = token_client(tenant_a, RoleChoices.ADMIN)
    response = client.generic("POST", "/api/v1/memberships/", '{"username": ', content_type="application/json")
    body = assert_problem(response, 400, "parse-error")
    assert "JSON parse error" in body["detail"]


def test_no_credentials_is_a_401_problem(tenant_a):
    response = APIClient().get("/api/v1/tenants/")
    assert_problem(response, 401, "not-authenticated")
    assert response["WWW-Authenticate"] == 'Bearer realm="aurum"'


def test_a_role_without_the_scope_is_a_403_problem(tenant_a, token_client):
    client = token_client(tenant_a, RoleChoices.ANALYST, scopes=["read"])
    body = assert_problem(client.post("/api/v1/memberships/", {"username": "x", "role": "analyst"}), 403,
                          "insufficient-scope")  # fmt: skip
    assert "'admin' scope" in body["detail"]


def test_a_token_without_the_scope_is_a_403_problem(tenant_a, token_client):
    client = token_client(tenant_a, RoleChoices.ADMIN, scopes=["read"])
    assert_problem(client.post("/api/v1/memberships/", {"username": "x", "role": "analyst"}), 403,
                   "insufficient-scope")  # fmt: skip


def test_a_suspended_tenant_is_refused(tenant_a, token_client):
    from apps.host.services import tenant_set_status

    client = token_client(tenant_a, RoleChoices.ADMIN)
    tenant_set_status(actor=None, tenant=tenant_a, status="suspended")
    assert_problem(client.get("/api/v1/tenants/"), 403, "tenant-suspended")


def test_a_session_user_without_a_tenant_is_told_to_choose_one(outsider):
    client = APIClient()
    client.force_login(outsider)
    assert_problem(client.get("/api/v1/tenants/"), 403, "no-active-tenant")


def test_an_unknown_object_is_a_404_problem(tenant_a, token_client):
    client = token_client(tenant_a, RoleChoices.ADMIN)
    assert_problem(client.get("/api/v1/memberships/999999/"), 404, "not-found")


def test_an_unknown_api_path_is_a_404_problem(tenant_a, token_client, settings):
    client = token_client(tenant_a, RoleChoices.ADMIN)
    assert_problem(client.get("/api/v1/no-such-thing/"), 404, "not-found")
    settings.DEBUG = True  # Django would answer its HTML debug page here without the catch-all
    assert_problem(client.get("/api/v1/no/such/thing"), 404, "not-found")


def test_a_wrong_method_is_a_405_problem(tenant_a, token_client):
    client = token_client(tenant_a, RoleChoices.ADMIN)
    assert_problem(client.put("/api/v1/tenants/tenant-a/", {}), 405, "method-not-allowed")


def test_a_conflicting_create_is_a_409_problem(tenant_a, token_client, member):
    member(tenant_a, RoleChoices.ANALYST, username="ann")
    client = token_client(tenant_a, RoleChoices.ADMIN)
    body = assert_problem(client.post("/api/v1/memberships/", {"username": "ann", "role": "steward"}), 409, "conflict")
    assert "PATCH" in body["detail"]


def test_an_oversized_body_is_a_413_problem_before_it_is_read(tenant_a, token_client, settings):
    settings.AURUM_MAX_REQUEST_BYTES = 100
    client = token_client(tenant_a, RoleChoices.ADMIN)
    body = assert_problem(
        client.post("/api/v1/memberships/", {"username": "x" * 200, "role": "steward"}), 413, "payload-too-large"
    )
    assert body["max_bytes"] == 100


def test_an_unsupported_media_type_is_a_415_problem(tenant_a, token_client):
    client = token_client(tenant_a, RoleChoices.ADMIN)
    response = client.generic("POST", "/api/v1/memberships/", "username=x", content_type="text/plain")
    assert_problem(response, 415, "unsupported-media-type")


def test_too_many_requests_is_a_429_problem_with_retry_after(tenant_a, token_client, monkeypatch):
    monkeypatch.setattr(PrincipalRateThrottle, "THROTTLE_RATES", {"principal": "2/min"})
    client = token_client(tenant_a, RoleChoices.ADMIN)
    assert client.get("/api/v1/tenants/").status_code == 200
    assert client.get("/api/v1/tenants/").status_code == 200
    response = client.get("/api/v1/tenants/")
    assert_problem(response, 429, "throttled")
    assert int(response["Retry-After"]) > 0


def test_an_unexpected_error_is_a_500_problem_that_hides_internals(tenant_a, token_client, monkeypatch, caplog):
    def explode(self, request, *args, **kwargs):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(MembershipViewSet, "list", explode)
    client = token_client(tenant_a, RoleChoices.ADMIN)
    body = assert_problem(client.get("/api/v1/memberships/"), 500, "server-error")
    assert "secret internals" not in body["detail"]
    assert "secret internals" in caplog.text  # logged for operators, with the traceback
