"""Standard Webhooks signing: the spec's known answer, and what the reference library accepts."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from apps.consumption.webhooks import signing


def test_it_reproduces_the_known_answer_of_the_spec():
    signature = signing.sign(
        secret="whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        message_id="msg_p5jXN8AQM9LWM0D4loKWxJek",
        timestamp=1614265330,
        body=b'{"test": 2432232314}',
    )

    assert signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_new_secrets_are_whsec_and_32_random_bytes():
    first, second = signing.new_secret(), signing.new_secret()

    assert first.startswith("whsec_")
    assert len(base64.b64decode(first.removeprefix("whsec_"))) == 32
    assert first != second
    assert signing.secret_key(first) == base64.b64decode(first[6:])


def test_message_ids_are_unique_and_prefixed():
    ids = {signing.new_message_id() for _ in range(200)}

    assert len(ids) == 200
    assert all(i.startswith("msg_") and len(i) == 28 and i[4:].isalnum() for i in ids)


def test_the_reference_library_verifies_headers_with_one_signature_per_secret():
    old, new = signing.new_secret(), signing.new_secret()
    body = signing.encode_body({"type": "kpi.published", "timestamp": "2026-01-01T00:00:00+00:00", "data": {"é": 1}})
    now = int(datetime.now(UTC).timestamp())
    headers = signing.webhook_headers(secrets=[new, old], message_id="msg_x", timestamp=now, body=body.encode())

    assert len(headers["webhook-signature"].split(" ")) == 2
    assert Webhook(new).verify(body.encode(), headers) == {
        "type": "kpi.published",
        "timestamp": "2026-01-01T00:00:00+00:00",
        "data": {"é": 1},
    }
    Webhook(old).verify(body.encode(), headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(signing.new_secret()).verify(body.encode(), headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(new).verify(body.encode() + b" ", headers)


@pytest.mark.parametrize(
    "secret",
    ["MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_not base64!", "whsec_" + base64.b64encode(b"short").decode()],
    ids=["no prefix", "not base64", "too short"],
)
def test_it_refuses_malformed_secrets(secret):
    with pytest.raises(signing.InvalidSecret):
        signing.secret_key(secret)


def test_it_needs_a_secret_to_sign():
    with pytest.raises(signing.InvalidSecret):
        signing.webhook_headers(secrets=[], message_id="msg_x", timestamp=1, body=b"{}")
