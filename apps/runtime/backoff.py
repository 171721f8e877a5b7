"""Retry delays for tasks: exponential with full jitter, capped."""

from __future__ import annotations

import random


def backoff_seconds(retries: int, *, base: float = 5.0, cap: float = 3600.0) -> float:
    """Delay before retry number `retries + 1`: random in [base/2, min(cap, base * 2**retries)].

    Jitter spreads retries of many failed tasks so they do not hammer a recovering
    dependency in lockstep; the floor keeps a retry from firing instantly.
    """
    ceiling = min(cap, base * (2 ** max(retries, 0)))
    return random.uniform(min(base / 2, ceiling), ceiling)  # noqa: S311 (jitter, not cryptography)
