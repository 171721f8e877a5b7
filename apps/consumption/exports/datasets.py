"""The exportable datasets: name → base queryset, columns, filters and governed fields.

An export names a dataset (`/api/v1/exports/<name>/`). Each dataset says:
- how to read the tenant's rows (`queryset`) and in which stable order;
- its columns: the export's header, each a `values_list` path or an expression, with a kind
  the writers know (int, str, bool, decimal, datetime, json);
- its FilterSet, the same one its query API uses, so an export takes the same parameters;
- which contract fields leave with its rows (`governed_fields`), so the export-control and
  classification-handling policies can decide on them.

Two are registered here: Golden Data Points (`gdps`) and KPI values (`kpi-values`: the current
values of the active KPI versions, with the filters of `/api/v1/kpis/{key}/values/` plus `kpi`).
Another registers the same way: `register(Dataset(name=..., ...))` with its own columns,
FilterSet and governed fields.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db.models import CharField, QuerySet, TextField
from django.db.models.functions import Cast

from apps.consumption.kpis.filters import KpiValueFilter
from apps.consumption.kpis.selectors import LATEST_ORDER, kpi_values_latest
from apps.host.choices import ContractStatusChoices, FieldRoleChoices
from apps.host.models import ContractField, ContractVersion, DataContract
from apps.storage.api.filters import GoldenDataPointFilter
from apps.storage.models import GoldenDataPoint, KpiValue


@dataclass(frozen=True)
class Column:
    name: str
    kind: str  # int, str, bool, decimal, datetime, json
    path: str = ""  # values_list path; empty when `expression` gives the value
    description: str = ""
    expression: Any = None

    @property
    def lookup(self) -> str:
        return self.path or f"_x_{self.name}"


@dataclass(frozen=True)
class GovernedField:
    """A contract field whose values leave with an export, and where they go.

    `target` is `column` (the whole export column `column` carries the field's values),
    `rows` (the rows whose measure is `key`: the field is a measure) or `dimension` (the key
    `key` inside the JSON column `column`).
    """

    contract_id: int
    contract_key: str
    name: str
    classification: str
    target: str
    column: str
    key: str = ""


@dataclass(frozen=True)
class Dataset:
    name: str
    title: str
    model: type
    filterset: type
    columns: tuple[Column, ...]
    queryset: Callable[[Any], QuerySet]
    governed_fields: Callable[[Any, QuerySet, dict[str, Any], tuple[str, ...]], list[GovernedField]]
    order_by: tuple[str, ...] = ("id",)
    contract_path: str = "contract_id"
    measure_path: str = "measure"

    def column(self, name: str) -> Column:
        return next(column for column in self.columns if column.name == name)

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(column.name for column in self.columns)


REGISTRY: dict[str, Dataset] = {}


def register(dataset: Dataset) -> Dataset:
    REGISTRY[dataset.name] = dataset
    return dataset


def dataset_get(name: str) -> Dataset:
    try:
        return REGISTRY[name]
    except KeyError:
        raise LookupError(f"No exportable dataset {name!r}; known: {', '.join(sorted(REGISTRY))}.") from None


# --- Golden Data Points ------------------------------------------------------------------------------
def _gdp_queryset(tenant: Any) -> QuerySet:
    return GoldenDataPoint.objects.for_tenant(tenant)


def _contract_fields(contract_ids: list[int]) -> dict[int, list[ContractField]]:
    """Per contract, the fields of its active version (else its newest version)."""
    newest: dict[int, int] = {}
    active: dict[int, int] = {}
    versions = ContractVersion.objects.filter(contract_id__in=contract_ids).order_by("-major", "-minor", "-patch")
    for version_id, contract_id, status in versions.values_list("id", "contract_id", "status"):
        newest.setdefault(contract_id, version_id)
        if status == ContractStatusChoices.ACTIVE:
            active[contract_id] = version_id
    chosen = {**newest, **active}
    by_version: dict[int, list[ContractField]] = {}
    for field in ContractField.objects.filter(version_id__in=chosen.values()):
        by_version.setdefault(field.version_id, []).append(field)
    return {contract_id: by_version.get(version_id, []) for contract_id, version_id in chosen.items()}


def _gdp_governed_fields(
    tenant: Any, queryset: QuerySet, filters: dict[str, Any], columns: tuple[str, ...]
) -> list[GovernedField]:
    contracts = DataContract.objects.for_tenant(tenant)
    if filters.get("contract"):
        contracts = contracts.filter(key=filters["contract"])
    if filters.get("contract__key"):
        contracts = contracts.filter(key=filters["contract__key"])
    in_scope = {c.pk: c.key for c in contracts if queryset.filter(contract_id=c.pk).exists()}
    measures = set(filters.get("measure__in") or []) | ({filters["measure"]} if filters.get("measure") else set())
    governed = []
    for contract_id, fields in _contract_fields(list(in_scope)).items():
        for field in fields:
            where: tuple[str, str, str] | None = None
            if field.role == FieldRoleChoices.MEASURE and (not measures or field.name in measures):
                where = ("rows", "value", field.name)
            elif field.role == FieldRoleChoices.DIMENSION:
                where = ("dimension", "dimensions", field.name)
            elif field.role == FieldRoleChoices.ENTITY_KEY:
                where = ("column", "entity_key", "")
            elif field.role == FieldRoleChoices.TIME:
                where = ("column", "observed_at", "")
            if where is None or where[1] not in columns:
                continue  # attributes never leave with GDPs; nor do fields of columns not selected
            governed.append(GovernedField(contract_id, in_scope[contract_id], field.name, field.classification, *where))
    return governed


GOLDEN_DATA_POINTS = register(
    Dataset(
        name="gdps",
        title="Golden Data Points",
        model=GoldenDataPoint,
        filterset=GoldenDataPointFilter,
        queryset=_gdp_queryset,
        governed_fields=_gdp_governed_fields,
        columns=(
            Column("id", "int", "id"),
            Column("contract", "str", "contract__key"),
            Column("contract_version", "str", "contract_version__version"),
            Column("measure", "str", "measure"),
            Column("entity_key", "str", "entity_key"),
            Column("dimensions", "json", description="JSON object", expression=Cast("dimensions", TextField())),
            Column("observed_at", "datetime", "observed_at"),
            Column("value", "decimal", "value"),
            Column("unit", "str", "unit"),
            Column("quality_flags", "json", description="JSON array", expression=Cast("quality_flags", TextField())),
            Column("source", "str", "source__key"),
            Column("batch", "int", "batch_id"),
            Column("recorded_from", "datetime", "recorded_from"),
            Column("recorded_to", "datetime", "recorded_to"),
            Column("is_override", "bool", "is_override"),
        ),
    )
)


# --- KPI values ------------------------------------------------------------------------------------
KPI_NUMBER_COLUMNS = ("actual", "numerator", "denominator", "target", "variance", "attainment")


def _kpi_queryset(tenant: Any) -> QuerySet:
    return kpi_values_latest(tenant=tenant).select_related(None)


def _kpi_governed_fields(
    tenant: Any, queryset: QuerySet, filters: dict[str, Any], columns: tuple[str, ...]
) -> list[GovernedField]:
    """The contract fields behind the values: the KPI's dimensions (keys of `dimensions`) and the measures
    it aggregates (every number column derives from them). Derived KPIs name no contract."""
    read = (
        queryset.order_by()
        .filter(kpi_version__contract__isnull=False)
        .values_list("kpi_version__contract_id", "kpi_version__contract__key", "kpi_version__measure",
                     "kpi_version__denominator_measure")
        .distinct()
    )  # fmt: skip
    keys: dict[int, str] = {}
    measures: dict[int, set[str]] = {}
    for contract_id, key, measure, denominator in read:
        keys[contract_id] = key
        measures.setdefault(contract_id, set()).update(m for m in (measure, denominator) if m)
    governed = []
    for contract_id, fields in _contract_fields(list(keys)).items():
        for field in fields:
            if field.role == FieldRoleChoices.DIMENSION and "dimensions" in columns:
                governed.append(GovernedField(contract_id, keys[contract_id], field.name, field.classification,
                                              "dimension", "dimensions", field.name))  # fmt: skip
            elif field.role == FieldRoleChoices.MEASURE and field.name in measures[contract_id]:
                for column in KPI_NUMBER_COLUMNS:
                    if column in columns:
                        governed.append(GovernedField(contract_id, keys[contract_id], field.name,
                                                      field.classification, "column", column))  # fmt: skip
    return governed


KPI_VALUES = register(
    Dataset(
        name="kpi-values",
        title="KPI values",
        model=KpiValue,
        filterset=KpiValueFilter,
        queryset=_kpi_queryset,
        governed_fields=_kpi_governed_fields,
        order_by=("kpi_key", *LATEST_ORDER),
        contract_path="kpi_version__contract_id",
        measure_path="kpi_key",
        columns=(
            Column("id", "int", "id"),
            Column("kpi", "str", "kpi_key"),
            Column("kpi_version", "str", "kpi_version__version"),
            Column("period", "str", "period__label"),
            Column("grain", "str", "period__level"),
            Column("period_start", "str", description="YYYY-MM-DD", expression=Cast("period__start", CharField())),
            Column("period_end", "str", description="YYYY-MM-DD", expression=Cast("period__end", CharField())),
            Column("dimensions", "json", description="JSON object", expression=Cast("dimensions", TextField())),
            *(Column(name, "decimal", name) for name in KPI_NUMBER_COLUMNS),
            Column("status", "str", "status"),
            Column("streak", "int", "streak"),
            Column("gdp_count", "int", "gdp_count"),
            Column("as_of", "datetime", "as_of"),
            Column("computed_at", "datetime", "computed_at"),
        ),
    )
)
