"""Compute: where records come from, how they are normalized, and the runs that process them."""

from __future__ import annotations

import uuid
from typing import Any

from django.db import models

from apps.compute.choices import NormalizationKindChoices, PipelineRunStatusChoices, SourceKindChoices
from apps.kernel.models import TenantOwnedModel
from apps.storage.choices import PayloadFormatChoices


class Source(TenantOwnedModel):
    """A supplier of records for one contract: pushed by API, uploaded, or pulled on a schedule.

    `priority` decides survivorship under the contract's "highest source priority wins" rule.
    """

    key = models.SlugField(max_length=100, help_text="Stable identifier within the tenant.")
    name = models.CharField(max_length=200)
    contract = models.ForeignKey("host.DataContract", on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=8, choices=SourceKindChoices.choices, default=SourceKindChoices.PUSH)
    priority = models.SmallIntegerField(default=100, help_text="Higher wins under priority survivorship.")
    active = models.BooleanField(default=True)
    pull_url = models.URLField(max_length=1000, blank=True)
    pull_format = models.CharField(max_length=8, choices=PayloadFormatChoices.choices, blank=True)
    pull_every_seconds = models.PositiveIntegerField(null=True, blank=True)
    last_pulled_at = models.DateTimeField(null=True, blank=True, editable=False)
    description = models.TextField(blank=True)

    class Meta:
        ordering = ["key"]
        constraints = [models.UniqueConstraint(fields=["tenant", "key"], name="compute_source_unique_key")]

    def __str__(self) -> str:
        return self.name


class NormalizationRuleQuerySet(models.QuerySet):
    def for_tenant(self, tenant: Any) -> NormalizationRuleQuerySet:
        """The rules of the tenant's contract versions."""
        return self.filter(contract_version__tenant=tenant)


class NormalizationRule(models.Model):
    """One step of a contract version's normalization, applied in `position` order."""

    contract_version = models.ForeignKey(
        "host.ContractVersion", on_delete=models.CASCADE, related_name="normalization_rules"
    )
    position = models.PositiveIntegerField(default=0)
    kind = models.CharField(max_length=16, choices=NormalizationKindChoices.choices)
    field = models.CharField(max_length=200, help_text="The field the step writes (or renames from).")
    params = models.JSONField(default=dict, blank=True)
    description = models.TextField(blank=True)

    objects = NormalizationRuleQuerySet.as_manager()

    class Meta:
        ordering = ["contract_version", "position", "id"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.field}"


class PipelineRun(TenantOwnedModel):
    """One run of the pipeline over a batch: counts, timings, and its OpenLineage run id."""

    run_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    job = models.CharField(max_length=100, default="ingest")
    batch = models.ForeignKey("storage.IngestionBatch", null=True, blank=True, on_delete=models.PROTECT,
                              related_name="+")  # fmt: skip
    status = models.CharField(
        max_length=16, choices=PipelineRunStatusChoices.choices, default=PipelineRunStatusChoices.RUNNING
    )
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    counts = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return f"{self.job} run {self.run_id}"


from apps.compute.kpis.models import KpiDefinition, KpiTarget, KpiTransition, KpiVersion  # noqa: E402,F401
from apps.compute.publication.models import PublicationRequest, Restatement  # noqa: E402,F401
