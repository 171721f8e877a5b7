"""Published outputs: immutable, hashed snapshots of the KPI values that were published, and their reads.

Compute decides *whether* something may be published (policies, four eyes, restatements:
apps/compute/publication); storage keeps what was published and owns the one write to it,
`published_output_create`. An output is never changed or deleted: the model and its queryset
refuse, and on PostgreSQL a trigger refuses UPDATE and DELETE whoever sends them. A restatement
is a new output of the same KPI that `supersedes` the old one; both stay readable.

Publication versions count per tenant and KPI key: 1, 2, 3 … whatever their kind (a publication,
a restatement, a period-close snapshot). The publication *in force* for a period at a moment is
the highest-numbered output of the KPI published by then that holds the period
(`published_output_in_force`); "as published on D" is that moment at the end of day D in the
tenant's time zone.

content_hash
    SHA-256 (lowercase hex) of the UTF-8 bytes of
    ``json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)`` where
    ``document`` is::

        {"kpi": <KPI key>, "kpi_version": <KPI version, e.g. "1.0.0">,
         "as_of": <as_of, UTC ISO 8601 with microseconds, e.g. "2026-03-01T00:00:00.000000+00:00">,
         "periods": [<period labels, in period order>], "values": [<value rows>]}

    A value row is::

        {"period": <label>, "period_id": <id>, "dimensions": {<name>: <value>},
         "dimensions_key": <the KPI value's dimensions key>, "actual": <number text or null>,
         "target": …, "variance": …, "attainment": …, "status": "green|amber|red|none",
         "streak": <int>, "gdp_count": <int>}

    Rows are sorted by period order, then by `dimensions_key`. A number text is the decimal
    without exponent and without trailing zeros (``format(Decimal(x).normalize(), "f")``:
    ``"1250"``, ``"0.5"``, ``"-3.25"``). The output stores exactly these rows in `values`, so the
    hash is recomputed from what is stored (`content_hash_of`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import zoneinfo
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import models, transaction
from django.db.models import Max

from apps.kernel.models import TenantQuerySet


class ImmutableOutputError(Exception):
    """A published output is never changed or deleted: publish a restatement instead."""


class PublicationKindChoices(models.TextChoices):
    PUBLICATION = "publication", "Publication"
    RESTATEMENT = "restatement", "Restatement"
    PERIOD_CLOSE = "period_close", "Period-close snapshot"


class PublishedOutputQuerySet(TenantQuerySet):
    """Reads, and refusals raised before any SQL, so the caller's transaction stays usable."""

    def update(self, **kwargs: object) -> int:
        raise ImmutableOutputError("Published outputs are never changed.")

    def bulk_update(self, objs: object, fields: object, batch_size: int | None = None) -> int:
        raise ImmutableOutputError("Published outputs are never changed.")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise ImmutableOutputError("Published outputs are never deleted.")

    def holding(self, period_id: int) -> list[PublishedOutput]:
        """The outputs (of this queryset, in its order) whose periods include `period_id`.

        Period ids are a JSON list; filtered in Python so that SQLite and PostgreSQL agree (a KPI
        has few publications)."""
        return [output for output in self if period_id in (output.period_ids or [])]


class PublishedOutput(models.Model):
    """One immutable publication of a KPI's values for a set of periods.

    `kpi_version` is the KPI version whose values were published (`kpi_version_label` its number,
    kept so the row reads alone); `contract_versions` the contract versions those values were
    computed under ([{"contract", "version"}]); `values` the value rows and `content_hash` their
    SHA-256 (layout in the module docstring). `version` numbers the KPI's outputs 1, 2, 3 …;
    `supersedes` is the output a restatement replaces (with its `reason`); `closed_period` the
    period whose close took a period-close snapshot. `policy_reasons` keeps the policy decision it
    passed ([{kind, ok, message, policy}]).
    """

    id = models.BigAutoField(primary_key=True)
    tenant = models.ForeignKey("host.Tenant", on_delete=models.PROTECT, related_name="+", db_index=False)
    kpi_key = models.SlugField(max_length=100, db_index=False)
    kpi_version = models.ForeignKey("compute.KpiVersion", on_delete=models.PROTECT, related_name="+")
    kpi_version_label = models.CharField(max_length=64)
    version = models.PositiveIntegerField(help_text="Publication version of this KPI: 1, 2, 3 …")
    kind = models.CharField(max_length=16, choices=PublicationKindChoices.choices)
    contract_versions = models.JSONField(default=list, blank=True)
    period_ids = models.JSONField(default=list)
    period_labels = models.JSONField(default=list)
    values = models.JSONField(default=list)
    as_of = models.DateTimeField(help_text="Recorded time of the belief the values were computed from.")
    content_hash = models.CharField(max_length=64)
    published_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    published_at = models.DateTimeField()
    supersedes = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="superseded_by"
    )
    closed_period = models.ForeignKey(
        "storage.CalendarPeriod", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    reason = models.TextField(blank=True)
    policy_reasons = models.JSONField(default=list, blank=True)

    objects = PublishedOutputQuerySet.as_manager()

    class Meta:
        ordering = ["kpi_key", "-version"]
        verbose_name = "published output"
        constraints = [
            models.UniqueConstraint(fields=["tenant", "kpi_key", "version"], name="storage_published_unique_version"),
            models.UniqueConstraint(
                fields=["tenant", "kpi_key", "closed_period"],
                condition=models.Q(closed_period__isnull=False),
                name="storage_published_one_close_snapshot",
            ),
        ]
        indexes = [models.Index(fields=["tenant", "kpi_key", "published_at"], name="storage_published_by_time")]

    def __str__(self) -> str:
        return f"{self.kpi_key} publication {self.version} ({self.get_kind_display().lower()})"

    def save(self, *args: object, **kwargs: object) -> None:
        if not self._state.adding:
            raise ImmutableOutputError("Published outputs are never changed.")
        super().save(*args, **kwargs)

    def delete(self, *args: object, **kwargs: object) -> tuple[int, dict[str, int]]:
        raise ImmutableOutputError("Published outputs are never deleted.")

    def rows_by_key(self) -> dict[tuple[int, str], dict[str, Any]]:
        """(period id, dimensions key) → value row."""
        return {(row["period_id"], row["dimensions_key"]): row for row in self.values or []}


# --- hashing -------------------------------------------------------------------------------------------
def number_text(value: Any) -> str | None:
    """A decimal as the hash layout writes it: no exponent, no trailing zeros; None stays None."""
    if value is None:
        return None
    text = format(Decimal(str(value)).normalize(), "f")
    return "0" if text in ("-0", "0.0") else text


def as_of_text(moment: dt.datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("as_of must be timezone-aware")
    return moment.astimezone(dt.UTC).isoformat(timespec="microseconds")


def canonical_document(
    *, kpi_key: str, kpi_version: str, as_of: dt.datetime, periods: Sequence[str], values: Sequence[dict[str, Any]]
) -> str:
    document = {"kpi": kpi_key, "kpi_version": kpi_version, "as_of": as_of_text(as_of), "periods": list(periods),
                "values": list(values)}  # fmt: skip
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def content_hash(
    *, kpi_key: str, kpi_version: str, as_of: dt.datetime, periods: Sequence[str], values: Sequence[dict[str, Any]]
) -> str:
    text = canonical_document(kpi_key=kpi_key, kpi_version=kpi_version, as_of=as_of, periods=periods, values=values)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def content_hash_of(output: PublishedOutput) -> str:
    """The hash recomputed from what the output stores (equal to `content_hash` unless a row was altered)."""
    return content_hash(kpi_key=output.kpi_key, kpi_version=output.kpi_version_label, as_of=output.as_of,
                        periods=output.period_labels, values=output.values)  # fmt: skip


def value_rows(*, kpi_version_id: int, period_ids: Sequence[int]) -> tuple[list[dict[str, Any]], list[int], list[str]]:
    """The KPI version's current values of the periods as value rows (sorted as the layout says), with the
    periods' ids and labels in period order."""
    from apps.storage.models import CalendarPeriod, KpiValue

    periods = list(CalendarPeriod.objects.filter(pk__in=list(period_ids)).order_by("start", "index"))
    order = {period.pk: position for position, period in enumerate(periods)}
    labels = {period.pk: period.label for period in periods}
    rows = []
    values = KpiValue.objects.filter(kpi_version_id=kpi_version_id, period_id__in=list(order))
    for value in sorted(values, key=lambda v: (order[v.period_id], v.dimensions_key)):
        rows.append({
            "period": labels[value.period_id], "period_id": value.period_id, "dimensions": value.dimensions or {},
            "dimensions_key": value.dimensions_key, "actual": number_text(value.actual),
            "target": number_text(value.target), "variance": number_text(value.variance),
            "attainment": number_text(value.attainment), "status": value.status, "streak": value.streak,
            "gdp_count": value.gdp_count,
        })  # fmt: skip
    return rows, [p.pk for p in periods], [p.label for p in periods]


# --- the write -----------------------------------------------------------------------------------------
@transaction.atomic
def published_output_create(
    *,
    tenant: Any,
    kpi_key: str,
    kpi_version: Any,
    kind: str,
    period_ids: Sequence[int],
    values: list[dict[str, Any]],
    period_labels: Sequence[str],
    as_of: dt.datetime,
    contract_versions: list[dict[str, Any]],
    published_by: Any = None,
    approved_by: Any = None,
    published_at: dt.datetime,
    supersedes: PublishedOutput | None = None,
    closed_period: Any = None,
    reason: str = "",
    policy_reasons: list[dict[str, Any]] | None = None,
) -> PublishedOutput:
    """Store one output with the next publication version of the KPI and its content hash.

    The caller serializes publications of one KPI (compute locks the KPI definition); the unique
    (tenant, KPI, version) constraint refuses a race it did not.
    """
    if kind not in PublicationKindChoices.values:
        raise ValueError(f"unknown publication kind {kind!r}")
    if (kind == PublicationKindChoices.RESTATEMENT) != (supersedes is not None):
        raise ValueError("a restatement, and only a restatement, supersedes an output")
    last = PublishedOutput.objects.filter(tenant=tenant, kpi_key=kpi_key).aggregate(n=Max("version"))["n"] or 0
    output = PublishedOutput(
        tenant=tenant, kpi_key=kpi_key, kpi_version=kpi_version, kpi_version_label=kpi_version.version,
        version=last + 1, kind=kind, contract_versions=contract_versions, period_ids=list(period_ids),
        period_labels=list(period_labels), values=values, as_of=as_of,
        content_hash=content_hash(kpi_key=kpi_key, kpi_version=kpi_version.version, as_of=as_of,
                                  periods=period_labels, values=values),
        published_by=published_by, approved_by=approved_by, published_at=published_at, supersedes=supersedes,
        closed_period=closed_period, reason=reason, policy_reasons=policy_reasons or [],
    )  # fmt: skip
    output.save()
    return output


# --- reads ---------------------------------------------------------------------------------------------
def published_output_list(*, tenant: Any, kpi_key: str | None = None) -> PublishedOutputQuerySet:
    """The tenant's outputs, by KPI and newest version first."""
    queryset = PublishedOutput.objects.for_tenant(tenant)
    return queryset.filter(kpi_key=kpi_key) if kpi_key else queryset


def published_output_latest(*, tenant: Any, kpi_key: str, period_id: int | None = None) -> PublishedOutput | None:
    """The KPI's newest output (holding `period_id`, when given)."""
    return published_output_in_force(tenant=tenant, kpi_key=kpi_key, at=None, period_id=period_id)


def published_output_in_force(
    *, tenant: Any, kpi_key: str, at: dt.datetime | None, period_id: int | None = None
) -> PublishedOutput | None:
    """The output in force at `at` (None: now): the highest version published by then (holding `period_id`)."""
    queryset = published_output_list(tenant=tenant, kpi_key=kpi_key).order_by("-version")
    if at is not None:
        queryset = queryset.filter(published_at__lte=at)
    if period_id is None:
        return queryset.first()
    held = queryset.holding(period_id)
    return held[0] if held else None


def published_output_as_published_on(
    *, tenant: Any, kpi_key: str, day: dt.date, period_id: int | None = None
) -> PublishedOutput | None:
    """The output "as published on D": in force at the end of day D in the tenant's time zone."""
    return published_output_in_force(tenant=tenant, kpi_key=kpi_key, at=end_of_day(tenant, day), period_id=period_id)


def end_of_day(tenant: Any, day: dt.date) -> dt.datetime:
    zone = zoneinfo.ZoneInfo(getattr(tenant, "timezone", None) or "UTC")
    return dt.datetime.combine(day, dt.time.max, zone)


def in_force_rows(*, tenant: Any, kpi_key: str, period_ids: Sequence[int]) -> dict[int, PublishedOutput]:
    """Period id → the output now in force for it, for the periods that have one."""
    outputs = list(published_output_list(tenant=tenant, kpi_key=kpi_key).order_by("-version"))
    result: dict[int, PublishedOutput] = {}
    for period_id in period_ids:
        for output in outputs:
            if period_id in (output.period_ids or []):
                result[period_id] = output
                break
    return result
