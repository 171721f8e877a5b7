"""KPI value reads for consumers: "latest" (current computed values) and "as published".

Everything comes from storage, which keeps the values (`KpiValue`) and the publications
(`PublishedOutput`); consumption never imports compute. A KPI is known in a tenant when storage
holds values or publications of its key there.

- **latest**: the current values of the KPI's active version(s): `KpiValue` rows, which a
  recompute replaces.
- **as published**: what was published, per period: for each period the newest publication
  holding it (`published=latest`: now; `as_published_on=D`: at the end of day D in the tenant's
  time zone, so a later restatement does not change the answer), or exactly one publication
  (`publication=<n>`). Publications are immutable, so these answers do not change once the
  moment has passed.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.db.models import Max, QuerySet

from apps.storage.kpi_values import KpiValue
from apps.storage.models import CalendarPeriod
from apps.storage.published import PublishedOutput, end_of_day, published_output_list

LATEST_ORDER = ("period__start", "period__end", "dimensions_key", "id")
ACTIVE = "active"  # compute's KPI version status of the version whose values are current


def kpi_known(*, tenant: Any, key: str) -> bool:
    """Whether storage holds values or publications of the KPI in the tenant."""
    return (
        KpiValue.objects.for_tenant(tenant).filter(kpi_key=key).exists()
        or PublishedOutput.objects.for_tenant(tenant).filter(kpi_key=key).exists()
    )


def known_kpi_keys(*, tenant: Any, keys: list[str]) -> set[str]:
    """The keys among `keys` that storage holds values or publications of in the tenant (two queries)."""
    found = set(KpiValue.objects.for_tenant(tenant).filter(kpi_key__in=keys).values_list("kpi_key", flat=True))
    rest = [key for key in keys if key not in found]
    if rest:
        found |= set(
            PublishedOutput.objects.for_tenant(tenant).filter(kpi_key__in=rest).values_list("kpi_key", flat=True)
        )
    return found


def kpi_values_latest(*, tenant: Any, key: str | None = None) -> QuerySet[KpiValue]:
    """The current values of the active KPI versions (of one KPI), in period (start, end) then dimension order."""
    values = KpiValue.objects.for_tenant(tenant).filter(kpi_version__status=ACTIVE)
    if key is not None:
        values = values.filter(kpi_key=key)
    return values.select_related("period", "kpi_version").order_by(*LATEST_ORDER)


def period_ref(period: CalendarPeriod | None, label: str, period_id: int) -> dict[str, Any]:
    if period is None:  # a period row that no longer exists: the publication still names it
        return {"id": period_id, "label": label, "level": None, "start": None, "end": None}
    return {"id": period.pk, "label": period.label, "level": period.level, "start": period.start, "end": period.end}


def latest_row(value: KpiValue) -> dict[str, Any]:
    return {
        "id": value.pk, "kpi": value.kpi_key, "kpi_version": value.kpi_version.version,
        "period": period_ref(value.period, "", value.period_id), "dimensions": value.dimensions or {},
        "actual": value.actual, "target": value.target, "variance": value.variance, "attainment": value.attainment,
        "status": value.status, "streak": value.streak, "gdp_count": value.gdp_count, "as_of": value.as_of,
        "computed_at": value.computed_at, "publication": None,
    }  # fmt: skip


@dataclass(frozen=True)
class PublishedRead:
    outputs: list[PublishedOutput]  # the publications the rows come from, newest first
    rows: list[dict[str, Any]]  # in period order, then dimensions key
    calendars: set[int]  # calendars of the rows' periods (to resolve period labels)


def kpi_values_published(
    *, tenant: Any, key: str, at: dt.datetime | None = None, version: int | None = None
) -> PublishedRead | None:
    """The published rows of the KPI: exactly publication `version`, or per period the newest
    publication holding it published by `at` (None: now). None when `version` does not exist.
    Two queries whatever the number of rows."""
    outputs = published_output_list(tenant=tenant, kpi_key=key).order_by("-version")
    if version is not None:
        outputs = outputs.filter(version=version)
    elif at is not None:
        outputs = outputs.filter(published_at__lte=at)
    chosen = list(outputs)
    if version is not None and not chosen:
        return None
    taken: dict[int, PublishedOutput] = {}
    for output in chosen:  # newest first: the first output holding a period is in force for it
        for period_id in output.period_ids or []:
            taken.setdefault(period_id, output)
    periods = CalendarPeriod.objects.in_bulk(list(taken))
    rows = []
    for output in chosen:
        for row in output.values or []:
            if taken.get(row["period_id"]) is not output:
                continue
            rows.append({
                "id": None, "kpi": key, "kpi_version": output.kpi_version_label,
                "period": period_ref(periods.get(row["period_id"]), row.get("period", ""), row["period_id"]),
                "dimensions": row.get("dimensions") or {}, "actual": row.get("actual"), "target": row.get("target"),
                "variance": row.get("variance"), "attainment": row.get("attainment"), "status": row.get("status"),
                "streak": row.get("streak", 0), "gdp_count": row.get("gdp_count", 0), "as_of": output.as_of,
                "computed_at": None, "publication": output.version, "_order": row.get("dimensions_key", ""),
            })  # fmt: skip
    rows.sort(
        key=lambda r: (
            r["period"]["start"] or dt.date.max,
            r["period"]["end"] or dt.date.max,
            r["period"]["id"],
            r.pop("_order"),
        )
    )
    used = {row["publication"] for row in rows} | {o.version for o in chosen if version is not None}
    return PublishedRead(
        outputs=[o for o in chosen if o.version in used],
        rows=rows,
        calendars={p.calendar_id for p in periods.values()},
    )


def as_published_moment(tenant: Any, day: dt.date) -> dt.datetime:
    """ "As published on D": the end of day D in the tenant's time zone."""
    return end_of_day(tenant, day)


# --- catalog: latest publication and freshness per KPI -------------------------------------------------
@dataclass(frozen=True)
class KpiStanding:
    key: str
    latest_publication: PublishedOutput | None
    last_computed_at: dt.datetime | None


def kpi_standings(*, tenant: Any, keys: list[str]) -> dict[str, KpiStanding]:
    """Key → its newest publication and the time its newest current value was computed (two queries)."""
    if not keys:
        return {}
    computed = dict(
        kpi_values_latest(tenant=tenant)
        .filter(kpi_key__in=keys)
        .order_by()
        .values("kpi_key")
        .annotate(at=Max("computed_at"))
        .values_list("kpi_key", "at")
    )
    newest: dict[str, PublishedOutput] = {}
    for output in published_output_list(tenant=tenant).filter(kpi_key__in=keys).defer("values").order_by("-version"):
        newest.setdefault(output.kpi_key, output)
    return {key: KpiStanding(key, newest.get(key), computed.get(key)) for key in keys}
