"""Token format: `aur_<prefix>_<secret>`; only sha256(secret) is stored."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import string

from apps.access.models import TOKEN_PREFIX

PREFIX_LENGTH = 10
_PREFIX_ALPHABET = string.ascii_lowercase + string.digits


def new_token() -> tuple[str, str, str]:
    """Return (plain token, prefix, secret digest)."""
    prefix = "".join(secrets.choice(_PREFIX_ALPHABET) for _ in range(PREFIX_LENGTH))
    secret = secrets.token_urlsafe(32)
    return f"{TOKEN_PREFIX}{prefix}_{secret}", prefix, digest(secret)


def split_token(raw: str) -> tuple[str, str] | None:
    """(prefix, secret) of a well-formed token, else None."""
    head = len(TOKEN_PREFIX)
    if not raw.startswith(TOKEN_PREFIX) or len(raw) < head + PREFIX_LENGTH + 2 or raw[head + PREFIX_LENGTH] != "_":
        return None
    return raw[head : head + PREFIX_LENGTH], raw[head + PREFIX_LENGTH + 1 :]


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def matches(secret: str, stored_digest: str) -> bool:
    return hmac.compare_digest(digest(secret), stored_digest)
