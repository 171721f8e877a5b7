"""Webhook pages of the portal: the secret shown once, form errors, rotation, test messages, redelivery."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.test import Client
from django.urls import reverse

from apps.consumption.webhooks.models import WebhookDelivery, WebhookEndpoint
from apps.kernel.roles import RoleChoices
from tests.consumption import test_webhooks_delivery as delivery_tests
from tests.factories import WebhookAttemptFactory, WebhookDeliveryFactory, WebhookEndpointFactory

pytestmark = pytest.mark.django_db

# The real receiver on 127.0.0.1 (and its allow rule for tenant A), shared with the delivery tests.
_server = delivery_tests._server
receiver = delivery_tests.receiver

CHANGELIST = "admin:consumption_webhookendpoint_changelist"


def _signed_in(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def steward_client(tenant_a: Any, member: Any) -> Client:
    return _signed_in(member(tenant_a, RoleChoices.STEWARD))


def _add(client: Client, tenant: Any, url: str, **extra: Any) -> Any:
    data = {"tenant": tenant.pk, "url": url, "event_types": ["kpi.published", "period.closed"], "active": "on"}
    return client.post(reverse("admin:consumption_webhookendpoint_add"), {**data, **extra})


def test_creating_an_endpoint_shows_its_secret_once(steward_client, tenant_a, receiver):
    response = _add(steward_client, tenant_a, receiver.url(), description="orders")

    assert response.status_code == 200
    endpoint = WebhookEndpoint.objects.get()
    page = response.content.decode()
    assert endpoint.secret in page and "not shown again" in page
    assert endpoint.event_types == ["kpi.published", "period.closed"]
    for url in (reverse(CHANGELIST), reverse("admin:consumption_webhookendpoint_change", args=[endpoint.pk])):
        shown = steward_client.get(url)
        assert shown.status_code == 200
        assert endpoint.secret not in shown.content.decode()


@pytest.mark.parametrize("url", ["http://10.0.0.1/hook", "http://169.254.169.254/", "http://[::1]/", "gopher://x/"])
def test_a_blocked_url_is_a_form_error(steward_client, tenant_a, url):
    response = _add(steward_client, tenant_a, url)

    assert response.status_code == 200
    assert response.context["adminform"].form.errors["url"]
    assert not WebhookEndpoint.objects.exists()


def test_no_event_type_is_a_form_error(steward_client, tenant_a, receiver):
    response = _add(steward_client, tenant_a, receiver.url(), event_types=[])

    assert "event_types" in response.context["adminform"].form.errors
    assert not WebhookEndpoint.objects.exists()


def test_rotating_asks_for_the_grace_period_then_shows_the_new_secret(steward_client, tenant_a):
    endpoint = WebhookEndpointFactory(tenant=tenant_a)
    old = endpoint.secret
    selected = {"action": "rotate_secret", ACTION_CHECKBOX_NAME: [endpoint.pk]}

    asked = steward_client.post(reverse(CHANGELIST), selected)
    assert asked.status_code == 200 and "Grace period" in asked.content.decode()
    endpoint.refresh_from_db()
    assert endpoint.secret == old

    done = steward_client.post(reverse(CHANGELIST), {**selected, "apply": "yes", "grace_hours": 2})

    endpoint.refresh_from_db()
    assert endpoint.secret != old and endpoint.secret in done.content.decode()
    assert endpoint.previous_secret == old and endpoint.previous_secret_expires_at is not None


def test_a_bad_grace_period_is_asked_again(steward_client, tenant_a):
    endpoint = WebhookEndpointFactory(tenant=tenant_a)
    old = endpoint.secret

    response = steward_client.post(
        reverse(CHANGELIST),
        {"action": "rotate_secret", ACTION_CHECKBOX_NAME: [endpoint.pk], "apply": "yes", "grace_hours": -1},
    )

    assert response.status_code == 200 and response.context["form"].errors["grace_hours"]
    endpoint.refresh_from_db()
    assert endpoint.secret == old


def test_send_test_message_reaches_the_receiver(steward_client, tenant_a, receiver, django_capture_on_commit_callbacks):
    endpoint = WebhookEndpointFactory(tenant=tenant_a, url=receiver.url("/portal-test"))

    with django_capture_on_commit_callbacks(execute=True):
        steward_client.post(reverse(CHANGELIST), {"action": "send_test_message", ACTION_CHECKBOX_NAME: [endpoint.pk]})

    assert [seen.path for seen in receiver.seen] == ["/portal-test"]
    assert WebhookDelivery.objects.get().status == "succeeded"
    change = steward_client.get(reverse("admin:consumption_webhookendpoint_change", args=[endpoint.pk]))
    assert WebhookDelivery.objects.get().message_id in change.content.decode()  # recent deliveries


def test_redeliver_sends_a_failed_message_again(steward_client, tenant_a, receiver, django_capture_on_commit_callbacks):
    delivery = WebhookDeliveryFactory(endpoint=WebhookEndpointFactory(tenant=tenant_a, url=receiver.url("/again")))
    WebhookAttemptFactory(delivery=delivery)

    with django_capture_on_commit_callbacks(execute=True):
        steward_client.post(
            reverse("admin:consumption_webhookdelivery_changelist"),
            {"action": "redeliver", ACTION_CHECKBOX_NAME: [delivery.pk]},
        )

    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempt_count) == ("succeeded", 2)
    page = steward_client.get(reverse("admin:consumption_webhookdelivery_change", args=[delivery.pk])).content.decode()
    assert "Attempts" in page or "attempt" in page.lower()
    assert delivery.message_id in page


def test_an_analyst_sees_webhooks_but_cannot_change_rotate_or_redeliver(tenant_a, member):
    client = _signed_in(member(tenant_a, RoleChoices.ANALYST))
    endpoint = WebhookEndpointFactory(tenant=tenant_a)
    delivery = WebhookDeliveryFactory(endpoint=endpoint)
    old = endpoint.secret

    listed = client.get(reverse(CHANGELIST))
    assert listed.status_code == 200 and endpoint.url in listed.content.decode()
    assert client.get(reverse("admin:consumption_webhookendpoint_add")).status_code == 403
    client.post(reverse(CHANGELIST), {"action": "rotate_secret", ACTION_CHECKBOX_NAME: [endpoint.pk], "apply": "yes",
                                      "grace_hours": 1})  # fmt: skip
    client.post(
        reverse("admin:consumption_webhookdelivery_changelist"),
        {"action": "redeliver", ACTION_CHECKBOX_NAME: [delivery.pk]},
    )

    endpoint.refresh_from_db()
    delivery.refresh_from_db()
    assert endpoint.secret == old and delivery.status == "failed"
