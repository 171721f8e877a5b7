"""Data storage: the raw layer as received, rejections, and Golden Data Points with history."""

from __future__ import annotations

import functools
import hashlib
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import models

from apps.kernel.models import TenantOwnedModel, TenantQuerySet
from apps.storage.choices import BatchStatusChoices, PayloadFormatChoices, RejectionSeverityChoices

# ROW_FK_NOTE: raw records and Golden Data Points are the two tables written a million rows at a time.
# Their foreign keys are Django's only (db_constraint=False): a database foreign key is checked row by
# row (deferred: queued and fired at commit), which for a GDP's six references cost ~12x the insert
# itself and was most of an ingest's time. Integrity comes from the one writer instead: the pipeline
# writes these columns from the batch it holds (one tenant, source, contract version) and from raw
# record ids of its own transaction; their parents are PROTECT, and Django's delete collector still
# applies PROTECT and SET_NULL (retention) because the relations remain model foreign keys.


class IngestionBatch(TenantOwnedModel):
    """One delivery of records from a source, processed under one contract version.

    The payload is spooled to file storage as received (its SHA-256 is `checksum`), so a
    worker can (re)process it; `processed_through` is the position of the last record
    whose effects are committed, which makes a re-run resume instead of repeat.
    """

    source = models.ForeignKey("compute.Source", on_delete=models.PROTECT, related_name="batches")
    contract_version = models.ForeignKey(
        "host.ContractVersion", on_delete=models.PROTECT, related_name="+", null=True, blank=True
    )
    format = models.CharField(max_length=8, choices=PayloadFormatChoices.choices)
    status = models.CharField(
        max_length=32, choices=BatchStatusChoices.choices, default=BatchStatusChoices.RECEIVED, db_index=True
    )
    idempotency_key = models.CharField(max_length=255, blank=True)
    checksum = models.CharField(max_length=64)
    size_bytes = models.BigIntegerField(default=0)
    payload_path = models.CharField(max_length=500, blank=True, help_text="Spooled payload in file storage.")
    received = models.PositiveIntegerField(default=0)
    accepted = models.PositiveIntegerField(default=0)
    rejected = models.PositiveIntegerField(default=0)
    superseded = models.PositiveIntegerField(default=0, help_text="GDP versions this batch superseded.")
    duplicates = models.PositiveIntegerField(default=0, help_text="Records identical to one already received.")
    gdps_created = models.PositiveIntegerField(default=0)
    processed_through = models.IntegerField(default=-1)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)
    submitted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "ingestion batches"
        constraints = [
            models.UniqueConstraint(
                fields=["source", "idempotency_key"],
                condition=~models.Q(idempotency_key=""),
                name="storage_batch_unique_idempotency_key",
            )
        ]

    def __str__(self) -> str:
        return f"batch {self.pk} of {self.source_id}"

    @property
    def duration_seconds(self) -> float | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()


class AppendOnlyError(Exception):
    """The raw layer is append-only: rows are never changed, and deleted only by retention."""


_retention_depth = 0


class retention_deletes:  # used as a context manager, named like one
    """The one door through which raw rows may be deleted: the retention job's own block.

    On PostgreSQL it also sets the `aurum.retention` setting for the transaction, which the
    append-only trigger checks; elsewhere the queryset guard below is the enforcement.
    """

    def __enter__(self) -> None:
        global _retention_depth
        _retention_depth += 1
        from django.db import connection

        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT set_config('aurum.retention', 'on', true)")

    def __exit__(self, *exc: object) -> None:
        global _retention_depth
        _retention_depth -= 1


class RawRecordQuerySet(TenantQuerySet):
    def update(self, **kwargs: object) -> int:
        raise AppendOnlyError("Raw records are never changed.")

    def delete(self) -> tuple[int, dict[str, int]]:
        if _retention_depth <= 0:
            raise AppendOnlyError("Raw records are deleted only by the retention job.")
        return super().delete()


class JsonTextField(models.JSONField):
    """A JSON value kept as its text: PostgreSQL's `json` (checked, stored as written) instead of `jsonb` (parsed into
    a tree, keys reordered). For a value that is only ever stored and shown whole, never queried by its parts: the
    raw layer's payloads, where `jsonb` made about a quarter of the server's work on a raw record (a COPY of
    1,000,000 records: ~8.3 s of CPU instead of ~11.2). Key lookups (`payload__name`) are not for it: they compare
    `jsonb` values. Elsewhere the same as JSONField (SQLite keeps JSON as text anyway)."""

    def db_type(self, connection: Any) -> str:
        return "json" if connection.vendor == "postgresql" else super().db_type(connection)

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> Any:
        if value is not None and not isinstance(value, str):  # psycopg reads `json` itself (Django: `jsonb` as text)
            return value
        return super().from_db_value(value, expression, connection)


class RawRecord(models.Model):
    """A record exactly as received, with its position in the batch. Append-only.

    The application never updates or deletes raw rows, except the retention job under a
    retention policy; on PostgreSQL a trigger refuses anything else.
    """

    id = models.BigAutoField(primary_key=True)
    # No database foreign keys (see ROW_FK_NOTE): written only by the pipeline's COPY, whose batch and
    # tenant are the batch being processed.
    tenant = models.ForeignKey("host.Tenant", on_delete=models.PROTECT, related_name="+", db_constraint=False)
    # Looked up through the (batch, position) unique index: no index of its own.
    batch = models.ForeignKey(
        IngestionBatch, on_delete=models.PROTECT, related_name="raw_records", db_index=False, db_constraint=False
    )
    position = models.PositiveIntegerField()
    line = models.PositiveIntegerField(help_text="Line of the record in the payload (1-based).")
    # The record's canonical JSON text (sorted keys), as `json` on PostgreSQL: see JsonTextField.
    payload = JsonTextField()
    hash = models.CharField(max_length=64)  # COLLATE "C" on PostgreSQL (migration 0012): keep it in an AlterField
    received_at = models.DateTimeField()

    objects = RawRecordQuerySet.as_manager()

    class Meta:
        ordering = ["batch", "position"]
        constraints = [models.UniqueConstraint(fields=["batch", "position"], name="storage_raw_unique_position")]
        # Equality only (earlier duplicates): no varchar_pattern_ops twin, as db_index=True would add, and a hash
        # index on PostgreSQL (migration 0014; keep it so in any change of this index).
        indexes = [models.Index(fields=["hash"], name="storage_raw_by_hash")]

    def __str__(self) -> str:
        return f"record {self.position} of batch {self.batch_id}"

    def save(self, *args: object, **kwargs: object) -> None:
        if self.pk is not None and not self._state.adding:
            raise AppendOnlyError("Raw records are never changed.")
        super().save(*args, **kwargs)

    def delete(self, *args: object, **kwargs: object) -> tuple[int, dict[str, int]]:
        if _retention_depth <= 0:
            raise AppendOnlyError("Raw records are deleted only by the retention job.")
        return super().delete(*args, **kwargs)


class Rejection(models.Model):
    """Why a record (or a whole batch) failed a rule: never a silent drop."""

    id = models.BigAutoField(primary_key=True)
    tenant = models.ForeignKey("host.Tenant", on_delete=models.PROTECT, related_name="+")
    batch = models.ForeignKey(IngestionBatch, on_delete=models.CASCADE, related_name="rejections")
    raw_record = models.ForeignKey(
        RawRecord, null=True, blank=True, on_delete=models.SET_NULL, related_name="rejections"
    )
    position = models.IntegerField(null=True, blank=True, help_text="Record position; empty for batch-level rules.")
    line = models.PositiveIntegerField(null=True, blank=True)
    field = models.CharField(max_length=200, blank=True)
    rule = models.CharField(max_length=64)
    severity = models.CharField(
        max_length=8, choices=RejectionSeverityChoices.choices, default=RejectionSeverityChoices.ERROR
    )
    message = models.TextField()
    value = models.TextField(blank=True)

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["batch", "position", "id"]

    def __str__(self) -> str:
        return f"{self.rule} on {self.field or 'record'}: {self.message}"


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)


def key_hash(
    tenant_id: int, contract_id: int, measure: str, dimensions_key: str, observed_at: datetime, entity_key: str
) -> str:
    """The 128-bit identity of a GDP key, as 32 hex digits: what the one-current-version index holds instead
    of the key's six columns (a sixth of their width, so the merge's inserts and probes are cheaper). The
    entity key, the one free text, comes last, and no other part can hold the separator (chr(31))."""
    return key_hash_of(key_prefix(tenant_id, contract_id, measure), key_rest(dimensions_key, observed_at, entity_key))


def dimensions_key(dimensions: dict[str, Any]) -> str:
    """The dimension set's part of a GDP key: the SHA-256 of its canonical JSON (sorted keys, no whitespace,
    unescaped Unicode; compute.records.canonical_json writes the same text)."""
    text = json.dumps(dimensions, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def key_prefix(tenant_id: int, contract_id: int, measure: str) -> str:
    """The first part of a key hash's text, the same for every GDP of one measure of a batch."""
    return f"{tenant_id}\x1f{contract_id}\x1f{measure}\x1f"


def key_rest(dimensions_key: str, observed_at: datetime, entity_key: str) -> str:
    """The rest of a key hash's text, the same for every measure of one record."""
    return key_rest_head(dimensions_key, observed_at) + entity_key


def key_rest_head(dimensions_key: str, observed_at: datetime) -> str:
    """key_rest without the entity key: the same for every record of one dimension set and time."""
    return f"{dimensions_key}\x1f{(observed_at - EPOCH) // MICROSECOND}\x1f"


def key_hash_of(prefix: str, rest: str) -> str:
    return KEY_MD5((prefix + rest).encode()).hexdigest()


try:  # CPython's own MD5: for a key's ~100 bytes twice as fast as OpenSSL's through hashlib (no EVP set-up per call)
    from _md5 import md5 as KEY_MD5
except ImportError:  # an interpreter built without it
    KEY_MD5 = functools.partial(hashlib.md5, usedforsecurity=False)


# What a GDP row holds (the columns' sizes): the pipeline rejects a record whose value would not fit, rather than
# have the batch's COPY fail on it.
VALUE_DIGITS, VALUE_DECIMALS = 30, 10
# Written out: arithmetic would round it to the default context's 28 digits. Extra decimals are rounded away.
VALUE_MAX = Decimal(f"{'9' * (VALUE_DIGITS - VALUE_DECIMALS)}.{'9' * VALUE_DECIMALS}")
ENTITY_KEY_LENGTH = 500

# What identifies a GDP key: the key hash covers the whole key (the dimension set included), the columns before it
# lead the one-current-version index to it.
KEY_FIELDS = ("tenant_id", "contract_id", "measure", "entity_key", "observed_at", "key_hash")


def key_of(gdp: GoldenDataPoint) -> dict[str, Any]:
    """The GDP's key, as a filter (KEY_FIELDS)."""
    return {name: getattr(gdp, name) for name in KEY_FIELDS}


class TransactionStart(models.Func):
    """The current transaction's start: PostgreSQL's transaction_timestamp(), the same for every statement of the
    transaction (Django's Now is each statement's own). CURRENT_TIMESTAMP elsewhere."""

    template = "CURRENT_TIMESTAMP"
    output_field = models.DateTimeField()

    def as_postgresql(self, compiler: Any, connection: Any, **extra: Any) -> tuple[str, list[Any]]:
        return "transaction_timestamp()", []


class GoldenDataPointQuerySet(TenantQuerySet):
    def current(self) -> GoldenDataPointQuerySet:
        return self.filter(recorded_to__isnull=True)

    def of_key(self, gdp: GoldenDataPoint) -> GoldenDataPointQuerySet:
        """Every version of `gdp`'s key, current or not. The condition on recorded_to, always true, lets PostgreSQL
        read the key's versions from the two partial indexes that hold them (a bitmap OR) instead of all the
        versions of the key's period."""
        return self.filter(**key_of(gdp)).filter(
            models.Q(recorded_to__isnull=True) | models.Q(recorded_to__isnull=False)
        )

    def as_of(self, moment: object) -> GoldenDataPointQuerySet:
        """What Aurum believed at `moment`: the versions recorded then and not yet superseded."""
        return self.filter(recorded_from__lte=moment).filter(
            models.Q(recorded_to__isnull=True) | models.Q(recorded_to__gt=moment)
        )


class GoldenDataPoint(models.Model):
    """One trusted value of a measure for an entity, dimension set and observed time.

    Bitemporal: `observed_at` is when the fact holds; `recorded_from`/`recorded_to` when
    Aurum believed this version. The current version has no `recorded_to`; superseded
    versions are kept, so every earlier belief stays one query away.
    """

    id = models.BigAutoField(primary_key=True)
    # No database foreign keys (see ROW_FK_NOTE): the merge writes these columns set-based, from the batch being
    # merged and the raw records of its own transaction. Not even overridden_by's, which only a steward's override
    # sets: PostgreSQL queues its deferred check for every row written, NULL or not, and fires them all at commit
    # (a 1,000,000-record load's 3,000,000 versions: ~2 s more for the COPY, ~3 s at commit).
    # Every index is paid per written row, twice when a version is superseded, so only what a read path
    # uses is indexed. Tenant: a tenant's reads go through its contracts or keys (the key hash includes the
    # tenant).
    tenant = models.ForeignKey(
        "host.Tenant", on_delete=models.PROTECT, related_name="+", db_index=False, db_constraint=False
    )
    # Looked up through the current and past version indexes, which start with it: no index of its own.
    contract = models.ForeignKey(
        "host.DataContract", on_delete=models.PROTECT, related_name="+", db_index=False, db_constraint=False
    )
    # Contract versions and sources are never deleted (retired, deactivated), so no reverse lookup needs these.
    contract_version = models.ForeignKey(
        "host.ContractVersion", on_delete=models.PROTECT, related_name="+", db_index=False, db_constraint=False
    )
    measure = models.CharField(max_length=200)
    entity_key = models.CharField(max_length=ENTITY_KEY_LENGTH)
    # No column for the dimensions' key (dimensions_key): the key hash holds it, and a 64-character text on every
    # version cost the merge's COPY 11 % of its server time (storage migration 0022).
    dimensions = models.JSONField(default=dict)
    observed_at = models.DateTimeField()
    # key_hash(tenant, contract, measure, dimensions_key(dimensions), observed_at, entity_key): set by the merge, or
    # by save().
    key_hash = models.UUIDField(editable=False)
    value = models.DecimalField(max_digits=VALUE_DIGITS, decimal_places=VALUE_DECIMALS, null=True)
    unit = models.CharField(max_length=50, blank=True)
    quality_flags = models.JSONField(default=list, blank=True)
    source = models.ForeignKey(
        "compute.Source", null=True, blank=True, on_delete=models.PROTECT, related_name="+", db_index=False,
        db_constraint=False,
    )  # fmt: skip
    source_priority = models.SmallIntegerField(default=0)
    # Indexed with raw_record by storage_gdp_by_batch_raw: one index for both lineage reads.
    batch = models.ForeignKey(
        IngestionBatch,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="golden_data_points",
        db_index=False,
        db_constraint=False,
    )
    # Always a raw record of `batch`, so it is looked up with its batch (storage_gdp_by_batch_raw). Emptied when
    # the retention job expires the raw record: by services.raw_records_expire itself, with the batch, which
    # the collector's SET NULL (raw_record_id alone) would not use.
    raw_record = models.ForeignKey(
        RawRecord, null=True, blank=True, on_delete=models.DO_NOTHING, related_name="+", db_index=False,
        db_constraint=False,
    )  # fmt: skip
    # The merge leaves it to this default on PostgreSQL (its COPY then parses no timestamp per version, ~6 % of the
    # server's work on a version): the transaction's start, which it takes as its own clock (ingest/merger.py).
    recorded_from = models.DateTimeField(db_default=TransactionStart())
    recorded_to = models.DateTimeField(null=True, blank=True)
    # Empty on most rows: partial indexes (Meta) hold only the rows that have one.
    superseded_by_batch = models.ForeignKey(
        IngestionBatch,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="superseded_data_points",
        db_index=False,
        db_constraint=False,
    )
    is_override = models.BooleanField(default=False)
    override_reason = models.TextField(blank=True)
    overridden_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False,
        db_constraint=False,
    )  # fmt: skip

    objects = GoldenDataPointQuerySet.as_manager()

    class Meta:
        ordering = ["contract", "measure", "entity_key", "observed_at", "-recorded_from"]
        verbose_name = "golden data point"
        constraints = [
            # By contract and time first, then the key hash: a batch's keys are of one contract and mostly of a few
            # periods, so its inserts and probes stay in a few places of the index instead of all over it (the hash
            # alone is random). Unique on the three is unique on the key hash, which includes the contract and time.
            # With storage_gdp_past_versions it also serves a contract's reads over time (KPIs): a query that admits
            # both current and past versions reads the two (a bitmap OR). Every column is of fixed width: a varchar
            # in a B-tree's key (the measure) made each insert cost as much as a second index (migration 0020).
            models.UniqueConstraint(
                fields=["contract", "observed_at", "key_hash"],
                condition=models.Q(recorded_to__isnull=True),
                name="storage_gdp_one_current_version",
            )
        ]
        indexes = [
            # A key's earlier versions (history, the survivor when an override ends), and with
            # storage_gdp_one_current_version a contract's versions over time. A first load writes none: nothing is
            # superseded yet.
            models.Index(
                fields=["contract", "observed_at", "key_hash"],
                condition=models.Q(recorded_to__isnull=False),
                name="storage_gdp_past_versions",
            ),
            # A batch's versions, a raw record's (with its batch). One index instead of one each: a fifth of
            # the cost of a version's insert.
            models.Index(fields=["batch", "raw_record"], name="storage_gdp_by_batch_raw"),
            models.Index(
                fields=["superseded_by_batch"],
                condition=models.Q(superseded_by_batch__isnull=False),
                name="storage_gdp_by_superseding",
            ),
            models.Index(
                fields=["overridden_by"],
                condition=models.Q(overridden_by__isnull=False),
                name="storage_gdp_by_overrider",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.measure} {self.entity_key} @ {self.observed_at:%Y-%m-%d}: {self.value}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.key_hash is None:
            self.key_hash = key_hash(self.tenant_id, self.contract_id, self.measure,
                                     dimensions_key(self.dimensions), self.observed_at, self.entity_key)  # fmt: skip
        super().save(*args, **kwargs)


class UniqueValue(models.Model):
    """A value of a contract's unique field already accepted, so later batches can be checked."""

    id = models.BigAutoField(primary_key=True)
    tenant = models.ForeignKey("host.Tenant", on_delete=models.PROTECT, related_name="+")
    contract = models.ForeignKey("host.DataContract", on_delete=models.CASCADE, related_name="+")
    field = models.CharField(max_length=200)
    value_hash = models.CharField(max_length=64)  # COLLATE "C" on PostgreSQL (migration 0012)
    raw_record = models.ForeignKey(RawRecord, null=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["contract", "field", "value_hash"], name="storage_unique_value_once")
        ]

    def __str__(self) -> str:
        return f"{self.field} #{self.value_hash[:12]}"


from apps.storage.calendars.models import Calendar, CalendarPeriod, PeriodState  # noqa: E402,F401
from apps.storage.kpi_values import KpiValue  # noqa: E402,F401
from apps.storage.published import PublishedOutput  # noqa: E402,F401
