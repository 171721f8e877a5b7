"""The keys a batch has seen, each with the position of the record that first had it, in bounded memory.

The validator rejects a record whose primary key (or unique value, or whole-record digest) an earlier record
of the batch had, so it must remember every key the batch accepted: ~200 bytes each as Python objects, which
would make a batch's memory grow with its size (580 MB for 2,000,000 records). A `KeyBook` keeps up to
`limit` keys in a dict; when it is full they move to a private temporary SQLite database with a bounded page
cache, whose file SQLite unlinks as soon as it opens it: it goes when the book is cleared or the process ends.

The spilled keys are found again by their Python hash and compared as the dict would (`==` on the unpickled
key): two equal keys of different types (1 and 1.0) are one key, as in memory. Reading them one key at a time
would cost a query per record; `prefetch(keys)` reads those of a whole chunk in one query before it is
validated, and `get` answers from them. A key not prefetched is still looked up, on its own.
"""

from __future__ import annotations

import json
import pickle
import sqlite3
from collections.abc import Iterable, Iterator
from typing import Any

# The keys a validator keeps as Python objects (~200 bytes each), all its books together.
KEYS_IN_MEMORY = 1_000_000
# SQLite's page cache for the spilled keys (KiB; SQLite takes a negative size as KiB).
CACHE_KIB = 16 * 1024


class KeyBook:
    """A mapping key → first position that holds at most `limit` keys in memory (see the module docstring)."""

    __slots__ = ("_db", "_fetched", "_memory", "_window", "limit", "spilled")

    def __init__(self, limit: int = KEYS_IN_MEMORY):
        self.limit = limit
        self._memory: dict[Any, int] = {}
        self._db: sqlite3.Connection | None = None
        self._window: dict[Any, int] = {}  # the spilled keys found by the last prefetch
        self._fetched: set[int] = set()  # the hashes the last prefetch looked for
        self.spilled = 0  # keys moved to the database

    def __len__(self) -> int:
        return len(self._memory) + self.spilled

    def get(self, key: Any) -> int | None:
        """The position that first had `key`, or None. Raises TypeError for an unhashable key, as a dict does."""
        found = self._memory.get(key)
        if found is not None or not self.spilled:
            return found
        found = self._window.get(key)
        if found is not None or hash(key) in self._fetched:
            return found
        return self._lookup(key)

    def __setitem__(self, key: Any, position: int) -> None:
        """Remember `key` at `position`; the caller has made sure (with `get`) that it is new."""
        memory = self._memory
        memory[key] = position
        if len(memory) > self.limit:
            self._spill()

    def setdefault(self, key: Any, position: int) -> int:
        first = self.get(key)
        if first is None:
            self[key] = position
            return position
        return first

    def prefetch(self, keys: Iterable[Any]) -> None:
        """Read the spilled entries of these keys (a chunk's) in one query, for the `get`s that follow."""
        if not self.spilled:
            return
        hashes = set()
        for key in keys:
            try:
                hashes.add(hash(key))
            except TypeError:  # an unhashable key: get raises for it, as the dict would
                continue
        self._fetched = hashes
        self._window = self._read("SELECT key, position FROM seen WHERE h IN (SELECT value FROM json_each(?))",
                                  [json.dumps(list(hashes))])  # fmt: skip

    def clear(self) -> None:
        self._memory = {}
        self._window, self._fetched = {}, set()
        self.spilled = 0
        if self._db is not None:
            self._db.close()
            self._db = None

    # -- the database --
    def _spill(self) -> None:
        if self._db is None:
            # "": a private temporary database, kept in the page cache as far as it goes, deleted on close.
            self._db = sqlite3.connect("", check_same_thread=False, isolation_level=None)
            self._db.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
            self._db.execute("CREATE TABLE seen (h INTEGER NOT NULL, key BLOB NOT NULL, position INTEGER NOT NULL)")
            self._db.execute("CREATE INDEX seen_h ON seen (h)")
        dumps, protocol, fetched, window = pickle.dumps, pickle.HIGHEST_PROTOCOL, self._fetched, self._window

        def rows() -> Iterator[tuple[int, bytes, int]]:  # a generator: no second copy of the keys in memory
            for key, position in self._memory.items():
                h = hash(key)
                if h in fetched:  # registered by the current chunk, whose later records must still find it
                    window[key] = position
                yield h, dumps(key, protocol), position

        self._db.execute("BEGIN")
        self._db.executemany("INSERT INTO seen VALUES (?, ?, ?)", rows())
        self._db.execute("COMMIT")
        self.spilled += len(self._memory)
        self._memory = {}

    def _lookup(self, key: Any) -> int | None:
        return self._read("SELECT key, position FROM seen WHERE h = ?", [hash(key)]).get(key)

    def _read(self, sql: str, params: list[Any]) -> dict[Any, int]:
        assert self._db is not None
        loads = pickle.loads
        # The keys were pickled by this process into its own private database: nothing else writes there.
        return {loads(blob): position for blob, position in self._db.execute(sql, params)}
