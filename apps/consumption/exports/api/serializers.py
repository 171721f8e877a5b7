from __future__ import annotations

from django.conf import settings
from django.urls import reverse
from rest_framework import serializers

from apps.consumption.exports import services
from apps.consumption.exports.models import ExportJob, ExportStatusChoices


class ExportJobSerializer(serializers.ModelSerializer):
    requested_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    duration_seconds = serializers.FloatField(read_only=True, allow_null=True)
    download_url = serializers.SerializerMethodField(
        help_text="Signed link to the file (background jobs, once completed); expires after download_expires_in s."
    )
    download_expires_in = serializers.SerializerMethodField(help_text="Seconds the download link stays valid.")

    class Meta:
        model = ExportJob
        fields = ("id", "dataset", "format", "mode", "status", "filters", "columns", "treatments", "row_count",
                  "checksum", "size_bytes", "requested_by", "created_at", "started_at", "finished_at",
                  "duration_seconds", "error", "download_url", "download_expires_in")  # fmt: skip
        read_only_fields = fields

    def _downloadable(self, job: ExportJob) -> bool:
        return job.status == ExportStatusChoices.COMPLETED and bool(job.file)

    def get_download_url(self, job: ExportJob) -> str | None:
        if not self._downloadable(job):
            return None
        path = reverse("export-job-download", args=[job.pk])
        url = f"{path}?signature={services.export_download_token(job=job)}"
        request = self.context.get("request")
        return request.build_absolute_uri(url) if request is not None else url

    def get_download_expires_in(self, job: ExportJob) -> int | None:
        return settings.AURUM_EXPORT_LINK_MAX_AGE if self._downloadable(job) else None
