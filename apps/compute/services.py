"""Compute services: sources, the normalization rules of contract versions, and the intake of batches."""

from __future__ import annotations

import hashlib
import json
import re
import tempfile
import uuid
from typing import Any, BinaryIO

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from apps.compute.choices import SourceKindChoices
from apps.compute.ingest.parsers import iter_records, sniff_format, spool
from apps.compute.models import NormalizationRule, Source
from apps.compute.normalize import RuleError, Step, compile_steps
from apps.host.models import ContractVersion
from apps.kernel.audit import audit_actor
from apps.kernel.errors import ConflictError, DomainError
from apps.runtime.events import publish_event
from apps.security.outbound import check_url
from apps.storage.choices import BatchStatusChoices
from apps.storage.models import IngestionBatch

SOURCE_ATTRS = ("name", "kind", "priority", "active", "pull_url", "pull_format", "pull_every_seconds", "description")


class UnsupportedFormat(DomainError):
    status_code = 415
    slug = "unsupported-media-type"
    title = "Unsupported media type"


@transaction.atomic
def source_create(*, actor: Any, tenant: Any, contract: Any, key: str, name: str, **attrs: Any) -> Source:
    """A source of records for one of the tenant's contracts; a pull source gets its beat schedule."""
    _refuse_unknown(attrs, SOURCE_ATTRS)
    source = Source(tenant=tenant, contract=contract, key=key, name=name, **attrs)
    _clean(source)
    with audit_actor(actor):
        source.save()
    _sync_pull_schedule(source)
    return source


@transaction.atomic
def source_update(*, actor: Any, source: Source, **changes: Any) -> Source:
    _refuse_unknown(changes, SOURCE_ATTRS)
    for name, value in changes.items():
        setattr(source, name, value)
    _clean(source)
    with audit_actor(actor):
        source.save()
    _sync_pull_schedule(source)
    return source


def _clean(source: Source) -> None:
    source.full_clean()
    if source.kind == SourceKindChoices.PULL and source.active:  # an inactive source fetches nothing
        errors = {}
        if not source.pull_url:
            errors["pull_url"] = "A pull source needs the URL to fetch."
        else:
            try:
                check_url(source.pull_url, tenant=source.tenant)
            except Exception as exc:  # the guard says why (private address, bad scheme…)
                errors["pull_url"] = str(exc)
        if not source.pull_format:
            errors["pull_format"] = "Say which format the URL serves."
        if not source.pull_every_seconds or source.pull_every_seconds < 60:
            errors["pull_every_seconds"] = "Pull at most once a minute (60 or more seconds)."
        if errors:
            raise ValidationError(errors)


def _sync_pull_schedule(source: Source) -> None:
    """One django-celery-beat entry per pull source, kept in step with it (operators see it in the admin)."""
    name = f"Pull source {source.tenant.slug}/{source.key}"
    wanted = source.kind == SourceKindChoices.PULL and source.active
    task = PeriodicTask.objects.filter(name=name).first()
    if not wanted:
        if task is not None:
            task.enabled = False
            task.save(update_fields=["enabled"])
        return
    interval, _ = IntervalSchedule.objects.get_or_create(
        every=source.pull_every_seconds, period=IntervalSchedule.SECONDS
    )
    PeriodicTask.objects.update_or_create(
        name=name,
        defaults={
            "task": "compute.pull_source",
            "interval": interval,
            "args": json.dumps([source.pk]),
            "enabled": True,
        },
    )


RULE_ATTRS = ("position", "kind", "field", "params", "description")


def normalization_rule_errors(kind: str, field: str, params: Any) -> dict[str, str]:
    """Why one step cannot be compiled, by the attribute at fault (`kind`, `field` or `params`); empty when it can.
    The portal's form and the API say the same."""
    if not isinstance(params, dict):
        return {"params": 'A JSON object, e.g. {"to": "date"}.'}
    try:
        compile_steps([Step(kind, field, params)])
    except RuleError as exc:  # "step 1 (cast sale_date): unknown type…": the rule is that one step
        message = re.sub(r"^step \d+ \([^)]*\):\s*", "", str(exc))
        return {exc.param if exc.param in ("kind", "field") else "params": message}
    return {}


@transaction.atomic
def normalization_rule_create(
    *, actor: Any, version: ContractVersion, kind: str, field: str, **attrs: Any
) -> NormalizationRule:
    """A step of a draft version's normalization; without a `position`, after its last step."""
    version = _editable_version(version)
    _refuse_unknown(attrs, RULE_ATTRS)
    if attrs.get("position") is None:
        last = version.normalization_rules.order_by("-position").values_list("position", flat=True).first()
        attrs["position"] = 0 if last is None else last + 1
    rule = NormalizationRule(contract_version=version, kind=kind, field=field, **attrs)
    _check_rule(rule)
    with audit_actor(actor):
        rule.save()
    return rule


@transaction.atomic
def normalization_rule_update(*, actor: Any, rule: NormalizationRule, **changes: Any) -> NormalizationRule:
    """Change a step of a draft version (its version never changes)."""
    _editable_version(rule.contract_version)
    _refuse_unknown(changes, RULE_ATTRS)
    for name, value in changes.items():
        setattr(rule, name, value)
    _check_rule(rule)
    with audit_actor(actor):
        rule.save()
    return rule


@transaction.atomic
def normalization_rule_delete(*, actor: Any, rule: NormalizationRule) -> None:
    _editable_version(rule.contract_version)
    with audit_actor(actor):
        rule.delete()


def _editable_version(version: ContractVersion) -> ContractVersion:
    """The version, locked; refused (409) past draft: a proposed or active version's steps are what was approved."""
    version = ContractVersion.objects.select_for_update().get(pk=version.pk)
    if not version.is_editable:
        raise ConflictError(
            f"Version {version.version} is {version.status}: its normalization rules are frozen. Create a new draft "
            "version of the contract to change them.",
            slug="version-frozen",
            current_status=version.status,
        )
    return version


def _refuse_unknown(attrs: dict[str, Any], allowed: tuple[str, ...]) -> None:
    unknown = sorted(set(attrs) - set(allowed))
    if unknown:
        raise ValidationError({name: "Unknown attribute." for name in unknown})


def _check_rule(rule: NormalizationRule) -> None:
    if rule.params is None:
        rule.params = {}
    errors: dict[str, Any] = normalization_rule_errors(rule.kind, rule.field, rule.params)
    try:
        rule.full_clean(exclude=list(errors))
    except ValidationError as exc:
        errors = {**exc.message_dict, **errors}
    if errors:
        raise ValidationError(errors)


def batch_receive(
    *,
    actor: Any,
    source: Source,
    stream: BinaryIO,
    content_type: str | None,
    filename: str | None = None,
    idempotency_key: str = "",
) -> tuple[IngestionBatch, bool]:
    """Spool a delivery and create its batch. Returns (batch, created).

    The same Idempotency-Key with the same body returns the first batch (created False); with
    another body it is refused (409). Nothing is processed here: see `batch_dispatch`.
    """
    fmt = sniff_format(content_type, filename)
    if fmt is None:
        raise UnsupportedFormat(
            f"Send JSON (application/json), NDJSON (application/x-ndjson) or CSV (text/csv), not {content_type!r}."
        )
    if not source.active:
        raise ConflictError(f"Source '{source.key}' is inactive.", slug="source-inactive")
    version = ContractVersion.objects.active().filter(contract_id=source.contract_id).first()
    if version is None:
        raise ConflictError(
            f"Contract '{source.contract.key}' has no active version to validate against.", slug="no-active-contract"
        )
    with tempfile.TemporaryFile() as spooled:
        checksum, size = spool(stream, spooled, limit=settings.AURUM_MAX_INGEST_BYTES)
        if idempotency_key:
            existing = _replay(source, idempotency_key, checksum)
            if existing is not None:
                return existing, False
        if size <= settings.AURUM_INLINE_BATCH_BYTES:
            # A small body is parsed now, so a malformed one is answered (400, with its line)
            # before any batch exists; large ones are checked by the worker before any write.
            spooled.seek(0)
            for _ in iter_records(spooled, fmt):
                pass
        spooled.seek(0)
        path = default_storage.save(f"ingest/{source.tenant.slug}/{uuid.uuid4().hex}.{fmt}", File(spooled))
    try:
        with transaction.atomic():
            batch = IngestionBatch.objects.create(
                tenant=source.tenant, source=source, contract_version=version, format=fmt, checksum=checksum,
                size_bytes=size, payload_path=path, idempotency_key=idempotency_key,
                submitted_by=actor if getattr(actor, "is_authenticated", False) else None,
            )  # fmt: skip
            publish_event("batch.received", {"batch": batch.pk, "source": source.key, "bytes": size},
                          tenant=source.tenant, actor=actor)  # fmt: skip
    except IntegrityError:
        default_storage.delete(path)
        existing = _replay(source, idempotency_key, checksum)  # a concurrent twin won the race
        if existing is None:
            raise
        return existing, False
    return batch, True


def _replay(source: Source, key: str, checksum: str) -> IngestionBatch | None:
    existing = IngestionBatch.objects.filter(source=source, idempotency_key=key).first()
    if existing is None:
        return None
    if existing.checksum != checksum:
        raise ConflictError(
            "This Idempotency-Key was used for a different payload; use a new key for new data.",
            slug="idempotency-key-reused",
            batch=existing.pk,
        )
    return existing


def batch_dispatch(batch: IngestionBatch) -> IngestionBatch:
    """Small batches are processed now, in the request; large ones are queued for a worker."""
    from apps.compute.pipeline import batch_process
    from apps.compute.tasks import process_batch

    if batch.status != BatchStatusChoices.RECEIVED:
        return batch
    if batch.size_bytes <= settings.AURUM_INLINE_BATCH_BYTES:
        return batch_process(batch.pk)
    transaction.on_commit(lambda: process_batch.delay(batch.pk))
    return batch


def pull_body_checksum(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()
