"""Schema registry: subjects with ordered JSON Schema versions, per tenant.

Modelled on the Confluent Schema Registry so its clients work unchanged: a schema's
content is stored once per tenant (`RegisteredSchema`, whose id is the "schema id"),
and a subject's versions point at it, numbered 1, 2, 3… in registration order.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from apps.kernel.models import TenantOwnedModel, TenantQuerySet, TimeStampedModel
from apps.utilities.choices import DEFAULT_COMPATIBILITY, CompatibilityChoices


class RegistryConfig(TimeStampedModel):
    """A tenant's default compatibility level, used by subjects that set none."""

    tenant = models.OneToOneField("host.Tenant", on_delete=models.CASCADE, related_name="+")
    compatibility = models.CharField(max_length=24, choices=CompatibilityChoices.choices, default=DEFAULT_COMPATIBILITY)

    objects = TenantQuerySet.as_manager()

    class Meta:
        verbose_name = "registry default"

    def __str__(self) -> str:
        return f"{self.tenant}: {self.compatibility}"


class SchemaSubject(TenantOwnedModel):
    """A named line of schema versions, e.g. `contract.orders` or a Kafka topic's `orders-value`."""

    name = models.CharField(max_length=255)
    compatibility = models.CharField(
        max_length=24, choices=CompatibilityChoices.choices, blank=True, help_text="Empty: the tenant's default."
    )
    lenient = models.BooleanField(
        default=False,
        help_text="Adding or removing an optional property is always compatible, whatever the content model.",
    )

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["tenant", "name"], name="utilities_subject_unique_name")]

    def __str__(self) -> str:
        return self.name


class RegisteredSchema(TenantOwnedModel):
    """One schema content, stored once per tenant; its primary key is the registry's schema id."""

    schema = models.JSONField()
    fingerprint = models.CharField(max_length=64, help_text="SHA-256 of the canonical JSON.")
    schema_type = models.CharField(max_length=16, default="JSON")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "fingerprint"], name="utilities_schema_unique_content")
        ]

    def __str__(self) -> str:
        return f"schema {self.pk}"


class SchemaVersionQuerySet(TenantQuerySet):
    tenant_lookup = "subject__tenant"


class SchemaVersion(models.Model):
    """Version N of a subject. Immutable once registered."""

    subject = models.ForeignKey(SchemaSubject, on_delete=models.CASCADE, related_name="versions")
    version = models.PositiveIntegerField()
    schema = models.ForeignKey(RegisteredSchema, on_delete=models.PROTECT, related_name="versions")
    breaking = models.BooleanField(
        default=False, help_text="Registered despite failing the subject's compatibility check, with confirmation."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    objects = SchemaVersionQuerySet.as_manager()

    class Meta:
        ordering = ["subject", "version"]
        constraints = [
            models.UniqueConstraint(fields=["subject", "version"], name="utilities_version_unique_number"),
            models.UniqueConstraint(fields=["subject", "schema"], name="utilities_version_unique_schema"),
        ]

    def __str__(self) -> str:
        return f"{self.subject.name} v{self.version}"


from apps.utilities.search.models import SearchDocument  # noqa: E402,F401
