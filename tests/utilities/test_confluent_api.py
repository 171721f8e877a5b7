"""Confluent Schema Registry's REST dialect under /api/v1/registry/: shapes, error codes, auth, tenants.

The last test drives Confluent's own Python client (`confluent-kafka`) against a live server.
"""

from __future__ import annotations

import base64
import copy
import json
from typing import Any

import pytest
from rest_framework.test import APIClient

from apps.kernel.roles import RoleChoices
from apps.utilities.models import SchemaSubject, SchemaVersion
from tests.factories import ApiTokenFactory, MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db

BASE = "/api/v1/registry"
V1_JSON = "application/vnd.schemaregistry.v1+json"
V1 = {
    "type": "object",
    "properties": {"id": {"type": "integer"}, "amount": {"type": "number"}},
    "required": ["id"],
    "additionalProperties": False,
}
V2 = copy.deepcopy(V1) | {"properties": {**V1["properties"], "note": {"type": "string"}}}  # compatible
V3 = copy.deepcopy(V2) | {"properties": {**V2["properties"], "amount": {"type": "string"}}}  # incompatible
AVRO_RECORD = {"type": "record", "name": "Order", "fields": [{"name": "id", "type": "long"}]}


class Registry:
    """A Confluent-style caller: Basic auth with the token as password, Confluent's media type."""

    def __init__(self, token: Any, username: str = "any-user") -> None:
        self.token = token
        self.http = APIClient()
        credentials = base64.b64encode(f"{username}:{token.plain}".encode()).decode()
        self.http.credentials(HTTP_AUTHORIZATION=f"Basic {credentials}")

    def get(self, path: str, **extra: Any) -> Any:
        return self.http.get(BASE + path, **extra)

    def send(self, method: str, path: str, body: Any, content_type: str = V1_JSON) -> Any:
        return getattr(self.http, method)(BASE + path, data=json.dumps(body), content_type=content_type)

    def post(self, path: str, body: Any, **kwargs: Any) -> Any:
        return self.send("post", path, body, **kwargs)

    def put(self, path: str, body: Any, **kwargs: Any) -> Any:
        return self.send("put", path, body, **kwargs)

    def delete(self, path: str) -> Any:
        return self.http.delete(BASE + path)

    def register(self, subject: str, schema: dict[str, Any], **fields: Any) -> Any:
        return self.post(f"/subjects/{subject}/versions", {"schema": json.dumps(schema), "schemaType": "JSON"} | fields)


def registry_for(tenant: Any, role: str = RoleChoices.STEWARD, scopes: list[str] | None = None) -> Registry:
    user = UserFactory()
    MembershipFactory(tenant=tenant, user=user, role=role)
    return Registry(ApiTokenFactory(tenant=tenant, user=user, scopes=scopes or ["read", "write"]))


def assert_error(response: Any, status: int, error_code: int) -> dict[str, Any]:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == V1_JSON
    body = response.json()
    assert set(body) == {"error_code", "message"}, body
    assert body["error_code"] == error_code, body
    return body


@pytest.fixture
def registry(tenant_a):
    return registry_for(tenant_a)


@pytest.fixture
def orders(registry):
    """`orders-value` with v1 and a compatible v2; returns their schema ids."""
    first = registry.register("orders-value", V1)
    second = registry.register("orders-value", V2)
    assert first.status_code == second.status_code == 200, (first.content, second.content)
    return first.json()["id"], second.json()["id"]


class TestRegister:
    def test_register_answers_the_schema_id(self, registry):
        response = registry.register("orders-value", V1)

        assert response.status_code == 200
        assert response["Content-Type"] == V1_JSON
        assert set(response.json()) == {"id"}
        assert isinstance(response.json()["id"], int)

    def test_v2_gets_a_new_id_and_the_same_schema_again_the_same_id(self, registry, orders):
        v1_id, v2_id = orders
        assert v1_id != v2_id
        assert registry.register("orders-value", V1).json() == {"id": v1_id}
        assert registry.register("orders-value", copy.deepcopy(V2)).json() == {"id": v2_id}
        assert registry.get("/subjects/orders-value/versions").json() == [1, 2]
        assert registry.register("orders-archive", V1).json() == {"id": v1_id}, "one id per content in a tenant"

    def test_an_incompatible_v3_is_409_with_code_409_and_the_reason(self, registry, orders):
        body = assert_error(registry.register("orders-value", V3), 409, 409)

        assert body["message"].startswith(
            "Schema being registered is incompatible with an earlier schema for subject 'orders-value'"
        )
        assert "TYPE_CHANGED at #/properties/amount (against version 2)" in body["message"]
        assert SchemaVersion.objects.filter(subject__name="orders-value").count() == 2

    @pytest.mark.parametrize(
        "body",
        [
            {"schema": json.dumps(AVRO_RECORD), "schemaType": "AVRO"},
            {"schema": json.dumps(V1), "schemaType": "PROTOBUF"},
            {"schema": json.dumps(AVRO_RECORD)},  # no schemaType means AVRO to Confluent
            {"schema": '"string"'},  # an Avro primitive
            {"schema": "{not json", "schemaType": "JSON"},
            {"schema": json.dumps({"type": 12}), "schemaType": "JSON"},
            {"schema": "", "schemaType": "JSON"},
            {"schema": V1, "schemaType": "JSON"},  # an object, not the string Confluent sends
            {"schemaType": "JSON"},
            {"schema": json.dumps(V1), "schemaType": "JSON", "references": [{"name": "x", "subject": "y"}]},
            ["not", "an", "object"],
        ],
    )
    def test_an_invalid_schema_is_422_42201(self, registry, body):
        result = assert_error(registry.post("/subjects/bad/versions", body), 422, 42201)
        assert result["message"].startswith("Invalid schema")
        assert not SchemaSubject.objects.filter(name="bad").exists()

    def test_avro_is_refused_with_a_message_that_says_why(self, registry):
        avro = assert_error(registry.post("/subjects/x/versions", {"schema": json.dumps(AVRO_RECORD)}), 422, 42201)
        assert 'needs "schemaType": "JSON"' in avro["message"]
        typed = registry.post("/subjects/x/versions", {"schema": json.dumps(AVRO_RECORD), "schemaType": "AVRO"})
        assert "JSON Schema only" in typed.json()["message"]

    def test_an_absent_schema_type_is_accepted_for_a_json_schema_object(self, registry):
        response = registry.post("/subjects/untyped/versions", {"schema": json.dumps(V1), "references": []})
        assert response.status_code == 200
        assert registry.get("/subjects/untyped/versions/1").json()["schemaType"] == "JSON"


class TestRead:
    def test_subjects_and_versions(self, registry, orders):
        registry.register("sales.orders", V1)
        assert registry.get("/subjects").json() == ["orders-value", "sales.orders"]
        assert registry.get("/subjects", data={"subjectPrefix": "sales."}).json() == ["sales.orders"]
        assert registry.get("/subjects/orders-value/versions").json() == [1, 2]
        assert registry.get("/subjects/").status_code == 200, "a trailing slash is tolerated"

    def test_a_version_by_number_and_latest(self, registry, orders):
        v1_id, v2_id = orders
        one = registry.get("/subjects/orders-value/versions/1")
        assert one["Content-Type"] == V1_JSON
        body = one.json()
        assert set(body) == {"subject", "id", "version", "schemaType", "schema"}
        assert (body["subject"], body["id"], body["version"], body["schemaType"]) == ("orders-value", v1_id, 1, "JSON")
        assert isinstance(body["schema"], str) and json.loads(body["schema"]) == V1
        latest = registry.get("/subjects/orders-value/versions/latest").json()
        assert (latest["id"], latest["version"], json.loads(latest["schema"])) == (v2_id, 2, V2)
        assert registry.get("/subjects/orders-value/versions/-1").json()["version"] == 2

    def test_the_raw_schema_of_a_version(self, registry, orders):
        assert registry.get("/subjects/orders-value/versions/latest/schema").json() == V2
        assert registry.get("/subjects/orders-value/versions/1/schema").json() == V1

    def test_a_schema_by_id(self, registry, orders):
        v1_id, _ = orders
        registry.register("orders-archive", V1)
        body = registry.get(f"/schemas/ids/{v1_id}").json()
        assert set(body) == {"schema", "schemaType"}
        assert body["schemaType"] == "JSON" and json.loads(body["schema"]) == V1
        assert registry.get(f"/schemas/ids/{v1_id}/schema").json() == V1
        assert registry.get(f"/schemas/ids/{v1_id}/subjects").json() == ["orders-archive", "orders-value"]
        assert registry.get(f"/schemas/ids/{v1_id}/versions").json() == [
            {"subject": "orders-archive", "version": 1},
            {"subject": "orders-value", "version": 1},
        ]

    def test_is_a_schema_registered_under_a_subject(self, registry, orders):
        v1_id, _ = orders
        found = registry.post("/subjects/orders-value", {"schema": json.dumps(V1), "schemaType": "JSON"})
        assert found.status_code == 200
        assert found.json()["id"] == v1_id and found.json()["version"] == 1
        missing = registry.post("/subjects/orders-value", {"schema": json.dumps(V3), "schemaType": "JSON"})
        assert_error(missing, 404, 40403)
        assert_error(registry.post("/subjects/nope", {"schema": json.dumps(V1), "schemaType": "JSON"}), 404, 40401)

    def test_not_found_codes(self, registry, orders):
        assert (
            assert_error(registry.get("/subjects/nope/versions"), 404, 40401)["message"] == "Subject 'nope' not found."
        )
        assert_error(registry.get("/subjects/nope/versions/1"), 404, 40401)
        assert_error(registry.get("/subjects/orders-value/versions/9"), 404, 40402)
        assert_error(registry.get("/subjects/orders-value/versions/9/schema"), 404, 40402)
        assert_error(registry.get("/schemas/ids/999999"), 404, 40403)
        assert_error(registry.get("/schemas/ids/abc"), 404, 40403)

    @pytest.mark.parametrize("version", ["abc", "0", "-2", "2147483648", "1.5"])
    def test_a_bad_version_is_422_42202(self, registry, orders, version):
        assert_error(registry.get(f"/subjects/orders-value/versions/{version}"), 422, 42202)
        body = {"schema": json.dumps(V2), "schemaType": "JSON"}
        assert_error(registry.post(f"/compatibility/subjects/orders-value/versions/{version}", body), 422, 42202)

    def test_a_subject_with_only_a_config_has_no_versions(self, registry):
        assert registry.put("/config/later-value", {"compatibility": "FULL"}).status_code == 200
        assert registry.get("/subjects").json() == []
        assert_error(registry.get("/subjects/later-value/versions"), 404, 40401)


class TestCompatibility:
    def check(self, registry, schema, version="latest", query=""):
        body = {"schema": json.dumps(schema), "schemaType": "JSON"}
        return registry.post(f"/compatibility/subjects/orders-value/versions/{version}{query}", body)

    def test_against_a_version(self, registry, orders):
        assert self.check(registry, V2).json() == {"is_compatible": True}
        assert self.check(registry, V3).json() == {"is_compatible": False}
        assert self.check(registry, V3, version="1").json() == {"is_compatible": False}
        assert self.check(registry, V2, version="1").json() == {"is_compatible": True}

    def test_verbose_messages_name_the_rule_and_the_reason(self, registry, orders):
        body = self.check(registry, V3, query="?verbose=true").json()
        assert body["is_compatible"] is False
        [message] = body["messages"]
        assert message.startswith("TYPE_CHANGED at #/properties/amount (against version 2): ")
        assert "version 2 allows number values there, which the new schema rejects" in message
        assert self.check(registry, V2, query="?verbose=True").json() == {"is_compatible": True, "messages": []}

    def test_the_subject_level_decides_the_direction(self, registry, orders):
        registry.put("/config/orders-value", {"compatibility": "FORWARD"})
        # Forward: version 2 (closed) must read documents of the candidate, which may carry `extra`.
        extra = copy.deepcopy(V2) | {"properties": {**V2["properties"], "extra": {"type": "string"}}}
        body = self.check(registry, extra, query="?verbose=true").json()
        assert body["is_compatible"] is False
        assert body["messages"][0].startswith("PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL")

    def test_against_all_versions_runs_the_registration_check(self, registry, orders):
        body = {"schema": json.dumps(V3), "schemaType": "JSON"}
        assert registry.post("/compatibility/subjects/orders-value/versions", body).json() == {"is_compatible": False}
        unknown = registry.post("/compatibility/subjects/new-value/versions?verbose=true", body)
        assert unknown.json() == {"is_compatible": True, "messages": []}

    def test_errors(self, registry, orders):
        body = {"schema": json.dumps(V2), "schemaType": "JSON"}
        assert_error(registry.post("/compatibility/subjects/nope/versions/latest", body), 404, 40401)
        assert_error(registry.post("/compatibility/subjects/orders-value/versions/7", body), 404, 40402)
        bad = {"schema": json.dumps(AVRO_RECORD), "schemaType": "AVRO"}
        assert_error(registry.post("/compatibility/subjects/orders-value/versions/latest", bad), 422, 42201)


class TestConfig:
    def test_the_tenant_default(self, registry):
        assert registry.get("/config").json() == {"compatibilityLevel": "BACKWARD"}
        response = registry.put("/config", {"compatibility": "FULL"})
        assert response.status_code == 200
        assert response.json() == {"compatibility": "FULL"}
        assert registry.get("/config").json() == {"compatibilityLevel": "FULL"}

    def test_a_subject_level(self, registry, orders):
        assert_error(registry.get("/config/orders-value"), 404, 40408)
        assert registry.get("/config/orders-value?defaultToGlobal=true").json() == {"compatibilityLevel": "BACKWARD"}

        assert registry.put("/config/orders-value", {"compatibility": "none"}).json() == {"compatibility": "NONE"}
        assert registry.get("/config/orders-value").json() == {"compatibilityLevel": "NONE"}
        assert registry.register("orders-value", V3).status_code == 200, "NONE accepts the incompatible v3"

        assert registry.delete("/config/orders-value").json() == {"compatibilityLevel": "NONE"}
        assert_error(registry.get("/config/orders-value"), 404, 40408)
        assert_error(registry.delete("/config/orders-value"), 404, 40408)
        assert_error(registry.delete("/config/nope"), 404, 40401)

    @pytest.mark.parametrize("body", [{"compatibility": "SIDEWAYS"}, {"compatibility": 3}, {}, ["FULL"]])
    def test_a_bad_level_is_422_42203(self, registry, body):
        assert_error(registry.put("/config", body), 422, 42203)
        assert_error(registry.put("/config/orders-value", body), 422, 42203)
        assert registry.get("/config").json() == {"compatibilityLevel": "BACKWARD"}


class TestAuthentication:
    def test_basic_with_the_token_as_password_and_any_username(self, tenant_a, registry, orders):
        for username in ("", "x", "whatever@example.com"):
            assert Registry(registry.token, username=username).get("/subjects").json() == ["orders-value"]

    def test_a_bearer_token_works_too(self, registry, orders):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {registry.token.plain}")
        assert client.get(f"{BASE}/subjects").json() == ["orders-value"]

    @pytest.mark.parametrize(
        "authorization",
        [
            "Basic " + base64.b64encode(b"x:aur_wrong_token").decode(),
            "Basic " + base64.b64encode(b"no-password").decode(),
            "Basic !!!notbase64",
            "Bearer aur_wrong_token",
            None,
        ],
    )
    def test_a_wrong_or_missing_token_is_401_40101_with_a_basic_challenge(self, authorization):
        client = APIClient()
        if authorization:
            client.credentials(HTTP_AUTHORIZATION=authorization)
        response = client.get(f"{BASE}/subjects")
        assert_error(response, 401, 40101)
        assert response["WWW-Authenticate"].startswith("Basic")

    def test_a_read_only_token_reads_and_checks_but_cannot_write(self, tenant_a, orders):
        reader = registry_for(tenant_a, RoleChoices.CONSUMER, scopes=["read"])
        assert reader.get("/subjects/orders-value/versions").json() == [1, 2]
        body = {"schema": json.dumps(V3), "schemaType": "JSON"}
        assert reader.post("/compatibility/subjects/orders-value/versions/latest", body).status_code == 200
        assert (
            reader.post("/subjects/orders-value", {"schema": json.dumps(V1), "schemaType": "JSON"}).status_code == 200
        )

        forbidden = assert_error(reader.register("orders-value", V3), 403, 40301)
        assert "write" in forbidden["message"]
        assert_error(reader.put("/config", {"compatibility": "NONE"}), 403, 40301)
        assert_error(reader.put("/config/orders-value", {"compatibility": "NONE"}), 403, 40301)
        assert_error(reader.delete("/config/orders-value"), 403, 40301)

    def test_a_write_token_of_a_read_only_role_cannot_write(self, tenant_a):
        analyst = registry_for(tenant_a, RoleChoices.ANALYST, scopes=["read", "write"])
        assert_error(analyst.register("orders-value", V1), 403, 40301)


class TestTenantIsolation:
    def test_tenant_b_never_sees_tenant_a(self, registry, orders, tenant_b):
        v1_id, _ = orders
        registry.put("/config/orders-value", {"compatibility": "FULL"})
        other = registry_for(tenant_b)

        assert other.get("/subjects").json() == []
        assert_error(other.get("/subjects/orders-value/versions"), 404, 40401)
        assert_error(other.get("/subjects/orders-value/versions/latest"), 404, 40401)
        assert_error(other.get("/subjects/orders-value/versions/1/schema"), 404, 40401)
        assert_error(other.get(f"/schemas/ids/{v1_id}"), 404, 40403)
        assert_error(other.get(f"/schemas/ids/{v1_id}/schema"), 404, 40403)
        assert_error(other.get(f"/schemas/ids/{v1_id}/versions"), 404, 40403)
        assert_error(other.get("/config/orders-value"), 404, 40408)
        body = {"schema": json.dumps(V1), "schemaType": "JSON"}
        assert_error(other.post("/subjects/orders-value", body), 404, 40401)
        assert_error(other.post("/compatibility/subjects/orders-value/versions/latest", body), 404, 40401)
        assert_error(other.delete("/config/orders-value"), 404, 40401)
        assert other.get("/config").json() == {"compatibilityLevel": "BACKWARD"}

    def test_the_same_name_in_tenant_b_is_its_own_subject(self, registry, orders, tenant_b):
        other = registry_for(tenant_b)
        other_id = other.register("orders-value", V3).json()["id"]

        assert other_id not in orders
        assert other.get("/subjects/orders-value/versions").json() == [1]
        assert registry.get("/subjects/orders-value/versions").json() == [1, 2]
        assert_error(registry.get(f"/schemas/ids/{other_id}"), 404, 40403)


class TestContentTypes:
    def test_the_registry_media_types_and_plain_json_are_accepted(self, registry):
        body = {"schema": json.dumps(V1), "schemaType": "JSON"}
        for content_type in (V1_JSON, "application/vnd.schemaregistry+json", "application/json"):
            assert registry.post("/subjects/a/versions", body, content_type=content_type).status_code == 200

    def test_another_request_type_is_415_in_confluent_shape(self, registry):
        response = registry.http.post(f"{BASE}/subjects/a/versions", data="schema=x", content_type="text/plain")
        assert_error(response, 415, 415)

    def test_the_response_type_follows_accept(self, registry, orders):
        assert registry.get("/subjects")["Content-Type"] == V1_JSON
        plain = registry.get("/subjects", HTTP_ACCEPT="application/json")
        assert plain["Content-Type"] == "application/json"
        default = registry.get("/subjects", HTTP_ACCEPT="application/vnd.schemaregistry+json")
        assert default["Content-Type"] == "application/vnd.schemaregistry+json"
        assert registry.get("/subjects", HTTP_ACCEPT="text/html")["Content-Type"] == V1_JSON

    def test_errors_are_never_problem_details(self, registry):
        response = registry.http.post(f"{BASE}/subjects", data="{}", content_type=V1_JSON)
        assert_error(response, 405, 405)
        malformed = registry.http.post(f"{BASE}/subjects/a/versions", data="{oops", content_type=V1_JSON)
        assert_error(malformed, 400, 400)


@pytest.mark.client
@pytest.mark.django_db(transaction=True)
def test_confluents_own_client_registers_and_fetches_a_json_schema(live_server, tenant_a):
    """confluent-kafka's SchemaRegistryClient and JSON serializer, unchanged, against a live server."""
    from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
    from confluent_kafka.schema_registry.error import SchemaRegistryError
    from confluent_kafka.schema_registry.json_schema import JSONDeserializer, JSONSerializer
    from confluent_kafka.serialization import MessageField, SerializationContext

    token = registry_for(tenant_a).token
    config = {"url": live_server.url + BASE, "basic.auth.user.info": "x:" + token.plain}
    # Closed on the way out: a kept-alive connection would outlive the live server thread.
    with SchemaRegistryClient(config) as client:
        schema_id = client.register_schema("orders-value", Schema(json.dumps(V1), "JSON"))
        assert client.register_schema("orders-value", Schema(json.dumps(V1), "JSON")) == schema_id
        assert client.get_subjects() == ["orders-value"]
        assert client.get_versions("orders-value") == [1]
        fetched = client.get_schema(schema_id)
        assert (fetched.schema_type, json.loads(fetched.schema_str)) == ("JSON", V1)
        latest = client.get_latest_version("orders-value")
        assert (latest.schema_id, latest.version, latest.subject) == (schema_id, 1, "orders-value")
        assert client.get_version("orders-value", 1).schema_id == schema_id
        assert client.lookup_schema("orders-value", Schema(json.dumps(V1), "JSON")).version == 1

        assert client.test_compatibility("orders-value", Schema(json.dumps(V2), "JSON")) is True
        assert client.test_compatibility("orders-value", Schema(json.dumps(V3), "JSON")) is False
        assert client.set_compatibility("orders-value", "FULL") == {"compatibility": "FULL"}
        assert client.get_compatibility("orders-value") == "FULL"
        assert client.get_compatibility() == "BACKWARD"
        with pytest.raises(SchemaRegistryError) as refused:
            client.register_schema("orders-value", Schema(json.dumps(V2), "JSON"))  # not FULL compatible
        assert (refused.value.http_status_code, refused.value.error_code) == (409, 409)
        with pytest.raises(SchemaRegistryError) as missing:
            client.get_version("nope", 1)
        assert missing.value.error_code == 40401

        # The serializers register on first use and find the schema by id again on the way back.
        context = SerializationContext("payments", MessageField.VALUE)
        serializer = JSONSerializer(json.dumps(V1), client)
        payload = serializer({"id": 7, "amount": 12.5}, context)
        deserializer = JSONDeserializer(None, schema_registry_client=client)
        assert deserializer(payload, context) == {"id": 7, "amount": 12.5}
        assert client.get_subjects() == ["orders-value", "payments-value"]
        assert int.from_bytes(payload[1:5], "big") == schema_id, "the same content keeps its id across subjects"
