"""Builds the TenantContext of a request from the session or from an API token."""

from __future__ import annotations

from typing import Any

from apps.access.models import ApiToken
from apps.host.selectors import memberships_for_user, tenant_get
from apps.kernel.context import TenantContext
from apps.kernel.logcontext import bind

SESSION_TENANT_KEY = "aurum_tenant_id"


def context_for_session(request: Any) -> TenantContext | None:
    """The signed-in user's context: the tenant chosen in the switcher, else their first one."""
    user = request.user
    if not user.is_authenticated:
        return None
    memberships = memberships_for_user(user=user)
    chosen = request.session.get(SESSION_TENANT_KEY)
    current = next((m for m in memberships if m.tenant_id == chosen), None)
    if current is None and memberships and not user.is_superuser:
        current = memberships[0]
    if current is not None:
        tenant = tenant_get(pk=current.tenant_id)
        role = current.role
    else:  # superusers may pick any tenant, or none ("all tenants" in the portal)
        tenant = tenant_get(pk=chosen) if (user.is_superuser and chosen) else None
        role = None
    bind(user=user.get_username(), tenant=tenant.slug if tenant else "-")
    return TenantContext(user=user, tenant=tenant, role=role, memberships=memberships)


def context_for_token(token: ApiToken) -> TenantContext | None:
    """A token acts in its own tenant only, with the lesser of its scopes and its user's role."""
    memberships = memberships_for_user(user=token.user)
    current = next((m for m in memberships if m.tenant_id == token.tenant_id), None)
    if current is None:
        return None
    bind(user=token.user.get_username(), tenant=token.tenant.slug)
    return TenantContext(
        user=token.user,
        tenant=token.tenant,
        role=current.role,
        memberships=(current,),
        scopes=frozenset(token.scopes),
        token=token,
    )
