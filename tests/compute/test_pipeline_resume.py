"""A batch whose worker dies mid-way resumes after its last committed chunk, without duplicates.

The kill is simulated by raising a BaseException subclass from inside a chunk: like a worker
that is killed (or loses its database connection for good), it is not an `Exception`, so
the pipeline's own error handling does not mark the batch failed; the chunk's transaction
rolls back and the batch stays `processing`, which is how the redelivered task (late acks)
or the beat job `compute.resume_stalled_batches` finds it. These tests run with real
commits (transactional database), so "committed chunk" means committed.
"""

from __future__ import annotations

import io
import json
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone

from apps.compute import services as compute
from apps.compute.models import PipelineRun
from apps.compute.pipeline import batch_process
from apps.compute.tasks import resume_stalled_batches
from apps.runtime.models import DomainEvent, JobRun
from apps.storage import bulk
from apps.storage.models import GoldenDataPoint, IngestionBatch, RawRecord, Rejection
from tests.compute.conftest import FIELDS, activate_contract

pytestmark = pytest.mark.django_db(transaction=True)


def known_bug(reason: str, *raises: type[BaseException]) -> pytest.MarkDecorator:
    """A defect reported to the code's owner, shown by the test it marks. Strict: once the code is fixed the
    test passes, the run fails on the unexpected pass, and the marker goes. `pytest --runxfail` shows it fail."""
    return pytest.mark.xfail(strict=True, reason=f"BUG: {reason}", raises=raises or AssertionError)


CHUNK = 10
COUNT = 35


class WorkerKilled(BaseException):
    """Not an Exception: nothing in the pipeline catches it, as nothing survives a SIGKILL."""


def record(i: int) -> dict[str, Any]:
    return {"sale_date": "2026-11-01", "store_id": f"S{i:03d}", "region": "north" if i % 2 else "south",
            "revenue": f"{100 + i}.25", "units": str(i + 1)}  # fmt: skip


def payload() -> list[dict[str, Any]]:
    rows = [record(i) for i in range(COUNT)]
    rows[5]["region"] = "west"  # chunk 0: allowed_values
    rows[25]["store_id"] = "bad"  # chunk 2 (the one killed): pattern
    rows[28] = dict(rows[3])  # chunk 2: the same record as position 3: primary_key, and a duplicate
    rows[33]["revenue"] = "-1"  # chunk 3: minimum
    return rows


EXPECTED_REJECTIONS = [(5, "region", "allowed_values"), (25, "store_id", "pattern"), (28, "store_id", "primary_key"),
                       (33, "revenue", "minimum")]  # fmt: skip


@pytest.fixture
def small_chunks(settings: Any) -> None:
    settings.AURUM_INGEST_CHUNK_SIZE = CHUNK
    settings.AURUM_INLINE_BATCH_BYTES = 10  # received only: these tests process the batch themselves


@pytest.fixture
def received(source, people, small_chunks) -> IngestionBatch:
    body = ("\n".join(json.dumps(r) for r in payload()) + "\n").encode()
    batch, created = compute.batch_receive(actor=people["steward"], source=source, stream=io.BytesIO(body),
                                           content_type="application/x-ndjson")  # fmt: skip
    assert created and batch.status == "received"
    return batch


def kill_on_call(monkeypatch, target: Any, name: str, call: int) -> list[int]:
    """Make `target.name` raise WorkerKilled on its `call`-th call (1-based); returns the call counter."""
    real = getattr(target, name)
    calls = [0]

    def dying(*args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        if calls[0] == call:
            raise WorkerKilled(f"killed in call {call} of {name}")
        return real(*args, **kwargs)

    monkeypatch.setattr(target, name, dying)
    return calls


def kill_mid_way(monkeypatch, batch: IngestionBatch) -> IngestionBatch:
    """Process until the third chunk dies: two chunks (positions 0..19) stay committed."""
    kill_on_call(monkeypatch, bulk, "write_raw_records", 3)
    with pytest.raises(WorkerKilled):
        batch_process(batch.pk)
    monkeypatch.undo()
    batch.refresh_from_db()
    return batch


def assert_processed_exactly_once(batch: IngestionBatch) -> None:
    batch.refresh_from_db()
    assert batch.status == "completed_with_rejections", batch.error
    positions = list(RawRecord.objects.filter(batch=batch).order_by("position").values_list("position", flat=True))
    assert positions == list(range(COUNT))  # each record once (the constraint would refuse a second anyway)
    rejections = list(Rejection.objects.filter(batch=batch).order_by("position", "id").values_list(
        "position", "field", "rule"))  # fmt: skip
    assert rejections == EXPECTED_REJECTIONS
    for rejection in Rejection.objects.filter(batch=batch):
        assert rejection.raw_record.batch_id == batch.pk
        assert rejection.raw_record.position == rejection.position
    assert (batch.received, batch.accepted, batch.rejected) == (COUNT, COUNT - 4, 4)
    assert batch.duplicates == 1  # position 28 repeats position 3
    assert batch.processed_through == COUNT - 1
    assert batch.gdps_created == 2 * (COUNT - 4)
    current = GoldenDataPoint.objects.current()
    assert current.count() == 2 * (COUNT - 4)
    assert not GoldenDataPoint.objects.filter(recorded_to__isnull=False).exists()  # nothing shadowed or lost
    assert not current.filter(entity_key__in=["bad", "S005", "S033"]).exists()
    assert current.get(entity_key="S003", measure="revenue").value == Decimal("103.25")
    assert current.get(entity_key="S034", measure="units").value == Decimal("35")
    assert sorted(set(current.values_list("raw_record__position", flat=True))) == [
        p for p in range(COUNT) if p not in {5, 25, 28, 33}
    ]


def test_a_batch_killed_mid_way_resumes_after_its_last_committed_chunk(received, monkeypatch):
    batch = kill_mid_way(monkeypatch, received)
    # What the killed worker left: two committed chunks, nothing of the third.
    assert batch.status == "processing"
    assert batch.processed_through == 2 * CHUNK - 1
    assert RawRecord.objects.filter(batch=batch).count() == 2 * CHUNK
    assert list(Rejection.objects.filter(batch=batch).values_list("position", flat=True)) == [5]
    assert (batch.received, batch.accepted, batch.rejected) == (COUNT, 2 * CHUNK - 1, 1)
    assert not GoldenDataPoint.objects.exists()

    # The redelivered task finds the batch as the dead worker left it, and runs it again.
    IngestionBatch.objects.filter(pk=batch.pk).update(status="processing")
    resumed = batch_process(batch.pk)
    assert resumed.status == "completed_with_rejections"
    assert_processed_exactly_once(batch)
    assert DomainEvent.objects.filter(type="batch.completed", payload__batch=batch.pk).count() == 1
    runs = list(PipelineRun.objects.filter(batch=batch).order_by("started_at").values_list("status", flat=True))
    assert runs[-1] == "completed" and len(runs) == 2


def test_a_batch_killed_in_the_merge_resumes_without_duplicates(received, monkeypatch):
    from apps.storage.merge import BatchMerge

    kill_on_call(monkeypatch, BatchMerge, "add", COUNT // CHUNK + 1)  # the last chunk's merge
    with pytest.raises(WorkerKilled):
        batch_process(received.pk)
    monkeypatch.undo()
    received.refresh_from_db()
    assert (received.status, received.processed_through) == ("processing", COUNT - 1)
    assert not GoldenDataPoint.objects.exists()

    batch_process(received.pk)
    assert_processed_exactly_once(received)


def test_an_uninterrupted_run_gives_the_same_result(received):
    """The reference for the two tests above."""
    batch_process(received.pk)
    assert_processed_exactly_once(received)
    assert PipelineRun.objects.get(batch=received).status == "completed"


@pytest.mark.parametrize("killed", [False, True])
def test_repeats_are_found_among_the_keys_kept_on_disk(received, monkeypatch, settings, killed):
    """With two keys in memory the validator's books spill every few records: position 28 still repeats the
    primary key of position 3, two chunks earlier, also when the resumed run replays the committed chunks."""
    from apps.compute.keybook import KeyBook

    settings.AURUM_INGEST_KEYS_IN_MEMORY = 2
    if killed:
        kill_mid_way(monkeypatch, received)
    spills = kill_on_call(monkeypatch, KeyBook, "_spill", 0)  # counts, never kills (calls start at 1)
    batch_process(received.pk)
    assert_processed_exactly_once(received)
    assert spills[0] > 5
    message = Rejection.objects.get(batch=received, position=28).message
    assert message == "store_id: duplicate primary key 'S003': first seen at record 3"


@pytest.mark.parametrize("final", ["completed", "refused", "failed"])
def test_processing_a_finished_batch_again_changes_nothing(received, final):
    batch_process(received.pk)
    IngestionBatch.objects.filter(pk=received.pk).update(status=final)
    counts = [model.objects.count() for model in (RawRecord, Rejection, GoldenDataPoint, PipelineRun, DomainEvent)]
    before = IngestionBatch.objects.get(pk=received.pk)
    again = batch_process(received.pk)
    assert again.status == final
    assert [model.objects.count() for model in (RawRecord, Rejection, GoldenDataPoint, PipelineRun,
                                                DomainEvent)] == counts  # fmt: skip
    after = IngestionBatch.objects.get(pk=received.pk)
    assert (after.updated_at, after.finished_at, after.gdps_created) == (
        before.updated_at, before.finished_at, before.gdps_created)  # fmt: skip


def test_the_beat_job_requeues_a_stalled_batch_and_it_completes(received, monkeypatch, settings):
    batch = kill_mid_way(monkeypatch, received)
    fresh, _ = compute.batch_receive(actor=None, source=batch.source, stream=io.BytesIO(b'{"store_id": "S999"}\n'),
                                     content_type="application/x-ndjson")  # fmt: skip
    IngestionBatch.objects.filter(pk=fresh.pk).update(status="processing")  # being worked on right now
    # Nobody touched the killed batch for longer than AURUM_STALLED_BATCH_SECONDS.
    settings.AURUM_STALLED_BATCH_SECONDS = 600
    IngestionBatch.objects.filter(pk=batch.pk).update(updated_at=timezone.now() - timedelta(seconds=601))

    assert resume_stalled_batches() == 1  # process_batch runs eagerly in tests
    assert_processed_exactly_once(batch)
    run = JobRun.objects.get(task="compute.resume_stalled_batches")
    assert (run.status, run.detail) == ("succeeded", {"requeued": [batch.pk]})
    fresh.refresh_from_db()
    assert fresh.status == "processing"  # not stale: left alone
    assert resume_stalled_batches() == 0  # finished batches are never requeued


def test_a_batch_that_reaches_the_task_soft_time_limit_stays_resumable(received, monkeypatch):
    """Celery raises SoftTimeLimitExceeded (an Exception) in a task that runs past AURUM_TASK_SOFT_TIME_LIMIT.
    A long batch stopped so has lost nothing: its committed chunks must be resumed, not thrown away
    by marking the batch failed (a final status the redelivered task and the beat job skip)."""
    from celery.exceptions import SoftTimeLimitExceeded

    real, calls = bulk.write_raw_records, []

    def slow(rows: Any) -> int:
        calls.append(rows)
        if len(calls) == 3:
            raise SoftTimeLimitExceeded()
        return real(rows)

    monkeypatch.setattr(bulk, "write_raw_records", slow)
    with pytest.raises(SoftTimeLimitExceeded):
        batch_process(received.pk)
    monkeypatch.undo()
    received.refresh_from_db()
    assert (received.status, received.processed_through) == ("processing", 2 * CHUNK - 1)
    batch_process(received.pk)
    assert_processed_exactly_once(received)


def test_the_run_a_killed_worker_left_running_is_ended_when_the_batch_resumes(received, monkeypatch):
    kill_mid_way(monkeypatch, received)
    [dead] = PipelineRun.objects.filter(batch=received)
    assert (dead.status, dead.finished_at) == ("running", None)  # nothing survives a SIGKILL to end it
    batch_process(received.pk)
    dead.refresh_from_db()
    assert dead.status == "failed" and dead.finished_at is not None
    assert dead.error.startswith("Abandoned: its worker stopped")
    assert dead.counts["accepted"] == 2 * CHUNK - 1  # what the dead run had committed
    assert list(PipelineRun.objects.filter(batch=received).exclude(pk=dead.pk).values_list("status", flat=True)) == [
        "completed"
    ]
    assert not PipelineRun.objects.filter(status="running").exists()


def test_a_run_that_reaches_the_soft_time_limit_is_ended_with_the_reason(received, monkeypatch):
    from celery.exceptions import SoftTimeLimitExceeded

    real, calls = bulk.write_raw_records, []

    def slow(rows: Any) -> int:
        calls.append(rows)
        if len(calls) == 3:
            raise SoftTimeLimitExceeded("time is up")
        return real(rows)

    monkeypatch.setattr(bulk, "write_raw_records", slow)
    with pytest.raises(SoftTimeLimitExceeded):
        batch_process(received.pk)
    monkeypatch.undo()
    [run] = PipelineRun.objects.filter(batch=received)
    assert run.status == "failed" and run.finished_at is not None
    assert run.error == (
        f"Stopped by SoftTimeLimitExceeded: time is up; the batch stays processing and resumes after record "
        f"{2 * CHUNK - 1}."
    )
    received.refresh_from_db()
    assert received.status == "processing" and received.payload_path  # the payload is kept for the resume


def test_the_task_goes_on_in_a_new_task_after_the_soft_time_limit(received, monkeypatch):
    """Celery stops the task at its soft time limit; the task that made progress queues its continuation."""
    from celery.exceptions import SoftTimeLimitExceeded

    from apps.compute.tasks import process_batch

    real, calls = bulk.write_raw_records, []

    def slow(rows: Any) -> int:
        calls.append(rows)
        if len(calls) == 3:
            raise SoftTimeLimitExceeded()
        return real(rows)

    monkeypatch.setattr(bulk, "write_raw_records", slow)
    assert process_batch(received.pk) == "processing"  # the continuation ran eagerly, inside
    assert_processed_exactly_once(received)
    runs = PipelineRun.objects.filter(batch=received).order_by("started_at", "id")
    assert [run.status for run in runs] == ["failed", "completed"]
    assert runs[0].error.startswith("Stopped by SoftTimeLimitExceeded")


def test_a_task_that_made_no_progress_before_the_soft_time_limit_is_not_requeued(received, monkeypatch):
    from celery.exceptions import SoftTimeLimitExceeded

    from apps.compute import tasks

    def stuck(rows: Any) -> int:
        raise SoftTimeLimitExceeded()

    monkeypatch.setattr(bulk, "write_raw_records", stuck)
    queued = []
    monkeypatch.setattr(tasks.process_batch, "delay", lambda *args: queued.append(args))
    with pytest.raises(SoftTimeLimitExceeded):
        tasks.process_batch(received.pk)
    assert queued == []  # left to the beat job: no loop without a pause
    received.refresh_from_db()
    assert (received.status, received.processed_through) == ("processing", -1)


def test_a_lost_database_leaves_the_batch_resumable_for_the_retry(received, monkeypatch):
    """The task retries OperationalError; that is only worth it if the batch was not failed."""
    from django.db import OperationalError

    real, calls = bulk.write_raw_records, []

    def flaky(rows: Any) -> int:
        calls.append(rows)
        if len(calls) == 3:
            raise OperationalError("server closed the connection unexpectedly")
        return real(rows)

    monkeypatch.setattr(bulk, "write_raw_records", flaky)
    with pytest.raises(OperationalError):
        batch_process(received.pk)
    received.refresh_from_db()
    assert (received.status, received.processed_through, received.error) == ("processing", 2 * CHUNK - 1, "")
    batch_process(received.pk)
    assert_processed_exactly_once(received)


def test_the_spooled_payload_is_kept_while_resumable_and_deleted_once_final(received, monkeypatch):
    from django.core.files.storage import default_storage

    path = received.payload_path
    assert path and default_storage.exists(path)
    kill_mid_way(monkeypatch, received)
    assert default_storage.exists(path)
    batch_process(received.pk)
    received.refresh_from_db()
    assert received.status == "completed_with_rejections"
    assert received.payload_path == ""
    assert not default_storage.exists(path)
    assert batch_process(received.pk).status == "completed_with_rejections"  # a final batch needs no payload


RECEIPT = {"name": "receipt_no", "logical_type": "string", "required": True, "unique": True, "role": "attribute"}
TILL = {"name": "till_txn", "logical_type": "string", "required": True, "unique": True, "role": "attribute"}


def test_a_record_rejected_in_a_committed_chunk_claims_no_unique_value_when_the_batch_resumes(tenant_a, people,
                                                                                                settings, monkeypatch):  # fmt: skip
    """The replay of a committed chunk reads which records it rejected from their rejections: one rejected for
    a receipt accepted in an earlier batch must claim its till no more than it did in the dead run."""
    settings.AURUM_INGEST_CHUNK_SIZE = 1
    settings.AURUM_INLINE_BATCH_BYTES = 10  # received only: the batch is processed here, and can resume
    contract = activate_contract(tenant_a, people, key="two-unique", fields=[*FIELDS, RECEIPT, TILL])
    source = compute.source_create(actor=people["steward"], tenant=tenant_a, contract=contract, key="tills",
                                   name="Tills")  # fmt: skip

    def receive(*rows: dict[str, Any]) -> IngestionBatch:
        body = ("\n".join(json.dumps(r) for r in rows) + "\n").encode()
        batch, created = compute.batch_receive(actor=people["steward"], source=source, stream=io.BytesIO(body),
                                               content_type="application/x-ndjson")  # fmt: skip
        assert created and batch.status == "received"
        return batch

    first = batch_process(receive({**record(0), "receipt_no": "R1", "till_txn": "T1"}).pk)
    assert (first.status, first.accepted, first.rejected) == ("completed", 1, 0)
    batch = receive({**record(1), "receipt_no": "R1", "till_txn": "T2"},  # R1 again: rejected across batches
                    {**record(2), "receipt_no": "R3", "till_txn": "T2"})  # T2 was never accepted  # fmt: skip
    kill_on_call(monkeypatch, bulk, "write_raw_records", 2)  # dies in the second chunk: the first stays committed
    with pytest.raises(WorkerKilled):
        batch_process(batch.pk)
    monkeypatch.undo()
    batch.refresh_from_db()
    assert (batch.status, batch.processed_through, batch.accepted, batch.rejected) == ("processing", 0, 0, 1)

    batch_process(batch.pk)
    batch.refresh_from_db()
    rejections = list(Rejection.objects.filter(batch=batch).values_list("position", "field", "rule", "message"))
    assert (batch.status, batch.accepted, batch.rejected) == ("completed_with_rejections", 1, 1), rejections
    assert [rejection[:3] for rejection in rejections] == [(0, "receipt_no", "unique")]
    assert not Rejection.objects.filter(batch=batch, position=1).exists()
    assert GoldenDataPoint.objects.current().filter(entity_key="S002").count() == 2
