"""A short-lived cache of authenticated API tokens: the request's TenantContext, by token.

Checking a token costs two SQL queries (the token with its user and tenant, the user's
memberships), several milliseconds a request: more than the rest of a cached read. The context
they give is kept in the process (`TOKENS`) for `AURUM_TOKEN_CACHE_SECONDS` (default 30; 0 turns
it off) under the SHA-256 of the raw token (the token itself is never stored), and served again
while the *access generation*, read from the shared cache on every request, is the one it was
built under. That read also fetches the token's tenant's read-cache generation (one round trip
for both; see `apps.kernel.api.readcache`).

Any save or delete of a token, membership, user or tenant moves that generation on (model
signals, connected in AccessConfig.ready), so a revoked token, an ended membership, a
deactivated user or a suspended tenant is refused at once, as without the cache. A token's
expiry is checked on every request. Each request gets its own copies of the user, tenant and
token objects, so what one request caches on them (permissions, say) never reaches another.
`last_used_at` is noted when the context is built, so it may lag by up to the cache's lifetime
plus its one-minute resolution.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
from typing import Any

from django.conf import settings
from django.utils import timezone

from apps.kernel.api.readcache import generation_key
from apps.kernel.context import TenantContext
from apps.kernel.generations import cache_entry, cached_entry, generation_move, generations_read
from apps.kernel.localcache import LocalStore

GENERATION_KEY = "aurum:access:generation"
TOKENS = LocalStore(max_bytes=10_000 * 4096)  # counted as 4 KiB a context: some 10,000 tokens


def _seconds() -> int:
    return int(getattr(settings, "AURUM_TOKEN_CACHE_SECONDS", 30))


def access_changed(**_: Any) -> None:
    """Forget every cached token context (a signal receiver; never raises)."""
    generation_move(GENERATION_KEY)


def cached_context(raw: str, build: Any, memo: dict[str, Any] | None = None) -> TenantContext | None:
    """The context for token `raw`: from the cache while valid, else `build()` (None: refused). `memo`:
    the request's generations (see `apps.kernel.generations`)."""
    seconds = _seconds()
    if seconds <= 0:
        return build()
    key = hashlib.sha256(raw.encode()).hexdigest()
    known = TOKENS.get(key)
    keys = [GENERATION_KEY]
    if known is not None and known["context"].tenant is not None:
        keys.append(generation_key(known["context"].tenant.pk))  # for the read cache, in the same round trip
    generations = generations_read(keys, memo)
    if generations is None:  # the cache is unreachable: check the token in the database
        return build()
    entry, now = cached_entry(TOKENS, key, generations[GENERATION_KEY], seconds)
    if entry is not None:
        context = entry["context"]
        return _own_copy(context) if _unexpired(context.token) else None
    context = build()
    if context is not None:
        cache_entry(TOKENS, key, generations[GENERATION_KEY], now, 4096, context=context)
        return _own_copy(context)
    return context


def _own_copy(context: TenantContext) -> TenantContext:
    return dataclasses.replace(context, user=copy.copy(context.user), tenant=copy.copy(context.tenant),
                               token=copy.copy(context.token))  # fmt: skip


def _unexpired(token: Any) -> bool:
    expires_at = getattr(token, "expires_at", None)
    return expires_at is None or expires_at > timezone.now()
