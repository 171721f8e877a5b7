"""Webhook deliveries against a real HTTP receiver on 127.0.0.1, verified as a receiver would.

The receiver is a loopback server, so the SSRF guard refuses it until an OutboundAllowRule
lets its port through for tenant A: every happy path here also exercises the allow list.
Signatures are checked with the `standardwebhooks` package, the way a customer's receiver
checks them. Name resolution is faked where a hostname must point somewhere on purpose.
"""

from __future__ import annotations

import ipaddress
import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from auditlog.models import LogEntry
from django.core import mail
from django.core.exceptions import ValidationError
from django.utils import timezone
from standardwebhooks import Webhook

from apps.consumption.webhooks import services
from apps.consumption.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from apps.consumption.webhooks.tasks import retry_webhooks
from apps.kernel.errors import ConflictError
from apps.kernel.roles import RoleChoices
from apps.runtime.events import publish_event
from apps.runtime.models import DomainEvent
from apps.security import outbound
from tests.factories import OutboundAllowRuleFactory

pytestmark = pytest.mark.django_db

LOCAL = "127.0.0.1"
PUBLIC_IP = "93.184.216.34"


# --- the receiver ----------------------------------------------------------------------------------


@dataclass
class Seen:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Answer:
    status: int = 200
    body: bytes = b"ok"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.server.seen.append(Seen(self.path, dict(self.headers.items()), body))
        plan = self.server.plans.get(self.path) or [Answer()]
        answer = plan.pop(0) if len(plan) > 1 else plan[0]
        if answer.delay:
            time.sleep(answer.delay)
        self.send_response(answer.status)
        for name, value in answer.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(answer.body)))
        self.end_headers()
        self.wfile.write(answer.body)

    do_GET = do_POST


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__((LOCAL, 0), _Handler)
        self.seen: list[Seen] = []
        self.plans: dict[str, list[Answer]] = {}

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that timed out leaves a broken pipe behind; expected


@dataclass
class Receiver:
    server: _Server

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    @property
    def seen(self) -> list[Seen]:
        return self.server.seen

    def url(self, path: str = "/hook", host: str = LOCAL) -> str:
        return f"http://{host}:{self.port}{path}"

    def answer(self, path: str, *answers: Answer) -> None:
        """Answer the next requests to `path` with these, in order; the last one keeps answering."""
        self.server.plans[path] = list(answers)


@pytest.fixture(scope="module")
def _server() -> Iterator[_Server]:
    server = _Server()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def receiver(_server: _Server, tenant_a: Any) -> Receiver:
    """The receiver, cleared, and allowed (127.0.0.1, its port only) for tenant A."""
    _server.seen.clear()
    _server.plans.clear()
    OutboundAllowRuleFactory(tenant_scope=tenant_a, host=LOCAL, port=_server.server_address[1])
    return Receiver(_server)


class FakeDNS:
    """Stands in for socket.getaddrinfo: answers for the named hosts, the real resolver otherwise."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.answers: dict[str, list[str]] = {}

    def __call__(self, host: str, port: Any, *args: Any, **kwargs: Any) -> list[Any]:
        if host not in self.answers:
            return self.real(host, port, *args, **kwargs)
        result = []
        for ip in self.answers[host]:
            if ipaddress.ip_address(ip).version == 6:
                result.append((socket.AF_INET6, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (ip, port, 0, 0)))
            else:
                result.append((socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (ip, port)))
        return result


@pytest.fixture
def dns(monkeypatch: pytest.MonkeyPatch) -> FakeDNS:
    fake = FakeDNS(socket.getaddrinfo)
    monkeypatch.setattr(outbound.socket, "getaddrinfo", fake)
    return fake


@pytest.fixture
def steward(tenant_a: Any, member: Any) -> Any:
    return member(tenant_a, RoleChoices.STEWARD)


@pytest.fixture
def endpoint_at(receiver: Receiver, tenant_a: Any, steward: Any) -> Any:
    """endpoint_at(path, event_types=…) → (endpoint, secret) registered through the service."""

    def make(path: str = "/hook", event_types: tuple[str, ...] = ("kpi.published",)) -> tuple[WebhookEndpoint, str]:
        return services.webhook_endpoint_create(
            actor=steward, tenant=tenant_a, url=receiver.url(path), event_types=list(event_types)
        )

    return make


@pytest.fixture
def emit(django_capture_on_commit_callbacks: Any) -> Any:
    """emit(type, payload, tenant) → publish a domain event and run everything it triggers (eagerly)."""

    def make(event_type: str, payload: dict[str, Any], tenant: Any) -> DomainEvent:
        with django_capture_on_commit_callbacks(execute=True):
            return publish_event(event_type, payload, tenant=tenant)

    return make


@pytest.fixture
def run_due(django_capture_on_commit_callbacks: Any) -> Any:
    """Make every pending delivery due now and run the retry job, as beat would later."""

    def run() -> int:
        WebhookDelivery.objects.filter(status="pending").update(next_attempt_at=timezone.now() - timedelta(seconds=1))
        with django_capture_on_commit_callbacks(execute=True):
            return retry_webhooks.apply().get()

    return run


def verified(seen: Seen, secret: str) -> Any:
    """What a receiver does: verify the body against the headers with the secret, or raise."""
    return Webhook(secret).verify(seen.body, seen.headers)


# --- delivery and signatures -----------------------------------------------------------------------


def test_an_event_reaches_the_receiver_signed_so_standardwebhooks_verifies_it(receiver, endpoint_at, tenant_a, emit):
    endpoint, secret = endpoint_at("/hook")

    event = emit("kpi.published", {"kpi": "revenue", "period": "2026-01"}, tenant_a)

    assert len(receiver.seen) == 1
    request = receiver.seen[0]
    assert verified(request, secret) == {
        "type": "kpi.published",
        "timestamp": event.occurred_at.isoformat(),
        "data": {"kpi": "revenue", "period": "2026-01"},
    }
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["webhook-id"].startswith("msg_")
    assert abs(int(request.headers["webhook-timestamp"]) - time.time()) < 60
    assert request.headers["webhook-signature"].startswith("v1,")
    delivery = WebhookDelivery.objects.get(endpoint=endpoint)
    assert (delivery.status, delivery.attempt_count, delivery.event_id) == ("succeeded", 1, event.pk)
    assert delivery.message_id == request.headers["webhook-id"]
    assert request.body == delivery.body.encode()
    attempt = delivery.attempts.get()
    assert (attempt.number, attempt.status_code, attempt.succeeded, attempt.response_excerpt) == (1, 200, True, "ok")
    assert attempt.latency_ms >= 0 and attempt.error == ""


def test_only_active_endpoints_of_the_events_tenant_that_chose_its_type_get_it(
    receiver, endpoint_at, tenant_a, tenant_b, emit
):
    endpoint_at("/chosen", ("kpi.published", "batch.completed"))
    endpoint_at("/other-type", ("period.closed",))
    inactive, _ = endpoint_at("/inactive")
    WebhookEndpoint.objects.filter(pk=inactive.pk).update(active=False)

    emit("kpi.published", {"kpi": "a"}, tenant_b)
    emit("kpi.published", {"kpi": "b"}, None)
    emit("kpi.published", {"kpi": "c"}, tenant_a)

    assert [seen.path for seen in receiver.seen] == ["/chosen"]
    assert json.loads(receiver.seen[0].body)["data"] == {"kpi": "c"}
    assert WebhookDelivery.objects.count() == 1


def test_handling_the_same_event_twice_sends_it_once(receiver, endpoint_at, tenant_a, emit):
    endpoint, _ = endpoint_at()
    event = emit("kpi.published", {"kpi": "a"}, tenant_a)

    assert services.webhook_deliveries_for_event(event=event) == []
    assert WebhookDelivery.objects.filter(endpoint=endpoint).count() == 1
    assert len(receiver.seen) == 1


def test_events_not_offered_as_webhooks_create_nothing(receiver, endpoint_at, tenant_a, emit):
    endpoint_at()
    emit("contract.created", {"contract": "x"}, tenant_a)

    assert WebhookDelivery.objects.count() == 0


# --- rotation --------------------------------------------------------------------------------------


def test_during_the_grace_period_both_signatures_are_sent_and_both_verify(
    receiver, endpoint_at, tenant_a, steward, emit
):
    endpoint, old_secret = endpoint_at()
    endpoint, new_secret = services.webhook_endpoint_rotate_secret(actor=steward, endpoint=endpoint, grace_seconds=3600)

    emit("kpi.published", {"kpi": "a"}, tenant_a)

    request = receiver.seen[-1]
    assert len(request.headers["webhook-signature"].split(" ")) == 2
    assert verified(request, new_secret)["data"] == {"kpi": "a"}
    assert verified(request, old_secret)["data"] == {"kpi": "a"}
    assert new_secret != old_secret
    assert abs((endpoint.previous_secret_expires_at - timezone.now()).total_seconds() - 3600) < 60


def test_after_the_grace_period_only_the_new_secret_signs(receiver, endpoint_at, tenant_a, steward, emit, run_due):
    endpoint, old_secret = endpoint_at()
    endpoint, new_secret = services.webhook_endpoint_rotate_secret(actor=steward, endpoint=endpoint, grace_seconds=60)
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(previous_secret_expires_at=timezone.now())

    emit("kpi.published", {"kpi": "a"}, tenant_a)

    request = receiver.seen[-1]
    assert len(request.headers["webhook-signature"].split(" ")) == 1
    verified(request, new_secret)
    with pytest.raises(Exception, match="No matching signature"):
        verified(request, old_secret)
    run_due()  # the retry job also forgets expired secrets
    endpoint.refresh_from_db()
    assert (endpoint.previous_secret, endpoint.previous_secret_expires_at) == ("", None)


def test_a_rotation_without_grace_ends_the_old_secret_at_once(receiver, endpoint_at, tenant_a, steward, emit):
    endpoint, old_secret = endpoint_at()
    endpoint, new_secret = services.webhook_endpoint_rotate_secret(actor=steward, endpoint=endpoint, grace_seconds=0)

    emit("kpi.published", {"kpi": "a"}, tenant_a)

    assert endpoint.previous_secret == "" and endpoint.previous_secret_expires_at is None
    request = receiver.seen[-1]
    verified(request, new_secret)
    with pytest.raises(Exception, match="No matching signature"):
        verified(request, old_secret)


def test_rotation_publishes_an_event_without_any_secret(endpoint_at, steward):
    endpoint, old_secret = endpoint_at()
    _, new_secret = services.webhook_endpoint_rotate_secret(actor=steward, endpoint=endpoint)

    event = DomainEvent.objects.get(type="webhook.secret_rotated")
    assert event.payload["endpoint"] == endpoint.pk and event.actor == steward
    texts = json.dumps([e.payload for e in DomainEvent.objects.all()])
    texts += json.dumps([e.changes for e in LogEntry.objects.all()], default=str)
    assert old_secret not in texts and new_secret not in texts
    assert old_secret[6:] not in texts and new_secret[6:] not in texts


@pytest.mark.parametrize("grace", [-1, 7 * 24 * 3600 + 1])
def test_a_grace_period_out_of_range_is_refused(endpoint_at, steward, grace):
    endpoint, _ = endpoint_at()

    with pytest.raises(ValidationError) as refused:
        services.webhook_endpoint_rotate_secret(actor=steward, endpoint=endpoint, grace_seconds=grace)

    assert "grace_seconds" in refused.value.message_dict


# --- retries ---------------------------------------------------------------------------------------


def test_a_500_is_retried_with_the_same_message_id_until_it_succeeds(receiver, endpoint_at, tenant_a, emit, run_due):
    receiver.answer("/flaky", Answer(500, b"boom"), Answer(503, b"later"), Answer(200, b"thanks"))
    endpoint, secret = endpoint_at("/flaky")

    emit("kpi.published", {"kpi": "a"}, tenant_a)
    delivery = WebhookDelivery.objects.get(endpoint=endpoint)
    assert (delivery.status, delivery.attempt_count, delivery.last_status_code) == ("pending", 1, 500)
    assert delivery.next_attempt_at > timezone.now()
    assert run_due() == 1
    assert run_due() == 1
    assert run_due() == 0

    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempt_count) == ("succeeded", 3)
    assert [(a.number, a.status_code, a.succeeded, a.response_excerpt) for a in delivery.attempts.all()] == [
        (1, 500, False, "boom"),
        (2, 503, False, "later"),
        (3, 200, True, "thanks"),
    ]
    assert {seen.headers["webhook-id"] for seen in receiver.seen} == {delivery.message_id}
    for seen in receiver.seen:
        verified(seen, secret)
    endpoint.refresh_from_db()
    assert endpoint.consecutive_failures == 0


def test_a_retry_is_not_attempted_before_it_is_due(
    receiver, endpoint_at, tenant_a, emit, django_capture_on_commit_callbacks
):
    receiver.answer("/down", Answer(500))
    endpoint_at("/down")
    emit("kpi.published", {"kpi": "a"}, tenant_a)

    with django_capture_on_commit_callbacks(execute=True):
        assert retry_webhooks.apply().get() == 0

    assert len(receiver.seen) == 1


def test_a_timeout_is_retried(receiver, endpoint_at, tenant_a, emit, run_due, settings):
    settings.AURUM_WEBHOOK_TIMEOUT_SECONDS = 1
    receiver.answer("/slow", Answer(200, delay=2), Answer(200))
    endpoint, _ = endpoint_at("/slow")

    emit("kpi.published", {"kpi": "a"}, tenant_a)
    delivery = WebhookDelivery.objects.get(endpoint=endpoint)
    first = delivery.attempts.get()
    assert delivery.status == "pending"
    assert first.status_code is None and "OutboundTimeout" in first.error and "Timed out" in first.error

    run_due()

    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempt_count) == ("succeeded", 2)


def test_a_refused_connection_is_retried(tenant_a, steward, emit, run_due):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind((LOCAL, 0))
        port = probe.getsockname()[1]
    OutboundAllowRuleFactory(tenant_scope=tenant_a, host=LOCAL, port=port)
    endpoint, _ = services.webhook_endpoint_create(
        actor=steward, tenant=tenant_a, url=f"http://{LOCAL}:{port}/hook", event_types=["batch.completed"]
    )

    emit("batch.completed", {"batch": 1}, tenant_a)

    delivery = WebhookDelivery.objects.get(endpoint=endpoint)
    assert delivery.status == "pending" and "OutboundConnectionError" in delivery.last_error
    run_due()
    delivery.refresh_from_db()
    assert delivery.attempt_count == 2 and delivery.status == "pending"


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
def test_a_4xx_is_not_retried(receiver, endpoint_at, tenant_a, emit, run_due, status):
    receiver.answer("/picky", Answer(status, b"no thanks"))
    endpoint, _ = endpoint_at("/picky")

    emit("kpi.published", {"kpi": "a"}, tenant_a)
    run_due()

    delivery = WebhookDelivery.objects.get(endpoint=endpoint)
    assert (delivery.status, delivery.attempt_count, delivery.last_status_code) == ("failed", 1, status)
    assert delivery.next_attempt_at is None
    assert f"answered {status}" in delivery.last_error
    assert len(receiver.seen) == 1
    endpoint.refresh_from_db()
    assert endpoint.consecutive_failures == 1 and endpoint.active


def test_a_429_is_retried_no_sooner_than_retry_after(receiver, endpoint_at, tenant_a, emit):
    receiver.answer("/busy", Answer(429, headers={"Retry-After": "600"}))
    endpoint, _ = endpoint_at("/busy")

    emit("kpi.published", {"kpi": "a"}, tenant_a)

    delivery = WebhookDelivery.objects.get(endpoint=endpoint)
    assert delivery.status == "pending"
    assert delivery.next_attempt_at >= timezone.now() + timedelta(seconds=590)


def test_retries_back_off_exponentially(receiver, endpoint_at, tenant_a, emit, run_due, settings):
    settings.AURUM_WEBHOOK_RETRY_BASE_SECONDS = 100
    settings.AURUM_WEBHOOK_RETRY_MAX_SECONDS = 100_000
    receiver.answer("/down", Answer(500))
    endpoint, _ = endpoint_at("/down")
    emit("kpi.published", {"kpi": "a"}, tenant_a)
    ceilings = []
    for _ in range(4):
        delivery = WebhookDelivery.objects.get(endpoint=endpoint)
        ceilings.append((delivery.next_attempt_at - delivery.updated_at).total_seconds())
        run_due()

    # full jitter: attempt n waits between base/2 and base * 2**(n-1)
    for retries, waited in enumerate(ceilings):
        assert 50 - 1 <= waited <= 100 * 2**retries + 1


def test_a_delivery_fails_after_the_configured_number_of_attempts(
    receiver, endpoint_at, tenant_a, emit, run_due, settings
):
    settings.AURUM_WEBHOOK_MAX_ATTEMPTS = 3
    receiver.answer("/down", Answer(502))
    endpoint, _ = endpoint_at("/down")

    emit("kpi.published", {"kpi": "a"}, tenant_a)
    for _ in range(5):
        run_due()

    delivery = WebhookDelivery.objects.get(endpoint=endpoint)
    assert (delivery.status, delivery.attempt_count) == ("failed", 3)
    assert len(receiver.seen) == 3
    endpoint.refresh_from_db()
    assert endpoint.consecutive_failures == 1


def test_a_redirect_is_a_failure_and_is_not_followed(receiver, endpoint_at, tenant_a, emit, run_due):
    receiver.answer("/moved", Answer(302, headers={"Location": "http://169.254.169.254/latest/meta-data/"}))
    receiver.answer("/moved-local", Answer(307, headers={"Location": receiver.url("/target")}))
    endpoint, _ = endpoint_at("/moved")
    local, _ = endpoint_at("/moved-local")

    emit("kpi.published", {"kpi": "a"}, tenant_a)
    run_due()

    for row in (endpoint, local):
        delivery = WebhookDelivery.objects.get(endpoint=row)
        assert delivery.status == "failed" and delivery.attempt_count == 1
        assert "Redirects are not followed" in delivery.last_error
    assert sorted(seen.path for seen in receiver.seen) == ["/moved", "/moved-local"]


def test_the_response_excerpt_is_at_most_1_kb(receiver, endpoint_at, tenant_a, emit):
    receiver.answer("/chatty", Answer(500, "é".encode() * 4000))
    endpoint, _ = endpoint_at("/chatty")

    emit("kpi.published", {"kpi": "a"}, tenant_a)

    excerpt = WebhookAttempt.objects.get(delivery__endpoint=endpoint).response_excerpt
    assert 1000 <= len(excerpt.encode()) <= 1024


# --- disabling -------------------------------------------------------------------------------------


def test_an_endpoint_is_disabled_after_n_failed_deliveries_and_its_admins_are_mailed(
    receiver, endpoint_at, tenant_a, tenant_b, emit, member, settings
):
    settings.AURUM_WEBHOOK_DISABLE_AFTER_FAILURES = 3
    admin_a = member(tenant_a, RoleChoices.ADMIN, email="boss@a.example")
    member(tenant_a, RoleChoices.STEWARD, email="steward@a.example")
    member(tenant_b, RoleChoices.ADMIN, email="boss@b.example")
    receiver.answer("/gone-wrong", Answer(400))
    endpoint, _ = endpoint_at("/gone-wrong")

    for n in range(3):
        emit("kpi.published", {"n": n}, tenant_a)
        endpoint.refresh_from_db()
        assert endpoint.active == (n < 2)

    assert endpoint.consecutive_failures == 3
    assert endpoint.disabled_at is not None
    assert "3 deliveries in a row failed" in endpoint.disabled_reason and "400" in endpoint.disabled_reason
    event = DomainEvent.objects.get(type="webhook.endpoint_disabled")
    assert event.tenant == tenant_a and event.payload["endpoint"] == endpoint.pk
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == [admin_a.email]
    assert endpoint.url in mail.outbox[0].body and "disabled" in mail.outbox[0].subject

    emit("kpi.published", {"n": 4}, tenant_a)
    assert WebhookDelivery.objects.filter(endpoint=endpoint).count() == 3
    assert len(receiver.seen) == 3


def test_a_success_resets_the_failure_count(receiver, endpoint_at, tenant_a, emit, settings):
    settings.AURUM_WEBHOOK_DISABLE_AFTER_FAILURES = 2
    receiver.answer("/moody", Answer(400), Answer(200), Answer(400))
    endpoint, _ = endpoint_at("/moody")

    for n in range(3):
        emit("kpi.published", {"n": n}, tenant_a)

    endpoint.refresh_from_db()
    assert endpoint.active and endpoint.consecutive_failures == 1


def test_410_gone_disables_the_endpoint_at_once(receiver, endpoint_at, tenant_a, emit, member):
    member(tenant_a, RoleChoices.ADMIN, email="boss@a.example")
    receiver.answer("/gone", Answer(410))
    endpoint, _ = endpoint_at("/gone")

    emit("kpi.published", {"kpi": "a"}, tenant_a)

    endpoint.refresh_from_db()
    assert not endpoint.active and "410" in endpoint.disabled_reason
    assert len(mail.outbox) == 1


def test_pending_deliveries_are_held_while_disabled_and_resume_when_enabled(
    receiver, endpoint_at, tenant_a, steward, emit, run_due
):
    receiver.answer("/later", Answer(500), Answer(200))
    endpoint, _ = endpoint_at("/later")
    emit("kpi.published", {"kpi": "a"}, tenant_a)
    services.webhook_endpoint_update(actor=steward, endpoint=endpoint, active=False)

    assert run_due() == 0
    assert len(receiver.seen) == 1

    endpoint = services.webhook_endpoint_update(actor=steward, endpoint=endpoint, active=True)
    assert endpoint.disabled_reason == "" and endpoint.consecutive_failures == 0
    assert run_due() == 1
    assert WebhookDelivery.objects.get(endpoint=endpoint).status == "succeeded"


# --- redelivery and test messages ------------------------------------------------------------------


def test_a_redelivery_is_a_new_attempt_of_the_same_message(
    receiver, endpoint_at, tenant_a, steward, emit, django_capture_on_commit_callbacks
):
    receiver.answer("/fixed", Answer(400), Answer(200))
    endpoint, secret = endpoint_at("/fixed")
    emit("kpi.published", {"kpi": "a"}, tenant_a)
    delivery = WebhookDelivery.objects.get(endpoint=endpoint)
    assert delivery.status == "failed"

    with django_capture_on_commit_callbacks(execute=True):
        services.webhook_delivery_redeliver(actor=steward, delivery=delivery)

    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempt_count) == ("succeeded", 2)
    second = delivery.attempts.get(number=2)
    assert second.requested_by == steward and second.succeeded
    assert receiver.seen[0].headers["webhook-id"] == receiver.seen[1].headers["webhook-id"] == delivery.message_id
    assert receiver.seen[0].body == receiver.seen[1].body
    verified(receiver.seen[1], secret)
    endpoint.refresh_from_db()
    assert endpoint.consecutive_failures == 0


def test_a_failed_redelivery_is_not_retried_and_does_not_count_towards_disabling(
    receiver, endpoint_at, tenant_a, steward, emit, run_due, django_capture_on_commit_callbacks
):
    receiver.answer("/broken", Answer(500))
    endpoint, _ = endpoint_at("/broken")
    emit("kpi.published", {"kpi": "a"}, tenant_a)
    WebhookDelivery.objects.update(status="failed", next_attempt_at=None)

    with django_capture_on_commit_callbacks(execute=True):
        services.webhook_delivery_redeliver(actor=steward, delivery=WebhookDelivery.objects.get())
    run_due()

    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempt_count) == ("failed", 2)
    endpoint.refresh_from_db()
    assert endpoint.consecutive_failures == 0


def test_redelivery_is_refused_while_pending_or_when_the_endpoint_is_disabled(
    receiver, endpoint_at, tenant_a, steward, emit
):
    receiver.answer("/down", Answer(500))
    endpoint, _ = endpoint_at("/down")
    emit("kpi.published", {"kpi": "a"}, tenant_a)
    delivery = WebhookDelivery.objects.get()

    with pytest.raises(ConflictError, match="still pending"):
        services.webhook_delivery_redeliver(actor=steward, delivery=delivery)
    WebhookDelivery.objects.update(status="failed")
    services.webhook_endpoint_update(actor=steward, endpoint=endpoint, active=False)
    with pytest.raises(ConflictError, match="disabled"):
        services.webhook_delivery_redeliver(actor=steward, delivery=delivery)
    with pytest.raises(ConflictError, match="disabled"):
        services.webhook_endpoint_send_test(actor=steward, endpoint=endpoint)


def test_a_test_message_goes_to_the_endpoint_whatever_types_it_chose(
    receiver, endpoint_at, steward, django_capture_on_commit_callbacks
):
    endpoint, secret = endpoint_at("/test", ("period.closed",))

    with django_capture_on_commit_callbacks(execute=True):
        delivery = services.webhook_endpoint_send_test(actor=steward, endpoint=endpoint)

    body = verified(receiver.seen[0], secret)
    assert body["type"] == "webhook.test" and body["data"]["endpoint"] == endpoint.pk
    delivery.refresh_from_db()
    assert delivery.status == "succeeded" and delivery.event is None
    assert delivery.attempts.get().requested_by == steward


# --- the outbound guard ----------------------------------------------------------------------------

BLOCKED = {
    "loopback": "127.0.0.1",
    "private 10/8": "10.0.0.1",
    "cloud metadata": "169.254.169.254",
    "ipv6 loopback": "::1",
}


def _literal(ip: str) -> str:
    return f"[{ip}]" if ":" in ip else ip


@pytest.mark.parametrize("ip", BLOCKED.values(), ids=BLOCKED.keys())
def test_saving_an_endpoint_at_a_blocked_address_is_refused(tenant_a, steward, ip):
    with pytest.raises(ValidationError) as refused:
        services.webhook_endpoint_create(
            actor=steward, tenant=tenant_a, url=f"http://{_literal(ip)}/hook", event_types=["kpi.published"]
        )

    assert ip in refused.value.message_dict["url"][0]
    assert not WebhookEndpoint.objects.exists()


@pytest.mark.parametrize("ip", BLOCKED.values(), ids=BLOCKED.keys())
def test_saving_an_endpoint_whose_host_resolves_to_a_blocked_address_is_refused(tenant_a, steward, dns, ip):
    dns.answers["hooks.customer.example"] = [ip]

    with pytest.raises(ValidationError) as refused:
        services.webhook_endpoint_create(
            actor=steward, tenant=tenant_a, url="https://hooks.customer.example/in", event_types=["kpi.published"]
        )

    assert f"hooks.customer.example resolves to {ip}" in refused.value.message_dict["url"][0]


def test_an_allow_rule_for_another_tenant_does_not_let_the_host_through(receiver, tenant_b, member):
    steward_b = member(tenant_b, RoleChoices.STEWARD)

    with pytest.raises(ValidationError, match="loopback"):
        services.webhook_endpoint_create(
            actor=steward_b, tenant=tenant_b, url=receiver.url(), event_types=["kpi.published"]
        )


@pytest.mark.parametrize("ip", BLOCKED.values(), ids=BLOCKED.keys())
def test_a_host_that_resolves_to_a_blocked_address_at_delivery_is_refused(tenant_a, steward, dns, emit, run_due, ip):
    dns.answers["hooks.customer.example"] = [PUBLIC_IP]
    endpoint, _ = services.webhook_endpoint_create(
        actor=steward, tenant=tenant_a, url="http://hooks.customer.example/in", event_types=["kpi.published"]
    )
    dns.answers["hooks.customer.example"] = [ip]  # DNS changed after the check: fetch checks again

    emit("kpi.published", {"kpi": "a"}, tenant_a)
    run_due()

    delivery = WebhookDelivery.objects.get(endpoint=endpoint)
    assert (delivery.status, delivery.attempt_count, delivery.last_status_code) == ("failed", 1, None)
    assert f"resolves to {ip}" in delivery.last_error


def test_a_stored_url_at_a_blocked_address_is_refused_at_delivery(tenant_a, emit, receiver):
    """A row that skipped the save check (written before a rule was removed, say) is still refused."""
    from tests.factories import WebhookEndpointFactory

    endpoint = WebhookEndpointFactory(tenant=tenant_a, url="http://10.0.0.1/hook")
    loopback = WebhookEndpointFactory(tenant=tenant_a, url=f"http://{LOCAL}:{receiver.port + 1 or 1}/hook")

    emit("kpi.published", {"kpi": "a"}, tenant_a)

    for row, ip in ((endpoint, "10.0.0.1"), (loopback, LOCAL)):
        delivery = WebhookDelivery.objects.get(endpoint=row)
        assert delivery.status == "failed" and ip in delivery.last_error
    assert receiver.seen == []


# --- services: events and audit --------------------------------------------------------------------


def test_creating_an_endpoint_records_the_event_and_the_audit_entry(endpoint_at, steward):
    endpoint, secret = endpoint_at()

    event = DomainEvent.objects.get(type="webhook.endpoint_created")
    assert event.payload == {"endpoint": endpoint.pk, "url": endpoint.url, "event_types": ["kpi.published"]}
    assert event.actor == steward
    entry = LogEntry.objects.get_for_object(endpoint).get()
    assert entry.actor == steward
    assert "secret" not in entry.changes_dict
    assert endpoint.secret == secret and endpoint.created_by == steward


def test_updating_and_deleting_an_endpoint_record_their_events(endpoint_at, steward):
    endpoint, _ = endpoint_at()
    pk = endpoint.pk

    services.webhook_endpoint_update(
        actor=steward, endpoint=endpoint, description="orders", event_types=["kpi.restated"]
    )
    services.webhook_endpoint_delete(actor=steward, endpoint=endpoint)

    updated = DomainEvent.objects.get(type="webhook.endpoint_updated")
    assert updated.payload["changed"] == ["description", "event_types"]
    assert updated.payload["event_types"] == ["kpi.restated"]
    assert DomainEvent.objects.get(type="webhook.endpoint_deleted").payload["endpoint"] == pk
    assert not WebhookEndpoint.objects.exists()


@pytest.mark.parametrize(
    ("event_types", "message"),
    [([], "at least one"), (["*"], "Unknown event type"), (["kpi.published", "nope"], "nope")],
)
def test_bad_event_types_are_refused(receiver, tenant_a, steward, event_types, message):
    with pytest.raises(ValidationError) as refused:
        services.webhook_endpoint_create(actor=steward, tenant=tenant_a, url=receiver.url(), event_types=event_types)

    assert message in refused.value.message_dict["event_types"][0]


def test_unknown_attributes_are_refused_on_update(endpoint_at, steward):
    endpoint, _ = endpoint_at()

    with pytest.raises(ValidationError):
        services.webhook_endpoint_update(actor=steward, endpoint=endpoint, secret="whsec_mine")


class TestRetention:
    """Finished deliveries go after AURUM_WEBHOOK_DELIVERY_DAYS with their attempts; pending ones stay."""

    def test_finished_deliveries_past_retention_are_deleted(self, tenant_a):
        from datetime import timedelta

        from django.utils import timezone

        from apps.consumption.webhooks import services
        from apps.consumption.webhooks.models import WebhookAttempt, WebhookDelivery
        from tests.factories import WebhookDeliveryFactory, WebhookEndpointFactory

        endpoint = WebhookEndpointFactory(tenant=tenant_a)
        failed, succeeded, pending, recent = (WebhookDeliveryFactory(endpoint=endpoint, status=status)
                                              for status in ("failed", "succeeded", "pending", "succeeded"))  # fmt: skip
        WebhookAttempt.objects.create(delivery=failed, number=1, started_at=timezone.now(), status_code=500)
        old = timezone.now() - timedelta(days=31)
        WebhookDelivery.objects.filter(pk__in=[failed.pk, succeeded.pk, pending.pk]).update(updated_at=old)
        assert services.webhook_deliveries_prune() == 2
        assert set(WebhookDelivery.objects.values_list("pk", flat=True)) == {pending.pk, recent.pk}
        assert not WebhookAttempt.objects.filter(delivery_id=failed.pk).exists()
