"""Host services: every write to tenants and memberships goes through here.

Each service is one transaction that records the change, its audit actor and a domain event.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction

from apps.host.choices import RoleChoices, TenantStatusChoices
from apps.host.models import Membership, Tenant
from apps.kernel.audit import audit_actor
from apps.runtime.events import publish_event


@transaction.atomic
def tenant_create(*, actor: Any, slug: str, name: str, timezone: str = "UTC") -> Tenant:
    """Create an active tenant."""
    tenant = Tenant(slug=slug, name=name, timezone=timezone)
    tenant.full_clean()
    with audit_actor(actor):
        tenant.save()
    publish_event("tenant.created", {"tenant": tenant.slug, "name": tenant.name}, tenant=tenant, actor=actor)
    return tenant


@transaction.atomic
def tenant_update(*, actor: Any, tenant: Tenant, name: str, timezone: str) -> Tenant:
    """Rename a tenant or change its timezone (slug and status have their own rules)."""
    tenant.name, tenant.timezone = name, timezone
    tenant.full_clean(exclude=["slug"])
    with audit_actor(actor):
        tenant.save(update_fields=["name", "timezone", "updated_at"])
    return tenant


@transaction.atomic
def tenant_set_status(*, actor: Any, tenant: Tenant, status: str) -> Tenant:
    """Suspend or reactivate a tenant. A suspended tenant's API access is refused at once."""
    if status not in TenantStatusChoices.values:
        raise ValidationError({"status": f"Unknown status {status!r}."})
    if tenant.status == status:
        return tenant
    tenant.status = status
    with audit_actor(actor):
        tenant.save(update_fields=["status", "updated_at"])
    event = "tenant.suspended" if status == TenantStatusChoices.SUSPENDED else "tenant.activated"
    publish_event(event, {"tenant": tenant.slug}, tenant=tenant, actor=actor)
    return tenant


@transaction.atomic
def membership_set(*, actor: Any, tenant: Tenant, user: Any, role: str) -> Membership:
    """Give `user` the `role` in `tenant`, creating or changing the membership."""
    if role not in RoleChoices.values:
        raise ValidationError({"role": f"Unknown role {role!r}; use one of {', '.join(RoleChoices.values)}."})
    membership = Membership.objects.select_for_update().filter(tenant=tenant, user=user).first()
    previous = membership.role if membership else None
    if membership is None:
        membership = Membership(tenant=tenant, user=user, role=role)
    elif previous == role:
        return membership
    membership.role = role
    with audit_actor(actor):
        membership.save()
    publish_event(
        "membership.changed",
        {
            "tenant": tenant.slug,
            "user": user.get_username(),
            "user_id": user.pk,
            "role": role,
            "previous_role": previous,
        },
        tenant=tenant,
        actor=actor,
    )
    return membership


@transaction.atomic
def membership_remove(*, actor: Any, membership: Membership) -> None:
    """Remove a user from a tenant; their API tokens for the tenant are revoked by a handler."""
    payload = {
        "tenant": membership.tenant.slug,
        "user": membership.user.get_username(),
        "user_id": membership.user_id,
        "role": membership.role,
    }
    tenant = membership.tenant
    with audit_actor(actor):
        membership.delete()
    publish_event("membership.removed", payload, tenant=tenant, actor=actor)


def user_get_or_create(*, username: str, email: str = "", password: str | None = None, **fields: Any) -> Any:
    """Used by the demo seeder and tests: an account, created once."""
    user_model = get_user_model()
    user, created = user_model.objects.get_or_create(username=username, defaults={"email": email, **fields})
    if created and password:
        user.set_password(password)
        user.save(update_fields=["password"])
    return user
