"""Security models: the outbound allow list."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from apps.kernel.models import TimeStampedModel


class OutboundAllowRule(TimeStampedModel):
    """Lets `outbound.fetch` reach one host its SSRF guard would refuse (private, loopback…).

    Written by platform admins only: a tenant that could allow hosts itself could point a
    webhook at the database. A rule names the host exactly as the URL does (hostname or IP
    literal; no wildcards, no resolving), optionally one port, and one tenant or, when
    `tenant_scope` is empty, every tenant. Cloud metadata addresses stay refused whatever a
    rule says.

    The tenant field is not called `tenant` on purpose: the row is not tenant-owned data
    (tenants never see or edit it), and the generic isolation suite treats any model with a
    `tenant` field as tenant-owned.
    """

    tenant_scope = models.ForeignKey(
        "host.Tenant",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
        verbose_name="tenant",
        help_text="The tenant whose requests may reach the host. Empty: every tenant (platform-wide).",
    )
    host = models.CharField(
        max_length=255,
        db_index=True,
        help_text="Exact hostname or IP address as written in the URL, e.g. receiver.internal or 10.0.0.5.",
    )
    port = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(65535)],
        help_text="Empty: any port.",
    )
    note = models.TextField(blank=True, help_text="Why this host may be reached, and who asked.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", editable=False
    )

    class Meta:
        ordering = ["host", "port"]
        verbose_name = "outbound allow rule"

    def __str__(self) -> str:
        where = f"{self.host}:{self.port}" if self.port else self.host
        return f"{where} for {self.tenant_scope or 'every tenant'}"

    def clean(self) -> None:
        super().clean()
        from apps.security.outbound import CLOUD_METADATA, normalize_host

        try:
            self.host = normalize_host(self.host)
        except ValueError as exc:
            raise ValidationError({"host": str(exc)}) from None
        if any(self.host == str(ip) for ip in CLOUD_METADATA):
            raise ValidationError({"host": "Cloud metadata addresses are never allowed."})
