"""Abstract base models. Every tenant-owned row inherits `TenantOwnedModel`."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import models


class TimeStampedModel(models.Model):
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


class TenantQuerySet(models.QuerySet):
    """Reads scoped to one tenant; the only way module code should list tenant-owned rows."""

    tenant_lookup = "tenant"

    def for_tenant(self, tenant: Any) -> TenantQuerySet:
        if tenant is None:
            return self.none()
        return self.filter(**{self.tenant_lookup: tenant})


class TenantOwnedModel(TimeStampedModel):
    """A row that belongs to exactly one tenant.

    `clean()` refuses foreign keys to rows of another tenant, so a form or serializer
    can never stitch two tenants' data together.
    """

    tenant = models.ForeignKey("host.Tenant", on_delete=models.PROTECT, related_name="+")

    objects = TenantQuerySet.as_manager()

    class Meta:
        abstract = True

    def clean(self) -> None:
        super().clean()
        for fk in self._meta.concrete_fields:
            if not fk.is_relation or fk.name == "tenant" or not fk.many_to_one:
                continue
            related = getattr(self, fk.name, None)
            if related is not None and getattr(related, "tenant_id", self.tenant_id) != self.tenant_id:
                raise ValidationError({fk.name: "Belongs to another tenant."})
