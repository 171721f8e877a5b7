"""Shared fixtures of the KPI tests: a shop contract, a monthly calendar, GDP loading, governed KPIs.

Imported by the other tests/compute/test_kpi_*.py modules (`from tests.compute.test_kpi_fixtures import *`).
GDPs are written as the pipeline leaves them: one finished batch per load, one row per measure,
earlier current versions of the same key superseded by the new batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone

from apps.compute import services as compute_services
from apps.compute.kpis import services as kpis
from apps.compute.models import Source
from apps.host.models import ContractVersion
from apps.kernel.roles import RoleChoices
from apps.storage.calendars import services as calendars
from apps.storage.models import CalendarPeriod, GoldenDataPoint, IngestionBatch, KpiValue, dimensions_key, key_hash
from tests.compute.conftest import activate_contract

SHOP_FIELDS = [
    {"name": "sale_date", "logical_type": "date", "required": True, "role": "time"},
    {"name": "store_id", "logical_type": "string", "required": True, "role": "entity_key", "primary_key": True,
     "primary_key_position": 1},
    {"name": "region", "logical_type": "string", "required": True, "role": "dimension"},
    {"name": "channel", "logical_type": "string", "required": False, "role": "dimension"},
    {"name": "revenue", "logical_type": "number", "required": False, "role": "measure", "unit": "EUR"},
    {"name": "units", "logical_type": "integer", "required": False, "role": "measure", "unit": "items"},
    {"name": "visits", "logical_type": "integer", "required": False, "role": "measure"},
]  # fmt: skip
MEASURES = ("revenue", "units", "visits")
CAST_STEPS = [
    {"kind": "cast", "field": "sale_date", "params": {"to": "date"}},
    {"kind": "cast", "field": "revenue", "params": {"to": "number"}},
    {"kind": "cast", "field": "units", "params": {"to": "integer"}},
    {"kind": "cast", "field": "visits", "params": {"to": "integer"}},
]
DIMENSIONS = ("region", "channel")


@dataclass
class World:
    tenant: Any
    steward: Any
    admin: Any
    contract: Any
    version: Any
    source: Any
    calendar: Any

    def period(self, year: int, month: int) -> CalendarPeriod:
        return CalendarPeriod.objects.get(calendar=self.calendar, level="period", fiscal_year=year, number=month)

    def quarter(self, year: int, number: int) -> CalendarPeriod:
        return CalendarPeriod.objects.get(calendar=self.calendar, level="quarter", fiscal_year=year, number=number)


@pytest.fixture
def world(tenant_a: Any, member: Any) -> World:
    people = {"steward": member(tenant_a, RoleChoices.STEWARD), "admin": member(tenant_a, RoleChoices.ADMIN)}
    contract = activate_contract(tenant_a, people, key="shop", fields=SHOP_FIELDS, steps=CAST_STEPS)
    source = compute_services.source_create(actor=people["steward"], tenant=tenant_a, contract=contract, key="tills",
                                   name="Tills")  # fmt: skip
    calendar = calendars.calendar_create(actor=people["admin"], tenant=tenant_a, key="months", name="Months",
                                         kind="gregorian")  # fmt: skip
    calendars.calendar_generate(actor=people["admin"], calendar=calendar, from_year=2025, to_year=2026)
    version = ContractVersion.objects.active().get(contract=contract)
    return World(tenant_a, people["steward"], people["admin"], contract, version, source, calendar)


def load(world: World, rows: list[dict[str, Any]], *, at: datetime | None = None) -> IngestionBatch:
    """Write rows as the pipeline would: a finished batch recorded at `at`, a GDP per measure present,
    the current version of each key superseded. A row: {day, store, region, channel?, revenue?, …}."""
    at = at or timezone.now()
    batch = IngestionBatch.objects.create(
        tenant=world.tenant, source=world.source, contract_version=world.version, format="json",
        checksum=f"{id(rows):064x}"[-64:], status="completed", started_at=at, finished_at=at,
    )  # fmt: skip
    for row in rows:
        dims = {name: row[name] for name in DIMENSIONS if name in row}
        key = dimensions_key(dims)
        observed = datetime.combine(row["day"], datetime.min.time(), UTC)
        for measure in MEASURES:
            if measure not in row:
                continue
            match = {"tenant": world.tenant, "contract": world.contract, "measure": measure,
                     "entity_key": row["store"], "observed_at": observed}  # fmt: skip
            same_key = key_hash(world.tenant.pk, world.contract.pk, measure, key, observed, row["store"])
            GoldenDataPoint.objects.filter(recorded_to__isnull=True, key_hash=same_key, **match).update(
                recorded_to=at, superseded_by_batch=batch
            )
            GoldenDataPoint.objects.create(
                **match, contract_version=world.version, dimensions=dims,
                value=None if row[measure] is None else Decimal(str(row[measure])), source=world.source,
                batch=batch, recorded_from=at,
            )  # fmt: skip
    return batch


def make_kpi(world: World, key: str, *, version: str = "1.0.0", activate: bool = True, **attrs: Any) -> Any:
    """A KPI with one version, proposed by the steward and approved (and activated) by the admin."""
    from apps.compute.kpis.models import KpiDefinition

    definition = KpiDefinition.objects.filter(tenant=world.tenant, key=key).first() or kpis.kpi_definition_create(
        actor=world.steward, tenant=world.tenant, key=key, name=key.replace("-", " ").title()
    )
    attrs.setdefault("calendar", world.calendar)
    if attrs.get("kind") != "derived":
        attrs.setdefault("contract", world.contract)
    row = kpis.kpi_version_create(actor=world.steward, definition=definition, version=version, **attrs)
    if activate:
        kpis.kpi_version_propose(actor=world.steward, version=row)
        kpis.kpi_version_approve(actor=world.admin, version=row)
        kpis.kpi_version_activate(actor=world.admin, version=row)
        row.refresh_from_db()
    return row


def compute(world: World, *kpi_versions: Any, as_of: datetime | None = None, full: bool = False) -> list[Any]:
    return kpis.kpi_compute(actor=world.admin, definitions=[v.definition for v in kpi_versions], as_of=as_of,
                            full=full)  # fmt: skip


def values(version: Any, *, digits: int = 6) -> dict[tuple[str, tuple[Any, ...]], Any]:
    """(period label, dimension values) → actual (rounded), for comparisons."""
    result = {}
    for value in KpiValue.objects.filter(kpi_version=version).select_related("period"):
        dims = tuple(value.dimensions.get(name) for name in version.dimensions)
        result[(value.period.label, dims)] = None if value.actual is None else round(value.actual, digits)
    return result


def full_snapshot(version: Any) -> dict[tuple[str, str], tuple[Any, ...]]:
    """Everything a value carries but its row id, run and timestamps."""
    return {
        (v.period.label, v.dimensions_key): (
            None if v.actual is None else round(v.actual, 6), v.numerator, v.denominator, v.gdp_count, v.target,
            v.variance, v.attainment, v.status, v.streak,
        )
        for v in KpiValue.objects.filter(kpi_version=version).select_related("period")
    }  # fmt: skip


def d(year: int, month: int, day: int) -> date:
    return date(year, month, day)


def later(seconds: int = 1) -> datetime:
    return timezone.now() + timedelta(seconds=seconds)


__all__ = ["Source", "World", "compute", "d", "full_snapshot", "later", "load", "make_kpi", "values", "world"]
