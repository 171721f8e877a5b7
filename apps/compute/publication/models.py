"""Publication requests (four eyes before a publication exists) and restatements (proposed new versions
of published numbers). What was published is storage's `PublishedOutput`."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from apps.compute.publication.choices import PublicationRequestStatusChoices, RestatementStatusChoices
from apps.kernel.models import TenantOwnedModel


class PublicationRequest(TenantOwnedModel):
    """A request to publish a KPI version's values for a set of periods, waiting for a second person.

    Where the publication-approval policy demands four eyes, a steward requests and a different one
    approves; the approval evaluates every policy again and, if they pass, creates the output
    (`output`) published by the requester and approved by the approver.
    """

    kpi_version = models.ForeignKey("compute.KpiVersion", on_delete=models.PROTECT, related_name="+")
    period_ids = models.JSONField(default=list)
    period_labels = models.JSONField(default=list)
    status = models.CharField(
        max_length=12, choices=PublicationRequestStatusChoices.choices,
        default=PublicationRequestStatusChoices.PENDING, db_index=True,
    )  # fmt: skip
    comment = models.TextField(blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+", editable=False
    )
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+", editable=False
    )
    decided_at = models.DateTimeField(null=True, blank=True, editable=False)
    decision_comment = models.TextField(blank=True, editable=False)
    output = models.ForeignKey(
        "storage.PublishedOutput", null=True, blank=True, on_delete=models.PROTECT, related_name="+", editable=False
    )

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"publish {self.kpi_version} {', '.join(self.period_labels or [])}"


class Restatement(TenantOwnedModel):
    """A proposed new version of published numbers that changed: late data, a corrected GDP, a new KPI version.

    `supersedes` is the output it would replace; `values` the new value rows for that output's
    periods (computed from `kpi_version` as of `as_of`); `diff` what changed, per period and
    dimension set ([{period, period_id, dimensions, dimensions_key, old, new, delta}], old against
    the output in force for that period); `downstream` the keys of the derived KPIs that read this
    one. Proposed by Aurum (refreshed while proposed when the numbers move again), decided by a
    steward with a reason; under four eyes a first steward's approval (`first_approved_by`) waits
    for a second, different one. Approval creates the superseding output (`output`).
    """

    kpi_key = models.SlugField(max_length=100)
    kpi_version = models.ForeignKey("compute.KpiVersion", on_delete=models.PROTECT, related_name="+")
    supersedes = models.ForeignKey("storage.PublishedOutput", on_delete=models.PROTECT, related_name="+")
    period_ids = models.JSONField(default=list)
    period_labels = models.JSONField(default=list)
    values = models.JSONField(default=list)
    as_of = models.DateTimeField()
    diff = models.JSONField(default=list)
    downstream = models.JSONField(default=list, blank=True)
    trigger = models.CharField(max_length=200, blank=True)
    status = models.CharField(
        max_length=12, choices=RestatementStatusChoices.choices, default=RestatementStatusChoices.PROPOSED,
        db_index=True,
    )  # fmt: skip
    proposed_at = models.DateTimeField()
    first_approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+", editable=False
    )
    first_approved_at = models.DateTimeField(null=True, blank=True, editable=False)
    first_reason = models.TextField(blank=True, editable=False)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+", editable=False
    )
    decided_at = models.DateTimeField(null=True, blank=True, editable=False)
    reason = models.TextField(blank=True, editable=False)
    output = models.ForeignKey(
        "storage.PublishedOutput", null=True, blank=True, on_delete=models.PROTECT, related_name="+", editable=False
    )

    class Meta:
        ordering = ["-proposed_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["supersedes"],
                condition=models.Q(status=RestatementStatusChoices.PROPOSED),
                name="compute_restatement_one_open_per_output",
            )
        ]

    def __str__(self) -> str:
        return f"restate {self.kpi_key} publication {self.supersedes.version}"
