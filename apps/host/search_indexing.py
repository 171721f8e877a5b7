"""Contracts and their fields in the discovery index (apps.utilities.search).

A contract is one `contract` document (name, key, description, domain, owner, dataset and the
names of its fields); each field of its current version is a `contract_field` document (name,
description, unit, type). The current version is the active one, else the newest. The index
follows the contract events after they commit; `manage.py search_reindex` rebuilds it.
Renaming a contract publishes no event yet, so a rename shows after the next contract event or
a reindex.
"""

from __future__ import annotations

from django.db import transaction

from apps.host.choices import ContractStatusChoices
from apps.host.models import ContractVersion, DataContract, Tenant
from apps.runtime.events import subscribe
from apps.runtime.models import DomainEvent
from apps.utilities.search import selectors as search_selectors
from apps.utilities.search import services as search
from apps.utilities.search.registry import register_reindexer

CONTRACT_KIND = "contract"
FIELD_KIND = "contract_field"
INDEXED_EVENTS = (
    "contract.created",
    "contract.version_created",
    "contract.activated",
    "contract.deprecated",
    "contract.retired",
)


def current_version(contract: DataContract) -> ContractVersion | None:
    """The version search describes: the active one, else the newest."""
    versions = list(contract.versions.all())
    active = [v for v in versions if v.status == ContractStatusChoices.ACTIVE]
    if active:
        return active[0]
    return max(versions, key=lambda v: v.semver, default=None)


@transaction.atomic
def contract_index(*, contract: DataContract) -> int:
    """(Re)write the contract's document and its current fields' documents; returns how many."""
    version = current_version(contract)
    fields = list(version.fields.all()) if version is not None else []
    owner = contract.owner.get_username() if contract.owner_id else ""
    url = f"/api/v1/contracts/{contract.key}/"
    facets = {"domain": contract.domain, "owner": owner}
    body = "\n".join(
        part
        for part in (
            contract.key,
            contract.description,
            version.dataset if version else "",
            " ".join(f.name for f in fields),
        )
        if part
    )
    search.search_index_upsert(
        tenant=contract.tenant,
        kind=CONTRACT_KIND,
        object_key=contract.key,
        title=contract.name,
        body=body,
        facets={**facets, "status": version.status if version else ""},
        url=url,
    )
    _remove_stale_fields(contract, keep={f"{contract.key}.{f.name}" for f in fields})
    for field in fields:
        search.search_index_upsert(
            tenant=contract.tenant,
            kind=FIELD_KIND,
            object_key=f"{contract.key}.{field.name}",
            title=field.name,
            body="\n".join(
                part
                for part in (field.description, f"{contract.name} ({contract.key})", field.unit, field.logical_type)
                if part
            ),
            facets={**facets, "classification": field.classification, "contract": contract.key},
            url=url,
        )
    return 1 + len(fields)


def _remove_stale_fields(contract: DataContract, *, keep: set[str]) -> None:
    for key in search_selectors.document_keys(tenant=contract.tenant, kind=FIELD_KIND, prefix=f"{contract.key}."):
        if key not in keep:
            search.search_index_remove(tenant=contract.tenant, kind=FIELD_KIND, object_key=key)


@subscribe("contract.created", name="host.index_contract_for_search")
@subscribe("contract.version_created", name="host.index_contract_for_search")
@subscribe("contract.activated", name="host.index_contract_for_search")
@subscribe("contract.deprecated", name="host.index_contract_for_search")
@subscribe("contract.retired", name="host.index_contract_for_search")
def index_contract(event: DomainEvent) -> None:
    """Re-describe the event's contract in the search index."""
    contract = (
        DataContract.objects.for_tenant(event.tenant)
        .filter(key=event.payload.get("contract"))
        .select_related("owner", "tenant")
        .first()
    )
    if contract is not None:
        contract_index(contract=contract)


def reindex_contracts(*, tenant_slug: str | None = None) -> int:
    """Every contract of one tenant (or all tenants), for `manage.py search_reindex`."""
    tenants = Tenant.objects.all() if tenant_slug is None else Tenant.objects.filter(slug=tenant_slug)
    written = 0
    for tenant in tenants.order_by("slug"):
        contracts = DataContract.objects.for_tenant(tenant).select_related("owner", "tenant")
        for contract in contracts.prefetch_related("versions__fields"):
            written += contract_index(contract=contract)
    return written


register_reindexer((CONTRACT_KIND, FIELD_KIND), reindex_contracts)
