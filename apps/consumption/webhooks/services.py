"""Webhook services: endpoints (create, change, rotate, delete), fan-out of events, attempts, retries.

Every delivery goes through `webhook_delivery_attempt`, which the Celery task
`consumption.deliver_webhook` calls: it claims the delivery (row lock, then a lease in
`next_attempt_at` so that nobody else picks it while the request is in flight), signs the
stored body, POSTs it through the SSRF-safe `apps.security.outbound.fetch` and records the
attempt. Retries are not Celery countdowns: a failed attempt sets `next_attempt_at`, and the
beat job `consumption.retry_webhooks` enqueues whatever is due. A lost task, a dead worker
or a broker outage therefore delays a message, never loses it, and no countdown outlives
the broker's visibility timeout.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import logging
import time
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from apps.consumption.webhooks import signing
from apps.consumption.webhooks.choices import (
    WebhookDeliveryStatusChoices,
    WebhookEventTypeChoices,
)
from apps.consumption.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from apps.kernel.audit import audit_actor
from apps.kernel.errors import ConflictError
from apps.kernel.roles import RoleChoices
from apps.runtime.backoff import backoff_seconds
from apps.runtime.events import publish_event
from apps.security.outbound import (
    OutboundBlocked,
    OutboundError,
    check_url,
    fetch,
)

logger = logging.getLogger(__name__)

Status = WebhookDeliveryStatusChoices
EXCERPT_BYTES = 1024
LEASE_MARGIN_SECONDS = 60  # beyond the request timeout, before a claimed attempt counts as lost
RETRYABLE_STATUSES = frozenset({408, 429})  # besides every 5xx
MAX_GRACE = timedelta(days=7)
ENDPOINT_ATTRS = ("url", "description", "event_types", "active")

__all__ = [
    "webhook_deliveries_for_event",
    "webhook_deliveries_retry_due",
    "webhook_delivery_attempt",
    "webhook_delivery_redeliver",
    "webhook_endpoint_create",
    "webhook_endpoint_delete",
    "webhook_endpoint_rotate_secret",
    "webhook_endpoint_send_test",
    "webhook_endpoint_update",
    "webhook_endpoint_validate",
]


# --- endpoints -------------------------------------------------------------------------------------


def _check_destination(endpoint: WebhookEndpoint) -> None:
    """Refuse a URL the outbound guard would refuse for this tenant (courtesy: fetch checks again)."""
    try:
        endpoint.url = check_url(endpoint.url, tenant=endpoint.tenant_id)
    except OutboundError as exc:
        raise ValidationError({"url": str(exc)}) from None


def webhook_endpoint_validate(*, endpoint: WebhookEndpoint) -> None:
    """Check an endpoint as its services would before saving (for forms); raises ValidationError.

    The URL is checked against the outbound guard only while the endpoint is active: a
    disabled endpoint sends nothing, and it is checked again when enabled.
    """
    endpoint.full_clean(exclude=["secret"])
    if endpoint.active:
        _check_destination(endpoint)


def _described(endpoint: WebhookEndpoint) -> dict[str, Any]:
    # Never the secret: events are readable by auditors and flow to the evidence ledger.
    return {"endpoint": endpoint.pk, "url": endpoint.url, "event_types": endpoint.event_types}


@transaction.atomic
def webhook_endpoint_create(
    *,
    actor: Any,
    tenant: Any,
    url: str,
    event_types: list[str],
    description: str = "",
    active: bool = True,
) -> tuple[WebhookEndpoint, str]:
    """Register an endpoint; returns it and its new signing secret (the caller shows it once).

    Raises ValidationError for an unknown event type or a URL the outbound guard refuses
    for this tenant (private, loopback, metadata… addresses, unless a platform admin allowed
    the host for the tenant).
    """
    secret = signing.new_secret()
    endpoint = WebhookEndpoint(
        tenant=tenant,
        url=url,
        description=description,
        event_types=list(event_types),
        active=active,
        secret=secret,
        created_by=actor if getattr(actor, "is_authenticated", False) else None,
    )
    webhook_endpoint_validate(endpoint=endpoint)
    with audit_actor(actor):
        endpoint.save()
    publish_event("webhook.endpoint_created", _described(endpoint), tenant=tenant, actor=actor)
    return endpoint, secret


@transaction.atomic
def webhook_endpoint_update(*, actor: Any, endpoint: WebhookEndpoint, **changes: Any) -> WebhookEndpoint:
    """Change url, description, event types or the active flag.

    Enabling a disabled endpoint clears its disabled reason and failure count, and checks
    its URL again; its held deliveries resume. Disabling it by hand holds new messages back
    (none are created for it) until it is enabled again.
    """
    unknown = sorted(set(changes) - set(ENDPOINT_ATTRS))
    if unknown:
        raise ValidationError({name: "Unknown attribute." for name in unknown})
    endpoint = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
    was_active = endpoint.active
    for name, value in changes.items():
        setattr(endpoint, name, list(value) if name == "event_types" else value)
    if endpoint.active and not was_active:
        endpoint.disabled_reason, endpoint.disabled_at, endpoint.consecutive_failures = "", None, 0
    elif was_active and not endpoint.active:
        endpoint.disabled_at = timezone.now()
        endpoint.disabled_reason = "Disabled by hand."
    webhook_endpoint_validate(endpoint=endpoint)
    with audit_actor(actor):
        endpoint.save()
    publish_event(
        "webhook.endpoint_updated",
        {**_described(endpoint), "active": endpoint.active, "changed": sorted(changes)},
        tenant=endpoint.tenant,
        actor=actor,
    )
    return endpoint


@transaction.atomic
def webhook_endpoint_delete(*, actor: Any, endpoint: WebhookEndpoint) -> None:
    """Delete an endpoint with its delivery log; the domain event keeps the fact."""
    described = _described(endpoint)
    tenant = endpoint.tenant
    with audit_actor(actor):
        endpoint.delete()
    publish_event("webhook.endpoint_deleted", described, tenant=tenant, actor=actor)


@transaction.atomic
def webhook_endpoint_rotate_secret(
    *, actor: Any, endpoint: WebhookEndpoint, grace_seconds: int | None = None
) -> tuple[WebhookEndpoint, str]:
    """Replace the signing secret; returns the endpoint and the new secret (shown once).

    For `grace_seconds` (default AURUM_WEBHOOK_ROTATION_GRACE_SECONDS, at most 7 days) the
    old secret stays valid: deliveries carry both signatures, so the receiver can switch at
    its own pace. 0 ends the old secret at once. A secret that was still in its grace
    period is dropped by a second rotation.
    """
    if grace_seconds is None:
        grace_seconds = settings.AURUM_WEBHOOK_ROTATION_GRACE_SECONDS
    if not isinstance(grace_seconds, int) or not 0 <= grace_seconds <= MAX_GRACE.total_seconds():
        raise ValidationError({"grace_seconds": f"Give 0 to {int(MAX_GRACE.total_seconds())} seconds."})
    endpoint = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
    new_secret = signing.new_secret()
    now = timezone.now()
    if grace_seconds:
        endpoint.previous_secret = endpoint.secret
        endpoint.previous_secret_expires_at = now + timedelta(seconds=grace_seconds)
    else:
        endpoint.previous_secret, endpoint.previous_secret_expires_at = "", None
    endpoint.secret = new_secret
    with audit_actor(actor):
        endpoint.save(update_fields=["secret", "previous_secret", "previous_secret_expires_at", "updated_at"])
    publish_event(
        "webhook.secret_rotated",
        {
            "endpoint": endpoint.pk,
            "url": endpoint.url,
            "previous_valid_until": endpoint.previous_secret_expires_at.isoformat()
            if endpoint.previous_secret_expires_at
            else None,
        },
        tenant=endpoint.tenant,
        actor=actor,
    )
    return endpoint, new_secret


# --- messages --------------------------------------------------------------------------------------


def _payload(event_type: str, occurred_at: dt.datetime, data: dict[str, Any]) -> str:
    return signing.encode_body({"type": event_type, "timestamp": occurred_at.isoformat(), "data": data})


def _enqueue(delivery_id: int) -> None:
    from apps.consumption.webhooks.tasks import deliver_webhook  # tasks import this module

    def send() -> None:
        try:
            deliver_webhook.delay(delivery_id)
        except Exception:  # broker down: the retry job picks the delivery up when it is due
            logger.warning("Could not enqueue webhook delivery %s; the retry job will", delivery_id, exc_info=True)

    transaction.on_commit(send)


@transaction.atomic
def webhook_deliveries_for_event(*, event: Any) -> list[WebhookDelivery]:
    """One delivery per active endpoint of the event's tenant that subscribed to its type.

    Called by the event handlers, at most once per event and handler; the unique
    (endpoint, event) constraint makes a second call create nothing either. Events without
    a tenant reach no endpoint.
    """
    if event.tenant_id is None or event.type not in WebhookEventTypeChoices.values:
        return []
    endpoints = [
        endpoint
        for endpoint in WebhookEndpoint.objects.for_tenant(event.tenant_id).filter(active=True).order_by("pk")
        if event.type in endpoint.event_types
    ]
    already = set(
        WebhookDelivery.objects.filter(event=event, endpoint__in=endpoints).values_list("endpoint_id", flat=True)
    )
    body = _payload(event.type, event.occurred_at, event.payload)
    now = timezone.now()
    created = []
    for endpoint in endpoints:
        if endpoint.pk in already:
            continue
        delivery = WebhookDelivery.objects.create(
            tenant_id=event.tenant_id,
            endpoint=endpoint,
            event=event,
            event_type=event.type,
            message_id=signing.new_message_id(),
            body=body,
            next_attempt_at=now,
        )
        _enqueue(delivery.pk)
        created.append(delivery)
    return created


@transaction.atomic
def webhook_endpoint_send_test(*, actor: Any, endpoint: WebhookEndpoint) -> WebhookDelivery:
    """Send a `webhook.test` message to this endpoint now, whatever event types it lists.

    One attempt, not retried (the person who asked sees the outcome and can redeliver);
    a failure does not count towards disabling the endpoint.
    """
    endpoint = WebhookEndpoint.objects.select_for_update().select_related("tenant").get(pk=endpoint.pk)
    if not endpoint.active:
        raise ConflictError(
            "The endpoint is disabled; enable it before sending a test message.", slug="endpoint-disabled"
        )
    now = timezone.now()
    requester = actor if getattr(actor, "is_authenticated", False) else None
    data = {"message": "A test message from Aurum.", "endpoint": endpoint.pk, "tenant": endpoint.tenant.slug}
    delivery = WebhookDelivery.objects.create(
        tenant=endpoint.tenant,
        endpoint=endpoint,
        event_type=WebhookEventTypeChoices.WEBHOOK_TEST,
        message_id=signing.new_message_id(),
        body=_payload(WebhookEventTypeChoices.WEBHOOK_TEST, now, data),
        next_attempt_at=now,
        requested_by=requester,
    )
    _enqueue(delivery.pk)
    return delivery


@transaction.atomic
def webhook_delivery_redeliver(*, actor: Any, delivery: WebhookDelivery) -> WebhookDelivery:
    """Send a finished message once more: a new attempt with the same `webhook-id` and body.

    One attempt, not retried; a failure does not count towards disabling the endpoint, a
    success resets its failure count. Refused (409) while the delivery is still pending or
    when the endpoint is disabled.
    """
    delivery = WebhookDelivery.objects.select_for_update().select_related("endpoint").get(pk=delivery.pk)
    if delivery.status == Status.PENDING:
        raise ConflictError("This delivery is still pending; it will be attempted again.", slug="delivery-pending")
    if not delivery.endpoint.active:
        raise ConflictError("The endpoint is disabled; enable it before redelivering.", slug="endpoint-disabled")
    delivery.status = Status.PENDING
    delivery.next_attempt_at = timezone.now()
    delivery.requested_by = actor if getattr(actor, "is_authenticated", False) else None
    with audit_actor(actor):
        delivery.save(update_fields=["status", "next_attempt_at", "requested_by", "updated_at"])
    _enqueue(delivery.pk)
    return delivery


# --- attempts --------------------------------------------------------------------------------------


def webhook_delivery_attempt(*, delivery_id: int) -> WebhookAttempt | None:
    """Make the next attempt of a due delivery; None when it is not due, not pending or held.

    Held means the endpoint is disabled: the delivery stays pending and resumes when the
    endpoint is enabled again.
    """
    now = timezone.now()
    timeout = settings.AURUM_WEBHOOK_TIMEOUT_SECONDS
    with transaction.atomic():
        delivery = (
            WebhookDelivery.objects.select_for_update(skip_locked=True)
            .filter(pk=delivery_id, status=Status.PENDING)
            .first()
        )
        if delivery is None or (delivery.next_attempt_at is not None and delivery.next_attempt_at > now):
            return None
        endpoint = WebhookEndpoint.objects.select_related("tenant").get(pk=delivery.endpoint_id)
        if not endpoint.active:
            return None
        delivery.attempt_count += 1
        # The lease: until it runs out nobody else attempts this delivery; if this worker dies
        # mid-request, the retry job picks the delivery up after it.
        delivery.next_attempt_at = now + timedelta(seconds=timeout + LEASE_MARGIN_SECONDS)
        delivery.save(update_fields=["attempt_count", "next_attempt_at", "updated_at"])
        number, requested_by_id = delivery.attempt_count, delivery.requested_by_id
        signing_secrets = endpoint.signing_secrets(now)

    body = delivery.body.encode("utf-8")
    headers = signing.webhook_headers(
        secrets=signing_secrets, message_id=delivery.message_id, timestamp=int(time.time()), body=body
    )
    started_at, started = timezone.now(), time.monotonic()
    status_code: int | None = None
    excerpt = error = ""
    retry_after: float | None = None
    try:
        response = fetch(
            endpoint.url,
            method="POST",
            headers=headers,
            body=body,
            tenant=endpoint.tenant_id,
            timeout=timeout,
            max_bytes=EXCERPT_BYTES,
            follow_redirects=False,  # Standard Webhooks: a 3xx is a failure, never followed
            on_too_large="truncate",
        )
    except OutboundBlocked as exc:
        error, retryable = str(exc), False  # the destination is refused: trying again changes nothing
    except OutboundError as exc:  # timeouts, refused connections, DNS, TLS: transient, maybe
        error, retryable = f"{type(exc).__name__}: {exc}", True
    else:
        status_code = response.status
        excerpt = response.body[:EXCERPT_BYTES].decode("utf-8", errors="ignore").replace("\x00", "")
        retryable = status_code >= 500 or status_code in RETRYABLE_STATUSES
        if not response.ok:
            error = f"The endpoint answered {status_code} {response.reason}".strip() + "."
            if 300 <= status_code < 400:
                error += " Redirects are not followed; register the final URL."
            retry_after = _retry_after_seconds(response.headers.get("Retry-After"))
    latency_ms = int((time.monotonic() - started) * 1000)
    return _record(
        delivery_id=delivery.pk,
        number=number,
        requested_by_id=requested_by_id,
        started_at=started_at,
        status_code=status_code,
        latency_ms=latency_ms,
        excerpt=excerpt,
        error=error,
        retryable=retryable,
        retry_after=retry_after,
    )


def _retry_after_seconds(value: str | None) -> float | None:
    """Seconds a `Retry-After` header asks for (delta-seconds or an HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return max(0.0, (moment - timezone.now()).total_seconds())


def _retry_delay(attempts_made: int, retry_after: float | None) -> float:
    cap = settings.AURUM_WEBHOOK_RETRY_MAX_SECONDS
    delay = backoff_seconds(attempts_made - 1, base=settings.AURUM_WEBHOOK_RETRY_BASE_SECONDS, cap=cap)
    if retry_after is not None:
        delay = max(delay, min(retry_after, cap))
    return delay


@transaction.atomic
def _record(
    *,
    delivery_id: int,
    number: int,
    requested_by_id: int | None,
    started_at: dt.datetime,
    status_code: int | None,
    latency_ms: int,
    excerpt: str,
    error: str,
    retryable: bool,
    retry_after: float | None,
) -> WebhookAttempt:
    delivery = WebhookDelivery.objects.select_for_update().get(pk=delivery_id)
    endpoint = WebhookEndpoint.objects.select_for_update().select_related("tenant").get(pk=delivery.endpoint_id)
    succeeded = status_code is not None and 200 <= status_code < 300
    manual = requested_by_id is not None
    attempt = WebhookAttempt.objects.create(
        delivery=delivery,
        number=number,
        started_at=started_at,
        status_code=status_code,
        latency_ms=latency_ms,
        response_excerpt=excerpt,
        error=error[:4000],
        succeeded=succeeded,
        requested_by_id=requested_by_id,
    )
    now = timezone.now()
    delivery.last_status_code, delivery.last_error, delivery.requested_by_id = status_code, error[:4000], None
    if succeeded:
        delivery.status, delivery.delivered_at, delivery.next_attempt_at = Status.SUCCEEDED, now, None
        if endpoint.consecutive_failures:
            WebhookEndpoint.objects.filter(pk=endpoint.pk).update(consecutive_failures=0)
    elif retryable and not manual and delivery.attempt_count < settings.AURUM_WEBHOOK_MAX_ATTEMPTS:
        delivery.next_attempt_at = now + timedelta(seconds=_retry_delay(delivery.attempt_count, retry_after))
    else:
        delivery.status, delivery.next_attempt_at = Status.FAILED, None
        if status_code == 410:
            _disable(endpoint, "The endpoint answered 410 Gone.")
        elif not manual:
            WebhookEndpoint.objects.filter(pk=endpoint.pk).update(consecutive_failures=F("consecutive_failures") + 1)
            endpoint.refresh_from_db(fields=["consecutive_failures"])
            threshold = settings.AURUM_WEBHOOK_DISABLE_AFTER_FAILURES
            if endpoint.active and endpoint.consecutive_failures >= threshold:
                _disable(endpoint, f"{endpoint.consecutive_failures} deliveries in a row failed; the last: {error}")
    delivery.save(
        update_fields=[
            "status",
            "next_attempt_at",
            "last_status_code",
            "last_error",
            "delivered_at",
            "requested_by",
            "updated_at",
        ]
    )
    return attempt


def _disable(endpoint: WebhookEndpoint, reason: str) -> None:
    """Turn a failing endpoint off, say so in an event, and tell the tenant's admins by mail."""
    if not endpoint.active:
        return
    endpoint.active, endpoint.disabled_at, endpoint.disabled_reason = False, timezone.now(), reason[:500]
    with audit_actor(None):
        endpoint.save(update_fields=["active", "disabled_at", "disabled_reason", "updated_at"])
    publish_event(
        "webhook.endpoint_disabled",
        {**_described(endpoint), "reason": endpoint.disabled_reason, "failures": endpoint.consecutive_failures},
        tenant=endpoint.tenant,
    )
    logger.warning("webhook endpoint %s of %s disabled: %s", endpoint.pk, endpoint.tenant.slug, reason)
    endpoint_id = endpoint.pk
    transaction.on_commit(lambda: _mail_admins_about(endpoint_id))


def _mail_admins_about(endpoint_id: int) -> int:
    """Mail the tenant's admins that an endpoint was disabled; returns how many were written to."""
    endpoint = WebhookEndpoint.objects.select_related("tenant").filter(pk=endpoint_id).first()
    if endpoint is None:
        return 0
    recipients = sorted(
        get_user_model()
        .objects.filter(
            is_active=True,
            aurum_memberships__tenant=endpoint.tenant_id,
            aurum_memberships__role=RoleChoices.ADMIN,
        )
        .exclude(email="")
        .values_list("email", flat=True)
        .distinct()
    )
    if not recipients:
        logger.warning("webhook endpoint %s disabled, but tenant %s has no admin with an e-mail address",
                       endpoint.pk, endpoint.tenant.slug)  # fmt: skip
        return 0
    subject = f"[Aurum] Webhook endpoint disabled in {endpoint.tenant.name}"
    message = (
        f"The webhook endpoint {endpoint.url} of tenant {endpoint.tenant.name} ({endpoint.tenant.slug}) was "
        f"disabled at {endpoint.disabled_at:%Y-%m-%d %H:%M} UTC.\n\nReason: {endpoint.disabled_reason}\n\n"
        "No messages are sent to it until it is enabled again (portal: Consumption → Webhook endpoints, or "
        "PATCH /api/v1/webhooks/{id}/ with active=true); messages still pending resume then.\n"
    )
    try:
        send_mail(subject, message, None, recipients)
    except Exception:  # mail is a courtesy: the event and the portal already say it
        logger.exception("Could not mail the admins of %s about webhook endpoint %s", endpoint.tenant.slug, endpoint.pk)
        return 0
    return len(recipients)


def webhook_deliveries_prune(*, now: dt.datetime | None = None) -> int:
    """Delete the finished (succeeded or failed) deliveries, with their attempts, whose last change is
    more than AURUM_WEBHOOK_DELIVERY_DAYS old (every tenant; the beat job
    `consumption.prune_webhook_deliveries`). Pending ones stay whatever their age. Returns how many."""
    cutoff = (now or timezone.now()) - timedelta(days=settings.AURUM_WEBHOOK_DELIVERY_DAYS)
    old = WebhookDelivery.objects.filter(status__in=[Status.SUCCEEDED, Status.FAILED], updated_at__lt=cutoff)
    _, per_model = old.delete()
    return per_model.get(WebhookDelivery._meta.label, 0)


def webhook_deliveries_retry_due(*, limit: int = 500) -> int:
    """Enqueue an attempt of each pending delivery that is due, endpoints enabled; returns how many.

    Also forgets previous secrets whose grace period ended, so they are not kept longer than needed.
    """
    from apps.consumption.webhooks.tasks import deliver_webhook  # tasks import this module

    now = timezone.now()
    WebhookEndpoint.objects.filter(previous_secret_expires_at__lte=now).update(
        previous_secret="", previous_secret_expires_at=None
    )
    ids = list(
        WebhookDelivery.objects.filter(status=Status.PENDING, next_attempt_at__lte=now, endpoint__active=True)
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )
    for delivery_id in ids:
        deliver_webhook.delay(delivery_id)
    return len(ids)
