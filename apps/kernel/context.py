"""The tenant context of a request: who is asking, for which tenant, with which role and scopes.

The access app builds it (from the session or an API token) and attaches it to the request
as `request.tenant_context`; the kernel's permission classes and admin base read it. Keeping
the type here lets every app read it without importing the access app.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from apps.kernel.roles import ALL_SCOPES, PORTAL_ROLES, ROLE_SCOPES, RoleChoices


@dataclass(frozen=True)
class MembershipInfo:
    tenant_id: int
    tenant_slug: str
    tenant_name: str
    tenant_active: bool
    role: str


@dataclass(frozen=True)
class TenantContext:
    user: Any
    tenant: Any | None  # host.Tenant of this request, or None when none is chosen
    role: str | None
    memberships: tuple[MembershipInfo, ...] = ()
    scopes: frozenset[str] = field(default=ALL_SCOPES)
    token: Any | None = None

    @property
    def is_superuser(self) -> bool:
        return bool(getattr(self.user, "is_superuser", False))

    @property
    def tenant_id(self) -> int | None:
        return self.tenant.pk if self.tenant is not None else None

    @property
    def effective_role(self) -> str | None:
        """Superusers act as tenant admins of whichever tenant they chose."""
        if self.role is None and self.is_superuser and self.tenant is not None:
            return RoleChoices.ADMIN
        return self.role

    def allows(self, scope: str) -> bool:
        """True when both the token's scopes and the role in the tenant permit `scope`."""
        role = self.effective_role
        return role is not None and scope in self.scopes and scope in ROLE_SCOPES.get(role, frozenset())

    def has_role(self, roles: frozenset[str] | set[str]) -> bool:
        return self.is_superuser or self.effective_role in roles

    @property
    def can_use_portal(self) -> bool:
        return self.is_superuser or any(m.role in PORTAL_ROLES for m in self.memberships)


def get_tenant_context(request: Any) -> TenantContext | None:
    """The context the access app attached to `request`, if any (DRF or Django request)."""
    request = getattr(request, "_request", request)
    return getattr(request, "tenant_context", None)
