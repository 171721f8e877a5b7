"""Security reads other apps may use."""

from __future__ import annotations

from typing import Any

from django.db.models import F, Q

from apps.security.models import OutboundAllowRule


def outbound_allow_rule_match(*, host: str, port: int, tenant: Any = None) -> OutboundAllowRule | None:
    """The allow rule letting requests of `tenant` reach `host:port`, or None.

    `host` is compared exactly, in its normalized form (`outbound.normalize_host`). A rule
    without a tenant applies to every tenant and to platform requests (tenant None); a rule
    without a port applies to every port.
    """
    scope = Q(tenant_scope__isnull=True)
    if tenant is not None:
        scope |= Q(tenant_scope=tenant)
    rules = OutboundAllowRule.objects.filter(scope, Q(port__isnull=True) | Q(port=port), host=host)
    # The most specific rule first, so logs name the rule that was meant for this request.
    return rules.order_by(F("tenant_scope_id").asc(nulls_last=True), F("port").asc(nulls_last=True)).first()


def outbound_allow_rule_list(*, tenant: Any = None) -> list[OutboundAllowRule]:
    """The rules in force for `tenant`: its own and the platform-wide ones."""
    scope = Q(tenant_scope__isnull=True)
    if tenant is not None:
        scope |= Q(tenant_scope=tenant)
    return list(OutboundAllowRule.objects.filter(scope).select_related("tenant_scope"))
