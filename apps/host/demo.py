"""Demo data of the host module: two tenants and one account per role (see README)."""

from __future__ import annotations

from typing import Any

from apps.host import services
from apps.host.choices import RoleChoices
from apps.host.models import Tenant

DEMO_PASSWORD = "aurum-demo"
DEMO_TENANTS = (
    ("acme", "Acme Retail", "Europe/Berlin"),
    ("globex", "Globex Energy", "America/New_York"),
)


def seed(context: dict[str, Any]) -> list[str]:
    """Idempotent: existing tenants, accounts and memberships are left as they are."""
    lines = []
    operator = services.user_get_or_create(
        username="operator", password=DEMO_PASSWORD, is_staff=True, is_superuser=True, email="operator@example.com"
    )
    context["operator"] = operator
    context["tenants"] = {}
    for slug, name, tz in DEMO_TENANTS:
        tenant = Tenant.objects.filter(slug=slug).first() or services.tenant_create(
            actor=operator, slug=slug, name=name, timezone=tz
        )
        context["tenants"][slug] = tenant
        for role in RoleChoices.values:
            user = services.user_get_or_create(
                username=f"{slug}-{role}", password=DEMO_PASSWORD, email=f"{role}@{slug}.example.com"
            )
            services.membership_set(actor=operator, tenant=tenant, user=user, role=role)
        lines.append(f"tenant {slug}: accounts {', '.join(f'{slug}-{r}' for r in RoleChoices.values)}")
    dana = services.user_get_or_create(username="dana", password=DEMO_PASSWORD, email="dana@example.com")
    services.membership_set(actor=operator, tenant=context["tenants"]["acme"], user=dana, role=RoleChoices.STEWARD)
    services.membership_set(actor=operator, tenant=context["tenants"]["globex"], user=dana, role=RoleChoices.ANALYST)
    lines.append("dana: steward in acme, analyst in globex (try the tenant switcher)")
    lines.append(f"operator: superuser. Every demo password is '{DEMO_PASSWORD}'.")
    return lines + seed_contracts(context)


STORE_SALES_FIELDS = [
    {"name": "sale_date", "logical_type": "date", "required": True, "role": "time", "primary_key": True,
     "primary_key_position": 2, "description": "Day of the sale."},
    {"name": "store_id", "logical_type": "string", "required": True, "role": "entity_key", "primary_key": True,
     "primary_key_position": 1, "pattern": "^S[0-9]{3}$", "description": "Store code, e.g. S042."},
    {"name": "region", "logical_type": "string", "required": True, "role": "dimension",
     "allowed_values": ["north", "south", "east", "west"]},
    {"name": "channel", "logical_type": "string", "required": True, "role": "dimension", "primary_key": True,
     "primary_key_position": 3, "allowed_values": ["store", "online"]},
    {"name": "revenue", "logical_type": "number", "required": True, "role": "measure", "unit": "EUR", "minimum": 0},
    {"name": "units", "logical_type": "integer", "required": True, "role": "measure", "unit": "items", "minimum": 0},
    {"name": "returns", "logical_type": "integer", "required": False, "role": "measure", "unit": "items", "minimum": 0},
    {"name": "manager_email", "logical_type": "string", "required": False, "role": "attribute",
     "classification": "confidential", "max_length": 200},
]  # fmt: skip
STORE_SALES_RULES = [
    {"field": "revenue", "kind": "range", "severity": "error", "params": {"min": 0, "max": 1000000}},
    {"field": "store_id", "kind": "not_null", "severity": "error"},
    {"field": "returns", "kind": "completeness", "severity": "warning", "threshold": 5},  # at most 5 % missing
    {"field": None, "kind": "freshness", "severity": "warning", "params": {"max_age_hours": 36}},
    {"field": None, "kind": "row_count", "severity": "error", "params": {"min": 1, "max": 100000}},
]


def seed_contracts(context: dict[str, Any]) -> list[str]:
    """Acme's store-sales contract: 1.0.0 active, 1.1.0 proposed (adds an optional field); policies."""
    from datetime import timedelta

    from apps.host.models import DataContract, Policy

    acme = context["tenants"]["acme"]
    steward = services.user_get_or_create(username="acme-steward")
    admin = services.user_get_or_create(username="acme-admin")
    if DataContract.objects.filter(tenant=acme, key="store-sales").exists():
        return ["contract store-sales exists"]
    contract = services.contract_create(actor=steward, tenant=acme, key="store-sales", name="Store sales",
                                        domain="retail", owner=steward,
                                        description="Daily sales per store and channel.")  # fmt: skip
    v1 = services.contract_version_create(
        actor=steward, contract=contract, version="1.0.0", fields=STORE_SALES_FIELDS, quality_rules=STORE_SALES_RULES,
        dataset="store_sales", sla_freshness=timedelta(hours=36), sla_completeness=99, sla_availability=99.5,
        support=[{"channel": "retail-data", "tool": "slack", "url": "https://example.com/retail-data"}],
    )  # fmt: skip
    services.contract_version_propose(actor=steward, version=v1)
    services.contract_version_approve(actor=admin, version=v1, comment="Matches the store feed.")
    services.contract_version_activate(actor=admin, version=v1)
    v11_fields = [*STORE_SALES_FIELDS, {"name": "promotion", "logical_type": "string", "role": "dimension"}]
    v11 = services.contract_version_create(
        actor=steward, contract=contract, version="1.1.0", fields=v11_fields, quality_rules=STORE_SALES_RULES,
        dataset="store_sales", notes="Adds the promotion a sale belongs to.", sla_freshness=v1.sla_freshness,
        sla_completeness=v1.sla_completeness, sla_availability=v1.sla_availability, support=v1.support,
    )  # fmt: skip
    services.contract_version_propose(actor=steward, version=v11, comment="Marketing needs promotion uplift.")
    operator = context["operator"]
    if not Policy.objects.filter(tenant__isnull=True).exists():
        platform = services.policy_create(actor=operator, kind="publication_approval", name="Four eyes on publishing",
                                          parameters={"four_eyes": True})  # fmt: skip
        services.policy_activate(actor=operator, policy=platform)
    for kind, name, parameters in (
        ("quality_gate", "Acme quality gate", {"min_batch_pass_rate": 95, "min_publish_pass_rate": 99,
                                               "on_failure": "accept_valid_records"}),
        ("export_control", "Acme exports", {"allowed_formats": ["csv", "parquet", "json"], "max_rows": 1000000,
                                            "max_classification": "internal"}),
        ("classification_handling", "Acme sensitive fields", {"confidential": "masked", "restricted": "excluded"}),
    ):  # fmt: skip
        services.policy_activate(actor=admin, policy=services.policy_create(
            actor=admin, tenant=acme, kind=kind, name=name, parameters=parameters))  # fmt: skip
    return ["contract store-sales: 1.0.0 active, 1.1.0 proposed (approve it as acme-admin)",
            "policies: platform four-eyes publishing; acme quality gate, exports, sensitive fields"]  # fmt: skip
