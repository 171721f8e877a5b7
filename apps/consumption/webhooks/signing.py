"""Standard Webhooks signing: secrets, message ids, bodies and the three headers.

A receiver verifies a delivery with any Standard Webhooks library (`Webhook(secret).verify(body,
headers)`): `webhook-signature` carries `v1,<base64 HMAC-SHA256>` of the bytes
`{webhook-id}.{webhook-timestamp}.{body}`, keyed with the base64-decoded part of the
`whsec_…` secret. During a secret rotation the header lists one signature per live secret,
space-separated, and the receiver accepts any that matches.

Pure functions, no Django: the known-answer test of the spec runs against them directly.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import string
from collections.abc import Iterable
from typing import Any

from apps.consumption.webhooks.choices import MESSAGE_ID_PREFIX, SECRET_PREFIX

SECRET_BYTES = 32  # the spec asks for 24 to 64 random bytes
_ID_ALPHABET = string.ascii_letters + string.digits


class InvalidSecret(ValueError):
    """Not a `whsec_` secret whose rest is base64 of 24 to 64 bytes."""


def new_secret() -> str:
    """A fresh signing secret: `whsec_` + base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii")


def secret_key(secret: str) -> bytes:
    """The HMAC key of a `whsec_…` secret (the decoded bytes after the prefix)."""
    if not secret.startswith(SECRET_PREFIX):
        raise InvalidSecret(f"A webhook secret starts with {SECRET_PREFIX!r}.")
    try:
        key = base64.b64decode(secret[len(SECRET_PREFIX) :], validate=True)
    except (binascii.Error, ValueError):
        raise InvalidSecret("The part after 'whsec_' is not valid base64.") from None
    if not 24 <= len(key) <= 64:
        raise InvalidSecret("A webhook secret holds 24 to 64 random bytes.")
    return key


def new_message_id() -> str:
    """A message id (`webhook-id`): unique per message, kept across its retries."""
    return MESSAGE_ID_PREFIX + "".join(secrets.choice(_ID_ALPHABET) for _ in range(24))


def encode_body(payload: dict[str, Any]) -> str:
    """The JSON text sent (and signed) for a payload; stored once so every retry sends the same bytes."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False, sort_keys=True, default=str)


def sign(*, secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """One `v1,<base64>` signature of `{id}.{timestamp}.{body}`."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def webhook_headers(*, secrets: Iterable[str], message_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The three Standard Webhooks headers plus the content type, one signature per secret."""
    signatures = [sign(secret=s, message_id=message_id, timestamp=timestamp, body=body) for s in secrets]
    if not signatures:
        raise InvalidSecret("At least one secret is needed to sign.")
    return {
        "Content-Type": "application/json",
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(signatures),
    }
