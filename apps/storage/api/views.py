from __future__ import annotations

from typing import Any

from django.utils.dateparse import parse_datetime
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from apps.kernel.api.viewsets import TenantReadOnlyViewSet
from apps.storage import selectors, services
from apps.storage.api.serializers import (
    GdpLineageSerializer,
    GoldenDataPointSerializer,
    OverrideRemoveSerializer,
    OverrideSerializer,
)
from apps.storage.models import GoldenDataPoint


class GoldenDataPointViewSet(TenantReadOnlyViewSet):
    """Golden Data Points: current values by default; `as_of` gives what was believed at a moment,
    `history=true` every version. Lineage and steward overrides are actions on one point."""

    queryset = GoldenDataPoint.objects.select_related("contract", "source", "overridden_by")
    serializer_class = GoldenDataPointSerializer
    filterset_fields = {
        "contract__key": ["exact"], "measure": ["exact"], "entity_key": ["exact"], "batch": ["exact"],
        "superseded_by_batch": ["exact"], "observed_at": ["gte", "lt"], "is_override": ["exact"],
    }  # fmt: skip
    scope_map = {"override": "write", "remove_override": "write"}

    def get_queryset(self) -> Any:
        queryset = super().get_queryset()
        if self.action != "list":
            return queryset
        as_of = self.request.query_params.get("as_of")
        if as_of:
            moment = parse_datetime(as_of)
            if moment is None:
                raise serializers.ValidationError({"as_of": ["An ISO 8601 date-time, e.g. 2026-11-01T00:00:00Z."]})
            return queryset.as_of(moment)
        if self.request.query_params.get("history") in ("true", "1"):
            return queryset
        return queryset.current()

    @extend_schema(parameters=[
        OpenApiParameter("as_of", str, description="What was believed at this ISO 8601 moment (bitemporal)."),
        OpenApiParameter("history", bool, description="Every version, not only the current ones."),
    ])  # fmt: skip
    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().list(request, *args, **kwargs)

    @extend_schema(responses={200: GdpLineageSerializer})
    @action(detail=True, methods=["get"])
    def lineage(self, request: Request, pk: str | None = None) -> Response:
        """Back to the raw record, its batch and source; and every version of the same key."""
        return Response(GdpLineageSerializer(selectors.gdp_lineage(gdp=self.get_object())).data)

    @extend_schema(request=OverrideSerializer, responses={201: GoldenDataPointSerializer})
    @action(detail=True, methods=["post"])
    def override(self, request: Request, pk: str | None = None) -> Response:
        """A steward's value with a reason; it wins over incoming data until removed."""
        gdp = self.get_object()
        payload = OverrideSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        result = services.gdp_override_set(actor=request.user, gdp=gdp, **payload.validated_data)
        return Response(GoldenDataPointSerializer(result).data, status=201)

    @extend_schema(request=OverrideRemoveSerializer, responses={200: GoldenDataPointSerializer})
    @action(detail=True, methods=["post"], url_path="remove-override")
    def remove_override(self, request: Request, pk: str | None = None) -> Response:
        """End the override; the survivorship rule's value from the data becomes current again."""
        gdp = self.get_object()
        payload = OverrideRemoveSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        result = services.gdp_override_remove(actor=request.user, gdp=gdp, **payload.validated_data)
        return Response(GoldenDataPointSerializer(result).data)
