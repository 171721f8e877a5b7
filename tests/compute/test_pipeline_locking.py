"""Two workers on one batch: the second leaves it to the first, which processes it once.

The first worker is a thread with its own database connection (a session of its own on
PostgreSQL), held inside its run until the test lets it go; the second is this test calling
`batch_process` meanwhile, as a redelivered task or the beat job would. On PostgreSQL the lock
is the session advisory lock; the tests marked `postgres` also take it from a connection that
is not Django's, as another worker process would. Elsewhere the lock holds within the process.
These tests run with real commits (transactional database).
"""

from __future__ import annotations

import io
import json
import threading
import time
from typing import Any

import pytest
from django.db import connections

from apps.compute import pipeline
from apps.compute import services as compute
from apps.compute.ingest.writer import ChunkWriter
from apps.compute.models import PipelineRun
from apps.compute.pipeline import BATCH_LOCK, batch_process
from apps.storage.models import GoldenDataPoint, IngestionBatch, RawRecord
from tests.compute.conftest import other_session

pytestmark = pytest.mark.django_db(transaction=True)

COUNT = 12
WAIT_SECONDS = 30


def rows() -> list[dict[str, Any]]:
    return [{"sale_date": "2026-11-01", "store_id": f"S{i:03d}", "region": "north", "revenue": f"{i}.5",
             "units": str(i)} for i in range(COUNT)]  # fmt: skip


@pytest.fixture
def received(source, people, settings) -> IngestionBatch:
    settings.AURUM_INGEST_CHUNK_SIZE = 5
    settings.AURUM_INLINE_BATCH_BYTES = 10  # received only: the tests process it
    body = ("\n".join(json.dumps(r) for r in rows()) + "\n").encode()
    batch, _ = compute.batch_receive(actor=people["steward"], source=source, stream=io.BytesIO(body),
                                     content_type="application/x-ndjson")  # fmt: skip
    return batch


class FirstWorker(threading.Thread):
    """Runs batch_process in its own thread and connection, and waits inside the run (after it started and
    holds the lock) until `release` is set."""

    def __init__(self, batch_id: int) -> None:
        super().__init__(daemon=True)
        self.batch_id = batch_id
        self.inside = threading.Event()
        self.release = threading.Event()
        self.result: Any = None

    def run(self) -> None:
        try:
            self.result = batch_process(self.batch_id)
        except BaseException as exc:  # reported to the test
            self.result = exc
        finally:
            connections.close_all()


@pytest.fixture
def first_worker(received, monkeypatch) -> FirstWorker:
    worker = FirstWorker(received.pk)
    real_plan = pipeline._plan

    def planning(batch: Any) -> Any:
        if threading.current_thread() is worker:
            worker.inside.set()
            assert worker.release.wait(WAIT_SECONDS), "the test never released the first worker"
        return real_plan(batch)

    monkeypatch.setattr(pipeline, "_plan", planning)
    return worker


def test_a_second_worker_leaves_the_batch_to_the_first(received, first_worker):
    first_worker.start()
    assert first_worker.inside.wait(WAIT_SECONDS)
    # The first worker's run has started: the batch is processing and locked.
    second = batch_process(received.pk)
    assert second.status == "processing"
    assert PipelineRun.objects.filter(batch=received).count() == 1  # the second made no run of its own
    assert not RawRecord.objects.filter(batch=received).exists()

    first_worker.release.set()
    first_worker.join(WAIT_SECONDS)
    assert not first_worker.is_alive()
    assert isinstance(first_worker.result, IngestionBatch), first_worker.result
    received.refresh_from_db()
    assert (received.status, received.received, received.accepted) == ("completed", COUNT, COUNT)
    assert RawRecord.objects.filter(batch=received).count() == COUNT
    assert GoldenDataPoint.objects.current().count() == 2 * COUNT
    assert list(PipelineRun.objects.filter(batch=received).values_list("status", flat=True)) == ["completed"]


def test_the_lock_is_released_when_the_run_ends(received, first_worker):
    first_worker.start()
    assert first_worker.inside.wait(WAIT_SECONDS)
    first_worker.release.set()
    first_worker.join(WAIT_SECONDS)
    assert first_worker.result.status == "completed"
    with pipeline._batch_lock(received.pk) as locked:
        assert locked


def test_a_failed_run_releases_the_lock_too(received, monkeypatch):
    def broken(batch: Any) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr(pipeline, "_plan", broken)
    with pytest.raises(RuntimeError):
        batch_process(received.pk)
    with pipeline._batch_lock(received.pk) as locked:
        assert locked


@pytest.mark.postgres
def test_on_postgresql_a_worker_in_another_process_holds_the_batch(received):
    other = other_session()
    try:
        assert other.execute("SELECT pg_try_advisory_lock(%s, %s)", [BATCH_LOCK, received.pk]).fetchone()[0]
        assert batch_process(received.pk).status == "received"  # left alone: not even started
        assert not PipelineRun.objects.exists()
    finally:
        other.close()  # the other worker dies: the database ends its session, and its lock
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:  # the server ends the session a moment after the client left
        with pipeline._batch_lock(received.pk) as locked:
            if locked:
                break
        time.sleep(0.05)
    assert batch_process(received.pk).status == "completed"


@pytest.mark.postgres
def test_on_postgresql_the_lock_is_a_session_lock_held_across_chunk_commits(received, monkeypatch):
    """While a run commits chunk after chunk, another session can never take the batch's lock."""
    other = other_session()
    seen: list[bool] = []
    real = ChunkWriter._commit

    def commit(self: ChunkWriter, chunk: Any) -> None:
        real(self, chunk)  # committed
        seen.append(other.execute("SELECT pg_try_advisory_lock(%s, %s)", [BATCH_LOCK, received.pk]).fetchone()[0])

    monkeypatch.setattr(ChunkWriter, "_commit", commit)
    try:
        assert batch_process(received.pk).status == "completed"
        assert seen == [False, False, False]  # 12 records, chunks of 5
        assert other.execute("SELECT pg_try_advisory_lock(%s, %s)", [BATCH_LOCK, received.pk]).fetchone()[0]
    finally:
        other.close()
