"""Exports API: `GET /api/v1/exports/<dataset>/` and the jobs behind the large ones.

An export takes the same filters as the dataset's query API, plus `format` and `fields`. Up to
AURUM_EXPORT_STREAM_MAX_ROWS rows it streams in the response (200; `X-Export-Id` names its record,
whose row count and SHA-256 are filled in when the stream ends); above that it answers 202 with
the job (`Location`: the job), which a worker writes to storage; the job then carries a signed
`download_url` that expires. A refusal by the export policies is a 403 `export-refused` problem
whose `unmet` lists every condition not met.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import FileResponse, StreamingHttpResponse
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import generics, status
from rest_framework.decorators import action
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.request import Request
from rest_framework.response import Response

from apps.consumption.exports import services
from apps.consumption.exports.api.serializers import ExportJobSerializer
from apps.consumption.exports.datasets import Dataset
from apps.consumption.exports.models import ExportFormatChoices, ExportJob
from apps.consumption.exports.writers import CONTENT_TYPES
from apps.kernel.api.problems import PROBLEM_CONTENT_TYPE
from apps.kernel.api.serializers import ProblemSerializer
from apps.kernel.api.viewsets import TenantReadOnlyViewSet, TenantScopedMixin


class IgnoreFormatParameter(DefaultContentNegotiation):
    """`format` names the export's file format here, not a DRF renderer: answer JSON (problems)."""

    def select_renderer(self, request: Any, renderers: list[Any], format_suffix: str | None = None) -> Any:
        return renderers[0], renderers[0].media_type


def _filter_parameters(dataset: Dataset) -> list[OpenApiParameter]:
    parameters = []
    for name, declared in dataset.filterset.base_filters.items():
        help_text = declared.extra.get("help_text") or f"Filter on {declared.field_name} ({declared.lookup_expr})."
        parameters.append(OpenApiParameter(name, str, description=str(help_text)))
    parameters.append(OpenApiParameter("dim.<name>", str, description="Rows whose dimension <name> equals the value."))
    return parameters


class DatasetExportView(TenantScopedMixin, generics.GenericAPIView):
    """Export a dataset as CSV, JSON, NDJSON, Parquet or XLSX (streamed, or a background job)."""

    dataset: Dataset
    content_negotiation_class = IgnoreFormatParameter
    pagination_class = None
    filter_backends: list[Any] = []
    http_method_names = ["get", "head", "options"]

    def get(self, request: Request, *args: Any, **kwargs: Any) -> Any:
        context = self.tenant_context
        params = request.query_params.dict()
        prepared = services.export_prepare(tenant=context.tenant, dataset=self.dataset.name,
                                           format=params.get("format", "csv"), params=params)  # fmt: skip
        if prepared.row_count > settings.AURUM_EXPORT_STREAM_MAX_ROWS:
            job = services.export_job_create(actor=request.user, prepared=prepared)
            job.refresh_from_db()  # in embedded mode the job has already run
            location = reverse("export-job-detail", args=[job.pk])
            body = ExportJobSerializer(job, context={"request": request}).data
            return Response(body, status=status.HTTP_202_ACCEPTED, headers={"Location": location})
        job, body = services.export_stream(actor=request.user, prepared=prepared)
        response = StreamingHttpResponse(body, content_type=CONTENT_TYPES[prepared.format])
        response["Content-Disposition"] = f'attachment; filename="{job.filename}"'
        response["X-Export-Id"] = str(job.pk)
        response["X-Export-Rows"] = str(prepared.row_count)
        response["Cache-Control"] = "private, no-store"
        return response


# JSON types of the column kinds as the JSON writer renders them (decimals as text, no precision lost).
JSON_COLUMN_SCHEMAS: dict[str, dict[str, Any]] = {
    "int": {"type": "integer"},
    "str": {"type": "string"},
    "bool": {"type": "boolean"},
    "decimal": {"type": "string", "format": "decimal"},
    "datetime": {"type": "string", "format": "date-time"},
    "json": {},
}


def json_rows_schema(dataset: Dataset) -> dict[str, Any]:
    """The `format=json` body: an array of row objects, one property per column kept by `fields`.
    Any value can be null (an empty column, or one an export policy masked)."""
    properties = {
        column.name: {**JSON_COLUMN_SCHEMAS.get(column.kind, {}), "nullable": True,
                      **({"description": column.description} if column.description else {})}
        for column in dataset.columns
    }  # fmt: skip
    return {"type": "array", "items": {"type": "object", "properties": properties}}


def export_view_for(dataset: Dataset) -> type[DatasetExportView]:
    """One view class per dataset, so each route names its model (tenant-isolation tests walk them)."""
    binary = {(200, CONTENT_TYPES[f].split(";")[0]): OpenApiTypes.BINARY for f in ExportFormatChoices.values}
    binary[(200, CONTENT_TYPES["json"])] = json_rows_schema(dataset)
    view = type(
        f"{dataset.model.__name__}ExportView",
        (DatasetExportView,),
        {"dataset": dataset, "queryset": dataset.model.objects.all(), "__doc__": f"Export {dataset.title}."},
    )

    def get(self: DatasetExportView, request: Request, *args: Any, **kwargs: Any) -> Any:
        return DatasetExportView.get(self, request, *args, **kwargs)

    # A function of its own per dataset: extend_schema annotates the function it decorates.
    view.get = extend_schema(
        operation_id=f"exports_{dataset.name.replace('-', '_')}",
        summary=f"Export {dataset.title}",
        description=(
            f"{dataset.title} as a file, with the same filters as their query API. Up to "
            "AURUM_EXPORT_STREAM_MAX_ROWS rows the file streams (200); above, 202 with the export job to poll. "
            "403 `export-refused` lists every unmet policy condition in `unmet`."
        ),
        parameters=[
            OpenApiParameter("format", str, enum=ExportFormatChoices.values, description="File format (csv)."),
            OpenApiParameter("fields", str, description=f"Columns to keep: {', '.join(dataset.column_names)}."),
            *_filter_parameters(dataset),
        ],
        # With media-type keys for the files, every other response needs its media type spelled out too.
        responses={
            **binary,
            (202, "application/json"): ExportJobSerializer,
            (400, PROBLEM_CONTENT_TYPE): ProblemSerializer,
            (403, PROBLEM_CONTENT_TYPE): ProblemSerializer,
        },
    )(get)
    return view


class ExportJobViewSet(TenantReadOnlyViewSet):
    """The tenant's exports (streamed and background), newest first; `download` with a signed link."""

    queryset = ExportJob.objects.select_related("requested_by")
    serializer_class = ExportJobSerializer
    filterset_fields = ("dataset", "format", "mode", "status")

    @extend_schema(
        parameters=[OpenApiParameter("signature", str, required=True, description="The token of download_url.")],
        responses={
            (200, "application/octet-stream"): OpenApiTypes.BINARY,
            409: OpenApiResponse(ProblemSerializer, description="The export has no file (yet)."),
        },
    )
    @action(detail=True, methods=["get"])
    def download(self, request: Request, pk: str | None = None) -> Any:
        """The job's file, through its signed link: valid for this tenant and until it expires."""
        job = self.get_object()
        services.export_download_check(job=job, tenant=self.tenant_context.tenant,
                                       token=request.query_params.get("signature", ""))  # fmt: skip
        response = FileResponse(job.file.open("rb"), as_attachment=True, filename=job.filename,
                                 content_type=CONTENT_TYPES[job.format])  # fmt: skip
        response["X-Export-Checksum-SHA256"] = job.checksum
        response["Cache-Control"] = "private, no-store"
        return response
