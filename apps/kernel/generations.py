"""Generation counters in the Django cache: cached things remember the generation they were
built under, and moving the counter on makes all of them stale at once (no key listing needed).

A counter that was never set, or was evicted, restarts at the current time in nanoseconds: above
any value it held before, so an old entry can never match again.
"""

from __future__ import annotations

import logging
import time
from typing import Any

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


def cached_entry(key: str, generation_key: str, seconds: int) -> tuple[Any, Any, float] | None:
    """(the entry if it is younger than `seconds` and of the current generation, else None; that
    generation; now), in one round trip. None when the cache is unreachable."""
    try:
        found = cache.get_many([key, generation_key])
    except Exception:
        logger.warning("The cache is unreachable", exc_info=True)
        return None
    generation = generation_of(found, generation_key)
    entry, now = found.get(key), time.time()
    if entry is not None and entry["generation"] == generation and now - entry["at"] < seconds:
        return entry, generation, now
    return None, generation, now


def cache_entry(key: str, generation: Any, at: float, seconds: int, **values: Any) -> None:
    """Keep an entry built under `generation` at `at`; never raises."""
    try:
        cache.set(key, {"generation": generation, "at": at, **values}, seconds)
    except Exception:
        logger.warning("The cache is unreachable", exc_info=True)


def generation_of(found: dict[str, int], key: str) -> int | None:
    """The counter from a `get_many` answer, started when missing (None if the cache fails)."""
    if key in found:
        return found[key]
    generation_move(key)
    try:
        return cache.get(key)
    except Exception:
        return None
