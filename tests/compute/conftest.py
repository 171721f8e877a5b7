"""A tenant with an active store-sales contract and a push source, ready to receive records."""

from __future__ import annotations

from typing import Any

import pytest

from apps.compute import services as compute
from apps.host import services as host
from apps.kernel.roles import RoleChoices

FIELDS = [
    {"name": "sale_date", "logical_type": "date", "required": True, "role": "time"},
    {"name": "store_id", "logical_type": "string", "required": True, "role": "entity_key", "primary_key": True,
     "primary_key_position": 1, "pattern": "^S[0-9]{3}$"},
    {"name": "region", "logical_type": "string", "required": True, "role": "dimension",
     "allowed_values": ["north", "south"]},
    {"name": "revenue", "logical_type": "number", "required": True, "role": "measure", "unit": "EUR", "minimum": 0},
    {"name": "units", "logical_type": "integer", "required": True, "role": "measure", "unit": "items"},
]  # fmt: skip
CAST_STEPS = [
    {"kind": "cast", "field": "sale_date", "params": {"to": "date"}},
    {"kind": "cast", "field": "revenue", "params": {"to": "number"}},
    {"kind": "cast", "field": "units", "params": {"to": "integer"}},
]


def other_session(*, autocommit: bool = True) -> Any:
    """A connection of its own to the test database, outside Django: another worker process (PostgreSQL)."""
    import psycopg
    from django.db import connection

    db = connection.settings_dict
    return psycopg.connect(host=db["HOST"] or None, port=db["PORT"] or None, user=db["USER"],
                           password=db["PASSWORD"] or None, dbname=db["NAME"], autocommit=autocommit)  # fmt: skip


@pytest.fixture
def people(tenant_a: Any, member: Any) -> dict[str, Any]:
    return {"steward": member(tenant_a, RoleChoices.STEWARD), "admin": member(tenant_a, RoleChoices.ADMIN)}


def activate_contract(tenant: Any, people: dict[str, Any], *, key: str = "store-sales", fields: list | None = None,
                      rules: list | None = None, steps: list | None = None, survivorship: str = "latest") -> Any:  # fmt: skip
    from apps.compute.models import NormalizationRule

    contract = host.contract_create(actor=people["steward"], tenant=tenant, key=key, name=key)
    contract.survivorship = survivorship
    contract.save(update_fields=["survivorship"])
    version = host.contract_version_create(actor=people["steward"], contract=contract, version="1.0.0",
                                           fields=fields or FIELDS, quality_rules=rules or [])  # fmt: skip
    for position, step in enumerate(CAST_STEPS if steps is None else steps):
        NormalizationRule.objects.create(contract_version=version, position=position, **step)
    host.contract_version_propose(actor=people["steward"], version=version)
    host.contract_version_approve(actor=people["admin"], version=version)
    host.contract_version_activate(actor=people["admin"], version=version)
    return contract


@pytest.fixture
def contract(tenant_a: Any, people: dict[str, Any]) -> Any:
    return activate_contract(tenant_a, people)


@pytest.fixture
def source(tenant_a: Any, people: dict[str, Any], contract: Any) -> Any:
    return compute.source_create(actor=people["steward"], tenant=tenant_a, contract=contract, key="tills", name="Tills")
