"""/api/v1/products/: the data product catalog. Consumers read; editors (write scope) write."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from apps.consumption.catalog import selectors, services
from apps.consumption.catalog.api.filters import DataProductFilterSet
from apps.consumption.catalog.api.serializers import (
    DataProductDetailSerializer,
    DataProductSerializer,
    DataProductWriteSerializer,
)
from apps.consumption.catalog.models import DataProduct
from apps.consumption.kpis.selectors import kpi_standings
from apps.kernel.api.readcache import CachedReadMixin
from apps.kernel.api.viewsets import TenantModelViewSet


class DataProductViewSet(CachedReadMixin, mixins.UpdateModelMixin, TenantModelViewSet):
    """Data products of the tenant, with their computed health (freshness, quality score, SLA status).

    Tenant members see every product; consumers only listed products that are published or
    deprecated (anything else is not found). Creating, changing, publishing and deprecating need
    the write scope.
    """

    queryset = DataProduct.objects.select_related("owner", "contract")
    serializer_class = DataProductSerializer
    lookup_field = "slug"
    filterset_class = DataProductFilterSet
    http_method_names = ["get", "post", "patch", "head", "options"]
    extra_error_codes = (409,)
    read_cache_scope = "products"

    def read_cache_audience(self) -> str:
        return "all" if selectors.sees_all_products(self.tenant_context) else "listed"

    def get_queryset(self) -> Any:
        queryset = super().get_queryset()
        if getattr(self, "swagger_fake_view", False):
            return queryset
        context = self.tenant_context
        return selectors.product_list(tenant=context.tenant, context=context).order_by("name", "slug")

    def get_serializer_class(self) -> Any:
        return DataProductDetailSerializer if self.action != "list" else DataProductSerializer

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return self.cached_read(request, self.tenant_context.tenant.pk, self._list)

    def _list(self) -> Response:
        queryset = self.filter_queryset(self.get_queryset())
        page = self.paginate_queryset(queryset)
        products = list(page if page is not None else queryset)
        data = DataProductSerializer(products, many=True, context={"health": selectors.products_health(products)}).data
        return self.get_paginated_response(data) if page is not None else Response(data)

    def _detail(self, product: DataProduct, *, code: int = status.HTTP_200_OK) -> Response:
        product = self.get_queryset().get(pk=product.pk)
        health = selectors.products_health([product])
        version = health[product.pk].active_version
        context = {"health": health, "sample": selectors.product_sample(product, version=version),
                   "kpis": kpi_standings(tenant=product.tenant_id, keys=list(product.kpis or []))}  # fmt: skip
        return Response(DataProductDetailSerializer(product, context=context).data, status=code)

    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return self._detail(self.get_object())

    def _payload(self, request: Request, *, partial: bool) -> dict[str, Any]:
        payload = DataProductWriteSerializer(
            data=request.data, partial=partial, context={"tenant": self.tenant_context.tenant}
        )
        payload.is_valid(raise_exception=True)
        return dict(payload.validated_data)

    @extend_schema(request=DataProductWriteSerializer, responses={201: DataProductDetailSerializer})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        data = self._payload(request, partial=False)
        data.setdefault("owner", request.user)
        product = services.product_create(actor=request.user, tenant=self.tenant_context.tenant, **data)
        return self._detail(product, code=status.HTTP_201_CREATED)

    @extend_schema(request=DataProductWriteSerializer(partial=True), responses={200: DataProductDetailSerializer})
    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        product = self.get_object()
        product = services.product_update(actor=request.user, product=product, **self._payload(request, partial=True))
        return self._detail(product)

    @extend_schema(request=None, responses={200: DataProductDetailSerializer})
    @action(detail=True, methods=["post"])
    def publish(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Draft → published (409 `illegal-transition` otherwise). Listed products become visible to consumers."""
        return self._detail(services.product_publish(actor=request.user, product=self.get_object()))

    @extend_schema(request=None, responses={200: DataProductDetailSerializer})
    @action(detail=True, methods=["post"])
    def deprecate(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Draft or published → deprecated (409 `illegal-transition` otherwise); no further changes."""
        return self._detail(services.product_deprecate(actor=request.user, product=self.get_object()))
