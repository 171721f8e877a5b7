"""Generation counters in the Django cache: cached things remember the generation they were
built under, and moving the counter on makes all of them stale at once (no key listing needed).

A counter that was never set, or was evicted, restarts at the current time in nanoseconds: above
any value it held before, so an old entry can never match again.
"""

from __future__ import annotations

import logging
import time

from django.core.cache import cache

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


def generation_of(found: dict[str, int], key: str) -> int | None:
    """The counter from a `get_many` answer, started when missing (None if the cache fails)."""
    if key in found:
        return found[key]
    generation_move(key)
    try:
        return cache.get(key)
    except Exception:
        return None
