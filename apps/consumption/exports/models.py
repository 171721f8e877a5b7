"""Exports: every export a consumer takes out, streamed or run in the background."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from apps.kernel.models import TenantOwnedModel


class ExportFormatChoices(models.TextChoices):
    CSV = "csv", "CSV"
    JSON = "json", "JSON array"
    NDJSON = "ndjson", "NDJSON (one JSON object per line)"
    PARQUET = "parquet", "Apache Parquet"
    XLSX = "xlsx", "Excel workbook (XLSX)"


class ExportModeChoices(models.TextChoices):
    STREAM = "stream", "Streamed in the response"
    JOB = "job", "Background job, downloaded by a signed link"


class ExportStatusChoices(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    COMPLETED = "completed", "Completed"
    FAILED = "failed", "Failed"
    EXPIRED = "expired", "Expired (file deleted after AURUM_EXPORT_FILE_DAYS)"


def export_upload_to(job: ExportJob, filename: str) -> str:
    return f"exports/{job.tenant_id}/{filename}"


class ExportJob(TenantOwnedModel):
    """One export of a dataset: who asked, with which filters and format, and what left.

    A streamed export is recorded too: its row count, size and SHA-256 are filled in when the
    stream ends (status `failed` if the client stopped reading). A background job writes its
    file to the default storage; the file is downloaded through a signed, expiring link.
    """

    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    dataset = models.CharField(max_length=64, help_text="Name of the exported dataset, e.g. 'gdps'.")
    format = models.CharField(max_length=8, choices=ExportFormatChoices.choices)
    mode = models.CharField(max_length=8, choices=ExportModeChoices.choices)
    status = models.CharField(
        max_length=12, choices=ExportStatusChoices.choices, default=ExportStatusChoices.PENDING, db_index=True
    )
    filters = models.JSONField(default=dict, blank=True, help_text="The query parameters that chose the rows.")
    columns = models.JSONField(default=list, blank=True, help_text="The columns written, in order.")
    treatments = models.JSONField(
        default=dict, blank=True, help_text="What the export policies changed: fields excluded or masked per contract."
    )
    row_count = models.BigIntegerField(null=True, blank=True, help_text="Rows written.")
    checksum = models.CharField(max_length=64, blank=True, help_text="SHA-256 of the bytes written.")
    size_bytes = models.BigIntegerField(default=0)
    file = models.FileField(upload_to=export_upload_to, max_length=500, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["tenant", "-created_at"], name="consumption_export_by_tenant")]

    def __str__(self) -> str:
        return f"export {self.pk} ({self.dataset}, {self.format})"

    @property
    def duration_seconds(self) -> float | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()

    @property
    def filename(self) -> str:
        stamp = self.created_at.strftime("%Y%m%dT%H%M%SZ") if self.created_at else "export"
        return f"{self.dataset}-{self.pk}-{stamp}.{self.format}"
