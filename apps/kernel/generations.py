"""Generation counters in the Django cache: cached things remember the generation they were
built under, and moving the counter on makes all of them stale at once (no key listing needed).

The counters live in the shared cache (Redis in production), so a change in one process is seen
by every other at its next read; the entries they validate may live anywhere, here in
process-local stores (`apps.kernel.localcache`). A counter that was never set, or was evicted,
restarts at the current time in nanoseconds: above any value it held before, so an old entry can
never match again.

Within one request the counters it needs are read together, in one round trip, and kept in a
per-request `memo` (a dict), so that the token check can fetch the read cache's counter along
with its own.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from django.core.cache import cache

from apps.kernel.localcache import LocalStore

logger = logging.getLogger(__name__)


def generation_move(key: str) -> None:
    """Move the counter on. Never raises: a write must not fail because the cache is unreachable
    (what the counter guards expires within seconds anyway)."""
    try:
        try:
            cache.incr(key)
        except ValueError:
            cache.set(key, time.time_ns(), None)
    except Exception:
        logger.warning("Could not move the cache generation %s", key, exc_info=True)


def generations_read(keys: list[str], memo: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """The counters of `keys` (those not in `memo` read in one round trip, missing ones started), kept in
    `memo` too. None when the cache is unreachable."""
    memo = {} if memo is None else memo
    wanted = [key for key in keys if key not in memo]
    if wanted:
        try:
            found = cache.get_many(wanted)
        except Exception:
            logger.warning("The cache is unreachable", exc_info=True)
            return None
        for key in wanted:
            memo[key] = found[key] if key in found else _started(key)
    return memo


def _started(key: str) -> Any:
    generation_move(key)
    try:
        return cache.get(key)
    except Exception:
        return None


def cached_entry(store: LocalStore, key: str, generation: Any, seconds: int) -> tuple[dict[str, Any] | None, float]:
    """(the entry if it is younger than `seconds` and of `generation`, else None; now)."""
    entry, now = store.get(key), time.time()
    if (
        entry is not None
        and generation is not None
        and entry["generation"] == generation
        and now - entry["at"] < seconds
    ):
        return entry, now
    return None, now


def cache_entry(store: LocalStore, key: str, generation: Any, at: float, size: int, **values: Any) -> None:
    """Keep an entry built under `generation` at `at` (about `size` bytes)."""
    if generation is not None:
        store.put(key, {"generation": generation, "at": at, **values}, size)
