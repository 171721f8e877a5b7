"""Catalog writes: create, change, publish and deprecate data products.

Each service is one transaction that saves the product with the audit actor, rewrites its
search document (apps.utilities.search) and publishes a domain event.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from apps.consumption.catalog.choices import ProductStatusChoices as S
from apps.consumption.catalog.choices import ProductVisibilityChoices
from apps.consumption.catalog.models import DataProduct
from apps.kernel.audit import audit_actor
from apps.kernel.errors import ConflictError
from apps.runtime.events import publish_event
from apps.utilities.search import services as search
from apps.utilities.search.choices import SearchAudienceChoices

PRODUCT_KIND = "product"
EDITABLE = (
    "name",
    "description",
    "owner",
    "domain",
    "tags",
    "classification",
    "kind",
    "contract",
    "kpis",
    "visibility",
)
ALLOWED_NEXT = {S.DRAFT: (S.PUBLISHED, S.DEPRECATED), S.PUBLISHED: (S.DEPRECATED,), S.DEPRECATED: ()}


def _normalized_tags(tags: Any) -> Any:
    if not isinstance(tags, list):
        return tags  # clean() says why
    seen: dict[str, None] = {}
    for tag in tags:
        if isinstance(tag, str):
            seen.setdefault(tag.strip(), None)
        else:
            return tags
    return list(seen)


@transaction.atomic
def product_create(*, actor: Any, tenant: Any, slug: str, name: str, **attrs: Any) -> DataProduct:
    """A new draft product; a GDP dataset names its contract. Consumers see it once published and listed."""
    unknown = sorted(set(attrs) - set(EDITABLE))
    if unknown:
        raise ValidationError({name: "Not a product attribute." for name in unknown})
    for listed in ("tags", "kpis"):
        if listed in attrs:
            attrs[listed] = _normalized_tags(attrs[listed])
    product = DataProduct(tenant=tenant, slug=slug, name=name, **attrs)
    product.full_clean()
    with audit_actor(actor):
        product.save()
    product_index(product=product)
    publish_event("product.created", _payload(product), tenant=tenant, actor=actor)
    return product


@transaction.atomic
def product_update(*, actor: Any, product: DataProduct, **changes: Any) -> DataProduct:
    """Change a product's description, ownership, classification, contract or visibility; the slug stays."""
    if "slug" in changes and changes["slug"] != product.slug:
        raise ValidationError({"slug": "A product's slug cannot change: consumers link to it."})
    changes.pop("slug", None)
    unknown = sorted(set(changes) - set(EDITABLE))
    if unknown:
        raise ValidationError({name: "Not a product attribute." for name in unknown})
    product = DataProduct.objects.select_for_update().get(pk=product.pk)
    if product.status == S.DEPRECATED:
        raise ConflictError(
            f"Product '{product.slug}' is deprecated; it is kept as it was.",
            slug="product-deprecated",
            current_status=product.status,
        )
    for listed in ("tags", "kpis"):
        if listed in changes:
            changes[listed] = _normalized_tags(changes[listed])
    for name, value in changes.items():
        setattr(product, name, value)
    product.full_clean()
    with audit_actor(actor):
        product.save()
    product_index(product=product)
    publish_event("product.updated", {**_payload(product), "changed": sorted(changes)}, tenant=product.tenant,
                  actor=actor)  # fmt: skip
    return product


@transaction.atomic
def product_publish(*, actor: Any, product: DataProduct) -> DataProduct:
    """Draft → published: consumers may now find it (if it is listed)."""
    return _move(actor, product, S.PUBLISHED)


@transaction.atomic
def product_deprecate(*, actor: Any, product: DataProduct) -> DataProduct:
    """Draft or published → deprecated: still readable, marked as on its way out; no further changes."""
    return _move(actor, product, S.DEPRECATED)


def _move(actor: Any, product: DataProduct, to: str) -> DataProduct:
    product = DataProduct.objects.select_for_update(of=("self",)).select_related("owner", "contract").get(pk=product.pk)
    allowed = ALLOWED_NEXT[S(product.status)]
    if to not in allowed:
        raise ConflictError(
            f"Product '{product.slug}' is {product.status}; it cannot become {to}.",
            slug="illegal-transition",
            current_status=product.status,
            allowed_next=[str(s) for s in allowed],
        )
    product.status = to
    stamp = "published_at" if to == S.PUBLISHED else "deprecated_at"
    setattr(product, stamp, timezone.now())
    with audit_actor(actor):
        product.save(update_fields=["status", stamp, "updated_at"])
    product_index(product=product)
    publish_event(f"product.{to}", _payload(product), tenant=product.tenant, actor=actor)
    return product


def _payload(product: DataProduct) -> dict[str, Any]:
    return {"product": product.slug, "kind": product.kind, "status": product.status,
            "contract": product.contract.key if product.contract_id else None}  # fmt: skip


def product_index(*, product: DataProduct) -> None:
    """Write the product's search document (in the caller's transaction).

    Consumers find only what they may read: a listed product that is not a draft.
    """
    listed = product.visibility == ProductVisibilityChoices.LISTED and product.status != S.DRAFT
    contract = product.contract if product.contract_id else None
    search.search_index_upsert(
        tenant=product.tenant,
        kind=PRODUCT_KIND,
        object_key=product.slug,
        title=product.name,
        body="\n".join(
            part
            for part in (
                product.slug,
                product.description,
                contract.name if contract else "",
                contract.key if contract else "",
                " ".join(product.kpis or []),
            )
            if part
        ),
        facets={
            "domain": product.domain,
            "owner": product.owner.get_username() if product.owner_id else "",
            "tag": list(product.tags or []),
            "classification": product.classification,
            "product_kind": product.kind,
            "status": product.status,
        },
        url=f"/api/v1/products/{product.slug}/",
        audience=SearchAudienceChoices.LISTED if listed else SearchAudienceChoices.MEMBERS,
    )
