"""The survivorship merge runs chunk by chunk alongside the pipeline (PostgreSQL, its own connection), or
after the chunks on the pipeline's connection: the same units, the same Golden Data Points.

Run with real commits (transactional database), so that on PostgreSQL the merge really runs on a
second connection; on SQLite both settings take the inline path, and the tests still check it.
"""

from __future__ import annotations

import io
import json
import threading
import time
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.compute import services as compute
from apps.compute.ingest import merger as merger_module
from apps.compute.pipeline import batch_process
from apps.storage.merge import BatchMerge
from apps.storage.models import GoldenDataPoint, IngestionBatch
from tests.compute.conftest import activate_contract, other_session
from tests.compute.test_pipeline_resume import WorkerKilled, kill_on_call

pytestmark = pytest.mark.django_db(transaction=True)

CHUNK = 4
# No primary key: a store may come twice in one batch, in different chunks.
FIELDS = [
    {"name": "sale_date", "logical_type": "date", "required": True, "role": "time"},
    {"name": "store_id", "logical_type": "string", "required": True, "role": "entity_key"},
    {"name": "revenue", "logical_type": "number", "required": True, "role": "measure", "unit": "EUR", "minimum": 0},
]


@pytest.fixture(params=[True, False], ids=["alongside", "after"])
def mode(request, settings) -> bool:
    settings.AURUM_INGEST_CHUNK_SIZE = CHUNK
    settings.AURUM_INLINE_BATCH_BYTES = 10  # received only: the tests process the batch themselves
    settings.AURUM_INGEST_MERGE_ALONGSIDE = request.param
    return request.param


@pytest.fixture
def feed(tenant_a, people, mode) -> Any:
    contract = activate_contract(tenant_a, people, key="sales", fields=FIELDS)
    return compute.source_create(actor=people["steward"], tenant=tenant_a, contract=contract, key="tills", name="T")


def receive(source: Any, people: dict[str, Any], rows: list[dict[str, Any]]) -> IngestionBatch:
    body = "".join(json.dumps(row) + "\n" for row in rows).encode()
    batch, _ = compute.batch_receive(actor=people["steward"], source=source, stream=io.BytesIO(body),
                                     content_type="application/x-ndjson")  # fmt: skip
    return batch


def sale(store: str, revenue: str, day: str = "2026-11-02") -> dict[str, str]:
    return {"sale_date": day, "store_id": store, "revenue": revenue}


def current() -> dict[str, Decimal]:
    return dict(GoldenDataPoint.objects.current().values_list("entity_key", "value"))


def test_a_batch_is_merged_in_chunks_into_the_same_current_values(feed, people, mode):
    spy = []
    real_add = merger_module.Merger.add

    def add(self, records):
        spy.append((self.alongside, len(records)))
        return real_add(self, records)

    rows = [sale(f"S{i}", f"{10 + i}") for i in range(10)]
    rows[7] = sale("S1", "99")  # S1 again, two chunks later: the later record wins
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(merger_module.Merger, "add", add)
        batch = batch_process(receive(feed, people, rows).pk)
    assert [records for _, records in spy] == [CHUNK, CHUNK, 2]
    assert {unit[0] for unit in spy} == {mode and connection.vendor == "postgresql"}
    assert batch.status == "completed", batch.error
    assert current() == {**{f"S{i}": Decimal(10 + i) for i in range(10) if i != 7}, "S1": Decimal(99)}
    assert (batch.gdps_created, batch.superseded) == (9, 0)
    earlier = GoldenDataPoint.objects.get(entity_key="S1", value=11)
    assert earlier.recorded_to == earlier.recorded_from  # never believed: shadowed by its own batch
    assert earlier.superseded_by_batch_id == earlier.batch_id == batch.pk


def test_a_second_batch_supersedes_and_counts_only_other_batches_versions(feed, people, mode):
    batch_process(receive(feed, people, [sale(f"S{i}", "1") for i in range(6)]).pk)
    rows = [sale("S0", "2"), sale("S1", "1"), sale("S2", "2"), sale("S3", "2"), sale("S0", "3"), sale("S4", "1")]
    batch = batch_process(receive(feed, people, rows).pk)
    # S0 twice (chunks 1 and 2): the first replaces batch 1's S0, the second replaces the first. S1, S4 unchanged.
    assert (batch.gdps_created, batch.superseded) == (3, 3)
    assert current() == {"S0": 3, "S1": 1, "S2": 2, "S3": 2, "S4": 1, "S5": 1}
    s0 = list(GoldenDataPoint.objects.filter(entity_key="S0").order_by("id").values_list("value", "recorded_to"))
    assert [value for value, _ in s0] == [1, 2, 3] and s0[-1][1] is None


def test_a_refused_batch_leaves_no_gdp_of_the_chunks_merged_before_the_gate(feed, people, mode, tenant_a):
    from apps.host import services as host

    gate = host.policy_create(actor=people["admin"], tenant=tenant_a, kind="quality_gate", name="Strict",
                              parameters={"min_batch_pass_rate": 90, "on_failure": "refuse_batch"})  # fmt: skip
    host.policy_activate(actor=people["admin"], policy=gate)
    rows = [sale(f"S{i}", "5") for i in range(8)] + [sale("S8", "-1"), sale("S9", "-1")]  # 80 % pass
    batch = batch_process(receive(feed, people, rows).pk)
    assert batch.status == "refused", batch.error
    assert not GoldenDataPoint.objects.exists()
    # The next batch merges as if the refused one had never been.
    again = batch_process(receive(feed, people, [sale("S0", "7")]).pk)
    assert (again.status, again.gdps_created) == ("completed", 1)


@pytest.mark.postgres
def test_no_gdp_of_a_batch_is_visible_before_the_batch_completes(feed, people, mode):
    """The chunks commit one by one; what the merge wrote stays in its transaction until the batch's end."""
    seen: list[int] = []
    real_finish = merger_module.Merger.finish

    def finish(self, complete):
        # All chunks are committed and (alongside) merged by now: another session still sees no GDP.
        looker = threading.Thread(target=lambda: (seen.append(GoldenDataPoint.objects.count()), connection.close()))
        looker.start()
        looker.join()
        return real_finish(self, complete)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(merger_module.Merger, "finish", finish)
        batch = batch_process(receive(feed, people, [sale(f"S{i}", "1") for i in range(9)]).pk)
    assert batch.status == "completed" and seen == [0]
    assert GoldenDataPoint.objects.count() == 9


def test_a_failure_in_the_merge_fails_the_batch_and_keeps_nothing(feed, people, mode, monkeypatch):
    calls = []

    def broken(self, records):
        calls.append(len(records))
        raise RuntimeError("merge broke")

    monkeypatch.setattr(BatchMerge, "add", broken)
    with pytest.raises(RuntimeError, match="merge broke"):
        batch_process(receive(feed, people, [sale(f"S{i}", "1") for i in range(9)]).pk)
    batch = IngestionBatch.objects.get()
    assert batch.status == "failed" and "merge broke" in batch.error
    assert calls[0] == CHUNK
    assert not GoldenDataPoint.objects.exists()


def test_a_gdp_saved_by_hand_gets_the_key_hash_the_pipeline_gives(feed, people, mode):
    batch_process(receive(feed, people, [sale("S|1\\x", "1"), sale("été", "2", "2026-11-03")]).pk)
    for gdp in GoldenDataPoint.objects.all():
        by_hand = GoldenDataPoint(**{field.attname: getattr(gdp, field.attname) for field in gdp._meta.concrete_fields
                                     if field.attname not in ("id", "key_hash", "recorded_to")})  # fmt: skip
        by_hand.recorded_to = gdp.recorded_from  # a past version: the key has its current one
        by_hand.save()
        assert by_hand.key_hash == gdp.key_hash.hex


def test_a_resumed_batch_merges_its_committed_chunks_again_with_their_quality_flags(tenant_a, people, mode,
                                                                                     monkeypatch):  # fmt: skip
    from apps.storage import bulk

    rules = [{"field": "revenue", "kind": "range", "severity": "warning", "params": {"max": 50}}]
    contract = activate_contract(tenant_a, people, key="flagged", fields=FIELDS, rules=rules)
    feed = compute.source_create(actor=people["steward"], tenant=tenant_a, contract=contract, key="t", name="T")
    rows = [sale(f"S{i}", "60" if i in (1, 9) else "5") for i in range(10)]  # warnings in chunks 1 and 3
    batch = receive(feed, people, rows)
    kill_on_call(monkeypatch, bulk, "write_raw_records", 2)  # dies in the second chunk
    with pytest.raises(WorkerKilled):
        batch_process(batch.pk)
    monkeypatch.undo()
    batch.refresh_from_db()
    assert (batch.status, batch.processed_through) == ("processing", CHUNK - 1)
    assert not GoldenDataPoint.objects.exists()

    batch = batch_process(batch.pk)
    assert (batch.status, batch.gdps_created) == ("completed", 10), batch.error  # warnings reject nothing
    flags = dict(GoldenDataPoint.objects.values_list("entity_key", "quality_flags"))
    [(rule, field)] = set(batch.rejections.values_list("rule", "field"))
    assert flags == {f"S{i}": [f"{rule}:{field}"] if i in (1, 9) else [] for i in range(10)}


def test_only_keys_that_may_have_a_current_version_are_probed(feed, people, mode, monkeypatch):
    """A new period's keys have no current version unless this batch wrote it: they are not looked up."""
    from apps.storage import merge

    probed: list[str] = []
    real = merge._current_versions

    def spy(probes, tenant_id, contract_id):
        probed.extend(key for _, key in probes)
        return real(probes, tenant_id, contract_id)

    monkeypatch.setattr(merge, "_current_versions", spy)
    batch_process(receive(feed, people, [sale(f"S{i}", "1", "2026-11-02") for i in range(6)]).pk)
    assert probed == []  # a first load: nothing to look up
    rows = [sale(f"S{i}", "2", "2026-11-03") for i in range(6)]  # a new day
    rows[5] = sale("S0", "3", "2026-11-03")  # S0 again, in the second chunk: this batch's own version
    rows.append(sale("S1", "5", "2026-11-02"))  # a correction of the day before
    batch = batch_process(receive(feed, people, rows).pk)
    key = {(gdp.entity_key, gdp.observed_at.day): gdp.key_hash.hex for gdp in GoldenDataPoint.objects.all()}
    assert sorted(probed) == sorted([key["S0", 3], key["S1", 2]])
    assert (batch.gdps_created, batch.superseded) == (6, 1)  # S0..S4 of the 3rd, S1 of the 2nd; S1 superseded
    assert current_at(3) == {"S0": 3, "S1": 2, "S2": 2, "S3": 2, "S4": 2}
    assert current_at(2) == {"S0": 1, "S1": 5, "S2": 1, "S3": 1, "S4": 1, "S5": 1}


def current_at(day: int) -> dict[str, Decimal]:
    return dict(GoldenDataPoint.objects.current().filter(observed_at__day=day).values_list("entity_key", "value"))


def test_a_record_without_its_time_is_rejected_and_the_batch_goes_on(tenant_a, people, mode):
    """A GDP needs its observed time: the time field is required whatever the contract says."""
    fields = [{**FIELDS[0], "required": False}, *FIELDS[1:]]
    contract = activate_contract(tenant_a, people, key="untimed", fields=fields)
    feed = compute.source_create(actor=people["steward"], tenant=tenant_a, contract=contract, key="t", name="T")
    batch = batch_process(receive(feed, people, [sale("S1", "1"), {"store_id": "S2", "revenue": "2"}]).pk)
    assert (batch.status, batch.accepted, batch.rejected, batch.gdps_created) == ("completed_with_rejections", 1, 1, 1)
    [rejection] = batch.rejections.all()
    assert (rejection.position, rejection.field, rejection.rule) == (1, "sale_date", "required")
    assert current() == {"S1": 1}


def test_a_record_delivered_before_counts_once_however_far_behind_the_writer_is(feed, people, mode, monkeypatch):
    """A chunk the writer has not committed yet is received all the same: a record it repeats from an earlier
    batch is not counted again when the next chunk repeats it too."""
    from apps.compute.ingest.writer import ChunkWriter

    batch_process(receive(feed, people, [sale("S0", "1"), sale("S1", "1")]).pk)
    real = ChunkWriter._commit

    def slow(self, chunk):
        time.sleep(0.2)  # the pipeline prepares the next chunk meanwhile (alongside)
        real(self, chunk)

    monkeypatch.setattr(ChunkWriter, "_commit", slow)
    rows = [sale("S0", "1"), sale("S5", "5"), sale("S6", "6"), sale("S7", "7"), sale("S0", "1"), sale("S8", "8")]
    batch = batch_process(receive(feed, people, rows).pk)
    assert batch.status == "completed", batch.error
    assert batch.duplicates == 2  # S0 delivered before, then again within the batch: 2 of its 2 copies


@pytest.mark.postgres
def test_alongside_a_chunk_goes_to_the_merge_before_its_commit_ends(feed, people, mode, monkeypatch):
    """The merge commits after the last chunk and rolls back with a failed one, so it need not wait for a commit."""
    from apps.compute.ingest.writer import ChunkWriter

    if not mode:
        pytest.skip("the inline path writes, then merges after the last chunk")
    handed: list[threading.Event] = []
    real_add, real_commit = merger_module.Merger.add, ChunkWriter._commit

    def add(self, records):
        real_add(self, records)
        handed[-1].set()

    def commit(self, chunk):
        assert handed[-1].wait(5), "the chunk's candidates waited for its commit"
        real_commit(self, chunk)

    def write(self, chunk, real=ChunkWriter.write):
        handed.append(threading.Event())
        real(self, chunk)

    monkeypatch.setattr(merger_module.Merger, "add", add)
    monkeypatch.setattr(ChunkWriter, "_commit", commit)
    monkeypatch.setattr(ChunkWriter, "write", write)
    batch = batch_process(receive(feed, people, [sale(f"S{i}", "1") for i in range(9)]).pk)
    assert (batch.status, batch.gdps_created) == ("completed", 9), batch.error
    assert len(handed) == 3


@pytest.mark.postgres
def test_the_lineage_index_is_summarized_by_the_writer_then_at_the_end(feed, people, mode, settings, monkeypatch):
    from apps.compute import pipeline
    from apps.compute.ingest import writer

    settings.AURUM_INGEST_CHUNK_SIZE = 250
    callers: list[str] = []
    real = pipeline.summarize_new_versions

    def summarize():
        callers.append(threading.current_thread().name)
        real()

    monkeypatch.setattr(pipeline, "summarize_new_versions", summarize)
    monkeypatch.setattr(writer, "summarize_new_versions", summarize)
    batch = batch_process(receive(feed, people, [sale(f"S{i:04}", "1") for i in range(1500)]).pk)
    assert (batch.status, batch.gdps_created) == ("completed", 1500), batch.error
    assert callers == (["chunk-writer", "MainThread"] if mode else ["MainThread"])
    with connection.cursor() as cursor:  # 1,500 versions fill more than one range of 32 pages: all summarized
        cursor.execute("SELECT brin_summarize_new_values('storage_gdp_by_batch_raw'::regclass)")
        assert cursor.fetchone()[0] == 0
    # The writer summarized while the merge's versions were still uncommitted: the summaries include them, so a
    # lineage read through the index finds every version (the index alone: no sequential scan to fall back on).
    with connection.cursor() as cursor:
        cursor.execute("SET enable_seqscan = off")
        try:
            cursor.execute("SELECT COUNT(*) FROM storage_goldendatapoint WHERE batch_id = %s", [batch.pk])
            assert cursor.fetchone()[0] == 1500
            cursor.execute("EXPLAIN SELECT COUNT(*) FROM storage_goldendatapoint WHERE batch_id = %s", [batch.pk])
            assert "storage_gdp_by_batch_raw" in "\n".join(row[0] for row in cursor.fetchall())
        finally:
            cursor.execute("RESET enable_seqscan")


KEYED_FIELDS = [
    {**FIELDS[0], "primary_key": True, "primary_key_position": 2},
    {**FIELDS[1], "primary_key": True, "primary_key_position": 1},
    FIELDS[2],
]


def test_a_primary_key_of_key_parts_spares_the_merge_its_tracking_of_keys(tenant_a, people, mode, monkeypatch):
    """With a primary key of (store, day), the validator rejects a repeat, so no two accepted records share a
    key: the merge keeps no filter and still supersedes, across chunks and batches, what it must."""
    from apps.storage import merge

    filters = []
    real_init = merge.BatchMerge.__init__

    def init(self, **kwargs):
        real_init(self, **kwargs)
        filters.append(self._seen)

    monkeypatch.setattr(merge.BatchMerge, "__init__", init)
    contract = activate_contract(tenant_a, people, key="keyed", fields=KEYED_FIELDS)
    source = compute.source_create(actor=people["steward"], tenant=tenant_a, contract=contract, key="k", name="K")
    rows = [sale(f"S{i}", f"{i}") for i in range(8)]
    rows[6] = sale("S1", "99")  # S1 of the same day again, two chunks later: rejected, not merged
    batch = batch_process(receive(source, people, rows).pk)
    assert (batch.accepted, batch.rejected, batch.gdps_created) == (7, 1, 7)
    assert set(batch.rejections.values_list("rule", flat=True)) == {"primary_key"}
    assert current() == {f"S{i}": i for i in range(8) if i != 6}
    rows = [sale("S1", "5"), sale("S2", "2"), sale("S9", "9", "2026-11-03")]  # a change, the same value, a new day
    batch = batch_process(receive(source, people, rows).pk)
    assert (batch.gdps_created, batch.superseded) == (2, 1)
    assert current_at(2) == {**{f"S{i}": i for i in range(8) if i != 6}, "S1": 5}
    assert current_at(3) == {"S9": 9}
    assert filters == [None, None]


@pytest.mark.postgres
def test_whether_the_source_has_other_raw_records_is_one_index_probe_per_batch(feed, people, mode):
    """Asked for every chunk: a scan of the raw table here would grow with the batch."""
    from types import SimpleNamespace

    from apps.compute import pipeline

    before = receive(feed, people, [sale("S1", "1")])
    plan = SimpleNamespace(source=feed, batch=receive(feed, people, [sale("S2", "2")]))
    assert not pipeline._source_has_other_raw_records(plan)  # the first batch has no raw records yet
    batch_process(before.pk)
    assert pipeline._source_has_other_raw_records(plan)
    with CaptureQueriesContext(connection) as queries:
        pipeline._source_has_other_raw_records(plan)
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")  # a few rows: the question is whether the index can serve
        cursor.execute(f"EXPLAIN {queries[0]['sql']}")
        shown = "\n".join(row[0] for row in cursor.fetchall())
    # a correlated probe per batch (LIMIT 1 in index order), never a join that reads the raw table for all of them
    assert "SubPlan" in shown and "Join" not in shown, shown
    assert "Index Scan using storage_raw_unique_position" in shown, shown


def test_the_chunks_commit_without_waiting_for_the_flush_and_the_merge_waits(feed, people, mode, monkeypatch):
    """Alongside, a chunk's commit need not be on disk (a server crash loses whole chunks at the end, which a
    resumed run redoes); the merge's commit, which makes the batch final, waits for the WAL flush as usual."""
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL's synchronous_commit")
    import apps.storage.bulk as bulk

    seen: dict[str, set[str]] = {"chunks": set(), "merge": set()}

    def synchronous_commit() -> str:
        with connection.cursor() as cursor:  # the calling thread's connection: the writer's, or the merge's
            cursor.execute("SHOW synchronous_commit")
            return cursor.fetchone()[0]

    real_write, real_complete = bulk.write_raw_records, merger_module.Merger._complete

    def write_raw_records(rows):
        seen["chunks"].add(synchronous_commit())
        return real_write(rows)

    def complete(self, finish):
        def finishing(result, now):  # after the merge's COPY is ended: the connection takes a statement
            seen["merge"].add(synchronous_commit())
            return finish(result, now)

        return real_complete(self, finishing)

    monkeypatch.setattr(bulk, "write_raw_records", write_raw_records)
    monkeypatch.setattr(merger_module.Merger, "_complete", complete)
    batch = receive(feed, people, [sale(f"S{i}", "1") for i in range(10)])
    assert batch_process(batch.pk).status == "completed"
    assert seen == {"chunks": {"off" if mode else "on"}, "merge": {"on"}}


def test_a_merge_that_waited_for_the_merge_lock_records_its_versions_after_it(feed, people, mode, monkeypatch):
    """A KPI run pins its as-of while it holds the contract's merge lock: a merge that waited for the lock must
    record its versions after that moment, never at its transaction's start before it (PostgreSQL: the merge
    takes the lock before its transaction begins, and recorded_from defaults to that start)."""
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL's advisory locks")
    import apps.storage.bulk as bulk

    columns: set[tuple[str, ...]] = set()
    real_write = bulk.write_gdp_versions
    monkeypatch.setattr(bulk, "write_gdp_versions", lambda *a, **kw: columns.add(kw["columns"]) or real_write(*a, **kw))
    kpi_run = other_session(autocommit=False)
    kpi_run.execute("SELECT pg_advisory_xact_lock(%s, %s)", [merger_module.MERGE_LOCK, feed.contract_id])
    batch = receive(feed, people, [sale(f"S{i}", "1") for i in range(10)])
    done: list[IngestionBatch] = []
    worker = threading.Thread(target=lambda: (done.append(batch_process(batch.pk)), connection.close()))
    worker.start()
    time.sleep(0.5)
    assert worker.is_alive(), "the batch's merge must wait while a KPI run of its contract holds the lock"
    [(pinned,)] = kpi_run.execute("SELECT clock_timestamp()").fetchall()
    kpi_run.commit()
    worker.join(timeout=30)
    kpi_run.close()
    assert done[0].status == "completed"
    recorded = set(GoldenDataPoint.objects.values_list("recorded_from", flat=True))
    assert len(recorded) == 1 and recorded.pop() > pinned
    assert columns == {bulk.GDP_COLUMNS_RECORDED_AT_START}  # the column's default, not a timestamp per version
