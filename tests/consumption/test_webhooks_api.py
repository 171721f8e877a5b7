"""The webhooks API: CRUD, the secret shown once, rotation, test messages, deliveries, redelivery, problems."""

from __future__ import annotations

from typing import Any

import pytest
from standardwebhooks import Webhook

from apps.consumption.webhooks.models import WebhookDelivery, WebhookEndpoint
from apps.kernel.roles import RoleChoices
from tests.consumption import test_webhooks_delivery as delivery_tests
from tests.factories import WebhookDeliveryFactory, WebhookEndpointFactory

pytestmark = pytest.mark.django_db

# The real receiver on 127.0.0.1 (and its allow rule for tenant A), shared with the delivery tests.
_server = delivery_tests._server
receiver = delivery_tests.receiver

PROBLEM_JSON = "application/problem+json"
URL = "/api/v1/webhooks/"


@pytest.fixture
def client(tenant_a: Any, token_client: Any) -> Any:
    return token_client(tenant_a, RoleChoices.STEWARD, scopes=["read", "write"])


def _create(client: Any, receiver: Any, **extra: Any) -> Any:
    body = {"url": receiver.url(), "event_types": ["kpi.published"], "description": "orders", **extra}
    return client.post(URL, body, format="json")


def test_creating_an_endpoint_answers_with_its_secret_once(client, receiver):
    response = _create(client, receiver)

    assert response.status_code == 201, response.content
    created = response.json()
    endpoint = WebhookEndpoint.objects.get(pk=created["id"])
    assert created["secret"] == endpoint.secret and created["secret"].startswith("whsec_")
    assert created["url"] == receiver.url() and created["event_types"] == ["kpi.published"]
    assert created["active"] is True and created["consecutive_failures"] == 0
    for read in (client.get(f"{URL}{endpoint.pk}/"), client.get(URL)):
        assert read.status_code == 200
        item = read.json() if "results" not in read.json() else read.json()["results"][0]
        assert "secret" not in item
        assert endpoint.secret not in read.content.decode()


def test_an_endpoint_can_be_changed_and_deleted(client, receiver):
    endpoint_id = _create(client, receiver).json()["id"]

    response = client.patch(f"{URL}{endpoint_id}/", {"event_types": ["period.closed", "kpi.restated"]}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["event_types"] == ["kpi.restated", "period.closed"]
    assert client.patch(f"{URL}{endpoint_id}/", {"active": False}, format="json").json()["disabled_reason"]

    assert client.delete(f"{URL}{endpoint_id}/").status_code == 204
    assert not WebhookEndpoint.objects.filter(pk=endpoint_id).exists()


@pytest.mark.parametrize(
    ("body", "pointer"),
    [
        ({"url": "http://10.0.0.1/hook", "event_types": ["kpi.published"]}, "#/url"),
        ({"url": "http://169.254.169.254/latest/", "event_types": ["kpi.published"]}, "#/url"),
        ({"url": "ftp://example.com/hook", "event_types": ["kpi.published"]}, "#/url"),
        ({"url": "not a url", "event_types": ["kpi.published"]}, "#/url"),
        ({"url": "https://example.com/hook", "event_types": []}, "#/event_types"),
        ({"url": "https://example.com/hook", "event_types": ["*"]}, "#/event_types/0"),
        ({"url": "https://example.com/hook", "event_types": "kpi.published"}, "#/event_types"),
        ({"event_types": ["kpi.published"]}, "#/url"),
    ],
)
def test_bad_input_answers_a_problem_naming_the_field(client, body, pointer):
    response = client.post(URL, body, format="json")

    assert response.status_code == 400
    assert response["Content-Type"] == PROBLEM_JSON
    assert pointer in [error["pointer"] for error in response.json()["errors"]]
    assert not WebhookEndpoint.objects.exists()


def test_a_blocked_url_is_refused_on_change_too(client, receiver):
    endpoint_id = _create(client, receiver).json()["id"]

    response = client.patch(f"{URL}{endpoint_id}/", {"url": "http://[::1]:8080/"}, format="json")

    assert response.status_code == 400 and "loopback" in response.json()["errors"][0]["detail"]
    assert WebhookEndpoint.objects.get(pk=endpoint_id).url == receiver.url()


@pytest.mark.parametrize(
    ("role", "scopes"),
    [(RoleChoices.ANALYST, ["read"]), (RoleChoices.CONSUMER, ["read"]), (RoleChoices.STEWARD, ["read"])],
)
def test_writes_need_an_editor_role_and_the_write_scope(tenant_a, token_client, role, scopes):
    client = token_client(tenant_a, role, scopes=scopes)
    endpoint = WebhookEndpointFactory(tenant=tenant_a)
    delivery = WebhookDeliveryFactory(endpoint=endpoint)

    assert client.get(URL).status_code == 200
    for response in (
        client.post(URL, {"url": "https://example.com/", "event_types": ["kpi.published"]}, format="json"),
        client.patch(f"{URL}{endpoint.pk}/", {"description": "x"}, format="json"),
        client.delete(f"{URL}{endpoint.pk}/"),
        client.post(f"{URL}{endpoint.pk}/rotate-secret/", {}, format="json"),
        client.post(f"{URL}{endpoint.pk}/test/"),
        client.post(f"/api/v1/webhook-deliveries/{delivery.pk}/redeliver/"),
    ):
        assert response.status_code == 403, response.content
        assert response["Content-Type"] == PROBLEM_JSON
    endpoint.refresh_from_db()
    assert endpoint.description == "" and WebhookDelivery.objects.get().status == "failed"


def test_rotating_answers_with_the_new_secret_and_the_grace_end(client, tenant_a):
    endpoint = WebhookEndpointFactory(tenant=tenant_a)
    old = endpoint.secret

    response = client.post(f"{URL}{endpoint.pk}/rotate-secret/", {"grace_seconds": 600}, format="json")

    assert response.status_code == 200, response.content
    endpoint.refresh_from_db()
    assert response.json()["secret"] == endpoint.secret != old
    assert endpoint.previous_secret == old
    assert response.json()["previous_secret_valid_until"] is not None
    assert "secret" not in client.get(f"{URL}{endpoint.pk}/").json()


@pytest.mark.parametrize("grace", [-5, 10**9, "soon"])
def test_a_bad_grace_period_is_a_problem(client, tenant_a, grace):
    endpoint = WebhookEndpointFactory(tenant=tenant_a)

    response = client.post(f"{URL}{endpoint.pk}/rotate-secret/", {"grace_seconds": grace}, format="json")

    assert response.status_code == 400 and response["Content-Type"] == PROBLEM_JSON
    assert response.json()["errors"][0]["pointer"] == "#/grace_seconds"


def test_a_test_message_is_sent_and_listed_with_its_attempt(client, receiver, django_capture_on_commit_callbacks):
    created = _create(client, receiver).json()

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"{URL}{created['id']}/test/")

    assert response.status_code == 202, response.content
    assert response.json()["event_type"] == "webhook.test"
    assert (
        Webhook(created["secret"]).verify(receiver.seen[-1].body, receiver.seen[-1].headers)["type"] == "webhook.test"
    )
    listed = client.get(f"{URL}{created['id']}/deliveries/").json()["results"]
    assert len(listed) == 1
    assert listed[0]["status"] == "succeeded" and listed[0]["payload"]["type"] == "webhook.test"
    assert listed[0]["attempts"][0]["status_code"] == 200
    assert listed[0]["attempts"][0]["requested_by"] == client.user.username


def test_test_and_redeliver_conflict_with_a_disabled_endpoint_or_a_pending_delivery(client, tenant_a):
    endpoint = WebhookEndpointFactory(tenant=tenant_a, active=False)
    pending = WebhookDeliveryFactory(endpoint=WebhookEndpointFactory(tenant=tenant_a), status="pending")
    failed = WebhookDeliveryFactory(endpoint=endpoint)

    for response in (
        client.post(f"{URL}{endpoint.pk}/test/"),
        client.post(f"/api/v1/webhook-deliveries/{pending.pk}/redeliver/"),
        client.post(f"/api/v1/webhook-deliveries/{failed.pk}/redeliver/"),
    ):
        assert response.status_code == 409, response.content
        assert response["Content-Type"] == PROBLEM_JSON
    assert client.post(f"{URL}{endpoint.pk}/test/").json()["type"] == "urn:aurum:problem:endpoint-disabled"


def test_a_redelivery_sends_the_same_message_again(client, tenant_a, receiver, django_capture_on_commit_callbacks):
    endpoint = WebhookEndpointFactory(tenant=tenant_a, url=receiver.url("/again"))
    delivery = WebhookDeliveryFactory(endpoint=endpoint)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/api/v1/webhook-deliveries/{delivery.pk}/redeliver/")

    assert response.status_code == 202, response.content
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempt_count) == ("succeeded", 2)
    assert receiver.seen[-1].headers["webhook-id"] == delivery.message_id
    Webhook(endpoint.secret).verify(receiver.seen[-1].body, receiver.seen[-1].headers)
    listed = client.get("/api/v1/webhook-deliveries/", {"status": "succeeded"}).json()["results"]
    assert [row["message_id"] for row in listed] == [delivery.message_id]


def test_the_deliveries_of_an_endpoint_are_only_its_own(client, tenant_a):
    mine = WebhookDeliveryFactory(endpoint=WebhookEndpointFactory(tenant=tenant_a))
    WebhookDeliveryFactory(endpoint=WebhookEndpointFactory(tenant=tenant_a))

    listed = client.get(f"{URL}{mine.endpoint_id}/deliveries/").json()["results"]

    assert [row["id"] for row in listed] == [mine.pk]


def test_the_openapi_schema_documents_the_webhook_operations(client):
    response = client.get("/api/v1/schema/", {"format": "json"})

    paths = response.json()["paths"]
    for path in (
        "/api/v1/webhooks/",
        "/api/v1/webhooks/{id}/",
        "/api/v1/webhooks/{id}/rotate-secret/",
        "/api/v1/webhooks/{id}/test/",
        "/api/v1/webhooks/{id}/deliveries/",
        "/api/v1/webhook-deliveries/{id}/redeliver/",
    ):
        assert path in paths, path
    created = paths["/api/v1/webhooks/"]["post"]["responses"]
    assert {"201", "400", "403"} <= set(created)
    assert "409" in paths["/api/v1/webhook-deliveries/{id}/redeliver/"]["post"]["responses"]
    schemas = response.json()["components"]["schemas"]
    assert "secret" in schemas["WebhookEndpointWithSecret"]["properties"]
    assert "secret" not in schemas["WebhookEndpoint"]["properties"]


def test_filtering_deliveries_by_another_tenants_endpoint_reveals_nothing(client, tenant_a, tenant_b):
    theirs = WebhookDeliveryFactory(endpoint=WebhookEndpointFactory(tenant=tenant_b))

    for endpoint_id in (theirs.endpoint_id, 999_999):
        response = client.get("/api/v1/webhook-deliveries/", {"endpoint": endpoint_id})
        assert response.status_code == 200 and response.json()["results"] == []
