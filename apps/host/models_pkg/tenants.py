"""Host models: tenants and who belongs to them."""

from __future__ import annotations

import zoneinfo

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models

from apps.host.choices import RoleChoices, TenantStatusChoices
from apps.host.querysets import TenantRowQuerySet
from apps.kernel.models import TenantOwnedModel, TenantQuerySet, TimeStampedModel

slug_validator = RegexValidator(r"^[a-z0-9](?:[a-z0-9-]{0,48}[a-z0-9])?$", "Lowercase letters, digits and dashes.")


def validate_timezone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(f"'{value}' is not an IANA time zone (e.g. Europe/Berlin).")


class Tenant(TimeStampedModel):
    """An organisation served by Aurum. Every governed row belongs to exactly one tenant."""

    slug = models.CharField(max_length=50, unique=True, validators=[slug_validator])
    name = models.CharField(max_length=200)
    status = models.CharField(max_length=20, choices=TenantStatusChoices.choices, default=TenantStatusChoices.ACTIVE)
    timezone = models.CharField(max_length=64, default="UTC", validators=[validate_timezone])

    objects = TenantRowQuerySet.as_manager()

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.name

    @property
    def is_active(self) -> bool:
        return self.status == TenantStatusChoices.ACTIVE

    @property
    def tenant_id(self) -> int:  # lets generic tenant checks treat a tenant as its own owner
        return self.pk


class Membership(TenantOwnedModel):
    """A user's role in one tenant. A user may belong to several tenants with different roles."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="aurum_memberships")
    role = models.CharField(max_length=20, choices=RoleChoices.choices)

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["tenant__slug", "user__username"]
        constraints = [models.UniqueConstraint(fields=["tenant", "user"], name="host_membership_unique_user")]

    def __str__(self) -> str:
        return f"{self.user} — {self.get_role_display()} @ {self.tenant.slug}"
