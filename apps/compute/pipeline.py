"""The ingest pipeline: a spooled batch → raw layer → normalize → validate → Golden Data Points.

    receive  (request)  spool the body, checksum it, honour the Idempotency-Key, create the batch
    process  (inline or on a worker)
      1. parse the whole payload once: a malformed one fails before anything is written
      2. chunk by chunk, one transaction each: raw records, rejections, staged GDP values,
         and the resume marker `processed_through` (a killed worker resumes after it)
      3. batch-level quality rules, then the quality-gate policy: accept all, accept the
         valid records, or refuse the whole batch
      4. the survivorship merge (apps/storage/merge.py), one transaction
      5. counts, status, a `batch.completed` event, a PipelineRun and OpenLineage events

Memory is bounded by the chunk size whatever the batch size: records are streamed from
the spooled file, and only per-batch counters and the within-batch uniqueness sets live
across chunks.
"""

from __future__ import annotations

import contextlib
import gc
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from itertools import islice
from typing import Any

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import connection, transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from apps.compute import lineage
from apps.compute.ingest.parsers import iter_records
from apps.compute.models import PipelineRun, Source
from apps.compute.normalize import compile_steps, steps_from_rules
from apps.compute.records import Shape, hashed_json, make_candidates, record_hash
from apps.compute.validate import compile_validator, specs_from_version
from apps.host.choices import PolicyKindChoices
from apps.host.policies.evaluation import PolicySubject, evaluate
from apps.runtime.events import publish_event
from apps.storage import bulk
from apps.storage.choices import BatchStatusChoices as Status
from apps.storage.merge import merge_batch, refresh_staging_statistics
from apps.storage.models import IngestionBatch, RawRecord, StagedValue, UniqueValue

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
    # Whether another batch of the source has raw records (once true it stays so): until then no record
    # can be a duplicate of an earlier delivery, and the per-chunk lookup is skipped.
    earlier_batches: bool = False


def batch_process(batch_id: int) -> IngestionBatch:
    """Process (or resume) a batch to the end. Safe to call again for the same batch."""
    batch = _start(batch_id)
    if batch.status in (Status.COMPLETED, Status.COMPLETED_WITH_REJECTIONS, Status.REFUSED, Status.FAILED):
        return batch
    run = PipelineRun.objects.create(tenant=batch.tenant, batch=batch, job="ingest")
    lineage.emit_start(run, batch)
    try:
        plan = _plan(batch)
        _check_syntax(plan)
        _ingest_chunks(plan)
        batch = _decide_and_merge(plan)
    except Exception as exc:
        batch = _fail(batch_id, exc)
        lineage.emit_fail(run, batch, str(exc))
        _finish_run(run, batch, failed=True)
        if not isinstance(exc, (PipelineError, *_expected_errors())):
            raise
        return batch
    lineage.emit_complete(run, batch)
    _finish_run(run, batch, failed=False)
    return batch


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
    validator = compile_validator(field_specs, rule_specs)
    return Plan(
        batch=batch,
        source=batch.source,
        version=version,
        normalizer=compile_steps(steps_from_rules(version.normalization_rules.all())),
        validator=validator,
        rules=rule_specs,
        candidates=make_candidates(shape),
        shape=shape,
        needs_digest=getattr(validator, "_needs_digest", True),
    )


def _records(plan: Plan) -> Iterator[Any]:
    with default_storage.open(plan.batch.payload_path, "rb") as stream:
        yield from iter_records(stream, plan.batch.format)


def _check_syntax(plan: Plan) -> None:
    """One parse pass before any write: a malformed payload fails whole, leaving nothing behind."""
    if plan.batch.processed_through >= 0:
        return  # a resumed batch was parsed in full before its first chunk was written
    count = sum(1 for _ in _records(plan))
    IngestionBatch.objects.filter(pk=plan.batch.pk).update(received=count)
    plan.batch.received = count


def _ingest_chunks(plan: Plan) -> None:
    size = settings.AURUM_INGEST_CHUNK_SIZE
    records = _records(plan)
    with _young_collections_only():
        while chunk := list(islice(records, size)):
            if chunk[-1].position <= plan.batch.processed_through:
                for record in chunk:  # already committed: rebuild the in-memory state only
                    _validate(plan, record)
            else:
                _ingest_chunk(plan, chunk)
            gc.collect(1)


@contextlib.contextmanager
def _young_collections_only() -> Iterator[None]:
    """A chunk allocates millions of short-lived objects, which reference counting frees; the automatic
    cyclic collections they trigger would also rescan, again and again, what the batch keeps alive (the
    validator's keys, growing with the batch): a third of the pipeline's Python time. So the automatic
    collector is off while the chunks run, and the young generations (where any cycle made by a chunk
    is) are collected after each chunk."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _validate(plan: Plan, record: Any) -> tuple[dict[str, Any], list[Any], str, str]:
    """Normalize and validate one record; also feeds the batch profile. Returns its hash (record_hash) and
    the canonical JSON text it was computed from too."""
    normalized, problems = plan.normalizer(record.payload)
    text, digest = hashed_json(record.payload)
    # The validator also keeps the batch profile (counts, nulls, newest time, duplicates).
    violations = [*problems, *plan.validator.validate(normalized, digest=digest if plan.needs_digest else None)]
    return normalized, violations, digest, text


@transaction.atomic
def _ingest_chunk(plan: Plan, chunk: list[Any]) -> None:
    batch, tenant_id, batch_id = plan.batch, plan.batch.tenant_id, plan.batch.pk
    now = timezone.now()
    validated = [(record, *_validate(plan, record)) for record in chunk]
    ids = bulk.next_ids(RawRecord, len(chunk))
    duplicates = _earlier_duplicates(plan, [digest for _, _, _, digest, _ in validated])
    unique_clashes = _unique_clashes(plan, validated, ids)
    raw_rows, rejection_rows, staged_rows = [], [], []
    accepted = rejected = 0
    # On PostgreSQL the payload is COPied as the canonical JSON text already made for the hash (jsonb
    # keeps no key order); elsewhere the JSON column stores the text as given, so the dict is kept.
    as_text = bulk.JsonText if bulk.is_postgres() else None
    candidates = plan.candidates
    for raw_id, (record, normalized, violations, digest, text) in zip(ids, validated, strict=True):
        position = record.position
        payload = record.payload if as_text is None else as_text(text)
        raw_rows.append((raw_id, tenant_id, batch_id, position, record.line, payload, digest, now))
        if unique_clashes:
            violations = violations + unique_clashes.get(position, [])
        if not violations:  # the common case
            accepted += 1
            for candidate in candidates(normalized, []):
                staged_rows.append((batch_id, raw_id, position, *candidate, ""))
            continue
        errors = False
        for v in violations:
            severity = getattr(v, "severity", "error")
            errors = errors or severity == "error"
            rejection_rows.append((tenant_id, batch_id, raw_id, position, record.line, v.field, v.rule,
                                   severity, v.message, str(getattr(v, "value", ""))[:1000]))  # fmt: skip
        if errors:
            rejected += 1
            continue
        accepted += 1
        flags = sorted({f"{v.rule}:{v.field}" if v.field else v.rule for v in violations})
        for candidate in candidates(normalized, flags):
            staged_rows.append((batch_id, raw_id, position, *candidate, ""))
    bulk.write_raw_records(raw_rows)
    bulk.write_rejections(rejection_rows)
    bulk.write_staged_values(staged_rows)
    _remember_unique_values(plan, validated, ids)
    last = chunk[-1].position
    IngestionBatch.objects.filter(pk=batch.pk).update(
        processed_through=last,
        accepted=batch.accepted + accepted,
        rejected=batch.rejected + rejected,
        duplicates=batch.duplicates + duplicates,
        updated_at=now,
    )
    batch.processed_through, batch.accepted = last, batch.accepted + accepted
    batch.rejected, batch.duplicates = batch.rejected + rejected, batch.duplicates + duplicates


def _earlier_duplicates(plan: Plan, hashes: list[str]) -> int:
    """Records identical to one this source delivered in an earlier batch (repeats within the
    batch are counted in SQL at its end, so no per-record set has to live in memory)."""
    if not plan.earlier_batches:
        plan.earlier_batches = (
            IngestionBatch.objects.filter(source=plan.source)
            .exclude(pk=plan.batch.pk)
            .filter(Exists(RawRecord.objects.filter(batch=OuterRef("pk"))))
            .exists()
        )
        if not plan.earlier_batches:
            return 0  # the lookup below could find nothing
    if bulk.is_postgres():
        # One index probe per distinct hash (LATERAL … LIMIT 1), whatever the statistics say: left to the
        # planner, `hash = ANY(…)` may scan every raw record of the source's batches for each chunk. Its
        # cost estimate can be high enough to JIT-compile it, which alone takes longer than the probes.
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL jit = off")  # for the chunk's transaction
            cursor.execute(
                "SELECT u.hash FROM unnest(%s::text[]) AS u(hash) CROSS JOIN LATERAL ("
                " SELECT 1 FROM storage_rawrecord r JOIN storage_ingestionbatch b ON b.id = r.batch_id"
                " WHERE r.hash = u.hash AND b.source_id = %s AND r.batch_id <> %s LIMIT 1) AS found",
                [list(set(hashes)), plan.source.pk, plan.batch.pk],
            )
            earlier = {row[0] for row in cursor.fetchall()}
    else:
        earlier = set(
            RawRecord.objects.filter(hash__in=set(hashes), batch__source=plan.source)
            .exclude(batch=plan.batch)
            .values_list("hash", flat=True)
        )
    if not earlier:
        return 0
    return sum(1 for digest in hashes if digest in earlier)


def _repeats_within(batch: IngestionBatch) -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) - COUNT(DISTINCT hash) FROM storage_rawrecord WHERE batch_id = %s", [batch.pk])
        return cursor.fetchone()[0]


def _unique_clashes(plan: Plan, validated: list[Any], ids: list[int]) -> dict[int, list[Any]]:
    """Values of unique fields accepted by an earlier batch of the contract: a rejection each."""
    from apps.compute.validate import Violation

    fields = list(getattr(plan.validator, "unique_fields", ()))
    if not fields:
        return {}
    wanted = {(name, record_hash({"v": normalized.get(name)})): record.position
              for record, normalized, *_ in validated for name in fields if normalized.get(name) is not None}  # fmt: skip
    existing = UniqueValue.objects.filter(
        contract_id=plan.version.contract_id, field__in=fields, value_hash__in={h for _, h in wanted}
    ).values_list("field", "value_hash")
    clashes: dict[int, list[Any]] = {}
    for name, digest in existing:
        position = wanted.get((name, digest))
        if position is not None:
            clashes.setdefault(position, []).append(
                Violation(name, "unique", f"{name} was already delivered in an earlier batch.", "", "error")
            )
    return clashes


def _remember_unique_values(plan: Plan, validated: list[Any], ids: list[int]) -> None:
    fields = list(getattr(plan.validator, "unique_fields", ()))
    if not fields:
        return
    rows = [
        UniqueValue(tenant_id=plan.batch.tenant_id, contract_id=plan.version.contract_id, field=name,
                    value_hash=record_hash({"v": normalized.get(name)}), raw_record_id=raw_id)
        for raw_id, (_, normalized, violations, *_) in zip(ids, validated, strict=True)
        if not any(getattr(v, "severity", "error") == "error" for v in violations)
        for name in fields if normalized.get(name) is not None
    ]  # fmt: skip
    UniqueValue.objects.bulk_create(rows, ignore_conflicts=True)


def _decide_and_merge(plan: Plan) -> IngestionBatch:
    batch = plan.batch
    now = timezone.now()
    batch.duplicates += _repeats_within(batch)
    batch_level = plan.validator.batch_violations(now=now)
    pass_rate = 100.0 if batch.received == 0 else round(100.0 * batch.accepted / batch.received, 2)
    decision = evaluate("batch.accept", PolicySubject(batch.tenant, plan.version.contract, {"pass_rate": pass_rate}))
    gate = decision.deciding.get(PolicyKindChoices.QUALITY_GATE)
    refuse_whole = any(v.severity == "error" for v in batch_level) or (
        not decision.allowed and (gate is None or gate.parameters.get("on_failure", "refuse_batch") == "refuse_batch")
    )
    if not refuse_whole:
        refresh_staging_statistics()
    with transaction.atomic():
        bulk.write_rejections([
            (batch.tenant_id, batch.pk, None, None, None, v.field, v.rule, v.severity, v.message, str(v.value)[:1000])
            for v in batch_level
        ] + [
            (batch.tenant_id, batch.pk, None, None, None, "", "quality_gate", "error", r.message, f"{pass_rate:.2f}")
            for r in decision.failures
        ])  # fmt: skip
        if refuse_whole:
            StagedValue.objects.filter(batch=batch).delete()
            UniqueValue.objects.filter(raw_record__batch=batch).delete()
            return _finish(batch, Status.REFUSED, now, error=_refusal_reason(batch_level, decision))
        _lock_contract(plan.version.contract_id)
        result = merge_batch(
            batch_id=batch.pk, tenant_id=batch.tenant_id, contract_id=plan.version.contract_id,
            contract_version_id=plan.version.pk, source_id=plan.source.pk, source_priority=plan.source.priority,
            survivorship=plan.version.contract.survivorship, now=now,
        )  # fmt: skip
        batch.gdps_created, batch.superseded = result.created, result.superseded
        status = Status.COMPLETED if batch.rejected == 0 and not decision.failures else Status.COMPLETED_WITH_REJECTIONS
        return _finish(batch, status, now)


def _refusal_reason(batch_level: list[Any], decision: Any) -> str:
    reasons = [f"{v.rule}: {v.message}" for v in batch_level if v.severity == "error"]
    reasons += [reason.message for reason in decision.failures]
    return "Refused whole: " + "; ".join(reasons)


def _lock_contract(contract_id: int) -> None:
    """Merges of one contract run one at a time (they touch the same current versions)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [4242, contract_id])


def _finish(batch: IngestionBatch, status: str, now: datetime, error: str = "") -> IngestionBatch:
    batch.status, batch.finished_at, batch.error = status, now, error
    batch.save(
        update_fields=["status", "finished_at", "error", "gdps_created", "superseded", "duplicates", "updated_at"]
    )
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
        batch.save(update_fields=["status", "finished_at", "error", "updated_at"])
        StagedValue.objects.filter(batch=batch).delete()
    return batch


def _finish_run(run: PipelineRun, batch: IngestionBatch, *, failed: bool) -> None:
    run.status = "failed" if failed else "completed"
    run.finished_at = timezone.now()
    run.error = batch.error if failed else ""
    run.counts = {name: getattr(batch, name) for name in
                  ("received", "accepted", "rejected", "duplicates", "gdps_created", "superseded")}  # fmt: skip
    run.save(update_fields=["status", "finished_at", "error", "counts", "updated_at"])
