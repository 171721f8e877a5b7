"""Rate limits per principal: one bucket per API token, else per user, else per client address.

Fixed windows (`AURUM_API_RATE` requests per second/minute/hour/day, counted from the window's
start), one cache round trip a request (with Redis, a pipelined SET NX EX and INCR). DRF's own
SimpleRateThrottle keeps the time of every request of the window in one cache value that it reads
and writes whole on each request, so its cost grows with the rate. A fixed window lets a client spend up to twice the rate across a window
boundary; that is the usual trade for a counter.
"""

from __future__ import annotations

from typing import Any

from django.core.cache import DEFAULT_CACHE_ALIAS, caches
from django.core.cache.backends.redis import RedisCache
from rest_framework.throttling import SimpleRateThrottle


def _redis_client(key: str) -> Any:
    """The redis-py client behind the default cache if it is Django's RedisCache (its `_cache`, stable
    since Django 4.0), else None."""
    backend = caches[DEFAULT_CACHE_ALIAS]  # not DRF's `cache`, a proxy that is no RedisCache itself
    if isinstance(backend, RedisCache):
        return backend._cache.get_client(key, write=True)
    return None


class PrincipalRateThrottle(SimpleRateThrottle):
    scope = "principal"

    def get_cache_key(self, request: Any, view: Any) -> str:
        token = getattr(request, "auth", None)
        if token is not None and getattr(token, "pk", None) is not None:
            ident = f"token:{token.pk}"
        elif request.user and request.user.is_authenticated:
            ident = f"user:{request.user.pk}"
        else:
            ident = f"ip:{self.get_ident(request)}"
        return self.cache_format % {"scope": self.scope, "ident": ident}

    def allow_request(self, request: Any, view: Any) -> bool:
        if self.rate is None:
            return True
        principal = self.get_cache_key(request, view)
        if principal is None:
            return True
        self.now = self.timer()
        window = int(self.now // self.duration)
        self.window_ends = (window + 1) * self.duration
        return self._counted(f"{principal}:{window}") <= self.num_requests

    def _counted(self, key: str) -> int:
        """The window's count after this request."""
        client = _redis_client(key)
        if client is not None:
            # Django's RedisCache.incr checks EXISTS first: two round trips where one does.
            full_key = self.cache.make_and_validate_key(key)
            pipe = client.pipeline(transaction=False)
            pipe.set(full_key, 0, ex=int(self.duration) + 1, nx=True)
            pipe.incr(full_key)
            return int(pipe.execute()[1])
        try:
            return self.cache.incr(key)
        except ValueError:  # the window's first request (or its key expired a moment ago)
            return 1 if self.cache.add(key, 1, self.duration + 1) else self.cache.incr(key)

    def wait(self) -> float:
        """Seconds until the window ends (DRF's Retry-After)."""
        return max(self.window_ends - self.now, 1)
