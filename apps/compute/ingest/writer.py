"""A batch's chunk writes, committed one chunk per transaction alongside the pipeline instead of in its way.

Each chunk of the pipeline ends in one transaction: its raw records, rejections, unique values and the
batch's progress (`processed_through` and the counts), so that a stopped run resumes after the last chunk
committed. While the database takes one chunk (its COPY of raw records is most of it), the pipeline already
parses, normalizes and validates the next one: the writes run on a connection and in a thread of their own
(`ChunkWriter`), one chunk at a time and in order. At most two chunks are in flight (one written, one
waiting): the pipeline waits for the writer beyond that, so memory stays bounded by a few chunks.

A chunk's GDP candidates go to the merge (compute/ingest/merger.py) as it is handed over, not once it is
committed: the merge's transaction commits only after the last chunk (the pipeline waits for `finish`
first) and rolls back when one fails, so it never shows versions of an uncommitted chunk, and it starts a
chunk sooner. Once the last chunk is in, the writer's thread has storage summarize the lineage index of
the versions merged so far (merge.summarize_new_versions; uncommitted ones are included) while the
pipeline checks the batch rules and the merge catches up: the batch's end then only summarizes the rest.

Where the merge cannot run alongside (see merger.alongside: SQLite, an outer transaction), neither do the
writes: each chunk is written on the pipeline's connection as soon as it is prepared, the same way.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db import connection, transaction

from apps.compute.ingest.merger import Merger, alongside
from apps.storage.merge import summarize_new_versions

_DONE = object()


@dataclass(eq=False)
class ChunkWrite:
    """What a prepared chunk writes (`write`, in its transaction), and its accepted records' GDP candidates,
    for the merge."""

    write: Callable[[], None] | None
    candidates: list[Any]


class ChunkWriter:
    """Commits prepared chunks in order, each in a transaction of its own, and hands their candidates to the
    merger. `finish` waits for the last one's commit; `close` stops after the chunks already handed over, and
    waits for the thread (and its summary of the lineage index)."""

    def __init__(self, merger: Merger) -> None:
        self._merger = merger
        self._jobs: queue.Queue[Any] = queue.Queue(maxsize=1)
        self._failure: BaseException | None = None
        self._committed = threading.Event()  # the thread has committed (or dropped) every chunk handed over
        self._thread: threading.Thread | None = None
        if alongside():
            self._thread = threading.Thread(target=self._work, name="chunk-writer", daemon=True)
            self._thread.start()

    def write(self, chunk: ChunkWrite) -> None:
        """Commit the chunk (now, or in the writer's thread) and merge its candidates."""
        if self._thread is None:
            self._commit(chunk)
        else:
            self._raise_failure()
            self._jobs.put(chunk)
        self._merger.add(chunk.candidates)

    def finish(self) -> None:
        """Wait until every chunk handed over is committed; raise what stopped the writer, if anything did."""
        if self._thread is not None:
            self._jobs.put(_DONE)
            self._committed.wait()
        self._raise_failure()

    def close(self) -> None:
        if self._thread is not None:
            if not self._committed.is_set():
                self._jobs.put(_DONE)
            self._thread.join()
            self._thread = None

    def _work(self) -> None:
        try:
            while (job := self._jobs.get()) is not _DONE:
                self._commit(job)
        except BaseException as exc:  # raised again in the pipeline's thread, which stops at its next step
            self._failure = exc
            while self._jobs.get() is not _DONE:  # what it handed over meanwhile is dropped, uncommitted
                pass
        else:
            self._committed.set()
            summarize_new_versions()
        finally:
            self._committed.set()
            connection.close()

    def _commit(self, chunk: ChunkWrite) -> None:
        if chunk.write is not None:
            with transaction.atomic():
                if self._thread is not None:  # its own connection and transactions (not a caller's, as inline)
                    _commit_without_waiting_for_the_flush()
                chunk.write()

    def _raise_failure(self) -> None:
        if self._failure is not None:
            failure, self._failure = self._failure, None
            raise failure


def _commit_without_waiting_for_the_flush() -> None:
    """The chunk's transaction commits without waiting for its WAL to reach the disk (PostgreSQL's asynchronous
    commit), once per chunk instead of a flush each. Nothing can be lost but whole chunks at the end of what was
    committed, and only if the server itself crashes: a chunk's raw records and the batch's progress marker are one
    transaction, so a resumed run redoes exactly the chunks lost. The merge's commit, which makes the batch final,
    waits as usual, and its flush takes every chunk's WAL before it along."""
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL synchronous_commit = off")
