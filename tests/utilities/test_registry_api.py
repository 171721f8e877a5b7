"""The schema registry's native API: subjects, versions, diffs, compatibility answers, config."""

from __future__ import annotations

import copy
import json

import pytest

from apps.kernel.roles import RoleChoices
from apps.utilities.models import SchemaSubject, SchemaVersion

pytestmark = pytest.mark.django_db

PROBLEM_JSON = "application/problem+json"
V1 = {
    "type": "object",
    "properties": {"id": {"type": "integer"}, "amount": {"type": "number"}},
    "required": ["id"],
    "additionalProperties": False,
}
# Compatible under BACKWARD: an optional property added to a closed content model.
V2 = copy.deepcopy(V1) | {"properties": {**V1["properties"], "note": {"type": "string"}}}
# Incompatible: `amount` becomes a string, so v2's numbers no longer validate.
V3 = copy.deepcopy(V2) | {"properties": {**V2["properties"], "amount": {"type": "string"}}}


def register(client, subject, schema):
    return client.post(f"/api/v1/subjects/{subject}/versions/", {"schema": schema}, format="json")


@pytest.fixture
def writer(tenant_a, token_client):
    return token_client(tenant_a, RoleChoices.STEWARD, scopes=["read", "write"])


@pytest.fixture
def orders(writer):
    """`orders-value` with v1 and a compatible v2."""
    assert register(writer, "orders-value", V1).status_code == 201
    assert register(writer, "orders-value", V2).status_code == 201
    return "orders-value"


class TestRegistration:
    def test_v1_then_a_compatible_v2_get_versions_1_and_2(self, writer):
        first = register(writer, "sales.orders", V1)
        assert first.status_code == 201, first.content
        body = first.json()
        assert body["subject"] == "sales.orders"
        assert body["version"] == 1
        assert body["schema"] == V1
        assert body["breaking"] is False
        assert body["created_by"] == writer.user.username
        second = register(writer, "sales.orders", V2)
        assert second.status_code == 201
        assert second.json()["version"] == 2
        assert second.json()["schema_id"] != body["schema_id"]

    def test_an_incompatible_v3_is_a_409_problem_naming_the_rule(self, writer, orders):
        response = register(writer, orders, V3)

        assert response.status_code == 409
        assert response["Content-Type"] == PROBLEM_JSON
        problem = response.json()
        assert problem["type"] == "urn:aurum:problem:incompatible-schema"
        assert "BACKWARD" in problem["detail"]
        assert problem["incompatibilities"] == [
            {
                "kind": "TYPE_CHANGED",
                "path": "#/properties/amount",
                "message": problem["incompatibilities"][0]["message"],
                "version": 2,
            }
        ]
        assert "`amount` type changed from number to string" in problem["incompatibilities"][0]["message"]
        assert SchemaVersion.objects.filter(subject__name=orders).count() == 2

    def test_the_same_schema_again_returns_its_version_with_200(self, writer, orders):
        first = writer.get(f"/api/v1/subjects/{orders}/versions/1/").json()

        again = register(writer, orders, copy.deepcopy(V1))

        assert again.status_code == 200
        assert again.json()["version"] == 1
        assert again.json()["schema_id"] == first["schema_id"]
        assert SchemaVersion.objects.filter(subject__name=orders).count() == 2

    def test_a_schema_is_stored_once_per_tenant_whatever_the_subject(self, writer, orders):
        other = register(writer, "orders-archive", V1)
        assert other.status_code == 201
        assert other.json()["version"] == 1
        assert other.json()["schema_id"] == writer.get(f"/api/v1/subjects/{orders}/versions/1/").json()["schema_id"]

    @pytest.mark.parametrize(
        ("schema", "fragment"),
        [("a string", "JSON object"), ({"type": 12}, "Not a valid JSON Schema"), (["x"], "JSON object")],
    )
    def test_an_invalid_schema_is_a_400_with_a_pointer(self, writer, schema, fragment):
        response = register(writer, "bad", schema)
        assert response.status_code == 400
        assert response["Content-Type"] == PROBLEM_JSON
        errors = response.json()["errors"]
        assert errors[0]["pointer"] == "#/schema"
        assert fragment in errors[0]["detail"]
        assert not SchemaSubject.objects.filter(name="bad").exists()

    def test_a_read_only_token_cannot_register(self, tenant_a, token_client):
        reader = token_client(tenant_a, RoleChoices.ANALYST, scopes=["read"])
        response = register(reader, "orders-value", V1)
        assert response.status_code == 403
        assert response.json()["type"] == "urn:aurum:problem:insufficient-scope"


class TestReading:
    def test_the_list_shows_the_tenants_subjects_with_their_levels(self, writer, orders):
        register(writer, "sales.orders", V1)

        body = writer.get("/api/v1/subjects/").json()

        assert body["count"] == 2
        by_name = {item["name"]: item for item in body["results"]}
        assert list(by_name) == ["orders-value", "sales.orders"]
        assert by_name["orders-value"]["latest_version"] == 2
        assert by_name["orders-value"]["compatibility"] is None
        assert by_name["orders-value"]["effective_compatibility"] == "BACKWARD"

    def test_the_detail_has_the_effective_level_lenient_and_versions(self, writer, orders):
        body = writer.get(f"/api/v1/subjects/{orders}/").json()
        assert body["name"] == orders
        assert body["effective_compatibility"] == "BACKWARD"
        assert body["lenient"] is False
        assert [v["version"] for v in body["versions"]] == [1, 2]
        assert set(body["versions"][0]) == {"version", "schema_id", "breaking", "created_at"}

    def test_a_dotted_subject_name_resolves(self, writer):
        register(writer, "sales.orders.v2-final", V1)
        assert writer.get("/api/v1/subjects/sales.orders.v2-final/").status_code == 200
        assert writer.get("/api/v1/subjects/sales.orders.v2-final/versions/latest/").json()["version"] == 1

    def test_a_version_by_number_and_latest(self, writer, orders):
        one = writer.get(f"/api/v1/subjects/{orders}/versions/1/").json()
        latest = writer.get(f"/api/v1/subjects/{orders}/versions/latest/").json()
        assert one["version"] == 1 and one["schema"] == V1
        assert latest["version"] == 2 and latest["schema"] == V2
        assert set(latest) == {"subject", "version", "schema_id", "schema", "breaking", "created_at", "created_by"}

    def test_the_versions_collection_is_paginated(self, writer, orders):
        body = writer.get(f"/api/v1/subjects/{orders}/versions/").json()
        assert body["count"] == 2
        assert [v["version"] for v in body["results"]] == [1, 2]

    def test_unknown_subject_version_or_version_text(self, writer, orders):
        assert writer.get("/api/v1/subjects/nope/").status_code == 404
        assert writer.get("/api/v1/subjects/nope/versions/").status_code == 404
        missing = writer.get(f"/api/v1/subjects/{orders}/versions/9/")
        assert missing.status_code == 404
        assert missing["Content-Type"] == PROBLEM_JSON
        assert "no version 9" in missing.json()["detail"]
        for text in ("abc", "0", "-1"):
            bad = writer.get(f"/api/v1/subjects/{orders}/versions/{text}/")
            assert bad.status_code == 400, text
            assert bad.json()["type"] == "urn:aurum:problem:invalid-version"

    def test_a_non_ascii_digit_is_an_invalid_version_not_a_server_error(self, writer, orders):
        # '²'.isdigit() is true but int('²') raises: it must be refused like any other text.
        for response in (writer.get(f"/api/v1/subjects/{orders}/versions/²/"),
                         writer.get(f"/api/v1/subjects/{orders}/diff/", {"to": "²"}),
                         writer.get(f"/api/v1/subjects/{orders}/diff/", {"from": "١"})):  # fmt: skip
            assert response.status_code == 400, response.content[:300]
            assert response.json()["type"] == "urn:aurum:problem:invalid-version"


class TestDiff:
    def test_the_diff_between_two_versions_lists_every_change(self, writer, orders):
        body = writer.get(f"/api/v1/subjects/{orders}/diff/", {"from": 1, "to": 2}).json()
        assert body == {
            "subject": orders,
            "from": 1,
            "to": 2,
            "changes": [
                {
                    "kind": "OPTIONAL_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL",
                    "path": "#/properties/note",
                    "message": "field `note` added (optional)",
                }
            ],
        }

    def test_without_parameters_it_compares_the_latest_with_the_one_before(self, writer, orders):
        body = writer.get(f"/api/v1/subjects/{orders}/diff/").json()
        assert (body["from"], body["to"]) == (1, 2)

    def test_bad_or_missing_versions(self, writer, orders):
        assert writer.get(f"/api/v1/subjects/{orders}/diff/", {"from": 1, "to": 7}).status_code == 404
        assert writer.get(f"/api/v1/subjects/{orders}/diff/", {"from": "x"}).status_code == 400
        register(writer, "single", V1)
        assert writer.get("/api/v1/subjects/single/diff/").status_code == 400


class TestCompatibilityCheck:
    def url(self, subject):
        return f"/api/v1/subjects/{subject}/compatibility/"

    def test_it_answers_which_rule_fails_and_why(self, writer, orders):
        response = writer.post(self.url(orders), {"schema": V3}, format="json")

        assert response.status_code == 200
        body = response.json()
        assert body["compatible"] is False
        assert body["mode"] == "BACKWARD"
        [problem] = body["incompatibilities"]
        assert problem["kind"] == "TYPE_CHANGED"
        assert problem["path"] == "#/properties/amount"
        assert problem["version"] == 2
        assert "which the new schema rejects" in problem["message"]
        assert SchemaVersion.objects.filter(subject__name=orders).count() == 2, "a check registers nothing"

    def test_a_compatible_schema_and_another_mode(self, writer, orders):
        ok = writer.post(self.url(orders), {"schema": V2}, format="json").json()
        assert ok == {"compatible": True, "mode": "BACKWARD", "incompatibilities": []}
        forced = writer.post(self.url(orders), {"schema": V3, "mode": "NONE"}, format="json").json()
        assert forced["compatible"] is True and forced["mode"] == "NONE"
        transitive = writer.post(self.url(orders), {"schema": V3, "mode": "FULL_TRANSITIVE"}, format="json").json()
        assert {p["version"] for p in transitive["incompatibilities"]} == {1, 2}

    def test_a_read_only_token_may_check(self, tenant_a, token_client, orders):
        reader = token_client(tenant_a, RoleChoices.CONSUMER, scopes=["read"])
        response = reader.post(self.url(orders), {"schema": V3}, format="json")
        assert response.status_code == 200
        assert response.json()["compatible"] is False

    def test_invalid_input(self, writer, orders):
        assert writer.post(self.url(orders), {"schema": {"type": 5}}, format="json").status_code == 400
        assert writer.post(self.url(orders), {"schema": V2, "mode": "SIDEWAYS"}, format="json").status_code == 400
        assert writer.post(self.url("nope"), {"schema": V2}, format="json").status_code == 404


class TestConfig:
    def url(self, subject):
        return f"/api/v1/subjects/{subject}/config/"

    def test_setting_and_clearing_the_subject_level(self, writer, orders):
        response = writer.put(self.url(orders), {"compatibility": "FULL", "lenient": True}, format="json")
        assert response.status_code == 200, response.content
        body = response.json()
        assert (body["compatibility"], body["effective_compatibility"], body["lenient"]) == ("FULL", "FULL", True)

        body = writer.put(self.url(orders), {"compatibility": None}, format="json").json()
        assert (body["compatibility"], body["effective_compatibility"], body["lenient"]) == (None, "BACKWARD", True)

        body = writer.put(self.url(orders), {"lenient": False}, format="json").json()
        assert (body["compatibility"], body["lenient"]) == (None, False)

    def test_the_level_decides_registration(self, writer, orders):
        writer.put(self.url(orders), {"compatibility": "NONE"}, format="json")
        response = register(writer, orders, V3)
        assert response.status_code == 201
        assert response.json()["version"] == 3
        assert response.json()["breaking"] is False, "not a break under NONE"

    def test_invalid_config(self, writer, orders, tenant_a, token_client):
        assert writer.put(self.url(orders), {"compatibility": "SIDEWAYS"}, format="json").status_code == 400
        assert writer.put(self.url(orders), {}, format="json").status_code == 400
        assert writer.put(self.url("nope"), {"compatibility": "FULL"}, format="json").status_code == 404
        reader = token_client(tenant_a, RoleChoices.ANALYST, scopes=["read"])
        assert reader.put(self.url(orders), {"compatibility": "FULL"}, format="json").status_code == 403


class TestTenantIsolation:
    def test_another_tenant_sees_nothing_and_changes_nothing(self, writer, orders, tenant_b, token_client):
        other = token_client(tenant_b, RoleChoices.ADMIN)

        assert other.get("/api/v1/subjects/").json()["count"] == 0
        for url in (
            f"/api/v1/subjects/{orders}/",
            f"/api/v1/subjects/{orders}/versions/",
            f"/api/v1/subjects/{orders}/versions/1/",
            f"/api/v1/subjects/{orders}/versions/latest/",
            f"/api/v1/subjects/{orders}/diff/",
        ):
            response = other.get(url)
            assert response.status_code == 404, url
            assert response["Content-Type"] == PROBLEM_JSON
        assert other.post(f"/api/v1/subjects/{orders}/compatibility/", {"schema": V3}, format="json").status_code == 404
        assert other.put(
            f"/api/v1/subjects/{orders}/config/", {"compatibility": "NONE"}, format="json"
        ).status_code == (404)
        assert SchemaSubject.objects.get(tenant__slug="tenant-a", name=orders).compatibility == ""

    def test_registering_the_same_name_makes_the_other_tenants_own_subject(
        self, writer, orders, tenant_b, token_client
    ):
        other = token_client(tenant_b, RoleChoices.ADMIN)

        response = register(other, orders, V3)

        assert response.status_code == 201
        assert response.json()["version"] == 1, "B's subject starts at 1; A's history does not apply"
        assert writer.get(f"/api/v1/subjects/{orders}/versions/latest/").json()["version"] == 2


def test_the_registry_is_documented_with_its_conflict():
    from drf_spectacular.generators import SchemaGenerator

    paths = SchemaGenerator().get_schema(request=None, public=True)["paths"]
    assert "409" in paths["/api/v1/subjects/{name}/versions/"]["post"]["responses"]
    assert {"/api/v1/subjects/{name}/diff/", "/api/v1/subjects/{name}/versions/{version}/"} <= set(paths)


class TestContractSubjectsAreManagedByTheContractLifecycle:
    """contract.* subjects change only when a contract version is activated (after four eyes)."""

    def test_the_registry_apis_cannot_write_them(self, tenant_a, token_client):
        from base64 import b64encode

        writer = token_client(tenant_a, "admin")
        response = writer.post("/api/v1/subjects/contract.orders/versions/", {"schema": V1}, format="json")
        assert response.status_code == 403
        assert response.json()["type"] == "urn:aurum:problem:managed-subject"
        response = writer.put("/api/v1/subjects/contract.orders/config/", {"compatibility": "NONE"}, format="json")
        assert response.status_code in (403, 404)

        basic = "Basic " + b64encode(f"x:{writer.token.plain}".encode()).decode()
        confluent = writer.__class__()
        confluent.credentials(HTTP_AUTHORIZATION=basic)
        body = {"schema": json.dumps(V1), "schemaType": "JSON"}
        response = confluent.post("/api/v1/registry/subjects/contract.orders/versions", body, format="json")
        assert (response.status_code, response.json()["error_code"]) == (403, 40301)
        response = confluent.put("/api/v1/registry/config/contract.orders", {"compatibility": "NONE"}, format="json")
        assert (response.status_code, response.json()["error_code"]) == (403, 40301)

    def test_a_tenant_default_change_does_not_loosen_an_existing_contract_subject(self, tenant_a, member):
        from apps.host import services as host
        from apps.utilities.models import SchemaSubject
        from apps.utilities.services import registry_config_set

        steward, admin = member(tenant_a, "steward"), member(tenant_a, "admin")
        contract = host.contract_create(actor=steward, tenant=tenant_a, key="orders", name="Orders")
        version = host.contract_version_create(actor=steward, contract=contract, version="1.0.0",
                                               fields=[{"name": "id", "logical_type": "string", "required": True}])  # fmt: skip
        host.contract_version_propose(actor=steward, version=version)
        host.contract_version_approve(actor=admin, version=version)
        host.contract_version_activate(actor=admin, version=version)
        registry_config_set(actor=admin, tenant=tenant_a, compatibility="NONE")
        assert SchemaSubject.objects.get(name="contract.orders").compatibility == "BACKWARD"
