"""Host selectors: the reads other apps may use."""

from __future__ import annotations

from typing import Any

from django.db import models

from apps.host.models import Membership, Tenant
from apps.kernel.context import MembershipInfo


def memberships_for_user(*, user: Any) -> tuple[MembershipInfo, ...]:
    """All of a user's memberships with their tenants, in one query."""
    if not getattr(user, "is_authenticated", False):
        return ()
    rows = Membership.objects.filter(user=user).select_related("tenant").order_by("tenant__slug")
    return tuple(
        MembershipInfo(
            tenant_id=m.tenant_id,
            tenant_slug=m.tenant.slug,
            tenant_name=m.tenant.name,
            tenant_active=m.tenant.is_active,
            role=m.role,
        )
        for m in rows
    )


def membership_role(*, user: Any, tenant: Any) -> str | None:
    return Membership.objects.filter(user=user, tenant=tenant).values_list("role", flat=True).first()


def tenant_get(*, pk: Any = None, slug: str | None = None) -> Tenant | None:
    queryset = Tenant.objects.all()
    if pk is not None:
        return queryset.filter(pk=pk).first()
    return queryset.filter(slug=slug).first()


def tenants_all() -> list[Tenant]:
    return list(Tenant.objects.order_by("slug"))


def contract_version_diff(*, version: Any, against: str | None = None) -> list[Any]:
    """Readable schema changes from `against` (default: the previous version) to `version`."""
    from django.core.exceptions import ValidationError

    from apps.host.contracts.jsonschema import version_json_schema
    from apps.host.models import ContractVersion
    from apps.utilities.compatibility import diff

    siblings = ContractVersion.objects.filter(contract=version.contract).exclude(pk=version.pk)
    if against:
        base = siblings.filter(version=against).first()
        if base is None:
            raise ValidationError({"against": f"No version '{against}' of contract '{version.contract.key}'."})
    else:
        base = (
            siblings.filter(
                models.Q(major__lt=version.major)
                | models.Q(major=version.major, minor__lt=version.minor)
                | models.Q(major=version.major, minor=version.minor, patch__lt=version.patch)
            )
            .order_by("-major", "-minor", "-patch")
            .first()
        )
    # A first version is compared with the same schema without fields: its diff lists only them.
    old = version_json_schema(base) if base else version_json_schema(version, fields=[])
    return diff(old, version_json_schema(version))
