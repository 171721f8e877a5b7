"""Django's Redis cache backend, reusing its redis-py client objects.

Django's `RedisCacheClient.get_client` builds a new `redis.Redis` for every cache call. Its
connection pools are kept, but each client object sets up some 170 response callbacks when it is
built: about a tenth of a millisecond a call, and a cached API read makes several. A `redis.Redis`
is safe to share between threads (each command takes a connection from the pool), so this backend
keeps one per pool. Select it with `AURUM_CACHE_URL=redis://…` (config/settings.py).
"""

from __future__ import annotations

from typing import Any

from django.core.cache.backends.redis import RedisCache as DjangoRedisCache
from django.core.cache.backends.redis import RedisCacheClient


class ReusingRedisCacheClient(RedisCacheClient):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._clients: dict[int, Any] = {}

    def get_client(self, key: Any = None, *, write: bool = False) -> Any:
        index = self._get_connection_pool_index(write)
        client = self._clients.get(index)
        if client is None:
            client = self._clients[index] = super().get_client(key, write=write)
        return client


class RedisCache(DjangoRedisCache):
    def __init__(self, server: Any, params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self._class = ReusingRedisCacheClient
