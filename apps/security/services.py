"""Security services: the outbound allow list, kept by platform admins."""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction

from apps.kernel.audit import audit_actor
from apps.kernel.errors import ForbiddenError
from apps.security.models import OutboundAllowRule

logger = logging.getLogger(__name__)

__all__ = ["outbound_allow", "outbound_disallow"]


def _require_platform_admin(actor: Any) -> None:
    # Allow rules open holes in the SSRF guard for internal addresses: a tenant role, even
    # a tenant admin's, is not enough, and neither is a Django model permission.
    if not (getattr(actor, "is_active", False) and getattr(actor, "is_superuser", False)):
        raise ForbiddenError("Only a platform admin (superuser) may change the outbound allow list.")


@transaction.atomic
def outbound_allow(
    *, actor: Any, host: str, tenant: Any = None, port: int | None = None, note: str = ""
) -> OutboundAllowRule:
    """Let `tenant`'s outbound requests (every tenant's, when None) reach `host` (on `port`, or any).

    Idempotent: the same host, port and tenant again returns the existing rule. Raises
    ForbiddenError unless `actor` is a superuser, ValidationError for a host that is not a
    hostname or IP, or that is a cloud metadata address.
    """
    _require_platform_admin(actor)
    rule = OutboundAllowRule(tenant_scope=tenant, host=host, port=port, note=note, created_by=actor)
    rule.full_clean()  # normalizes the host
    existing = OutboundAllowRule.objects.filter(tenant_scope=tenant, host=rule.host, port=port).first()
    if existing is not None:
        return existing
    with audit_actor(actor):
        rule.save()
    logger.warning("outbound allow rule %s added by %s: %s", rule.pk, actor, rule)
    return rule


@transaction.atomic
def outbound_disallow(*, actor: Any, rule: OutboundAllowRule) -> None:
    """Remove an allow rule; the host is refused again from the next request on."""
    _require_platform_admin(actor)
    description = str(rule)
    with audit_actor(actor):
        rule.delete()
    logger.warning("outbound allow rule removed by %s: %s", actor, description)
