"""A KPI version checked against its contract, its calendar and the other KPIs, every problem at once."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError

from apps.compute.kpis.choices import (
    CUMULATIVE_AGGREGATIONS,
    RATIO_AGGREGATIONS,
    AggregationChoices,
    CumulativeModeChoices,
    KpiKindChoices,
)
from apps.compute.kpis.expressions import ExpressionError, parse, references
from apps.compute.kpis.models import KpiDefinition, KpiStatusChoices, KpiVersion
from apps.host.choices import FieldRoleChoices
from apps.host.models import ContractVersion

Kind = KpiKindChoices
# period-to-date mode → the grain levels whose period rows carry the enclosing span
TO_DATE_LEVELS = {
    CumulativeModeChoices.YEAR_TO_DATE: ("week", "period", "quarter", "half"),
    CumulativeModeChoices.HALF_TO_DATE: ("period", "quarter"),
    CumulativeModeChoices.QUARTER_TO_DATE: ("period",),
}


def contract_shape(contract: Any) -> tuple[set[str], set[str]] | None:
    """(measures, dimensions) of the contract's active version, or None without one."""
    version = ContractVersion.objects.active().filter(contract=contract).first()
    if version is None:
        return None
    measures, dimensions = set(), set()
    for name, role in version.fields.values_list("name", "role"):
        if role == FieldRoleChoices.MEASURE:
            measures.add(name)
        elif role == FieldRoleChoices.DIMENSION:
            dimensions.add(name)
    return measures, dimensions


def validate_version(version: KpiVersion) -> None:
    """Raise one ValidationError naming every problem of the version (field → messages)."""
    errors: dict[str, list[str]] = {}

    def add(name: str, message: str) -> None:
        if message not in errors.setdefault(name, []):
            errors[name].append(message)

    try:
        version.full_clean(exclude=["tenant", "definition", "contract", "calendar"], validate_unique=False)
    except ValidationError as exc:
        for name, messages in exc.message_dict.items():
            for message in messages:
                add(name, message)
    _check_calendar(version, add)
    _check_dimensions_and_filters(version, add)
    if version.kind == Kind.DERIVED:
        _check_derived(version, add)
    else:
        _check_sourced(version, add)
    if errors:
        raise ValidationError(errors)


def _check_calendar(version: KpiVersion, add: Any) -> None:
    calendar = version.calendar if version.calendar_id else None
    if calendar is None:
        add("calendar", "Choose the calendar the KPI is computed on.")
    elif calendar.tenant_id not in (None, version.tenant_id):
        add("calendar", "Belongs to another tenant.")


def _check_dimensions_and_filters(version: KpiVersion, add: Any) -> None:
    dims = version.dimensions
    if not isinstance(dims, list) or not all(isinstance(d, str) and d for d in dims):
        add("dimensions", "A list of dimension field names.")
    elif len(set(dims)) != len(dims):
        add("dimensions", "A dimension is listed twice.")
    filters = version.filters
    if not isinstance(filters, dict):
        add("filters", 'An object: {"dimension": value or [values]}.')
        return
    for name, wanted in filters.items():
        values = wanted if isinstance(wanted, list) else [wanted]
        if not values or not all(isinstance(v, str | int | float | bool) for v in values):
            add("filters", f"Filter '{name}': a value or a non-empty list of values (strings, numbers, booleans).")


def _check_sourced(version: KpiVersion, add: Any) -> None:
    """Simple, ratio and cumulative KPIs read a contract's GDPs."""
    if version.expression:
        add("expression", "Only derived KPIs have an expression.")
    if not version.contract_id:
        add("contract", "Choose the contract whose Golden Data Points are aggregated.")
        return
    if version.contract.tenant_id != version.tenant_id:
        add("contract", "Belongs to another tenant.")
        return
    if not version.measure:
        add("measure", "Name the measure to aggregate.")
    if not version.aggregation:
        add("aggregation", "Choose how the measure is aggregated.")
    if version.kind == Kind.RATIO:
        if not version.denominator_measure:
            add("denominator_measure", "A ratio needs the denominator's measure.")
        if not version.denominator_aggregation:
            add("denominator_aggregation", "A ratio needs the denominator's aggregation.")
        for name in ("aggregation", "denominator_aggregation"):
            value = getattr(version, name)
            if value and value not in RATIO_AGGREGATIONS:
                add(name, "A ratio's numerator and denominator cannot use 'last'.")
    elif version.denominator_measure or version.denominator_aggregation:
        add("denominator_measure", "Only ratio KPIs have a denominator.")
    if version.kind == Kind.CUMULATIVE:
        _check_cumulative(version, add)
    elif version.cumulative_mode or version.window_periods:
        add("cumulative_mode", "Only cumulative KPIs accumulate.")
    shape = contract_shape(version.contract)
    if shape is None:
        add("contract", f"Contract '{version.contract.key}' has no active version to check the KPI against.")
        return
    measures, dimensions = shape
    for name in ("measure", "denominator_measure"):
        value = getattr(version, name)
        if value and value not in measures:
            add(name, f"'{value}' is not a measure of contract '{version.contract.key}' "
                      f"(measures: {', '.join(sorted(measures)) or 'none'}).")  # fmt: skip
    for name in version.dimensions if isinstance(version.dimensions, list) else []:
        if isinstance(name, str) and name not in dimensions:
            add("dimensions", f"'{name}' is not a dimension of contract '{version.contract.key}' "
                              f"(dimensions: {', '.join(sorted(dimensions)) or 'none'}).")  # fmt: skip
    for name in version.filters if isinstance(version.filters, dict) else {}:
        if name not in dimensions:
            add("filters", f"'{name}' is not a dimension of contract '{version.contract.key}'.")


def _check_cumulative(version: KpiVersion, add: Any) -> None:
    mode = version.cumulative_mode
    if not mode:
        add("cumulative_mode", "Choose period-to-date or rolling.")
        return
    if version.aggregation and version.aggregation not in CUMULATIVE_AGGREGATIONS:
        add("aggregation", "A cumulative KPI accumulates sum, count, min, max or avg "
                           f"(not {AggregationChoices(version.aggregation).label.lower()}).")  # fmt: skip
    if mode == CumulativeModeChoices.ROLLING:
        if not version.window_periods:
            add("window_periods", "A rolling KPI needs its window in periods.")
    else:
        if version.window_periods:
            add("window_periods", "Only rolling KPIs have a window.")
        if version.level not in TO_DATE_LEVELS[mode]:
            add("level", f"{CumulativeModeChoices(mode).label} needs a finer grain: "
                         f"{', '.join(TO_DATE_LEVELS[mode])}.")  # fmt: skip


def _check_derived(version: KpiVersion, add: Any) -> None:
    for name in ("contract", "measure", "denominator_measure", "cumulative_mode", "window_periods"):
        if getattr(version, name + "_id" if name == "contract" else name):
            add(name, "A derived KPI reads other KPIs, not a contract.")
    if version.filters:
        add("filters", "A derived KPI reads other KPIs, not a contract.")
    try:
        keys = references(parse(version.expression))
    except ExpressionError as exc:
        add("expression", str(exc))
        return
    if not keys:
        add("expression", "The expression references no KPI.")
        return
    own = version.definition.key
    if own in keys:
        add("expression", "A KPI cannot reference itself.")
    others = {d.key: d for d in KpiDefinition.objects.for_tenant(version.tenant).filter(key__in=keys)}
    for key in keys:
        if key == own:
            continue
        definition = others.get(key)
        if definition is None:
            add("expression", f"No KPI '{key}' in this tenant.")
            continue
        ref = reference_version(definition)
        if ref is None:
            add("expression", f"KPI '{key}' has no version to compute from.")
            continue
        if (ref.calendar_id, ref.level) != (version.calendar_id, version.level):
            add("expression", f"KPI '{key}' is computed on another grain ({ref.calendar} {ref.level}).")
        if list(ref.dimensions or []) != list(version.dimensions or []):
            add("expression", f"KPI '{key}' breaks down by {ref.dimensions or 'nothing'}, "
                              f"not {version.dimensions or 'nothing'}.")  # fmt: skip
    cycle = find_cycle(version, keys)
    if cycle:
        add("expression", "References form a cycle: " + " → ".join(cycle) + ".")


def reference_version(definition: KpiDefinition) -> KpiVersion | None:
    """The version a reference to `definition` reads: the active one, else the newest not retired."""
    versions = definition.versions.exclude(status=KpiStatusChoices.RETIRED)
    return (
        versions.filter(status=KpiStatusChoices.ACTIVE).first()
        or versions.order_by("-major", "-minor", "-patch").first()
    )


def find_cycle(version: KpiVersion, keys: list[str]) -> list[str]:
    """A path of keys from the version's KPI back to itself through derived references, or []."""
    own = version.definition.key
    tenant = version.tenant
    graph: dict[str, list[str]] = {own: keys}

    def edges(key: str) -> list[str]:
        if key not in graph:
            definition = KpiDefinition.objects.for_tenant(tenant).filter(key=key).first()
            ref = reference_version(definition) if definition is not None else None
            graph[key] = []
            if ref is not None and ref.kind == Kind.DERIVED:
                try:
                    graph[key] = references(parse(ref.expression))
                except ExpressionError:
                    graph[key] = []
        return graph[key]

    path: list[str] = []
    on_path: set[str] = set()
    done: set[str] = set()

    def visit(key: str) -> list[str]:
        if key in on_path:
            return [*path[path.index(key) :], key]
        if key in done:
            return []
        path.append(key)
        on_path.add(key)
        for nxt in edges(key):
            found = visit(nxt)
            if found:
                return found
        path.pop()
        on_path.discard(key)
        done.add(key)
        return []

    return visit(own)
