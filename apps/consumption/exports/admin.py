"""The portal's view of exports: who took what out, how, and the file of a background job."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html

from apps.consumption.exports import services
from apps.consumption.exports.models import ExportJob, ExportStatusChoices
from apps.kernel.admin import ReadOnlyTenantScopedAdmin


@admin.register(ExportJob)
class ExportJobAdmin(ReadOnlyTenantScopedAdmin):
    list_display = ("id", "dataset", "format", "mode", "status", "row_count", "size_bytes", "requested_by",
                    "created_at", "download")  # fmt: skip
    list_filter = ("status", "mode", "format", "dataset")
    list_select_related = ("requested_by",)
    search_fields = ("checksum",)
    date_hierarchy = "created_at"
    readonly_fields = ("dataset", "format", "mode", "status", "requested_by", "filters", "columns", "treatments",
                       "row_count", "checksum", "size_bytes", "started_at", "finished_at", "duration",
                       "error", "download", "created_at")  # fmt: skip
    exclude = ("file", "tenant")

    @admin.display(description="duration (s)")
    def duration(self, job: ExportJob) -> Any:
        return job.duration_seconds

    @admin.display(description="file")
    def download(self, job: ExportJob) -> str:
        if job.status != ExportStatusChoices.COMPLETED or not job.file:
            return "—"
        url = reverse("export-job-download", args=[job.pk])
        token = services.export_download_token(job=job)
        return format_html('<a href="{}?signature={}">download</a>', url, token)
