"""Process-local, size-bounded stores for entries that a shared generation counter validates.

A cached API read used to be fetched from Redis and unpickled on every request: a round trip and,
for a page of results, most of the request's time. Entries that can only be used after checking a
generation counter (see `apps.kernel.generations`) are as safe in the process as in Redis: the
counter still lives in the shared cache, so a change anywhere makes every process's copy stale at
once. Each process keeps its own copy and builds it once.

`LocalStore` is a least-recently-used mapping bounded by the total size its callers declare, safe
to share between the threads of a worker.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

_stores: list[LocalStore] = []


class LocalStore:
    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._entries: OrderedDict[str, tuple[Any, int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        _stores.append(self)

    def get(self, key: str) -> Any | None:
        with self._lock:
            found = self._entries.get(key)
            if found is None:
                return None
            self._entries.move_to_end(key)
            return found[0]

    def put(self, key: str, value: Any, size: int) -> None:
        """Keep `value` (about `size` bytes), dropping the least recently used entries to make room;
        a value larger than the whole store is not kept."""
        if size > self.max_bytes:
            return
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._bytes -= old[1]
            while self._entries and self._bytes + size > self.max_bytes:
                _, (_, dropped) = self._entries.popitem(last=False)
                self._bytes -= dropped
            self._entries[key] = (value, size)
            self._bytes += size

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._bytes = 0


def clear_all() -> None:
    """Empty every store of the process (tests start from nothing)."""
    for store in _stores:
        store.clear()
