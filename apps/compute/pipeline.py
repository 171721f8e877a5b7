"""The ingest pipeline: a spooled batch → raw layer → normalize → validate → Golden Data Points.

    receive  (request)  spool the body, checksum it, honour the Idempotency-Key, create the batch
    process  (inline or on a worker)
      1. parse the whole payload once: a malformed one fails before anything is written
      2. chunk by chunk, one transaction each: raw records, rejections and the resume marker
         `processed_through` (a killed worker resumes after it), committed by a writer that runs
         alongside (compute/ingest/writer.py) while the next chunk is prepared; each committed
         chunk's GDP candidates go to the survivorship merge (apps/storage/merge.py,
         compute/ingest/merger.py), one transaction for the batch that runs alongside the chunks
      3. batch-level quality rules, then the quality-gate policy: accept all, accept the
         valid records, or refuse the whole batch (its merge is rolled back)
      4. the merge's transaction commits
      5. counts, status, a `batch.completed` event, a PipelineRun and OpenLineage events; once the
         batch is final its spooled payload is deleted (the raw layer holds the records)

One worker at a time: a run holds the batch's lock (a PostgreSQL session advisory lock, or a
lock within the process elsewhere) from its start to its end, and a second worker leaves the
batch to it. A run stopped before the end (a killed worker, the task's soft time limit, a lost
database) leaves the batch `processing` and resumable; the next run ends a run its worker left
`running`.

Memory is bounded whatever the batch size: records are streamed from the spooled file
chunk by chunk, and what lives across chunks is per-batch counters, the merge's Bloom filter
(a few bits per GDP key) and the keys the validator has seen, which beyond
AURUM_INGEST_KEYS_IN_MEMORY move to a temporary file (compute/keybook.py).
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import hashlib
import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from itertools import islice
from typing import Any

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import DatabaseError, OperationalError, connection, transaction
from django.db.models import Count, F, OuterRef, Subquery
from django.utils import timezone

from apps.compute import lineage
from apps.compute.choices import PipelineRunStatusChoices as RunStatus
from apps.compute.ingest.merger import Merger
from apps.compute.ingest.parsers import count_records, iter_records
from apps.compute.ingest.writer import ChunkWrite, ChunkWriter
from apps.compute.models import PipelineRun, Source
from apps.compute.normalize import compile_steps, steps_from_rules
from apps.compute.records import Shape, hashed_json, make_candidates, record_hash
from apps.compute.validate import compile_validator, specs_from_version
from apps.host.choices import FieldRoleChoices, PolicyKindChoices
from apps.host.policies.evaluation import PolicySubject, evaluate
from apps.kernel.bloom import BloomFilter
from apps.runtime.events import publish_event
from apps.storage import bulk
from apps.storage.choices import FINAL_BATCH_STATUSES
from apps.storage.choices import BatchStatusChoices as Status
from apps.storage.merge import MergeResult, summarize_new_versions
from apps.storage.models import ENTITY_KEY_LENGTH, VALUE_MAX, IngestionBatch, RawRecord, Rejection, UniqueValue

logger = logging.getLogger(__name__)


@dataclass
class Plan:
    """Everything compiled once per batch."""

    batch: IngestionBatch
    source: Source
    version: Any
    normalizer: Any
    validator: Any
    rules: Any
    candidates: Any
    shape: Shape
    # Whether the validator needs each record's digest (a whole-record unique or duplicate_ratio rule): it
    # keeps every digest it is given for the whole batch, so it is given them only then.
    needs_digest: bool = True
    # Whether no two accepted records of the batch share a GDP key (Shape.keys_follow): the merge then tracks none.
    distinct_keys: bool = False
    # Whether another batch of the source has raw records (once true it stays so): until then no record
    # can be a duplicate of an earlier delivery, and the per-chunk lookup is skipped.
    earlier_batches: bool = False
    # What the batch-level rules and the quality gate found: the OpenLineage dataQualityAssertions.
    assertions: list[dict[str, Any]] | None = None
    # The record hashes of the chunks so far (`_note_hashes`), and those that may have come before in the batch: the
    # only ones whose repeats `_repeats_within` counts. Both None past REPEAT_CANDIDATES_MAX: every record counts.
    hashes_seen: BloomFilter | None = None
    repeat_candidates: set[str] | None = dataclasses.field(default_factory=set)


def batch_process(batch_id: int) -> IngestionBatch:
    """Process (or resume) a batch to the end. Safe to call again for the same batch, also while another
    worker processes it: the second call finds the batch locked and returns it as it is, untouched."""
    with _batch_lock(batch_id) as locked:
        if not locked:
            logger.info("Batch %s is being processed by another worker; left to it.", batch_id)
            return IngestionBatch.objects.select_related("source", "tenant").get(pk=batch_id)
        return _process(batch_id)


def _process(batch_id: int) -> IngestionBatch:
    batch = _start(batch_id)
    _end_abandoned_runs(batch)  # we hold the lock: a run still `running` has lost its worker
    if batch.status in FINAL_BATCH_STATUSES:
        return batch
    run = PipelineRun.objects.create(tenant=batch.tenant, batch=batch, job="ingest")
    lineage.emit_start(run, batch)
    merger = writer = None
    try:
        plan = _plan(batch)
        _check_syntax(plan)
        merger = Merger(batch=batch, version=plan.version, source=plan.source, distinct_keys=plan.distinct_keys,
                        expected_keys=batch.received * len(plan.shape.measures))  # fmt: skip
        writer = ChunkWriter(merger)
        _ingest_chunks(plan, writer)
        batch = _decide_and_merge(plan, merger)
    except Exception as exc:
        _stop_writes(writer, merger)
        if _interrupted(exc):  # not the batch's fault: it stays `processing`, resumable after its last chunk
            _stop_run(run, batch_id, exc)
            raise
        batch = _fail(batch_id, exc)
        lineage.emit_fail(run, batch, str(exc))
        _finish_run(run, batch, failed=True)
        if not isinstance(exc, (PipelineError, *_expected_errors())):
            raise
        return batch
    except BaseException:  # a killed worker: the merge's transaction goes with it
        _stop_writes(writer, merger)
        raise
    writer.close()  # once its thread has summarized the lineage index of what the merge wrote while it caught up
    summarize_new_versions()  # the rest (the batch is final whatever this does: only lineage reads wait for it)
    lineage.emit_complete(run, batch, assertions=plan.assertions)
    _finish_run(run, batch, failed=False)
    return batch


def _stop_writes(writer: ChunkWriter | None, merger: Merger | None) -> None:
    """A run that ends early: the chunks already handed over are committed (or dropped, if the writer failed),
    then the merge is rolled back."""
    if writer is not None:
        writer.close()
    if merger is not None:
        merger.close()


BATCH_LOCK = 4243  # advisory lock namespace of batches
_running_here: set[int] = set()  # batches processed in this process (the lock where PostgreSQL is not)
_running_guard = threading.Lock()


@contextlib.contextmanager
def _batch_lock(batch_id: int) -> Iterator[bool]:
    """Yields whether this worker may process the batch: one worker at a time, never waiting.

    On PostgreSQL, a session-level advisory lock (BATCH_LOCK, batch id): it outlives the chunk
    transactions, and it is released when the run ends or, for a killed worker, when the database
    closes its connection; the next worker can then resume at once. It needs a session per worker
    (a transaction-pooling proxy such as PgBouncer in transaction mode would break it). Elsewhere
    (SQLite, where tasks run in the web process) the lock holds within the process only.
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [BATCH_LOCK, batch_id])
            locked = bool(cursor.fetchone()[0])
        try:
            yield locked
        finally:
            if locked:
                try:
                    with connection.cursor() as cursor:
                        cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [BATCH_LOCK, batch_id])
                except DatabaseError:  # the connection is gone, and its session locks with it
                    logger.warning("Could not release the lock of batch %s", batch_id, exc_info=True)
        return
    with _running_guard:
        locked = batch_id not in _running_here
        _running_here.add(batch_id)
    try:
        yield locked
    finally:
        if locked:
            with _running_guard:
                _running_here.discard(batch_id)


def _interrupted(exc: Exception) -> bool:
    """Exceptions that stop a run without anything being wrong with the batch: Celery's soft time limit, a
    database that went away or timed out (the task retries those). The batch must stay resumable."""
    from celery.exceptions import SoftTimeLimitExceeded

    return isinstance(exc, (SoftTimeLimitExceeded, OperationalError))


ABANDONED = "Abandoned: its worker stopped (killed, or lost the database) before the run ended."


def _end_abandoned_runs(batch: IngestionBatch) -> None:
    """Runs of the batch left `running` by a worker that died: failed, with the reason, and an ABORT event."""
    for run in PipelineRun.objects.filter(batch=batch, job="ingest", status=RunStatus.RUNNING):
        run.status, run.finished_at, run.error = RunStatus.FAILED, timezone.now(), ABANDONED
        run.counts = _counts(batch)
        run.save(update_fields=["status", "finished_at", "error", "counts", "updated_at"])
        lineage.emit_abort(run, batch, ABANDONED)


def _stop_run(run: PipelineRun, batch_id: int, exc: Exception) -> None:
    """End the run of an interrupted batch; the batch itself stays `processing` for the next run."""
    detail = " ".join(str(arg) for arg in exc.args)  # str() of Celery's exceptions is their repr
    reason = f"Stopped by {type(exc).__name__}" + (f": {detail}" if detail else "")
    try:
        batch = IngestionBatch.objects.select_related("source", "tenant", "contract_version__contract").get(pk=batch_id)
        run.status, run.finished_at, run.counts = RunStatus.FAILED, timezone.now(), _counts(batch)
        run.error = f"{reason}; the batch stays {batch.status} and resumes after record {batch.processed_through}."
        run.save(update_fields=["status", "finished_at", "error", "counts", "updated_at"])
        lineage.emit_abort(run, batch, run.error)
    except DatabaseError:  # the database is what stopped the run: the next run ends this one
        logger.warning("Could not end the interrupted run %s of batch %s", run.run_id, batch_id, exc_info=True)


class PipelineError(Exception):
    """A batch that cannot be processed as configured (no active contract version, no measures…)."""


def _expected_errors() -> tuple[type[Exception], ...]:
    from apps.compute.ingest.parsers import MalformedPayload

    return (MalformedPayload,)


def _start(batch_id: int) -> IngestionBatch:
    with transaction.atomic():
        batch = IngestionBatch.objects.select_for_update().select_related("source", "tenant").get(pk=batch_id)
        if batch.status in (Status.RECEIVED, Status.PROCESSING):
            batch.status = Status.PROCESSING
            batch.started_at = batch.started_at or timezone.now()
            batch.save(update_fields=["status", "started_at", "updated_at"])
    return batch


def _plan(batch: IngestionBatch) -> Plan:
    version = batch.contract_version
    if version is None:
        raise PipelineError("The batch has no contract version to be processed under.")
    fields = list(version.fields.all())
    shape = Shape.of(fields)
    if shape.problems():
        raise PipelineError(f"Contract {version} cannot produce Golden Data Points: {'; '.join(shape.problems())}.")
    field_specs, rule_specs = specs_from_version(version)
    field_specs = _as_gdps_need(field_specs, shape)
    validator = compile_validator(field_specs, rule_specs, keys_in_memory=settings.AURUM_INGEST_KEYS_IN_MEMORY)
    return Plan(
        batch=batch,
        source=batch.source,
        version=version,
        normalizer=compile_steps(steps_from_rules(version.normalization_rules.all())),
        validator=validator,
        rules=rule_specs,
        candidates=make_candidates(shape, batch.tenant_id, version.contract_id),
        shape=shape,
        needs_digest=getattr(validator, "_needs_digest", True),
        distinct_keys=shape.keys_follow(validator.primary_key, {spec.name: spec.logical_type for spec in field_specs}),
    )


def _as_gdps_need(field_specs: list[Any], shape: Shape) -> list[Any]:
    """The field specs with what a Golden Data Point needs, where the contract asks less: the time field is
    required (a GDP needs its observed time), a measure lies within numeric(30, 10), an entity key (its string
    fields joined by "|") within 500 characters (the GDP columns). A record that breaks one is rejected
    (`required`, `minimum`/`maximum`, `max_length`); unchecked, it made the batch fail when its GDPs were
    written."""
    measures = {name for name, _ in shape.measures}
    entity = set(shape.entity_keys)
    longest = (ENTITY_KEY_LENGTH - (len(entity) - 1)) // max(1, len(entity))  # each part, with the separators

    def bounded(spec: Any) -> Any:
        if spec.role == FieldRoleChoices.TIME:
            return dataclasses.replace(spec, required=True)
        if spec.name in measures:
            low = -VALUE_MAX if spec.minimum is None else max(spec.minimum, -VALUE_MAX)
            high = VALUE_MAX if spec.maximum is None else min(spec.maximum, VALUE_MAX)
            return dataclasses.replace(spec, minimum=low, maximum=high)
        if spec.name in entity:
            return dataclasses.replace(spec, max_length=min(spec.max_length or longest, longest))
        return spec

    return [bounded(spec) for spec in field_specs]


def _records(plan: Plan) -> Iterator[Any]:
    with default_storage.open(plan.batch.payload_path, "rb") as stream:
        yield from iter_records(stream, plan.batch.format)


def _check_syntax(plan: Plan) -> None:
    """One parse pass before any write: a malformed payload fails whole, leaving nothing behind."""
    if plan.batch.processed_through >= 0:
        return  # a resumed batch was parsed in full before its first chunk was written
    with default_storage.open(plan.batch.payload_path, "rb") as stream:
        count = count_records(stream, plan.batch.format)
    IngestionBatch.objects.filter(pk=plan.batch.pk).update(received=count)
    plan.batch.received = count


def _ingest_chunks(plan: Plan, writer: ChunkWriter) -> None:
    size = settings.AURUM_INGEST_CHUNK_SIZE
    records = _records(plan)
    chunks = 0
    with _young_collections_only(), bulk.ids_ahead(RawRecord, size) as raw_ids:
        while chunk := list(islice(records, size)):
            if chunk[-1].position <= plan.batch.processed_through:
                # already committed: rebuild the in-memory state and the values
                writer.write(ChunkWrite(write=None, candidates=_replay(plan, chunk)))
            else:
                writer.write(_prepare_chunk(plan, chunk, raw_ids))
            chunks += 1
            if chunks % YOUNG_COLLECTION_CHUNKS == 0:
                gc.collect(1)
    writer.finish()


# A young collection scans every object the chunks since the last one left alive (those the merger and the
# writer still hold, the validator's new keys): after each chunk it took 5 % of the pipeline's Python time,
# every 8 chunks 1.0 s at 1,000,000 records, every 40 0.5 s. A chunk of the benchmark's records leaves no
# cyclic garbage (every collection of a 1,000,000-record batch found none), so collecting rarely loses little.
YOUNG_COLLECTION_CHUNKS = 40


@contextlib.contextmanager
def _young_collections_only() -> Iterator[None]:
    """A chunk allocates millions of short-lived objects, which reference counting frees; the automatic
    cyclic collections they trigger would also rescan, again and again, what the batch keeps alive (the
    validator's keys, growing with the batch): a third of the pipeline's Python time. So the automatic
    collector is off while the chunks run, and the young generations (where any cycle made by a chunk
    is) are collected every few chunks."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _replay(plan: Plan, chunk: list[Any]) -> list[Any]:
    """Validate a committed chunk again for the validator's state, and return its accepted records' GDP
    candidates for the merge (the merge of a stopped run was rolled back). Which records were rejected, and
    the warnings an accepted one carries as quality flags, are read from their rejections, not found again:
    an earlier batch's values may have changed since, and a record must register now exactly the keys it
    registered then."""
    span = (chunk[0].position, chunk[-1].position)
    refused: set[int] = set()
    warned: dict[int, set[str]] = {}
    for position, severity, field, rule in Rejection.objects.filter(
        raw_record__batch=plan.batch, raw_record__position__range=span
    ).values_list("position", "severity", "field", "rule"):
        if severity == "error":
            refused.add(position)
        else:
            warned.setdefault(position, set()).add(f"{rule}:{field}" if field else rule)
    raw_ids = dict(RawRecord.objects.filter(batch=plan.batch, position__range=span).values_list("position", "id"))
    gdp_candidates = []
    normalized_chunk = [_normalize(plan, record) for record in chunk]
    digests = [digest for _, _, digest, _ in normalized_chunk]
    _note_hashes(plan, digests)
    _prefetch_keys(plan, [n for n, *_ in normalized_chunk], digests)
    for record, (normalized, _, digest, _) in zip(chunk, normalized_chunk, strict=True):
        position = record.position
        _validate(plan, normalized, digest, rejected=position in refused)
        if position not in refused:
            flags = sorted(warned.get(position, ()))
            gdp_candidates.append((raw_ids[position], flags, *plan.candidates(normalized)))
    return gdp_candidates


def _normalize(plan: Plan, record: Any) -> tuple[dict[str, Any], list[Any], str, str]:
    """Normalize one record: (normalized, problems, its hash (record_hash), the canonical JSON text hashed)."""
    normalized, problems = plan.normalizer(record.payload)
    text, digest = hashed_json(record.payload, known_plain=record.plain)
    return normalized, problems, digest, text


def _prefetch_keys(plan: Plan, normalized: list[dict[str, Any]], digests: list[str]) -> None:
    """The keys of the chunk's records that the validator keeps on disk, read in one go (KeyBook)."""
    plan.validator.prefetch(normalized, digests if plan.needs_digest else ())


def _validate(plan: Plan, normalized: dict[str, Any], digest: str, *, rejected: bool) -> list[Any]:
    """The validator's violations of one record; it also keeps the batch profile (counts, nulls, newest time,
    duplicates). `rejected`: already rejected by the pipeline, so it claims none of its keys in the batch."""
    return plan.validator.validate(normalized, digest=digest if plan.needs_digest else None, rejected=rejected)


def _prepare_chunk(plan: Plan, chunk: list[Any], raw_ids: Callable[[int], list[int]]) -> ChunkWrite:
    """Normalize and validate the chunk: what it writes in its transaction (raw records, rejections, unique values,
    progress) and its accepted records' GDP candidates (storage.merge.BatchMerge.add's records). `raw_ids` gives
    the raw records' ids (bulk.ids_ahead)."""
    batch, tenant_id, batch_id = plan.batch, plan.batch.tenant_id, plan.batch.pk
    now = timezone.now()
    prepared = [(record, *_normalize(plan, record)) for record in chunk]
    ids = raw_ids(len(chunk))
    digests = [digest for _, _, _, digest, _ in prepared]
    _note_hashes(plan, digests)
    _prefetch_keys(plan, [normalized for _, normalized, *_ in prepared], digests)
    unique_values = _unique_values(plan, prepared)
    # Looked up before validation, which needs to know the records they reject (see the loop below).
    unique_clashes = _unique_clashes(plan, unique_values) if unique_values else {}
    raw_rows, rejection_rows, gdp_candidates = [], [], []
    refused: set[int] = set()  # raw ids of the rejected records
    accepted = rejected = 0
    # On PostgreSQL the payload is COPied as the canonical JSON text already made for the hash (jsonb
    # keeps no key order); elsewhere the JSON column stores the text as given, so the dict is kept.
    as_text = bulk.JsonText if bulk.is_postgres() else None
    candidates, validate = plan.candidates, plan.validator.validate
    needs_digest = plan.needs_digest
    for raw_id, (record, normalized, problems, digest, text) in zip(ids, prepared, strict=True):
        position = record.position
        # Normalization problems and values accepted in an earlier batch are errors found outside the validator:
        # it is told, so that a record they reject claims none of its unique values within the batch either.
        found = unique_clashes.get(position) if unique_clashes else None
        violations = validate(normalized, digest=digest if needs_digest else None, rejected=bool(problems or found))
        if problems or found:
            violations = [*problems, *violations, *(found or ())]
        payload = record.payload if as_text is None else as_text(text)
        raw_rows.append((raw_id, tenant_id, batch_id, position, record.line, payload, digest, now))
        if not violations:  # the common case
            accepted += 1
            gdp_candidates.append((raw_id, [], *candidates(normalized)))
            continue
        errors = False
        for v in violations:
            severity = getattr(v, "severity", "error")
            errors = errors or severity == "error"
            rejection_rows.append((tenant_id, batch_id, raw_id, position, record.line, v.field[:200], v.rule,
                                   severity, v.message, str(getattr(v, "value", ""))[:1000]))  # fmt: skip
        if errors:
            rejected += 1
            refused.add(raw_id)
            continue
        accepted += 1
        flags = sorted({f"{v.rule}:{v.field}" if v.field else v.rule for v in violations})
        gdp_candidates.append((raw_id, flags, *candidates(normalized)))
    unique_rows = _unique_value_rows(plan, unique_values, ids, refused) if unique_values else []
    last = chunk[-1].position
    progress = {"processed_through": last, "accepted": batch.accepted + accepted, "rejected": batch.rejected + rejected,
                "updated_at": now}  # fmt: skip
    batch.processed_through, batch.accepted = last, batch.accepted + accepted
    batch.rejected = batch.rejected + rejected

    def write() -> None:  # in the chunk's transaction, after the earlier chunks' (the writer keeps their order)
        duplicates = _earlier_duplicates(plan, digests)
        bulk.write_raw_records(raw_rows)
        bulk.write_rejections(rejection_rows)
        if unique_rows:
            UniqueValue.objects.bulk_create(unique_rows, ignore_conflicts=True)
        IngestionBatch.objects.filter(pk=batch_id).update(**progress, duplicates=F("duplicates") + duplicates)

    return ChunkWrite(write=write, candidates=gdp_candidates)


def _earlier_duplicates(plan: Plan, hashes: list[str]) -> int:
    """The distinct records of the chunk that this source delivered in an earlier batch and this batch has
    not received before (in an earlier chunk): each counts once here, and its repeats within the batch are
    counted at the batch's end (`_repeats_within`), so a record is never counted twice and no
    per-record set has to live in memory. Looked up when the chunk is written, in its transaction, before its
    raw records: every earlier chunk is committed by then, and the lookup waits on the database in the
    writer's thread, not in the pipeline's."""
    if not plan.earlier_batches:
        plan.earlier_batches = _source_has_other_raw_records(plan)
        if not plan.earlier_batches:
            return 0  # the lookup below could find nothing
    if bulk.is_postgres():
        # Two probes of the hash index per distinct hash, whatever the statistics say: each check is a LATERAL
        # subquery with LIMIT 1, which the planner cannot turn into a join. As joins, it may scan every raw
        # record for each chunk (a hash join, when stale statistics make the table look small: 20 s for a
        # 100,000-record batch), or loop over every batch of the source, probing once per batch and hash; so
        # the source of a raw record found is read by a scalar subquery, per row. The cost estimate can be
        # high enough to JIT-compile the statement, which alone takes longer than the probes. `batch_id + 0`
        # keeps the (batch, position) index out of each probe: the planner may AND it with the hash index.
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET LOCAL jit = off")
            cursor.execute(
                "SELECT u.hash FROM unnest(%s::text[]) AS u(hash)"
                " CROSS JOIN LATERAL (SELECT 1 FROM storage_rawrecord r WHERE r.hash = u.hash"
                "  AND r.batch_id + 0 <> %s"
                "  AND (SELECT b.source_id FROM storage_ingestionbatch b WHERE b.id = r.batch_id) = %s LIMIT 1) AS earlier"
                # whether an earlier chunk of this batch already had it
                " LEFT JOIN LATERAL (SELECT 1 AS found FROM storage_rawrecord s WHERE s.hash = u.hash"
                "  AND s.batch_id + 0 = %s LIMIT 1) AS mine ON true"
                " WHERE mine.found IS NULL",
                [list(set(hashes)), plan.batch.pk, plan.source.pk, plan.batch.pk],
            )
            return len(cursor.fetchall())
    earlier = set(
        RawRecord.objects.filter(hash__in=set(hashes), batch__source=plan.source)
        .exclude(batch=plan.batch)
        .values_list("hash", flat=True)
    )
    if not earlier:
        return 0
    return len(
        earlier - set(RawRecord.objects.filter(batch=plan.batch, hash__in=earlier).values_list("hash", flat=True))
    )


def _source_has_other_raw_records(plan: Plan) -> bool:
    """Whether another batch of the source has raw records: asked for every chunk until it is true. One probe of
    the (batch, position) index per batch of the source, in index order (ORDER BY position LIMIT 1), whatever the
    statistics say: as a semi-join it was planned as a scan of the raw table when they described batches with
    rows that retention (or a TRUNCATE) had since removed, a scan of the growing table for every chunk."""
    others = IngestionBatch.objects.filter(source=plan.source).exclude(pk=plan.batch.pk).order_by()
    first_raw = RawRecord.objects.filter(batch=OuterRef("pk")).order_by("position").values("pk")[:1]
    return others.annotate(first_raw=Subquery(first_raw)).filter(first_raw__isnull=False).exists()


def _committed_duplicates(batch: IngestionBatch) -> int:
    return IngestionBatch.objects.filter(pk=batch.pk).values_list("duplicates", flat=True).get()


def _note_hashes(plan: Plan, hashes: list[str]) -> None:
    """Keep the chunk's record hashes in the batch's filter, and as candidates those it may have had before (in an
    earlier chunk, or earlier in this one): every repeat within the batch is then among the candidates, with
    false ones (< 1 %), which `_repeats_within` tells apart. Counting the repeats of every record instead (in SQL
    at the batch's end: a sort of all its hashes) made the batch wait ~1 s per 1,000,000 records."""
    candidates = plan.repeat_candidates
    if candidates is None:
        return
    if plan.hashes_seen is None:
        plan.hashes_seen = BloomFilter(max(plan.batch.received, len(hashes)))
    candidates.update(plan.hashes_seen.add(hashes))
    if len(candidates) > REPEAT_CANDIDATES_MAX:  # a batch of repeats, or one too large for the filter's 64 MB
        plan.repeat_candidates = plan.hashes_seen = None


# Candidate hashes kept in memory (~130 bytes each) at most, and looked up at the batch's end in one go.
REPEAT_CANDIDATES_MAX = 200_000
# Memory for the sort of a batch's record hashes (~100 bytes a record), where every record's repeats are counted:
# the default 4 MB sends a batch of 100,000 records to disk (0.47 s instead of 0.13 s).
REPEATS_SORT_MEMORY = "256MB"
HASHES_PER_STATEMENT = 500  # SQLite's bound parameters


def _repeats_within(batch: IngestionBatch, candidates: set[str] | None) -> int:
    """The raw records of the batch whose hash an earlier one of the batch has: records - distinct hashes, among
    those with a candidate hash (`_note_hashes`; all of them where `candidates` is None). One probe of the hash
    index per candidate on PostgreSQL, whatever the statistics say (`_earlier_duplicates` says why)."""
    if candidates is None:
        with transaction.atomic(), connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                cursor.execute(f"SET LOCAL work_mem = '{REPEATS_SORT_MEMORY}'")  # a constant: SET takes no parameters
            cursor.execute("SELECT COUNT(*) - COUNT(DISTINCT hash) FROM storage_rawrecord WHERE batch_id = %s",
                           [batch.pk])  # fmt: skip
            return cursor.fetchone()[0]
    if not candidates:
        return 0
    hashes = sorted(candidates)
    if connection.vendor != "postgresql":
        repeats = 0
        for start in range(0, len(hashes), HASHES_PER_STATEMENT):  # a hash's records are all in one slice
            counts = RawRecord.objects.filter(batch=batch, hash__in=hashes[start : start + HASHES_PER_STATEMENT])
            found = counts.aggregate(records=Count("pk"), hashes=Count("hash", distinct=True))
            repeats += found["records"] - found["hashes"]
        return repeats
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL jit = off")
        cursor.execute(
            "SELECT COUNT(*) - COUNT(DISTINCT r.hash) FROM unnest(%s::text[]) AS u(hash)"
            " CROSS JOIN LATERAL (SELECT s.hash FROM storage_rawrecord s WHERE s.hash = u.hash"
            "  AND s.batch_id + 0 = %s) AS r",
            [hashes, batch.pk],
        )
        return cursor.fetchone()[0]


def _unique_values(plan: Plan, validated: list[Any]) -> list[tuple[int, list[tuple[str, str]]]]:
    """Per record of the chunk (position, [(unique key, value hash)]): hashed once, for both uses below. A key is
    a unique field (its name), or a compound unique rule's fields ("a, b", the label of its messages), whose
    value counts only when none of its parts is null, as within the batch."""
    fields = list(getattr(plan.validator, "unique_fields", ()))
    compound = [(_stored_label(", ".join(names)), names) for names in getattr(plan.validator, "unique_keys", ())]
    if not fields and not compound:
        return []
    values = []
    for record, normalized, *_ in validated:
        found = [(name, record_hash({"v": normalized[name]})) for name in fields if normalized.get(name) is not None]
        for label, names in compound:
            parts = [normalized.get(name) for name in names]
            if None not in parts:
                found.append((label, record_hash({"v": parts})))
        values.append((record.position, found))
    return values


def _stored_label(label: str, width: int = 200) -> str:
    """A compound key's label as storage keeps it (UniqueValue.field, Rejection.field: 200 characters): a longer
    one ends in its MD5, so that two long labels with the same start stay two keys."""
    if len(label) <= width:
        return label
    return f"{label[: width - 33]}#{hashlib.md5(label.encode(), usedforsecurity=False).hexdigest()}"


def _unique_clashes(plan: Plan, unique_values: list[tuple[int, list[tuple[str, str]]]]) -> dict[int, list[Any]]:
    """Values of unique fields accepted by an earlier batch of the contract: a rejection for every record that
    has one, however often the chunk repeats it. Values this batch claimed in its earlier chunks are not
    clashes: a repeat within the batch is the validator's (one rejection, naming the first position)."""
    from apps.compute.validate import Violation

    wanted: dict[tuple[str, str], list[int]] = {}
    for position, values in unique_values:
        for value in values:
            wanted.setdefault(value, []).append(position)
    if not wanted:
        return {}
    existing = UniqueValue.objects.filter(
        contract_id=plan.version.contract_id, field__in={name for name, _ in wanted},
        value_hash__in={digest for _, digest in wanted},
    ).values_list("field", "value_hash", "raw_record__batch_id")  # fmt: skip
    clashes: dict[int, list[Any]] = {}
    for name, digest, batch_id in existing:
        if batch_id == plan.batch.pk:
            continue
        for position in wanted.get((name, digest), ()):
            clashes.setdefault(position, []).append(
                Violation(name, "unique", f"{name} was already delivered in an earlier batch.", "", "error")
            )
    return clashes


def _unique_value_rows(
    plan: Plan, unique_values: list[tuple[int, list[tuple[str, str]]]], ids: list[int], refused: set[int]
) -> list[UniqueValue]:
    """The unique values of the accepted records, whatever rejected the others (a field of their own, or a
    unique value delivered before): a rejected record claims none."""
    return [
        UniqueValue(tenant_id=plan.batch.tenant_id, contract_id=plan.version.contract_id, field=name,
                    value_hash=digest, raw_record_id=raw_id)
        for raw_id, (_, values) in zip(ids, unique_values, strict=True) if raw_id not in refused
        for name, digest in values
    ]  # fmt: skip


def _decide_and_merge(plan: Plan, merger: Merger) -> IngestionBatch:
    batch = plan.batch
    now = timezone.now()
    # The chunks counted the duplicates of earlier deliveries as they were written (`_earlier_duplicates`).
    batch.duplicates = _committed_duplicates(batch) + _repeats_within(batch, plan.repeat_candidates)
    batch_level = plan.validator.batch_violations(now=now)
    pass_rate = 100.0 if batch.received == 0 else round(100.0 * batch.accepted / batch.received, 2)
    decision = evaluate("batch.accept", PolicySubject(batch.tenant, plan.version.contract, {"pass_rate": pass_rate}))
    gate = decision.deciding.get(PolicyKindChoices.QUALITY_GATE)
    refuse_whole = any(v.severity == "error" for v in batch_level) or (
        not decision.allowed and (gate is None or gate.parameters.get("on_failure", "refuse_batch") == "refuse_batch")
    )
    plan.assertions = _assertions(batch_level, decision, gate, pass_rate)
    rejections = [
        (batch.tenant_id, batch.pk, None, None, None, v.field[:200], v.rule, v.severity, v.message, str(v.value)[:1000])
        for v in batch_level
    ] + [
        (batch.tenant_id, batch.pk, None, None, None, "", "quality_gate", "error", r.message, f"{pass_rate:.2f}")
        for r in decision.failures
    ]  # fmt: skip
    if refuse_whole:
        merger.close()  # whatever it merged is rolled back
        with transaction.atomic():
            bulk.write_rejections(rejections)
            UniqueValue.objects.filter(raw_record__batch=batch).delete()
            return _finish(batch, Status.REFUSED, now, error=_refusal_reason(batch_level, decision))
    status = Status.COMPLETED if batch.rejected == 0 and not decision.failures else Status.COMPLETED_WITH_REJECTIONS

    def complete(result: MergeResult, merged_at: datetime) -> IngestionBatch:  # in the merge's transaction
        bulk.write_rejections(rejections)
        batch.gdps_created, batch.superseded = result.created, result.superseded
        return _finish(batch, status, merged_at)

    return merger.finish(complete)


def _assertions(batch_level: list[Any], decision: Any, gate: Any, pass_rate: float) -> list[dict[str, Any]]:
    """The batch-level rules that failed, and the quality gate's checks, as OpenLineage data quality assertions."""
    assertions: list[dict[str, Any]] = [
        {"assertion": v.rule, "success": False, "severity": "warn" if v.severity == "warning" else v.severity,
         "description": v.message, **({"column": v.field} if v.field else {})}
        for v in batch_level
    ]  # fmt: skip
    if gate is not None:
        minimum = gate.parameters.get("min_batch_pass_rate")
        for reason in decision.reasons:
            if reason.kind == PolicyKindChoices.QUALITY_GATE:
                assertions.append({
                    "assertion": "quality_gate", "name": gate.name, "success": reason.ok, "severity": "error",
                    "description": reason.message, "actual": f"{pass_rate:.2f}",
                    **({"expected": f"{float(minimum):.2f}"} if minimum is not None else {}),
                })  # fmt: skip
    return assertions


def _refusal_reason(batch_level: list[Any], decision: Any) -> str:
    reasons = [f"{v.rule}: {v.message}" for v in batch_level if v.severity == "error"]
    reasons += [reason.message for reason in decision.failures]
    return "Refused whole: " + "; ".join(reasons)


def _finish(batch: IngestionBatch, status: str, now: datetime, error: str = "") -> IngestionBatch:
    batch.status, batch.finished_at, batch.error = status, now, error
    _discard_spool(batch)
    batch.save(
        update_fields=["status", "finished_at", "error", "gdps_created", "superseded", "duplicates", "payload_path",
                       "updated_at"]
    )  # fmt: skip
    publish_event(
        "batch.completed",
        {"batch": batch.pk, "source": batch.source.key, "status": status, "received": batch.received,
         "accepted": batch.accepted, "rejected": batch.rejected, "gdps_created": batch.gdps_created,
         "superseded": batch.superseded},
        tenant=batch.tenant,
    )  # fmt: skip
    return batch


def _fail(batch_id: int, exc: Exception) -> IngestionBatch:
    with transaction.atomic():
        batch = IngestionBatch.objects.select_for_update().get(pk=batch_id)
        batch.status, batch.finished_at = Status.FAILED, timezone.now()
        batch.error = (
            f"{exc}"[:4000]
            if isinstance(exc, (PipelineError, *_expected_errors()))
            else f"{type(exc).__name__}: {exc}"[:4000]
        )
        _discard_spool(batch)
        batch.save(update_fields=["status", "finished_at", "error", "payload_path", "updated_at"])
        UniqueValue.objects.filter(raw_record__batch=batch).delete()  # it made no GDP: its values are free again
    return batch


def _discard_spool(batch: IngestionBatch) -> None:
    """A final batch no longer needs its spooled payload (the raw layer holds every record): the file is deleted
    once the final status commits, and `payload_path` is emptied with that status."""
    path, batch.payload_path = batch.payload_path, ""
    if path:
        transaction.on_commit(lambda: _delete_file(path))


def _delete_file(path: str) -> None:
    try:
        default_storage.delete(path)
    except OSError:  # the batch is final either way; an orphan file is only space
        logger.warning("Could not delete the spooled payload %s", path, exc_info=True)


def _counts(batch: IngestionBatch) -> dict[str, int]:
    return {name: getattr(batch, name) for name in
            ("received", "accepted", "rejected", "duplicates", "gdps_created", "superseded")}  # fmt: skip


def _finish_run(run: PipelineRun, batch: IngestionBatch, *, failed: bool) -> None:
    run.status = RunStatus.FAILED if failed else RunStatus.COMPLETED
    run.finished_at = timezone.now()
    run.error = batch.error if failed else ""
    run.counts = _counts(batch)
    run.save(update_fields=["status", "finished_at", "error", "counts", "updated_at"])
