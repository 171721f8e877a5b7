"""The Golden Data Point query API: filters, latest and as-of reads, two kinds of pagination,
field selection and conditional GET.

- Filters (`apps.storage.api.filters.GoldenDataPointFilter`, shared with the exports): contract,
  measure, entity key, batch, observed_at range, `dim.<name>=<value>`; current versions by
  default, `as_of=` a past belief, `history=true` every version.
- Pagination: page numbers (`page`, `page_size`, with `count`) stay the default, because existing
  clients read `count`. `paginate=cursor` (then the `next` links' `cursor=`) walks large results by a
  stable order (`id`) without counting; a walk over current versions pins the moment of its first
  page (`as_of` in the links), so rows that change while it runs neither repeat nor go missing.
- `fields=a,b` keeps only those fields of each item (unknown names: 400).
- Every 200 carries a strong `ETag` (SHA-256 of the body); `If-None-Match` with it answers 304.
  `Cache-Control: private, no-cache` for current data (revalidate each time), `private,
  max-age=3600` for an `as_of` moment in the past, whose answer does not change.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.utils import timezone
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.decorators import action
from rest_framework.pagination import BasePagination, CursorPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.utils.urls import replace_query_param

from apps.kernel.api.caching import conditional_get
from apps.kernel.api.pagination import StandardPagination
from apps.kernel.api.viewsets import TenantReadOnlyViewSet
from apps.storage import selectors, services
from apps.storage.api.filters import GoldenDataPointFilter
from apps.storage.api.serializers import (
    GdpLineageSerializer,
    GoldenDataPointSerializer,
    OverrideRemoveSerializer,
    OverrideSerializer,
    parse_field_selection,
)
from apps.storage.models import GoldenDataPoint

IMMUTABLE_MAX_AGE = 3600


class GdpCursorPagination(CursorPagination):
    """Cursor pages in `id` order (unique and increasing: new rows land after the cursor)."""

    ordering = ("id",)
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 1000

    def paginate_queryset(self, queryset: Any, request: Request, view: Any = None) -> Any:
        self.snapshot: datetime | None = getattr(view, "snapshot", None)
        return super().paginate_queryset(queryset, request, view)

    def encode_cursor(self, cursor: Any) -> str:
        url = super().encode_cursor(cursor)
        if self.snapshot is not None:  # later pages read the belief of the first page's moment
            url = replace_query_param(url, "as_of", self.snapshot.isoformat())
        return url


def wants_cursor(request: Request) -> bool:
    return "cursor" in request.query_params or request.query_params.get("paginate") == "cursor"


class GdpPagination(BasePagination):
    """Page numbers by default; cursor pages with `paginate=cursor` (or a `cursor`)."""

    def __init__(self) -> None:
        self.pages = StandardPagination()
        self.cursors = GdpCursorPagination()
        self.active: BasePagination = self.pages

    def paginate_queryset(self, queryset: Any, request: Request, view: Any = None) -> Any:
        self.active = self.cursors if wants_cursor(request) else self.pages
        return self.active.paginate_queryset(queryset, request, view)

    def get_paginated_response(self, data: Any) -> Response:
        return self.active.get_paginated_response(data)

    def get_paginated_response_schema(self, schema: dict[str, Any]) -> dict[str, Any]:
        paged = self.pages.get_paginated_response_schema(schema)
        paged["properties"]["count"]["description"] = "Number of rows (page-number pagination only)."
        paged["required"] = ["results"]
        return paged

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        parameters = {p["name"]: p for p in self.pages.get_schema_operation_parameters(view)}
        for parameter in self.cursors.get_schema_operation_parameters(view):
            parameters.setdefault(parameter["name"], parameter)
        parameters["paginate"] = {
            "name": "paginate", "required": False, "in": "query",
            "description": "`cursor`: cursor pagination in id order (no count; follow `next`). Default: page numbers.",
            "schema": {"type": "string", "enum": ["cursor", "page"]},
        }  # fmt: skip
        return list(parameters.values())


class SnapshotFilterBackend(DjangoFilterBackend):
    """The GDP filters, with the view's pinned moment added as `as_of` when it has one."""

    def get_filterset_kwargs(self, request: Any, queryset: Any, view: Any) -> dict[str, Any]:
        kwargs = super().get_filterset_kwargs(request, queryset, view)
        snapshot = getattr(view, "snapshot", None)
        if snapshot is not None:
            data = kwargs["data"].copy()
            data["as_of"] = snapshot.isoformat()
            kwargs["data"] = data
        return kwargs


class GoldenDataPointViewSet(TenantReadOnlyViewSet):
    """Golden Data Points: current values by default; `as_of` gives what was believed at a moment,
    `history=true` every version. Lineage and steward overrides are actions on one point."""

    queryset = GoldenDataPoint.objects.select_related("contract", "source", "overridden_by")
    serializer_class = GoldenDataPointSerializer
    filter_backends = [SnapshotFilterBackend]
    filterset_class = GoldenDataPointFilter
    pagination_class = GdpPagination
    scope_map = {"override": "write", "remove_override": "write"}
    snapshot: datetime | None = None

    def get_queryset(self) -> Any:
        queryset = super().get_queryset()
        if self.action == "list" and not wants_cursor(self.request):
            # Page numbers need a total order: the model's, then id for ties.
            queryset = queryset.order_by(*GoldenDataPoint._meta.ordering, "id")
        return queryset

    def filter_queryset(self, queryset: Any) -> Any:
        if self.action != "list":
            return queryset  # one point is found by id, whichever version it is
        params = self.request.query_params
        if wants_cursor(self.request) and not params.get("as_of") and params.get("history") not in ("true", "1"):
            self.snapshot = timezone.now()  # the cursor walk reads the belief of this moment
        return super().filter_queryset(queryset)

    def get_serializer_context(self) -> dict[str, Any]:
        context = super().get_serializer_context()
        if self.action in ("list", "retrieve"):
            allowed = tuple(GoldenDataPointSerializer.Meta.fields)
            context["fields"] = parse_field_selection(self.request.query_params.get("fields"), allowed)
        return context

    def finalize_response(self, request: Request, response: Any, *args: Any, **kwargs: Any) -> Any:
        response = super().finalize_response(request, response, *args, **kwargs)
        if request.method not in ("GET", "HEAD") or response.status_code != 200:
            return response
        return conditional_get(request, response, cache_control=self._cache_control(request))

    def _cache_control(self, request: Request) -> str:
        raw = request.query_params.get("as_of")
        if raw and self.action == "list":
            moment = GoldenDataPointFilter.base_filters["as_of"].field.clean(raw)
            if moment is not None and moment < timezone.now():
                return f"private, max-age={IMMUTABLE_MAX_AGE}"
        return "private, no-cache"

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "fields",
                str,
                description="Comma-separated fields to keep in each item, e.g. `id,measure,value`. Unknown names: 400.",
            ),
            OpenApiParameter(
                "dim.<name>",
                str,
                description="Keep rows whose dimension <name> equals the value, e.g. "
                "`dim.region=EU` (text comparison; repeat for several dimensions).",
            ),
        ]
    )
    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().list(request, *args, **kwargs)

    @extend_schema(
        parameters=[OpenApiParameter("fields", str, description="Comma-separated fields to keep.")],
    )
    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().retrieve(request, *args, **kwargs)

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
