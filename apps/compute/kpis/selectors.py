"""KPI reads other code may use: definitions, values with filters, and a value's lineage."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import Q, QuerySet

from apps.compute.kpis.choices import CumulativeModeChoices, KpiKindChoices
from apps.compute.kpis.engine import PART, derived_refs
from apps.compute.kpis.models import KpiDefinition, KpiStatusChoices, KpiVersion
from apps.storage.models import CalendarPeriod, GoldenDataPoint, KpiValue

DIMENSION_NAME = re.compile(r"^(?!.*__)[A-Za-z0-9_][A-Za-z0-9_ -]{0,199}$")


def kpi_definition_list(*, tenant: Any) -> QuerySet[KpiDefinition]:
    return KpiDefinition.objects.for_tenant(tenant)


def kpi_active_version(*, definition: KpiDefinition) -> KpiVersion | None:
    return definition.versions.filter(status=KpiStatusChoices.ACTIVE).first()


def kpi_values_list(
    *,
    tenant: Any,
    kpi: str | None = None,
    version_id: int | None = None,
    period_from: date | None = None,
    period_to: date | None = None,
    dimensions: dict[str, Any] | None = None,
    status: str | None = None,
    active_only: bool = True,
) -> QuerySet[KpiValue]:
    """The tenant's KPI values: of one KPI (key) or version, periods within [period_from, period_to]
    (by dates), dimension values ({"region": "north"}, compared as text), status. By default only the
    active versions' values (deprecated versions keep theirs for comparison and restatement)."""
    values = KpiValue.objects.for_tenant(tenant).select_related("period", "kpi_version")
    if kpi:
        values = values.filter(kpi_key=kpi)
    if version_id is not None:
        values = values.filter(kpi_version_id=version_id)
    elif active_only:
        values = values.filter(kpi_version__status=KpiStatusChoices.ACTIVE)
    if period_from is not None:
        values = values.filter(period__start__gte=period_from)
    if period_to is not None:
        values = values.filter(period__end__lte=period_to)
    for name, wanted in (dimensions or {}).items():
        if not DIMENSION_NAME.match(name):
            raise ValidationError({"dimension": f"'{name}' is not a dimension name."})
        values = values.filter(_any_of(name, _typed_variants(wanted)))
    if status:
        values = values.filter(status=status)
    return values


@dataclass(frozen=True)
class LineageSource:
    """The GDP versions a KPI value (or one of the values it was derived from) read."""

    kpi: str
    version: str
    value_id: int
    days: tuple[date, date]
    gdps: QuerySet[GoldenDataPoint]


def kpi_value_lineage(*, value: KpiValue) -> list[LineageSource]:
    """The GDP versions a value was computed from, found again by query (never stored edge by edge):
    the version's contract and measures, its filters, the value's dimension values, the days its
    period (or cumulative window) spans, believed at the value's `as_of`. Through each GDP: its raw
    record, batch and source (select_related). A derived value lists its references' sources."""
    version = KpiVersion.objects.select_related("definition", "calendar").get(pk=value.kpi_version_id)
    if version.kind == KpiKindChoices.DERIVED:
        sources: list[LineageSource] = []
        for key in derived_refs(version):
            ref = (
                KpiValue.objects.filter(
                    tenant_id=value.tenant_id, kpi_key=key, period_id=value.period_id,
                    dimensions_key=value.dimensions_key, kpi_version__status=KpiStatusChoices.ACTIVE,
                ).first()
            )  # fmt: skip
            if ref is not None:
                sources += kpi_value_lineage(value=ref)
        return sources
    first, last = window_days(version, value.period_id)
    measures = [version.measure] + ([version.denominator_measure] if version.kind == KpiKindChoices.RATIO else [])
    gdps = GoldenDataPoint.objects.filter(
        tenant_id=value.tenant_id, contract_id=version.contract_id, measure__in=measures,
        observed_at__gte=datetime.combine(first, time.min, UTC),
        observed_at__lt=datetime.combine(last + timedelta(days=1), time.min, UTC),
    ).as_of(value.as_of)  # fmt: skip
    for name, wanted in (version.filters or {}).items():
        wanted_values = wanted if isinstance(wanted, list) else [wanted]
        gdps = gdps.filter(_any_of(name, wanted_values))
    for name in version.dimensions or []:
        gdps = gdps.filter(_any_of(name, [value.dimensions.get(name)]))
    gdps = gdps.select_related("raw_record", "batch", "source").order_by("observed_at", "entity_key", "id")
    return [LineageSource(version.definition.key, version.version, value.pk, (first, last), gdps)]


def _typed_variants(wanted: Any) -> list[Any]:
    """A dimension value from a query string, also as the number or boolean it may be stored as."""
    variants = [wanted]
    if isinstance(wanted, str):
        if wanted in ("true", "false"):
            variants.append(wanted == "true")
        else:
            try:
                number = float(wanted)
            except ValueError:
                return variants
            if not math.isfinite(number):
                return variants
            variants.append(int(number) if number.is_integer() else number)
    return variants


def _any_of(name: str, wanted: list[Any]) -> Q:
    condition = Q()
    for item in wanted:
        if item is None:
            condition |= Q(**{f"dimensions__{name}__isnull": True})
        else:
            condition |= Q(**{f"dimensions__{name}": item})
    return condition


def window_days(version: KpiVersion, period_id: int) -> tuple[date, date]:
    """The first and last day a value of `period_id` reads: the period, or its cumulative window."""
    period = CalendarPeriod.objects.get(pk=period_id)
    if version.kind != KpiKindChoices.CUMULATIVE:
        return period.start, period.end
    peers = CalendarPeriod.objects.filter(calendar_id=version.calendar_id, level=version.level)
    if version.cumulative_mode == CumulativeModeChoices.ROLLING:
        earliest = peers.filter(index__gte=period.index - int(version.window_periods or 1) + 1, index__lte=period.index)
    else:
        part = PART[version.cumulative_mode]
        earliest = peers.filter(**{part: getattr(period, part)}, index__lte=period.index)
    start = earliest.order_by("start").values_list("start", flat=True).first() or period.start
    return start, period.end
