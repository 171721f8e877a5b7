"""A short-lived cache of authenticated API tokens: the request's TenantContext, by token.

Checking a token costs two SQL queries (the token with its user and tenant, the user's
memberships), several milliseconds a request: more than the rest of a cached read. The context
they give is kept for `AURUM_TOKEN_CACHE_SECONDS` (default 30; 0 turns it off) under the SHA-256
of the raw token (the token itself is never stored), and served again while the *access
generation* is the one it was built under.

Any save or delete of a token, membership, user or tenant moves that generation on (model
signals, connected in AccessConfig.ready), so a revoked token, an ended membership, a
deactivated user or a suspended tenant is refused at once, as without the cache. A token's
expiry is checked on every request. `last_used_at` is noted when the context is built, so it
may lag by up to the cache's lifetime plus its one-minute resolution.
"""

from __future__ import annotations

import hashlib
from typing import Any

from django.conf import settings
from django.utils import timezone

from apps.kernel.context import TenantContext
from apps.kernel.generations import cache_entry, cached_entry, generation_move

GENERATION_KEY = "aurum:access:generation"


def _seconds() -> int:
    return int(getattr(settings, "AURUM_TOKEN_CACHE_SECONDS", 30))


def access_changed(**_: Any) -> None:
    """Forget every cached token context (a signal receiver; never raises)."""
    generation_move(GENERATION_KEY)


def cached_context(raw: str, build: Any) -> TenantContext | None:
    """The context for token `raw`: from the cache while valid, else `build()` (None: refused)."""
    seconds = _seconds()
    if seconds <= 0:
        return build()
    key = "aurum:access:token:" + hashlib.sha256(raw.encode()).hexdigest()
    looked = cached_entry(key, GENERATION_KEY, seconds)
    if looked is None:  # the cache is unreachable: check the token in the database
        return build()
    entry, generation, now = looked
    if entry is not None:
        context = entry["context"]
        return context if _unexpired(context.token) else None
    context = build()
    if context is not None:
        cache_entry(key, generation, now, seconds, context=context)
    return context


def _unexpired(token: Any) -> bool:
    expires_at = getattr(token, "expires_at", None)
    return expires_at is None or expires_at > timezone.now()
