"""Start-up registrations of the catalog (imported by ConsumptionConfig.ready()).

- the field-level audit trail of products (django-auditlog);
- the discovery index: `manage.py search_reindex` rebuilds product documents with
  `reindex_products`, and the `freshness` facet of product hits is computed when a search runs
  (it changes with the clock, not with events).
"""

from __future__ import annotations

from auditlog.registry import auditlog

from apps.consumption.catalog import selectors, services
from apps.consumption.catalog.models import DataProduct
from apps.host.models import Tenant
from apps.utilities.search.registry import register_live_facets, register_reindexer

auditlog.register(DataProduct, exclude_fields=["updated_at"])


def reindex_products(*, tenant_slug: str | None = None) -> int:
    """Every product of one tenant (or of all tenants); returns how many documents were written."""
    tenants = Tenant.objects.all() if tenant_slug is None else Tenant.objects.filter(slug=tenant_slug)
    written = 0
    for product in DataProduct.objects.filter(tenant__in=tenants).select_related("tenant", "owner", "contract"):
        services.product_index(product=product)
        written += 1
    return written


register_reindexer((services.PRODUCT_KIND,), reindex_products)
register_live_facets(services.PRODUCT_KIND, selectors.freshness_by_slug)
