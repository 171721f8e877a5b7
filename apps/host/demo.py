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
    return lines
