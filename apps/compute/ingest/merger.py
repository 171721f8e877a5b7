"""A batch's survivorship merge, run alongside its chunks instead of after them.

The chunks (raw records, rejections, staged values) commit one by one, so that a stopped run resumes
after the last one; the Golden Data Points must instead appear all at once, when the batch ends and
only if its quality gate lets it in. So the merge is one transaction of its own, on a connection of
its own, in a thread of its own: each chunk, once committed, is merged there (`merge_unit`) while the
pipeline already parses, normalizes and validates the next one, so that the database's merge work
and the pipeline's Python work run on two cores at once. When the last chunk is in, `finish` merges
what is left and runs the batch's completion (counts, status, events) in the same transaction, which
then commits: GDPs and the batch's final status become visible together. A refused batch, a failed
or stopped run rolls the merge back; the batch's staged values stay, and a resumed run merges its
committed chunks again before it goes on.

The merge holds the contract's merge lock (MERGE_LOCK) from its start (alongside: the run's start) to its
commit: merges of one contract run one after another (a second batch's chunks go on, and wait for the
first once its merger's queue is full), and a KPI run pins its as-of only between them.

The pipeline's own connection sees the chunks it commits; a second connection sees only committed
data. So the merge runs inline, all of it in `finish`, on the pipeline's connection (same units, same
result) where there is no second connection to be had: on SQLite (one writer), when the pipeline runs
inside an outer transaction (a test's, say), or when AURUM_INGEST_MERGE_ALONGSIDE is off.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from apps.storage.bulk import write_staged_values
from apps.storage.merge import NOTHING, MergeResult, discard_staged, merge_unit, refresh_staging_statistics
from apps.storage.staging import open_staging

logger = logging.getLogger(__name__)

MERGE_LOCK = 4242  # advisory lock namespace of a contract's merges (KPI runs wait on it for their as-of)
_DONE = object()


class Merger:
    """Merges a batch's committed chunks, in order, in one transaction; `finish` commits it, `close` drops it."""

    def __init__(self, *, batch: Any, version: Any, source: Any) -> None:
        self.batch_id = batch.pk
        self.contract_id = version.contract_id
        self._arguments = {
            "batch_id": batch.pk, "tenant_id": batch.tenant_id, "contract_id": version.contract_id,
            "contract_version_id": version.pk, "source_id": source.pk, "source_priority": source.priority,
            "survivorship": version.contract.survivorship,
        }  # fmt: skip
        self.result = NOTHING
        self.now: datetime | None = None
        self._units: list[tuple[int, int]] = []
        self._thread: threading.Thread | None = None
        # Bounded: a merge that falls behind holds the pipeline back, and memory stays bounded by a few chunks.
        self._jobs: queue.Queue[Any] = queue.Queue(maxsize=2)
        self._failure: BaseException | None = None
        if alongside():
            self._thread = threading.Thread(target=self._work, name=f"merge-batch-{batch.pk}", daemon=True)
            self._thread.start()
        else:
            open_staging()

    @property
    def alongside(self) -> bool:
        return self._thread is not None

    def add(self, first: int, last: int, staged: list[Any]) -> None:
        """The chunk of positions first..last is committed: merge its `staged` values (bulk.write_staged_values
        rows), now or in `finish`."""
        if self._thread is None:
            write_staged_values(staged)
            self._units.append((first, last))
            return
        self._raise_failure()
        self._jobs.put((first, last, staged))

    def finish(self, complete: Callable[[MergeResult, datetime], Any]) -> Any:
        """Merge what is left, run `complete(result, now)` in the merge's transaction, commit; its return value."""
        if self._thread is None:
            refresh_staging_statistics()
            with transaction.atomic():
                self._begin()
                for first, last in self._units:
                    self._merge(first, last)
                discard_staged()
                return complete(self.result, self.now)
        done: dict[str, Any] = {}
        self._jobs.put(("finish", complete, done))
        self._jobs.put(_DONE)
        self._thread.join()
        self._thread = None
        self._raise_failure()
        return done["value"]

    def close(self) -> None:
        """Drop the merge if it is still open (a refused batch, a failed or stopped run): nothing of it stays."""
        if self._thread is None:  # the session's staging table is emptied when the next run opens it
            return
        self._jobs.put(_DONE)
        self._thread.join()
        self._thread = None

    # --- the merge's thread

    def _work(self) -> None:
        try:
            with transaction.atomic():
                open_staging()
                self._begin()
                finished = False
                while (job := self._jobs.get()) is not _DONE:
                    if job[0] == "finish":
                        job[2]["value"] = job[1](self.result, self.now)
                        finished = True
                    else:
                        first, last, staged = job
                        write_staged_values(staged)
                        self._merge(first, last)
                        discard_staged()
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

    def _begin(self) -> None:
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [MERGE_LOCK, self.contract_id])
        # Recorded after the lock: a KPI run pins its as-of under the same lock (kpis.services), so every
        # merge either committed before that moment or records its versions after it.
        self.now = timezone.now()

    def _merge(self, first: int, last: int) -> None:
        self.result += merge_unit(positions=(first, last), now=self.now, **self._arguments)

    def _raise_failure(self) -> None:
        if self._failure is not None:
            failure, self._failure = self._failure, None
            raise failure


class _RollBack(Exception):
    """Leaves the merge's atomic block without committing."""


def alongside() -> bool:
    """Whether the merge can run on a connection of its own (see the module)."""
    return (
        settings.AURUM_INGEST_MERGE_ALONGSIDE and connection.vendor == "postgresql" and not connection.in_atomic_block
    )
