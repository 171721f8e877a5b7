"""A batch's survivorship merge, run alongside its chunks instead of after them.

The chunks (raw records, rejections) commit one by one, so that a stopped run resumes
after the last one; the Golden Data Points must instead appear all at once, when the batch ends and
only if its quality gate lets it in. So the merge is one transaction of its own, on a connection of
its own, in a thread of its own: each chunk, once committed, is merged there (`BatchMerge.add`) while the
pipeline already parses, normalizes and validates the next one, so that the database's merge work
and the pipeline's Python work run on two cores at once. When the last chunk is in, `finish` merges
what is left and runs the batch's completion (counts, status, events) in the same transaction, which
then commits: GDPs and the batch's final status become visible together. A refused batch, a failed
or stopped run rolls the merge back; a resumed run validates its committed chunks again and merges
them before it goes on.

The merge holds the contract's merge lock (MERGE_LOCK) from its start (alongside: the run's start) to its
commit: merges of one contract run one after another (a second batch's chunks go on, and wait for the
first once its merger's queue is full), and a KPI run pins its as-of only between them.

The pipeline's own connection sees the chunks it commits; a second connection sees only committed
data. So the merge runs inline, all of it in `finish`, on the pipeline's connection (same units, same
result) where there is no second connection to be had: on SQLite (one writer), when the pipeline runs
inside an outer transaction (a test's, say), or when AURUM_INGEST_MERGE_ALONGSIDE is off. Until then the
units wait in a temporary file (pickled, one after another), so memory stays bounded by a chunk.
"""

from __future__ import annotations

import contextlib
import logging
import pickle
import queue
import tempfile
import threading
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any, NamedTuple

from django.conf import settings
from django.db import Error, connection, transaction
from django.utils import timezone

from apps.storage.merge import MERGE_LOCK, BatchMerge, MergeResult

logger = logging.getLogger(__name__)

_DONE = object()


class Merger:
    """Merges a batch's committed chunks, in order, in one transaction; `finish` commits it, `close` drops it."""

    def __init__(
        self, *, batch: Any, version: Any, source: Any, expected_keys: int, distinct_keys: bool = False
    ) -> None:
        self.batch_id = batch.pk
        self.contract_id = version.contract_id
        self._arguments = {
            "batch_id": batch.pk, "tenant_id": batch.tenant_id, "contract_id": version.contract_id,
            "contract_version_id": version.pk, "source_id": source.pk, "source_priority": source.priority,
            "survivorship": version.contract.survivorship, "expected_keys": expected_keys,
            "distinct_keys": distinct_keys,
        }  # fmt: skip
        self._merge: BatchMerge | None = None  # made when the merge's transaction has the lock
        self._units: Any = None  # the inline mode's temporary file of pickled units
        self._unit_count = 0
        self._thread: threading.Thread | None = None
        # Bounded: a merge that falls behind holds the pipeline back, and memory stays bounded by a few chunks.
        self._jobs: queue.Queue[Any] = queue.Queue(maxsize=2)
        self._failure: BaseException | None = None
        if alongside():
            self._thread = threading.Thread(target=self._work, name=f"merge-batch-{batch.pk}", daemon=True)
            self._thread.start()
        else:
            self._units = tempfile.TemporaryFile()  # noqa: SIM115 - closed by finish or close

    @property
    def alongside(self) -> bool:
        return self._thread is not None

    def add(self, records: list[Any]) -> None:
        """A chunk is committed: merge its accepted records' candidates (storage.merge.BatchMerge.add's
        records), now or in `finish`."""
        if not records:
            return
        if self._thread is None:
            pickle.dump(records, self._units, protocol=pickle.HIGHEST_PROTOCOL)
            self._unit_count += 1
            return
        self._raise_failure()
        self._jobs.put(records)

    def finish(self, complete: Callable[[MergeResult, datetime], Any]) -> Any:
        """Merge what is left, run `complete(result, now)` in the merge's transaction, commit; its return value."""
        if self._thread is None:
            self._units.seek(0)
            with self._merge_lock() as session_locked, transaction.atomic():
                self._begin(session_locked)
                with self._aborting():
                    for _ in range(self._unit_count):
                        self._merge.add(pickle.load(self._units))  # noqa: S301 - our own file, written above
                    value = self._complete(complete)
            self.close()
            return value
        done: dict[str, Any] = {}
        self._jobs.put(_Finish(complete, done))
        self._jobs.put(_DONE)
        self._thread.join()
        self._thread = None
        self._raise_failure()
        return done["value"]

    def close(self) -> None:
        """Drop the merge if it is still open (a refused batch, a failed or stopped run): nothing of it stays."""
        if self._thread is None:
            if self._units is not None:
                self._units.close()
                self._units = None
            return
        self._jobs.put(_DONE)
        self._thread.join()
        self._thread = None

    # --- the merge's thread

    def _work(self) -> None:
        try:
            with self._merge_lock() as session_locked, transaction.atomic():
                self._begin(session_locked)
                finished = False
                with self._aborting():
                    while (job := self._jobs.get()) is not _DONE:
                        if isinstance(job, _Finish):
                            job.done["value"] = self._complete(job.complete)
                            finished = True
                        else:
                            self._merge.add(job)
                    if not finished:
                        raise _RollBack
        except _RollBack:
            pass
        except BaseException as exc:
            self._failure = exc
            self._drain()
        finally:
            connection.close()

    def _drain(self) -> None:
        while self._jobs.get() is not _DONE:
            pass

    @contextlib.contextmanager
    def _merge_lock(self) -> Iterator[bool]:
        """On PostgreSQL, outside any transaction: the contract's merge lock held by the session, from before the
        merge's transaction begins to after it ends (commit or rollback). Yields whether it is held so; if not,
        `_begin` takes it for the transaction (inside a caller's transaction) or there is none (SQLite)."""
        if connection.vendor != "postgresql" or connection.in_atomic_block:
            yield False
            return
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s, %s)", [MERGE_LOCK, self.contract_id])
        try:
            yield True
        finally:
            try:
                with connection.cursor() as cursor:
                    cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [MERGE_LOCK, self.contract_id])
            except Error:  # the connection is broken: closing it ends the session, and the lock with it
                logger.warning("Could not release the merge lock of contract %s", self.contract_id, exc_info=True)
                connection.close()

    def _begin(self, session_locked: bool) -> None:
        """Start the merge, under the lock. Its clock is read after the lock is had: a KPI run pins its as-of under
        the same lock (kpis.services), so every merge either committed before that moment or records its versions
        after it. Under the session's lock the clock is the transaction's start (its first statement is this
        one), which recorded_from defaults to, so the COPY of versions leaves that column out."""
        if session_locked:
            with connection.cursor() as cursor:
                cursor.execute("SELECT transaction_timestamp()")
                now = cursor.fetchone()[0]
        else:
            if connection.vendor == "postgresql":
                with connection.cursor() as cursor:
                    cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [MERGE_LOCK, self.contract_id])
            now = timezone.now()
        self._merge = BatchMerge(now=now, recorded_at_start=session_locked, **self._arguments)

    def _complete(self, complete: Callable[[MergeResult, datetime], Any]) -> Any:
        self._merge.flush()  # every version written before the completion reads the result
        return complete(self._merge.result, self._merge.now)

    @contextlib.contextmanager
    def _aborting(self) -> Iterator[None]:
        """A failing merge abandons its open COPY first, so that its transaction can roll back."""
        try:
            yield
        except BaseException as exc:
            self._merge.abort(exc)
            raise

    def _raise_failure(self) -> None:
        if self._failure is not None:
            failure, self._failure = self._failure, None
            raise failure


class _Finish(NamedTuple):
    complete: Callable[[MergeResult, datetime], Any]
    done: dict[str, Any]


class _RollBack(Exception):
    """Leaves the merge's atomic block without committing."""


def alongside() -> bool:
    """Whether the merge can run on a connection of its own (see the module)."""
    return (
        settings.AURUM_INGEST_MERGE_ALONGSIDE and connection.vendor == "postgresql" and not connection.in_atomic_block
    )
