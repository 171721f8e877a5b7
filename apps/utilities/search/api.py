"""GET /api/v1/search/: ranked discovery over the tenant's index, with facet counts."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import generics, serializers
from rest_framework.request import Request
from rest_framework.response import Response

from apps.kernel.api.problems import PROBLEM_CONTENT_TYPE
from apps.kernel.api.serializers import ProblemSerializer
from apps.kernel.api.viewsets import TenantScopedMixin
from apps.kernel.roles import PORTAL_ROLES
from apps.utilities.search import selectors
from apps.utilities.search.models import SearchDocument

# Query parameters that narrow by a facet, and the facet each one reads.
FACET_PARAMETERS = {
    "domain": ("domain", "Business domain, e.g. `sales`."),
    "owner": ("owner", "Owner's username."),
    "tag": ("tag", "A tag."),
    "classification": ("classification", "`public`, `internal`, `confidential` or `restricted`."),
    "freshness": ("freshness", "Products only: `fresh`, `stale` or `unknown` (computed when the search runs)."),
}


class SearchQuerySerializer(serializers.Serializer):
    q = serializers.CharField(required=False, allow_blank=True, max_length=200, default="")
    kind = serializers.ListField(child=serializers.CharField(max_length=32), required=False, default=list)
    limit = serializers.IntegerField(required=False, min_value=1, max_value=100, default=20)


class FacetCountSerializer(serializers.Serializer):
    value = serializers.CharField()
    count = serializers.IntegerField()


class SearchHitSerializer(serializers.Serializer):
    kind = serializers.CharField(help_text="product, contract, contract_field (kpi once KPI sets are indexed).")
    key = serializers.CharField(source="object_key")
    title = serializers.CharField()
    url = serializers.CharField(help_text="Where to read the object.")
    score = serializers.FloatField(help_text="Relevance; higher is better. Comparable within one response only.")
    snippet = serializers.CharField()
    facets = serializers.DictField(child=serializers.JSONField())
    updated_at = serializers.DateTimeField()


class SearchResultsSerializer(serializers.Serializer):
    query = serializers.CharField()
    count = serializers.IntegerField(source="total", help_text="Matches after the facet filters.")
    results = SearchHitSerializer(many=True, source="hits")
    facets = serializers.SerializerMethodField()

    @extend_schema_field(serializers.DictField(child=FacetCountSerializer(many=True)))
    def get_facets(self, results: selectors.SearchResults) -> dict[str, list[dict[str, Any]]]:
        return {name: [{"value": v, "count": c} for v, c in values] for name, values in results.facets.items()}


class SearchView(TenantScopedMixin, generics.GenericAPIView):
    """Search the tenant's catalog: products, contracts and their fields (KPIs once they are indexed).

    Every word must match, as a word prefix or, from four letters on, as a near miss ("revnue"
    finds "revenue"). Title hits rank first. Facet parameters may repeat (`?tag=a&tag=b`: either);
    different facets must all hold. Consumers never see documents meant for tenant members only.
    """

    queryset = SearchDocument.objects.all()
    serializer_class = SearchResultsSerializer
    pagination_class = None
    filter_backends: list[Any] = []

    @extend_schema(
        operation_id="search",
        parameters=[
            OpenApiParameter("q", str, description="Words to find (up to 200 characters)."),
            OpenApiParameter(
                "kind", str, many=True, description="Only these kinds: `product`, `contract`, `contract_field`."
            ),
            OpenApiParameter("limit", int, description="Hits to return, 1 to 100 (default 20)."),
            *[
                OpenApiParameter(name, str, many=True, description=description)
                for name, (_, description) in FACET_PARAMETERS.items()
            ],
        ],
        responses={
            200: SearchResultsSerializer,
            (400, PROBLEM_CONTENT_TYPE): OpenApiResponse(ProblemSerializer, description="Invalid query parameters."),
        },
    )
    def get(self, request: Request) -> Response:
        params = SearchQuerySerializer(
            data={
                "q": request.query_params.get("q", ""),
                "kind": request.query_params.getlist("kind"),
                **({"limit": request.query_params["limit"]} if "limit" in request.query_params else {}),
            }
        )
        params.is_valid(raise_exception=True)
        context = self.tenant_context
        facets = {
            facet: request.query_params.getlist(name)
            for name, (facet, _) in FACET_PARAMETERS.items()
            if request.query_params.getlist(name)
        }
        results = selectors.search(
            tenant=context.tenant,
            query=params.validated_data["q"],
            facets=facets,
            kinds=params.validated_data["kind"],
            limit=params.validated_data["limit"],
            members=context.has_role(PORTAL_ROLES),
        )
        return Response(SearchResultsSerializer(results).data)
