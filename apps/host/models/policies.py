"""Platform policies: typed rules with a scope (platform, tenant, contract), versioned."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models

from apps.host.choices import PolicyKindChoices, PolicyStatusChoices
from apps.kernel.models import TimeStampedModel


class PolicyQuerySet(models.QuerySet):
    def for_tenant(self, tenant: object) -> PolicyQuerySet:
        """A tenant's own policies and the platform-wide ones that apply to it."""
        if tenant is None:
            return self.none()
        return self.filter(models.Q(tenant=tenant) | models.Q(tenant__isnull=True))

    def active(self) -> PolicyQuerySet:
        return self.filter(status=PolicyStatusChoices.ACTIVE)


class Policy(TimeStampedModel):
    """One version of a policy. Versions of the same policy share `lineage`.

    Scope follows from the foreign keys: no tenant = platform-wide; a tenant and no
    contract = the whole tenant; a contract = that contract only. The most specific
    active policy of a kind decides; `parameters` are validated by the kind's schema.
    """

    lineage = models.UUIDField(default=uuid.uuid4, editable=False, db_index=True)
    version = models.PositiveIntegerField(default=1, editable=False)
    tenant = models.ForeignKey("host.Tenant", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    contract = models.ForeignKey(
        "host.DataContract", null=True, blank=True, on_delete=models.PROTECT, related_name="policies"
    )
    kind = models.CharField(max_length=32, choices=PolicyKindChoices.choices)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    parameters = models.JSONField(default=dict)
    status = models.CharField(
        max_length=16, choices=PolicyStatusChoices.choices, default=PolicyStatusChoices.DRAFT, db_index=True
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", editable=False
    )
    activated_at = models.DateTimeField(null=True, blank=True, editable=False)
    retired_at = models.DateTimeField(null=True, blank=True, editable=False)

    objects = PolicyQuerySet.as_manager()

    class Meta:
        ordering = ["kind", "name", "-version"]
        verbose_name_plural = "policies"
        constraints = [
            models.UniqueConstraint(fields=["lineage", "version"], name="host_policy_unique_version"),
            models.CheckConstraint(
                condition=models.Q(contract__isnull=True) | models.Q(tenant__isnull=False),
                name="host_policy_contract_needs_tenant",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} v{self.version}"

    @property
    def scope(self) -> str:
        if self.contract_id:
            return "contract"
        return "tenant" if self.tenant_id else "platform"

    @property
    def scope_label(self) -> str:
        if self.contract_id:
            return f"contract {self.contract.key}"
        return f"tenant {self.tenant.slug}" if self.tenant_id else "platform-wide"
