"""Publication API: publish and read outputs (latest, as published on a day), four-eyes requests, restatements."""

from __future__ import annotations

from datetime import date
from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import serializers, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from apps.compute.kpis.models import KpiVersion
from apps.compute.publication import services
from apps.compute.publication.api.serializers import (
    CommentSerializer,
    PublicationRequestCreateSerializer,
    PublicationRequestSerializer,
    PublishedOutputSerializer,
    PublishSerializer,
    ReasonSerializer,
    RestatementSerializer,
)
from apps.compute.publication.models import PublicationRequest, Restatement
from apps.kernel.api.viewsets import TenantModelViewSet, TenantReadOnlyViewSet
from apps.storage.published import PublishedOutput, end_of_day, published_output_in_force

LIST_PARAMETERS = [
    OpenApiParameter("kpi", str, description="Only this KPI (its key)."),
    OpenApiParameter("kind", str, enum=["publication", "restatement", "period_close"]),
    OpenApiParameter("period", int, description="Only outputs holding this period (its id)."),
    OpenApiParameter(
        "as_published_on", OpenApiTypes.DATE,
        description="YYYY-MM-DD: per KPI, only the output in force at the end of that day (tenant time zone): "
                    "the highest publication version published by then. With `period`, the one in force for it.",
    ),
    OpenApiParameter("latest", bool, description="true: per KPI, only the newest output (with `period`: holding it)."),
]  # fmt: skip


def _version_of(tenant: Any, key: str, number: str | None) -> KpiVersion:
    versions = KpiVersion.objects.for_tenant(tenant).filter(definition__key=key).select_related("definition")
    version = versions.filter(version=number).first() if number else versions.active().first()
    if version is None:
        what = f"version {number} of KPI '{key}'" if number else f"an active version of KPI '{key}'"
        raise serializers.ValidationError({"version" if number else "kpi": [f"There is no {what} in this tenant."]})
    return version


def _periods(data: dict[str, Any]) -> list[Any]:
    return [*data.get("periods", []), *data.get("period_ids", [])]


@extend_schema_view(list=extend_schema(parameters=LIST_PARAMETERS))
class PublishedOutputViewSet(TenantModelViewSet):
    """Immutable published outputs of KPIs. POST publishes (under the host's policies); outputs are never
    changed: a restatement is a new output that supersedes the old one."""

    queryset = PublishedOutput.objects.select_related("published_by", "approved_by").order_by("kpi_key", "-version")
    serializer_class = PublishedOutputSerializer
    extra_error_codes = (409,)

    def filter_queryset(self, queryset: Any) -> Any:
        queryset = super().filter_queryset(queryset)
        if self.action != "list":
            return queryset
        params = self.request.query_params
        kpi, kind = params.get("kpi"), params.get("kind")
        period = _int_param(params, "period")
        if kpi:
            queryset = queryset.filter(kpi_key=kpi)
        if kind:
            queryset = queryset.filter(kind=kind)
        day = _date_param(params, "as_published_on")
        if day is not None or params.get("latest") in ("true", "1"):
            tenant = self.tenant_context.tenant
            moment = None if day is None else end_of_day(tenant, day)
            ids = []
            for key in sorted(set(queryset.values_list("kpi_key", flat=True))):
                output = published_output_in_force(tenant=tenant, kpi_key=key, at=moment, period_id=period)
                if output is not None:
                    ids.append(output.pk)
            return queryset.filter(pk__in=ids)
        if period is not None:
            return queryset.filter(pk__in=[o.pk for o in queryset.holding(period)])
        return queryset

    @extend_schema(request=PublishSerializer, responses={201: PublishedOutputSerializer})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        body = PublishSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        tenant = self.tenant_context.tenant
        version = _version_of(tenant, body.validated_data["kpi"], body.validated_data.get("version"))
        output = services.kpi_publish(actor=request.user, tenant=tenant, version=version,
                                      periods=_periods(body.validated_data), reason=body.validated_data["reason"])  # fmt: skip
        return Response(PublishedOutputSerializer(output).data, status=status.HTTP_201_CREATED)


def _date_param(params: Any, name: str) -> date | None:
    raw = params.get(name)
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise serializers.ValidationError({name: [f"Not a date (YYYY-MM-DD): {raw!r}."]}) from None


def _int_param(params: Any, name: str) -> int | None:
    raw = params.get(name)
    if not raw:
        return None
    try:
        return int(raw)
    except ValueError:
        raise serializers.ValidationError({name: [f"Not an id: {raw!r}."]}) from None


class PublicationRequestViewSet(TenantModelViewSet):
    """Four eyes before a publication: one steward requests, a different one approves (then it is published,
    every policy checked again) or rejects it with a comment."""

    queryset = PublicationRequest.objects.select_related("kpi_version__definition", "requested_by", "decided_by")
    serializer_class = PublicationRequestSerializer
    filterset_fields = ("status",)
    extra_error_codes = (409,)

    @extend_schema(request=PublicationRequestCreateSerializer, responses={201: PublicationRequestSerializer})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        body = PublicationRequestCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        tenant = self.tenant_context.tenant
        version = _version_of(tenant, body.validated_data["kpi"], body.validated_data.get("version"))
        row = services.publication_request_create(actor=request.user, tenant=tenant, version=version,
                                                  periods=_periods(body.validated_data),
                                                  comment=body.validated_data["comment"])  # fmt: skip
        return Response(PublicationRequestSerializer(row).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=CommentSerializer, responses={200: PublicationRequestSerializer})
    @action(detail=True, methods=["post"])
    def approve(self, request: Request, pk: str | None = None) -> Response:
        return _decide(self, request, services.publication_request_approve, "request", "comment",
                       PublicationRequestSerializer)  # fmt: skip

    @extend_schema(request=CommentSerializer, responses={200: PublicationRequestSerializer})
    @action(detail=True, methods=["post"])
    def reject(self, request: Request, pk: str | None = None) -> Response:
        return _decide(self, request, services.publication_request_reject, "request", "comment",
                       PublicationRequestSerializer)  # fmt: skip


class RestatementViewSet(TenantReadOnlyViewSet):
    """Restatements Aurum proposed because published numbers changed; a steward approves (a new output
    supersedes the old; under four eyes, a second steward's approval completes it) or rejects, with a reason."""

    queryset = Restatement.objects.select_related("kpi_version", "supersedes", "first_approved_by", "decided_by")
    serializer_class = RestatementSerializer
    filterset_fields = ("status", "kpi_key")
    extra_error_codes = (409,)

    @extend_schema(request=ReasonSerializer, responses={200: RestatementSerializer})
    @action(detail=True, methods=["post"])
    def approve(self, request: Request, pk: str | None = None) -> Response:
        return _decide(self, request, services.restatement_approve, "restatement", "reason", RestatementSerializer)

    @extend_schema(request=ReasonSerializer, responses={200: RestatementSerializer})
    @action(detail=True, methods=["post"])
    def reject(self, request: Request, pk: str | None = None) -> Response:
        return _decide(self, request, services.restatement_reject, "restatement", "reason", RestatementSerializer)


def _decide(view: Any, request: Request, service: Any, subject: str, text: str, answer: Any) -> Response:
    """Approve or reject: the row first (another tenant's is a 404 before the body is read), then the
    body's comment or reason, then the service."""
    target = view.get_object()
    body = (CommentSerializer if text == "comment" else ReasonSerializer)(data=request.data)
    body.is_valid(raise_exception=True)
    row = service(actor=request.user, **{subject: target, text: body.validated_data[text]})
    return Response(answer(row).data)
