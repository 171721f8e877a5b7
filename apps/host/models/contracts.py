"""Data contracts: what a dataset must look like, agreed by two people, versioned."""

from __future__ import annotations

import re

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models

from apps.host.choices import (
    ClassificationChoices,
    ContractStatusChoices,
    FieldRoleChoices,
    LogicalTypeChoices,
    QualityRuleKindChoices,
    SeverityChoices,
    SurvivorshipChoices,
)
from apps.kernel.models import TenantOwnedModel, TenantQuerySet

SEMVER = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$")


def parse_semver(value: str) -> tuple[int, int, int]:
    match = SEMVER.match(value or "")
    if match is None:
        raise ValidationError(f"'{value}' is not a semantic version like 1.2.0.")
    return int(match[1]), int(match[2]), int(match[3])


def validate_semver(value: str) -> None:
    parse_semver(value)


class DataContract(TenantOwnedModel):
    """A dataset's contract: its identity and owner; the rules live in its versions."""

    key = models.SlugField(max_length=100, help_text="Stable identifier within the tenant, e.g. 'store-sales'.")
    name = models.CharField(max_length=200)
    domain = models.CharField(max_length=100, blank=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    description = models.TextField(blank=True)
    survivorship = models.CharField(
        max_length=16,
        choices=SurvivorshipChoices.choices,
        default=SurvivorshipChoices.LATEST,
        help_text="Which value wins when a Golden Data Point already exists (a steward override always wins).",
    )

    class Meta:
        ordering = ["key"]
        constraints = [models.UniqueConstraint(fields=["tenant", "key"], name="host_contract_unique_key")]
        permissions = [("approve_datacontract", "Can approve versions of this contract")]

    def __str__(self) -> str:
        return self.name

    @property
    def registry_subject(self) -> str:
        """The schema registry subject its versions register under."""
        return f"contract.{self.key}"


class ContractVersionQuerySet(TenantQuerySet):
    def active(self) -> ContractVersionQuerySet:
        return self.filter(status=ContractStatusChoices.ACTIVE)


class ContractVersion(TenantOwnedModel):
    """One version of a contract: schema, quality rules, SLA. Editable only as a draft.

    From proposal on, the content is frozen (its hash is taken at proposal and checked at
    approval), so what the second person approves is exactly what becomes active.
    """

    contract = models.ForeignKey(DataContract, on_delete=models.CASCADE, related_name="versions")
    version = models.CharField(max_length=64, validators=[validate_semver])
    major = models.PositiveIntegerField(editable=False, default=0)
    minor = models.PositiveIntegerField(editable=False, default=0)
    patch = models.PositiveIntegerField(editable=False, default=0)
    status = models.CharField(
        max_length=16, choices=ContractStatusChoices.choices, default=ContractStatusChoices.DRAFT, db_index=True
    )
    dataset = models.CharField(max_length=200, blank=True, help_text="Name of the dataset (ODCS schema object).")
    notes = models.TextField(blank=True, help_text="What changed and why.")
    sla_freshness = models.DurationField(null=True, blank=True, help_text="Maximum age of the newest record.")
    sla_completeness = models.DecimalField(
        max_digits=5, decimal_places=2, null=True, blank=True, help_text="Target % of non-null required values."
    )
    sla_availability = models.DecimalField(
        max_digits=6, decimal_places=3, null=True, blank=True, help_text="Target availability in %."
    )
    support = models.JSONField(default=list, blank=True, help_text="Support channels (ODCS support[]).")
    odcs = models.JSONField(
        default=dict, blank=True, editable=False, help_text="The imported ODCS document, for what Aurum does not model."
    )
    content_hash = models.CharField(max_length=64, blank=True, editable=False)
    breaking_change_confirmed = models.BooleanField(default=False, editable=False)
    proposed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+", editable=False
    )
    proposed_at = models.DateTimeField(null=True, blank=True, editable=False)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+", editable=False
    )
    decided_at = models.DateTimeField(null=True, blank=True, editable=False)
    decision_comment = models.TextField(blank=True, editable=False)
    activated_at = models.DateTimeField(null=True, blank=True, editable=False)
    schema_version = models.ForeignKey(
        "utilities.SchemaVersion", null=True, blank=True, on_delete=models.PROTECT, related_name="+", editable=False
    )

    objects = ContractVersionQuerySet.as_manager()

    class Meta:
        ordering = ["contract", "-major", "-minor", "-patch"]
        constraints = [
            models.UniqueConstraint(fields=["contract", "version"], name="host_contractversion_unique_version"),
            models.UniqueConstraint(
                fields=["contract"],
                condition=models.Q(status=ContractStatusChoices.ACTIVE),
                name="host_contractversion_one_active",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.contract.key} {self.version}"

    def save(self, *args: object, **kwargs: object) -> None:
        if SEMVER.match(self.version or ""):
            self.major, self.minor, self.patch = parse_semver(self.version)
        super().save(*args, **kwargs)

    @property
    def is_editable(self) -> bool:
        return self.status == ContractStatusChoices.DRAFT

    @property
    def semver(self) -> tuple[int, int, int]:
        return self.major, self.minor, self.patch


class ContractField(models.Model):
    """A field of a contract version's schema."""

    version = models.ForeignKey(ContractVersion, on_delete=models.CASCADE, related_name="fields")
    position = models.PositiveIntegerField(default=0)
    name = models.CharField(max_length=200)
    logical_type = models.CharField(max_length=16, choices=LogicalTypeChoices.choices)
    required = models.BooleanField(default=False)
    unique = models.BooleanField(default=False)
    primary_key = models.BooleanField(default=False, help_text="Part of the primary / natural key.")
    primary_key_position = models.PositiveIntegerField(null=True, blank=True)
    pattern = models.CharField(max_length=500, blank=True, help_text="Regular expression the value must match.")
    minimum = models.FloatField(null=True, blank=True)
    maximum = models.FloatField(null=True, blank=True)
    allowed_values = models.JSONField(default=list, blank=True)
    max_length = models.PositiveIntegerField(null=True, blank=True)
    unit = models.CharField(max_length=50, blank=True)
    classification = models.CharField(
        max_length=16, choices=ClassificationChoices.choices, default=ClassificationChoices.INTERNAL
    )
    description = models.TextField(blank=True)
    role = models.CharField(max_length=16, choices=FieldRoleChoices.choices, default=FieldRoleChoices.ATTRIBUTE)
    extra = models.JSONField(
        default=dict, blank=True, editable=False, help_text="ODCS attributes Aurum does not model."
    )

    class Meta:
        ordering = ["version", "position", "id"]
        constraints = [models.UniqueConstraint(fields=["version", "name"], name="host_field_unique_name")]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        super().clean()
        if self.minimum is not None and self.maximum is not None and self.minimum > self.maximum:
            raise ValidationError({"maximum": "The maximum is below the minimum."})
        if self.pattern:
            try:
                re.compile(self.pattern)
            except re.error as exc:
                raise ValidationError({"pattern": f"Not a valid regular expression: {exc}."}) from None
        if not isinstance(self.allowed_values, list):
            raise ValidationError({"allowed_values": "A list of values."})


class QualityRule(models.Model):
    """A quality rule of a contract version, on one field or on the whole dataset."""

    version = models.ForeignKey(ContractVersion, on_delete=models.CASCADE, related_name="quality_rules")
    field = models.ForeignKey(
        ContractField, null=True, blank=True, on_delete=models.CASCADE, related_name="quality_rules"
    )
    kind = models.CharField(max_length=24, choices=QualityRuleKindChoices.choices)
    severity = models.CharField(max_length=8, choices=SeverityChoices.choices, default=SeverityChoices.ERROR)
    threshold = models.FloatField(
        null=True, blank=True, help_text="Allowed failure level: % for ratios and completeness, rows otherwise."
    )
    params = models.JSONField(default=dict, blank=True, help_text="Rule arguments, e.g. {'min': 0, 'max': 100}.")
    description = models.TextField(blank=True)
    extra = models.JSONField(
        default=dict, blank=True, editable=False, help_text="ODCS attributes Aurum does not model."
    )

    class Meta:
        ordering = ["version", "id"]

    def __str__(self) -> str:
        target = self.field.name if self.field_id else "dataset"
        return f"{self.get_kind_display()} on {target}"


class ContractTransition(models.Model):
    """One step of a version's lifecycle: who moved it from where to where, and why."""

    version = models.ForeignKey(ContractVersion, on_delete=models.CASCADE, related_name="transitions")
    from_status = models.CharField(max_length=16, choices=ContractStatusChoices.choices, blank=True)
    to_status = models.CharField(max_length=16, choices=ContractStatusChoices.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    comment = models.TextField(blank=True)
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["version", "at", "id"]

    def __str__(self) -> str:
        return f"{self.version}: {self.from_status or '∅'} → {self.to_status}"
