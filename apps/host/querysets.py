from __future__ import annotations

from typing import Any

from apps.kernel.models import TenantQuerySet


class TenantRowQuerySet(TenantQuerySet):
    """A tenant "belongs" to itself: for_tenant(t) is the one row."""

    def for_tenant(self, tenant: Any) -> TenantRowQuerySet:
        if tenant is None:
            return self.none()
        return self.filter(pk=getattr(tenant, "pk", tenant))
