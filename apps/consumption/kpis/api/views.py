"""`GET /api/v1/kpis/{key}/values/`: a KPI's values, latest or as published.

- "latest" (the default): the current computed values of the KPI's active version (storage's
  `KpiValue`), `Cache-Control: private, no-cache`.
- "as published": `published=latest` (per period, the newest publication holding it),
  `as_published_on=YYYY-MM-DD` (the same, as it stood at the end of that day in the tenant's time
  zone: a later restatement does not change it), `publication=<n>` (exactly publication n). A
  publication, or a day that has ended, never changes: `private, max-age=86400, immutable`.
- Filters (`apps.consumption.kpis.filters`): `period_from`, `period_to` (labels or dates),
  `grain`, `status`, `dim.<name>=<value>`; the same as the `kpi-values` export.
- Page numbers by default (`page`, `page_size` ≤ 500); latest reads also take `paginate=cursor`
  (id order). Strong `ETag`, `If-None-Match` → 304 (`apps.kernel.api.caching`).
- An unknown KPI key, or another tenant's, is 404; a bad parameter a 400 naming it.
"""

from __future__ import annotations

from typing import Any

from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from apps.consumption.kpis import selectors
from apps.consumption.kpis.api.serializers import KpiPublicationRefSerializer, KpiValueRowSerializer
from apps.consumption.kpis.filters import KpiRowFilter, KpiValueFilter
from apps.kernel.api.caching import conditional_get
from apps.kernel.api.problems import PROBLEM_CONTENT_TYPE
from apps.kernel.api.readcache import CachedReadMixin
from apps.kernel.api.serializers import ProblemSerializer
from apps.kernel.api.viewsets import TenantScopedMixin
from apps.storage.api.views import GdpPagination, wants_cursor
from apps.storage.calendars.choices import PeriodLevelChoices
from apps.storage.kpi_values import KpiStatusChoices, KpiValue

PUBLISHED_MAX_AGE = 86400
LATEST_CACHE = "private, no-cache"
IMMUTABLE_CACHE = f"private, max-age={PUBLISHED_MAX_AGE}, immutable"
READ_PARAMETERS = ("published", "as_published_on", "publication")
NOT_FILTERS = ("kpi", "page", "page_size", "cursor", "paginate", *READ_PARAMETERS)


class KpiReadSerializer(serializers.Serializer):
    """Which values: latest (none of these), or as published (one of them)."""

    published = serializers.ChoiceField(["latest"], required=False)
    as_published_on = serializers.DateField(required=False)
    publication = serializers.IntegerField(required=False, min_value=1, max_value=2**31 - 1)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        given = [name for name in READ_PARAMETERS if name in attrs]
        if len(given) > 1:
            raise ValidationError({given[1]: [f"Give one of {', '.join(READ_PARAMETERS)}, not several."]})
        return attrs


class KpiValuesPagination(GdpPagination):
    """The GDP API's pages (numbers, or cursors for latest reads), plus what was read."""

    extra: dict[str, Any]

    def paginate_queryset(self, queryset: Any, request: Request, view: Any = None) -> Any:
        if isinstance(queryset, list) and wants_cursor(request):
            raise ValidationError({"paginate": ["Published values come in page numbers; cursors are for latest."]})
        return super().paginate_queryset(queryset, request, view)

    def get_paginated_response(self, data: Any) -> Response:
        response = super().get_paginated_response(data)
        response.data.update(getattr(self, "extra", {}))
        return response

    def get_paginated_response_schema(self, schema: dict[str, Any]) -> dict[str, Any]:
        paged = super().get_paginated_response_schema(schema)
        publication = {
            "type": "object",
            "properties": {
                "version": {"type": "integer"},
                "kind": {"type": "string"},
                "kpi_version": {"type": "string"},
                "published_at": {"type": "string", "format": "date-time"},
                "as_of": {"type": "string", "format": "date-time"},
                "content_hash": {"type": "string"},
            },
        }
        paged["properties"]["kpi"] = {"type": "string", "description": "The KPI's key."}
        paged["properties"]["read"] = {"type": "string", "enum": ["latest", "published"]}
        paged["properties"]["publications"] = {
            "type": "array",
            "items": publication,
            "description": "The publications the rows come from (published reads), newest first.",
        }
        paged["required"] = ["results", "kpi", "read", "publications"]
        return paged


FILTER_PARAMETERS = [
    OpenApiParameter("period_from", str, description="First period: a period label (e.g. FY2026-P03) or a date."),
    OpenApiParameter("period_to", str, description="Last period: a period label (e.g. FY2026-P12) or a date."),
    OpenApiParameter("grain", str, enum=PeriodLevelChoices.values, description="The period level."),
    OpenApiParameter("status", str, enum=KpiStatusChoices.values, description="Status against the target."),
    OpenApiParameter(
        "dim.<name>", str, description="Keep values whose dimension <name> equals the value, e.g. `dim.region=EU`."
    ),
    OpenApiParameter("published", str, enum=["latest"], description="As published now (per period, the newest)."),
    OpenApiParameter(
        "as_published_on", OpenApiTypes.DATE, description="As published at the end of that day (tenant time zone)."
    ),
    OpenApiParameter("publication", int, description="Exactly this publication version of the KPI."),
]


class KpiViewSet(CachedReadMixin, TenantScopedMixin, viewsets.GenericViewSet):
    """A KPI's values, read by its key: latest computed values or as published."""

    queryset = KpiValue.objects.all()
    serializer_class = KpiValueRowSerializer
    pagination_class = KpiValuesPagination
    filter_backends: list[Any] = []
    lookup_field = "kpi_key"
    lookup_url_kwarg = "key"
    lookup_value_regex = "[A-Za-z0-9_-]+"
    http_method_names = ["get", "head", "options"]
    cache_control = LATEST_CACHE
    read_cache_scope = "kpi-values"

    def read_cache_view_state(self) -> dict[str, Any]:
        return {"cache_control": self.cache_control}

    @extend_schema(
        operation_id="kpis_values",
        parameters=[
            OpenApiParameter("key", str, OpenApiParameter.PATH, description="The KPI's key."),
            *FILTER_PARAMETERS,
        ],
        responses={200: KpiValueRowSerializer(many=True), (400, PROBLEM_CONTENT_TYPE): ProblemSerializer},
    )
    @action(detail=True, methods=["get"], url_path="values", url_name="values")
    def values(self, request: Request, key: str | None = None) -> Response:
        """The KPI's values: latest computed (default) or as published; filters, pages, ETag."""
        tenant = self.tenant_context.tenant
        return self.cached_read(request, tenant.pk, lambda: self._values(request, tenant, key))

    def _values(self, request: Request, tenant: Any, key: str | None) -> Response:
        if not selectors.kpi_known(tenant=tenant, key=key or ""):
            raise NotFound(f"No KPI '{key}' in this tenant.")
        read = KpiReadSerializer(data=request.query_params)
        read.is_valid(raise_exception=True)
        choice = read.validated_data
        data = request.query_params.copy()
        for name in NOT_FILTERS:
            data.pop(name, None)
        if not choice:
            return self._latest(tenant, key or "", data)
        return self._published(tenant, key or "", data, choice)

    def _latest(self, tenant: Any, key: str, data: Any) -> Response:
        filterset = KpiValueFilter(data=data, queryset=selectors.kpi_values_latest(tenant=tenant, key=key))
        _check(filterset)
        page = self.paginate_queryset(filterset.qs)
        rows = [selectors.latest_row(value) for value in page]
        self.paginator.extra = {"kpi": key, "read": "latest", "publications": []}
        return self.get_paginated_response(KpiValueRowSerializer(rows, many=True).data)

    def _published(self, tenant: Any, key: str, data: Any, choice: dict[str, Any]) -> Response:
        version = choice.get("publication")
        at = None
        if "as_published_on" in choice:
            at = selectors.as_published_moment(tenant, choice["as_published_on"])
        found = selectors.kpi_values_published(tenant=tenant, key=key, at=at, version=version)
        if found is None:
            raise NotFound(f"KPI '{key}' has no publication {version}.")
        filterset = KpiValueFilter(data=data, queryset=KpiValue.objects.none())
        filterset.calendars = found.calendars
        _check(filterset)
        cleaned = filterset.form.cleaned_data
        keep = KpiRowFilter(
            period_from=filterset.bounds.get("period_from"), period_to=filterset.bounds.get("period_to"),
            grain=cleaned.get("grain") or None, status=cleaned.get("status") or None,
            dimensions=filterset.dimension_filters(),
        )  # fmt: skip
        rows = [row for row in found.rows if keep.keeps(row)]
        if version is not None or (at is not None and at < timezone.now()):
            self.cache_control = IMMUTABLE_CACHE  # a publication, or a day that has ended, never changes
        used = {row["publication"] for row in rows}
        outputs = [o for o in found.outputs if version is not None or o.version in used]
        page = self.paginate_queryset(rows)
        self.paginator.extra = {"kpi": key, "read": "published",
                                "publications": KpiPublicationRefSerializer(outputs, many=True).data}  # fmt: skip
        return self.get_paginated_response(KpiValueRowSerializer(page, many=True).data)

    def finalize_response(self, request: Request, response: Any, *args: Any, **kwargs: Any) -> Any:
        response = super().finalize_response(request, response, *args, **kwargs)
        return conditional_get(request, response, cache_control=self.cache_control)


def _check(filterset: KpiValueFilter) -> None:
    if not filterset.is_valid():
        raise ValidationError({name: list(errors) for name, errors in filterset.errors.items()})
