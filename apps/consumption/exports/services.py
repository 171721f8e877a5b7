"""Export services: decide what may leave, then stream it or run it as a job.

`export_prepare` is the one decision: it validates the format, filters and fields, counts the
rows, and asks the host's policy evaluation (`export.create`: classification handling, then
export control) per contract whose fields would leave. Fields a policy excludes are dropped
(a measure's rows, a dimension's key, a column's values), masked ones replaced; a field that
must be encrypted cannot leave (exports cannot encrypt), and any unmet condition refuses the
whole export with every reason (`export-refused`, 403).

Then `export_stream` (small exports: the response body, recorded when the stream ends) or
`export_job_create` (large ones: a Celery task writes the file to the default storage,
downloaded through a signed link that expires, `export_download_token`/`export_download_check`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core import signing
from django.core.exceptions import ValidationError
from django.core.files import File
from django.db import OperationalError, transaction
from django.db.models import Q, QuerySet
from django.http import QueryDict
from django.utils import timezone

from apps.consumption.exports.datasets import Column, Dataset, GovernedField, dataset_get
from apps.consumption.exports.models import ExportFormatChoices, ExportJob, ExportModeChoices, ExportStatusChoices
from apps.consumption.exports.pgcopy import CopyCsv, copyable
from apps.consumption.exports.writers import WRITERS, XLSX_MAX_ROWS
from apps.host.policies.evaluation import PolicySubject, evaluate
from apps.kernel.errors import ConflictError, DomainError, ForbiddenError, GoneError
from apps.runtime.events import publish_event

logger = logging.getLogger(__name__)

FETCH_CHUNK = 2000  # rows a server-side cursor round trip brings: a few MB of Python objects at most
MASK = "***"
RESERVED_PARAMETERS = ("format", "fields")
SIGNER_SALT = "aurum.consumption.exports.download"


@dataclass
class ContractPlan:
    """What the policies change in one contract's rows."""

    contract_key: str
    drop_measures: set[str] = field(default_factory=set)
    mask_measures: set[str] = field(default_factory=set)
    columns: dict[str, str] = field(default_factory=dict)  # column → excluded | masked
    dimensions: dict[str, str] = field(default_factory=dict)  # dimension → excluded | masked

    @property
    def changes_values(self) -> bool:
        return bool(self.mask_measures or self.columns or self.dimensions)

    def summary(self) -> dict[str, Any]:
        return {
            "rows_dropped_for_measures": sorted(self.drop_measures),
            "values_masked_for_measures": sorted(self.mask_measures),
            "columns": dict(sorted(self.columns.items())),
            "dimensions": dict(sorted(self.dimensions.items())),
        }


@dataclass
class PreparedExport:
    tenant: Any
    dataset: Dataset
    format: str
    filters: dict[str, str]
    columns: tuple[Column, ...]
    queryset: QuerySet
    row_count: int
    plans: dict[int, ContractPlan]

    @property
    def treatments(self) -> dict[str, Any]:
        return {plan.contract_key: plan.summary() for plan in self.plans.values() if plan.summary() != _EMPTY}

    def body(self) -> CopyCsv | _Written:
        """The file's bytes, in chunks; its `count` says how many rows have gone out so far.

        CSV without masked values on PostgreSQL comes straight from COPY (the same bytes, several
        times faster); everything else goes through a writer."""
        ordered = self.queryset.order_by(*self.dataset.order_by)
        if self.format == ExportFormatChoices.CSV and self._transform() is None and copyable(ordered):
            return CopyCsv(ordered, self.columns)
        return _Written(self.format, self.columns, self.rows())

    def rows(self) -> Iterator[Any]:
        """The rows as the writers take them, read from a server-side cursor in chunks."""
        expressions = {c.lookup: c.expression for c in self.columns if c.expression is not None}
        transform = self._transform()
        hidden = (self.dataset.contract_path, self.dataset.measure_path) if transform else ()
        queryset = self.queryset.order_by(*self.dataset.order_by)
        if expressions:
            queryset = queryset.annotate(**expressions)
        rows = queryset.values_list(*(c.lookup for c in self.columns), *hidden).iterator(chunk_size=FETCH_CHUNK)
        return map(transform, rows) if transform else rows

    def _transform(self) -> Callable[[tuple[Any, ...]], list[Any]] | None:
        plans = {cid: plan for cid, plan in self.plans.items() if plan.changes_values}
        if not plans:
            return None
        names = [column.name for column in self.columns]
        kinds = {column.name: column.kind for column in self.columns}
        width = len(names)
        index = {name: position for position, name in enumerate(names)}
        value_at = index.get("value")
        dimensions_at = index.get("dimensions")

        def transform(row: tuple[Any, ...]) -> list[Any]:
            out = list(row[:width])
            plan = plans.get(row[width])
            if plan is None:
                return out
            for column, treatment in plan.columns.items():
                at = index[column]
                out[at] = MASK if treatment == "masked" and kinds[column] == "str" else None
            if value_at is not None and row[width + 1] in plan.mask_measures:
                out[value_at] = None
            if dimensions_at is not None and plan.dimensions and out[dimensions_at]:
                values = json.loads(out[dimensions_at])
                for key, treatment in plan.dimensions.items():
                    if key in values:
                        if treatment == "excluded":
                            del values[key]
                        else:
                            values[key] = MASK
                out[dimensions_at] = json.dumps(values, ensure_ascii=False)
            return out

        return transform


_EMPTY = ContractPlan("").summary()


# --- the decision --------------------------------------------------------------------------------------
def export_prepare(*, tenant: Any, dataset: str, format: str, params: Mapping[str, str]) -> PreparedExport:
    """Validate, count and decide. Raises ValidationError (bad input) or ForbiddenError (`export-refused`)."""
    chosen = dataset_get(dataset)
    if format not in ExportFormatChoices.values:
        raise ValidationError({"format": [f"One of {', '.join(ExportFormatChoices.values)}."]})
    filters = {key: value for key, value in params.items() if key not in RESERVED_PARAMETERS and value != ""}
    data = QueryDict(mutable=True)
    data.update(filters)
    filterset = chosen.filterset(data=data, queryset=chosen.queryset(tenant))
    if not filterset.is_valid():
        raise ValidationError({name: list(errors) for name, errors in filterset.errors.items()})
    queryset = filterset.qs
    columns = _columns(chosen, params.get("fields"))
    cleaned = filterset.form.cleaned_data
    governed = chosen.governed_fields(tenant, queryset, cleaned, tuple(c.name for c in columns))

    rows = queryset.count()
    plans, unmet = _decide(tenant, format, rows, governed)
    drops = [Q(**{chosen.contract_path: cid, f"{chosen.measure_path}__in": sorted(plan.drop_measures)})
             for cid, plan in plans.items() if plan.drop_measures]  # fmt: skip
    if drops and not unmet:
        for drop in drops:
            queryset = queryset.exclude(drop)
        rows = queryset.count()
        plans, unmet = _decide(tenant, format, rows, governed)  # max_rows on the rows that really leave
    if unmet:
        raise ForbiddenError(
            "The export policies refuse this export: " + " ".join(item["message"] for item in unmet),
            slug="export-refused",
            title="Export refused by policy",
            unmet=unmet,
        )
    if format == ExportFormatChoices.XLSX and rows > XLSX_MAX_ROWS:
        raise ValidationError({"format": [f"An XLSX sheet holds at most {XLSX_MAX_ROWS:,} rows; this export has "
                                          f"{rows:,}. Choose csv, ndjson or parquet."]})  # fmt: skip
    return PreparedExport(tenant, chosen, format, filters, columns, queryset, rows, plans)


def _columns(dataset: Dataset, raw: str | None) -> tuple[Column, ...]:
    if raw is None or not raw.strip():
        return dataset.columns
    asked = [name.strip() for name in raw.split(",") if name.strip()]
    unknown = [name for name in asked if name not in dataset.column_names]
    if unknown:
        raise ValidationError(
            {"fields": [f"Unknown field(s): {', '.join(unknown)}. Known: {', '.join(dataset.column_names)}."]}
        )
    return tuple(column for column in dataset.columns if column.name in asked)


def _decide(
    tenant: Any, format: str, rows: int, governed: list[GovernedField]
) -> tuple[dict[int, ContractPlan], list[dict[str, Any]]]:
    """Ask the policies once per contract whose fields leave (once for the tenant if none)."""
    by_contract: dict[int | None, list[GovernedField]] = {}
    for item in governed:
        by_contract.setdefault(item.contract_id, []).append(item)
    if not by_contract:
        by_contract[None] = []
    contracts = _contracts(tenant, [cid for cid in by_contract if cid is not None])
    plans: dict[int, ContractPlan] = {}
    unmet: list[dict[str, Any]] = []
    for contract_id, fields in by_contract.items():
        contract = contracts.get(contract_id) if contract_id is not None else None
        facts = {"format": format, "rows": rows, "fields": {f.name: f.classification for f in fields}}
        decision = evaluate("export.create", PolicySubject(tenant=tenant, contract=contract, facts=facts))
        key = contract.key if contract is not None else ""
        for reason in decision.failures:
            unmet.append({"contract": key or None, "kind": reason.kind, "policy": reason.policy_name,
                          "policy_id": reason.policy_id, "message": reason.message})  # fmt: skip
        if contract_id is None:
            continue
        plan = plans[contract_id] = ContractPlan(key)
        treated = decision.treatments.get("fields", {})
        for item in fields:
            treatment = treated.get(item.name)
            if treatment in (None, "allowed"):
                continue
            if treatment == "encrypted":
                unmet.append({"contract": key, "kind": "classification_handling", "policy": "", "policy_id": None,
                              "message": f"Field {item.name!r} of {key} must be encrypted to leave, and exports "
                                         "cannot encrypt; choose fields without it."})  # fmt: skip
            elif item.target == "rows":
                (plan.drop_measures if treatment == "excluded" else plan.mask_measures).add(item.key)
            elif item.target == "dimension":
                plan.dimensions[item.key] = treatment
            else:
                # One column can carry several fields (a composite entity key): exclusion wins.
                if plan.columns.get(item.column) != "excluded":
                    plan.columns[item.column] = treatment
    return plans, unmet


def _contracts(tenant: Any, ids: list[int]) -> dict[int, Any]:
    from apps.host.models import DataContract

    return {c.pk: c for c in DataContract.objects.for_tenant(tenant).filter(pk__in=ids)}


# --- streaming --------------------------------------------------------------------------------------------
def export_stream(*, actor: Any, prepared: PreparedExport) -> tuple[ExportJob, Iterator[bytes]]:
    """Record the export and hand back its body; row count, size and SHA-256 are recorded at its end."""
    job = ExportJob.objects.create(
        tenant=prepared.tenant, requested_by=_user(actor), dataset=prepared.dataset.name, format=prepared.format,
        mode=ExportModeChoices.STREAM, status=ExportStatusChoices.RUNNING, filters=prepared.filters,
        columns=[c.name for c in prepared.columns], treatments=prepared.treatments, started_at=timezone.now(),
    )  # fmt: skip
    return job, _recorded(job, prepared)


class _Written:
    """A writer's bytes for the rows, counting the rows it has taken."""

    def __init__(self, format: str, columns: tuple[Column, ...], rows: Iterator[Any]) -> None:
        self.format, self.columns, self.rows = format, columns, rows
        self.count = 0

    def _counted(self) -> Iterator[Any]:
        for row in self.rows:
            self.count += 1
            yield row

    def __iter__(self) -> Iterator[bytes]:
        return WRITERS[self.format](self.columns, self._counted())


def _recorded(job: ExportJob, prepared: PreparedExport) -> Iterator[bytes]:
    digest, size = hashlib.sha256(), 0
    tally = prepared.body()
    chunks = iter(tally)
    try:
        for chunk in chunks:
            digest.update(chunk)
            size += len(chunk)
            yield chunk
    except GeneratorExit:
        chunks.close()  # first: a COPY holds the connection until it is ended
        _finish(job, ExportStatusChoices.FAILED, tally.count, "", size, "The client stopped reading the stream.")
        raise
    except Exception as exc:
        logger.exception("Export %s failed while streaming", job.pk)
        chunks.close()
        _finish(job, ExportStatusChoices.FAILED, tally.count, "", size, f"{type(exc).__name__}: {exc}")
        raise
    _finish(job, ExportStatusChoices.COMPLETED, tally.count, digest.hexdigest(), size, "")


def _finish(job: ExportJob, status: str, rows: int, checksum: str, size: int, error: str) -> None:
    job.status, job.row_count, job.checksum, job.size_bytes, job.error = status, rows, checksum, size, error
    job.finished_at = timezone.now()
    with transaction.atomic():
        job.save(update_fields=["status", "row_count", "checksum", "size_bytes", "error", "finished_at", "updated_at"])
        _publish(job)


def _publish(job: ExportJob) -> None:
    payload = {"export_id": job.pk, "dataset": job.dataset, "format": job.format, "mode": job.mode,
               "rows": job.row_count, "checksum": job.checksum, "error": job.error}  # fmt: skip
    if job.status == ExportStatusChoices.COMPLETED:
        publish_event("export.completed", payload, tenant=job.tenant, actor=job.requested_by)
    else:
        publish_event("export.failed", payload, tenant=job.tenant, actor=job.requested_by)


def _user(actor: Any) -> Any:
    return actor if getattr(actor, "is_authenticated", False) else None


# --- background jobs --------------------------------------------------------------------------------------
def export_job_create(*, actor: Any, prepared: PreparedExport) -> ExportJob:
    """Record a pending job; a worker runs it once the transaction commits (at once in embedded mode)."""
    from apps.consumption.exports.tasks import run_export

    with transaction.atomic():
        job = ExportJob.objects.create(
            tenant=prepared.tenant, requested_by=_user(actor), dataset=prepared.dataset.name,
            format=prepared.format, mode=ExportModeChoices.JOB, status=ExportStatusChoices.PENDING,
            filters=prepared.filters, columns=[c.name for c in prepared.columns], treatments=prepared.treatments,
            row_count=prepared.row_count,
        )  # fmt: skip
        transaction.on_commit(lambda: run_export.delay(job.pk))
    return job


def export_job_run(job_id: int) -> ExportJob:
    """Write a job's file. The policies are asked again: what may leave is decided when it leaves."""
    job = ExportJob.objects.select_related("tenant", "requested_by").get(pk=job_id)
    if job.status not in (ExportStatusChoices.PENDING, ExportStatusChoices.RUNNING):
        return job  # already done (a redelivered message)
    job.status, job.started_at = ExportStatusChoices.RUNNING, timezone.now()
    job.save(update_fields=["status", "started_at", "updated_at"])
    try:
        prepared = export_prepare(tenant=job.tenant, dataset=job.dataset, format=job.format,
                                  params={**job.filters, "fields": ",".join(job.columns)})  # fmt: skip
        digest, size = hashlib.sha256(), 0
        tally = prepared.body()
        with tempfile.TemporaryFile() as spool:
            for chunk in tally:
                digest.update(chunk)
                size += len(chunk)
                spool.write(chunk)
            spool.seek(0)
            job.file.save(job.filename, File(spool), save=False)
    except (ValidationError, DomainError) as exc:
        detail = exc.detail if isinstance(exc, DomainError) else "; ".join(exc.messages)
        _finish(job, ExportStatusChoices.FAILED, 0, "", 0, detail)
        return job
    except OperationalError:
        raise  # transient: the task retries with backoff, and the job resumes from the start
    except Exception as exc:
        logger.exception("Export job %s failed", job.pk)
        _finish(job, ExportStatusChoices.FAILED, 0, "", 0, f"{type(exc).__name__}: {exc}")
        return job
    job.treatments = prepared.treatments
    job.save(update_fields=["file", "treatments", "updated_at"])
    _finish(job, ExportStatusChoices.COMPLETED, tally.count, digest.hexdigest(), size, "")
    return job


# --- signed download links ----------------------------------------------------------------------------------
def _signer() -> signing.TimestampSigner:
    return signing.TimestampSigner(salt=SIGNER_SALT)


def export_files_prune(*, now: datetime | None = None) -> int:
    """Delete the files of background exports finished more than AURUM_EXPORT_FILE_DAYS ago (every
    tenant; the beat job `consumption.prune_exports`). Each job stays, with its rows, checksum and
    requester, as `expired`. Returns the number of files deleted."""
    cutoff = (now or timezone.now()) - timedelta(days=settings.AURUM_EXPORT_FILE_DAYS)
    old = ExportJob.objects.filter(status=ExportStatusChoices.COMPLETED, finished_at__lt=cutoff).exclude(file="")
    pruned = 0
    for job in old.iterator():
        job.file.delete(save=False)  # a file already gone from storage is fine
        job.status = ExportStatusChoices.EXPIRED
        job.save(update_fields=["file", "status", "updated_at"])
        pruned += 1
    return pruned


def export_download_token(*, job: ExportJob) -> str:
    """A token naming the job and its tenant, valid for AURUM_EXPORT_LINK_MAX_AGE seconds."""
    return _signer().sign(f"{job.pk}:{job.tenant_id}")


def export_download_check(*, job: ExportJob, tenant: Any, token: str) -> None:
    """Refuse a link that is expired, forged, for another job or another tenant, or a file not ready."""
    try:
        value = _signer().unsign(token or "", max_age=settings.AURUM_EXPORT_LINK_MAX_AGE)
    except signing.SignatureExpired:
        raise ForbiddenError(
            "This download link has expired; read the export job again for a fresh link.",
            slug="link-expired", title="Link expired",
        ) from None  # fmt: skip
    except signing.BadSignature:
        raise ForbiddenError("This download link is not valid.", slug="invalid-link", title="Invalid link") from None
    if value != f"{job.pk}:{getattr(tenant, 'pk', None)}":
        raise ForbiddenError("This download link is for another export.", slug="invalid-link", title="Invalid link")
    if job.status == ExportStatusChoices.EXPIRED:
        raise GoneError(f"Export {job.pk}'s file was deleted {settings.AURUM_EXPORT_FILE_DAYS} days after it was "
                        "written; run the export again.", slug="export-expired", title="Export expired")  # fmt: skip
    if job.status != ExportStatusChoices.COMPLETED or not job.file:
        raise ConflictError(f"Export {job.pk} has no file to download (status {job.status}).", slug="not-ready",
                            current_status=job.status)  # fmt: skip
