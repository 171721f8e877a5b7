"""Catalog reads: which products a reader may see, and their computed health.

Visibility, with the roles of apps.kernel.roles:
- tenant members (PORTAL_ROLES: admin, steward, analyst, auditor; superusers) see every product
  of the tenant, drafts included;
- consumers (CONSUMER) see only products whose visibility is `listed` and which are published
  or deprecated. A `members` product, or a draft, is "not found" for them.

Health is computed, never stored: freshness compares the age of the contract's newest data
(newest current GDP version or completed batch, from storage) with the SLA freshness target of
the contract's active version; the quality score is the pass rate (accepted / received records)
of the last QUALITY_WINDOW finished batches of the contract's sources; the SLA status is the
freshness target's verdict, the one SLA target Aurum measures yet. A KPI set's health comes
from its contract when it names one, else everything is unknown; each of its KPIs (`kpis`) shows
its newest publication and the age of its newest computed value
(`apps.consumption.kpis.selectors.kpi_standings`, product detail).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import models
from django.utils import timezone

from apps.consumption.catalog.choices import (
    FreshnessChoices,
    ProductStatusChoices,
    ProductVisibilityChoices,
    SlaStatusChoices,
)
from apps.consumption.catalog.models import DataProduct
from apps.host.choices import CLASSIFICATION_RANK, ClassificationChoices, ContractStatusChoices, FieldRoleChoices
from apps.host.models import ContractVersion
from apps.kernel.context import TenantContext
from apps.kernel.roles import PORTAL_ROLES
from apps.storage import selectors as storage

QUALITY_WINDOW = 20  # batches
SAMPLE_SIZE = 5
# Sample values of fields at or above this classification are left out.
SAMPLE_CEILING = CLASSIFICATION_RANK[ClassificationChoices.CONFIDENTIAL]


def sees_all_products(context: TenantContext | None) -> bool:
    """Tenant members see every product; consumers only listed, published ones."""
    return context is not None and context.has_role(PORTAL_ROLES)


def product_list(*, tenant: Any, context: TenantContext | None) -> models.QuerySet[DataProduct]:
    """The tenant's products the reader may see."""
    queryset = DataProduct.objects.for_tenant(tenant).select_related("owner", "contract")
    if not sees_all_products(context):
        queryset = queryset.filter(
            visibility=ProductVisibilityChoices.LISTED,
            status__in=(ProductStatusChoices.PUBLISHED, ProductStatusChoices.DEPRECATED),
        )
    return queryset


def product_get(*, tenant: Any, context: TenantContext | None, slug: str) -> DataProduct | None:
    return product_list(tenant=tenant, context=context).filter(slug=slug).first()


def product_ids_with_tags(*, queryset: models.QuerySet[DataProduct], tags: list[str]) -> list[int]:
    """Ids of the products carrying any of `tags` (case-insensitive); portable across databases."""
    wanted = {tag.casefold() for tag in tags}
    return [pk for pk, have in queryset.values_list("pk", "tags") if wanted & {t.casefold() for t in have or []}]


# --- health -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ProductHealth:
    active_version: ContractVersion | None
    last_data_at: datetime | None
    age: timedelta | None
    freshness_target: timedelta | None
    freshness: str
    quality_score: Decimal | None  # % of accepted records, 2 decimals
    batches_considered: int
    sla_status: str


def products_health(products: list[DataProduct], *, now: datetime | None = None) -> dict[int, ProductHealth]:
    """Product id → its health, for any number of products in four queries."""
    now = now or timezone.now()
    contract_ids = sorted({p.contract_id for p in products if p.contract_id is not None})
    active = {
        v.contract_id: v
        for v in ContractVersion.objects.filter(contract_id__in=contract_ids, status=ContractStatusChoices.ACTIVE)
    }
    last_data = storage.contract_last_data_at(contract_ids=contract_ids) if contract_ids else {}
    rates = storage.contract_batch_pass_rates(contract_ids=contract_ids, last=QUALITY_WINDOW) if contract_ids else {}
    health = {}
    for product in products:
        version = active.get(product.contract_id)
        at = last_data.get(product.contract_id)
        age = max(now - at, timedelta(0)) if at is not None else None
        target = version.sla_freshness if version is not None else None
        if age is None or target is None:
            freshness = FreshnessChoices.UNKNOWN
        else:
            freshness = FreshnessChoices.FRESH if age <= target else FreshnessChoices.STALE
        accepted, received, batches = rates.get(product.contract_id, (0, 0, 0))
        score = (Decimal(accepted * 100) / Decimal(received)).quantize(Decimal("0.01")) if received else None
        sla = {
            FreshnessChoices.FRESH: SlaStatusChoices.MET,
            FreshnessChoices.STALE: SlaStatusChoices.BREACHED,
        }.get(freshness, SlaStatusChoices.UNKNOWN)
        health[product.pk] = ProductHealth(
            active_version=version,
            last_data_at=at,
            age=age,
            freshness_target=target,
            freshness=freshness,
            quality_score=score,
            batches_considered=batches,
            sla_status=sla,
        )
    return health


def product_ids_with_freshness(*, queryset: models.QuerySet[DataProduct], states: list[str]) -> list[int]:
    products = list(queryset.select_related(None).only("pk", "contract_id"))
    health = products_health(products)
    return [p.pk for p in products if health[p.pk].freshness in states]


def freshness_by_slug(tenant: Any, slugs: list[str]) -> dict[str, dict[str, str]]:
    """Live facet for the search index: product slug → {"freshness": state}."""
    products = list(DataProduct.objects.for_tenant(tenant).filter(slug__in=slugs).only("pk", "slug", "contract_id"))
    health = products_health(products)
    return {p.slug: {"freshness": health[p.pk].freshness} for p in products}


# --- sample -------------------------------------------------------------------------------------------
def product_sample(product: DataProduct, *, version: ContractVersion | None) -> list[dict[str, Any]]:
    """A few current GDPs of a GDP dataset, without values of confidential or restricted fields.

    What the active contract version does not describe is left out too: a dimension or measure
    with no field cannot be shown to be harmless. Without an active version there is no sample.
    """
    if product.contract_id is None or version is None:
        return []
    fields = {f.name: f for f in version.fields.all()}

    def shown(name: str) -> bool:
        field = fields.get(name)
        return field is not None and CLASSIFICATION_RANK.get(field.classification, 99) < SAMPLE_CEILING

    entity_fields = [f for f in fields.values() if f.role == FieldRoleChoices.ENTITY_KEY]
    entity_shown = all(shown(f.name) for f in entity_fields)
    rows = []
    for gdp in storage.contract_gdp_sample(contract_id=product.contract_id, limit=SAMPLE_SIZE * 4):
        if not shown(gdp.measure):
            continue
        rows.append(
            {
                "measure": gdp.measure,
                "entity_key": gdp.entity_key if entity_shown else None,
                "dimensions": {name: value for name, value in (gdp.dimensions or {}).items() if shown(name)},
                "observed_at": gdp.observed_at,
                "value": gdp.value,
                "unit": gdp.unit,
            }
        )
        if len(rows) == SAMPLE_SIZE:
            break
    return rows
