from __future__ import annotations

from datetime import date
from typing import Any

from django.db.models import Prefetch
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from apps.compute.kpis import selectors, services
from apps.compute.kpis.api.serializers import (
    ComputeRequestSerializer,
    KpiDefinitionSerializer,
    KpiDefinitionWriteSerializer,
    KpiLifecycleActionSerializer,
    KpiTargetSerializer,
    KpiTargetWriteSerializer,
    KpiValueSerializer,
    KpiVersionSerializer,
    KpiVersionWriteSerializer,
    LineageGdpSerializer,
    LineagePageSerializer,
    LineageSourceSerializer,
    PipelineRunSerializer,
)
from apps.compute.kpis.models import KpiDefinition, KpiTarget, KpiVersion
from apps.host.models import DataContract
from apps.kernel.api.serializers import documented_variant
from apps.kernel.api.viewsets import TenantModelViewSet, TenantReadOnlyViewSet
from apps.storage.calendars.selectors import calendar_list
from apps.storage.models import CalendarPeriod, GoldenDataPoint, KpiValue

# What create and update really take (the views check these on top of the all-optional serializers).
DEFINITION_CREATE = documented_variant(KpiDefinitionWriteSerializer, "KpiDefinitionCreateSerializer",
                                       required=("key", "name"))  # fmt: skip
DEFINITION_UPDATE = documented_variant(KpiDefinitionWriteSerializer, "KpiDefinitionUpdateSerializer", exclude=("key",))
VERSION_CREATE = documented_variant(KpiVersionWriteSerializer, "KpiVersionCreateSerializer",
                                    required=("version", "calendar"))  # fmt: skip
TARGET_CREATE = documented_variant(KpiTargetWriteSerializer, "KpiTargetCreateSerializer",
                                   required=("kpi", "period_from", "period_to", "value", "amber_within"))  # fmt: skip
TARGET_UPDATE = documented_variant(KpiTargetWriteSerializer, "KpiTargetUpdateSerializer", exclude=("kpi",))

VERSION_QUERYSET = KpiVersion.objects.select_related(
    "definition", "contract", "calendar", "proposed_by", "decided_by"
).prefetch_related("transitions__actor")


class KpiDefinitionViewSet(mixins.UpdateModelMixin, mixins.DestroyModelMixin, TenantModelViewSet):
    """Governed KPIs of the tenant, by key. Versions are created under a KPI (`/versions/`) and moved
    through their lifecycle at `/kpi-versions/{id}/<action>/`; `/compute/` computes it now."""

    queryset = KpiDefinition.objects.select_related("owner").prefetch_related(
        Prefetch("versions", queryset=KpiVersion.objects.filter(status="active"), to_attr="active_versions")
    )
    serializer_class = KpiDefinitionSerializer
    lookup_field = "key"
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]
    filterset_fields = ("domain",)
    extra_error_codes = (409,)

    @extend_schema(request=DEFINITION_CREATE, responses={201: KpiDefinitionSerializer})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        payload = KpiDefinitionWriteSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = dict(payload.validated_data)
        missing = {name: ["This field is required."] for name in ("key", "name") if not data.get(name)}
        if missing:
            raise serializers.ValidationError(missing)
        definition = services.kpi_definition_create(actor=request.user, tenant=self.tenant_context.tenant,
                                                    owner=request.user, **data)  # fmt: skip
        return Response(self.get_serializer(self.get_queryset().get(pk=definition.pk)).data, status=201)

    @extend_schema(request=DEFINITION_UPDATE, responses={200: KpiDefinitionSerializer})
    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        definition = self.get_object()
        payload = KpiDefinitionWriteSerializer(data=request.data, partial=True)
        payload.is_valid(raise_exception=True)
        services.kpi_definition_update(actor=request.user, definition=definition, **payload.validated_data)
        return Response(self.get_serializer(self.get_queryset().get(pk=definition.pk)).data)

    def perform_destroy(self, instance: KpiDefinition) -> None:
        """Only a KPI none of whose versions left draft can be deleted (409 otherwise)."""
        services.kpi_definition_delete(actor=self.request.user, definition=instance)

    @extend_schema(
        methods=["get"], responses={200: KpiVersionSerializer(many=True)}, operation_id="kpi_definitions_versions_list"
    )
    @extend_schema(
        methods=["post"], request=VERSION_CREATE, responses={201: KpiVersionSerializer},
        operation_id="kpi_definitions_versions_create",
    )  # fmt: skip
    @action(detail=True, methods=["get", "post"])
    def versions(self, request: Request, key: str | None = None) -> Response:
        """The KPI's versions (newest first); POST creates a draft, checked against its contract."""
        definition = self.get_object()
        if request.method == "GET":
            page = self.paginate_queryset(VERSION_QUERYSET.filter(definition=definition))
            return self.get_paginated_response(KpiVersionSerializer(page, many=True).data)
        payload = KpiVersionWriteSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = version_attrs(dict(payload.validated_data), self.tenant_context.tenant)
        semver = data.pop("version", None)
        if not semver:
            raise serializers.ValidationError({"version": ["This field is required."]})
        row = services.kpi_version_create(actor=request.user, definition=definition, version=semver, **data)
        return Response(KpiVersionSerializer(VERSION_QUERYSET.get(pk=row.pk)).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=ComputeRequestSerializer, responses={200: PipelineRunSerializer(many=True)})
    @action(detail=True, methods=["post"], pagination_class=None)
    def compute(self, request: Request, key: str | None = None) -> Response:
        """Compute the KPI now (and the derived KPIs around it): incremental unless `full`; `as_of` pins
        the recorded time (an earlier one recomputes everything as believed then). One run per KPI."""
        definition = self.get_object()
        payload = ComputeRequestSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        if selectors.kpi_active_version(definition=definition) is None:
            from apps.kernel.errors import ConflictError

            raise ConflictError(f"KPI '{definition.key}' has no active version to compute.", slug="no-active-version")
        runs = services.kpi_compute(actor=request.user, definitions=[definition], trigger="api",
                                    full=payload.validated_data["full"], as_of=payload.validated_data.get("as_of"))  # fmt: skip
        return Response(PipelineRunSerializer(runs, many=True).data)


def version_attrs(data: dict[str, Any], tenant: Any) -> dict[str, Any]:
    """Resolve `contract` and `calendar` keys to the tenant's rows (unknown → 400 on that field)."""
    if "contract" in data:
        key = data.pop("contract")
        contract = None
        if key:
            contract = DataContract.objects.for_tenant(tenant).filter(key=key).first()
            if contract is None:
                raise serializers.ValidationError({"contract": [f"No contract '{key}' in this tenant."]})
        data["contract"] = contract
    if "calendar" in data:
        key = data.pop("calendar")
        calendars = list(calendar_list(tenant=tenant).filter(key=key))
        calendars.sort(key=lambda c: c.tenant_id is None)  # the tenant's own before a platform calendar
        if not calendars:
            raise serializers.ValidationError({"calendar": [f"No calendar '{key}' for this tenant."]})
        data["calendar"] = calendars[0]
    return data


class KpiVersionViewSet(mixins.UpdateModelMixin, TenantReadOnlyViewSet):
    """Versions of the tenant's KPIs. Drafts are edited with PATCH; the lifecycle actions (propose,
    approve, reject, activate, deprecate, retire) are POSTs. An illegal transition answers 409 with
    the allowed next states; approving one's own proposal answers 403 `four-eyes`."""

    queryset = VERSION_QUERYSET
    serializer_class = KpiVersionSerializer
    http_method_names = ["get", "post", "patch", "head", "options"]
    filterset_fields = {"definition__key": ["exact"], "status": ["exact", "in"], "kind": ["exact"]}
    extra_error_codes = (409,)

    @extend_schema(request=KpiVersionWriteSerializer, responses={200: KpiVersionSerializer})
    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        version = self.get_object()
        payload = KpiVersionWriteSerializer(data=request.data, partial=True)
        payload.is_valid(raise_exception=True)
        data = version_attrs(dict(payload.validated_data), self.tenant_context.tenant)
        if "version" in data:
            data["semver"] = data.pop("version")
        services.kpi_version_update(actor=request.user, version=version, **data)
        return Response(self.get_serializer(self.get_queryset().get(pk=version.pk)).data)

    def _lifecycle(self, request: Request, name: str) -> Response:
        version = self.get_object()
        payload = KpiLifecycleActionSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        services.LIFECYCLE_SERVICES[name](
            actor=request.user, version=version, comment=payload.validated_data["comment"]
        )
        return Response(self.get_serializer(self.get_queryset().get(pk=version.pk)).data)

    @extend_schema(request=KpiLifecycleActionSerializer, responses={200: KpiVersionSerializer})
    @action(detail=True, methods=["post"])
    def propose(self, request: Request, pk: str | None = None) -> Response:
        """Ask for approval: validated again against its contract and the other KPIs, content frozen."""
        return self._lifecycle(request, "propose")

    @extend_schema(request=KpiLifecycleActionSerializer, responses={200: KpiVersionSerializer})
    @action(detail=True, methods=["post"])
    def approve(self, request: Request, pk: str | None = None) -> Response:
        """Four eyes: never by the proposer; needs the tenant admin role or the approver right."""
        return self._lifecycle(request, "approve")

    @extend_schema(request=KpiLifecycleActionSerializer, responses={200: KpiVersionSerializer})
    @action(detail=True, methods=["post"])
    def reject(self, request: Request, pk: str | None = None) -> Response:
        """Back to draft, with the reviewer's comment (required)."""
        return self._lifecycle(request, "reject")

    @extend_schema(request=KpiLifecycleActionSerializer, responses={200: KpiVersionSerializer})
    @action(detail=True, methods=["post"])
    def activate(self, request: Request, pk: str | None = None) -> Response:
        """Make it the KPI's one active version (the previous is deprecated); computed after commit."""
        return self._lifecycle(request, "activate")

    @extend_schema(request=KpiLifecycleActionSerializer, responses={200: KpiVersionSerializer})
    @action(detail=True, methods=["post"])
    def deprecate(self, request: Request, pk: str | None = None) -> Response:
        return self._lifecycle(request, "deprecate")

    @extend_schema(request=KpiLifecycleActionSerializer, responses={200: KpiVersionSerializer})
    @action(detail=True, methods=["post"])
    def retire(self, request: Request, pk: str | None = None) -> Response:
        """Retired versions are read-only forever."""
        return self._lifecycle(request, "retire")


class KpiTargetViewSet(mixins.UpdateModelMixin, TenantModelViewSet):
    """Targets of the tenant's KPIs, with tolerance bands. Drafts are edited with PATCH; propose,
    approve (never by the proposer), reject and retire are POSTs. Only approved targets count."""

    queryset = KpiTarget.objects.select_related(
        "definition", "period_from", "period_to", "owner", "proposed_by", "decided_by"
    ).prefetch_related("transitions__actor")
    serializer_class = KpiTargetSerializer
    http_method_names = ["get", "post", "patch", "head", "options"]
    filterset_fields = {"definition__key": ["exact"], "status": ["exact", "in"]}
    extra_error_codes = (409,)

    @extend_schema(request=TARGET_CREATE, responses={201: KpiTargetSerializer})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        payload = KpiTargetWriteSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = dict(payload.validated_data)
        missing = {n: ["This field is required."] for n in ("kpi", "period_from", "period_to", "value",
                                                              "amber_within") if n not in data}  # fmt: skip
        if missing:
            raise serializers.ValidationError(missing)
        key = data.pop("kpi")
        definition = KpiDefinition.objects.for_tenant(self.tenant_context.tenant).filter(key=key).first()
        if definition is None:
            raise serializers.ValidationError({"kpi": [f"No KPI '{key}' in this tenant."]})
        target = services.kpi_target_create(actor=request.user, definition=definition, owner=request.user,
                                            **self._periods(data))  # fmt: skip
        return Response(self.get_serializer(self.get_queryset().get(pk=target.pk)).data, status=201)

    @extend_schema(request=TARGET_UPDATE, responses={200: KpiTargetSerializer})
    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        target = self.get_object()
        payload = KpiTargetWriteSerializer(data=request.data, partial=True)
        payload.is_valid(raise_exception=True)
        data = dict(payload.validated_data)
        if "kpi" in data:
            raise serializers.ValidationError({"kpi": ["A target cannot move to another KPI."]})
        services.kpi_target_update(actor=request.user, target=target, **self._periods(data))
        return Response(self.get_serializer(self.get_queryset().get(pk=target.pk)).data)

    def _periods(self, data: dict[str, Any]) -> dict[str, Any]:
        for name in ("period_from", "period_to"):
            if name in data:
                period = CalendarPeriod.objects.for_tenant(self.tenant_context.tenant).filter(pk=data[name]).first()
                if period is None:
                    raise serializers.ValidationError({name: [f"No calendar period {data[name]} for this tenant."]})
                data[name] = period
        return data

    def _lifecycle(self, request: Request, name: str) -> Response:
        target = self.get_object()
        payload = KpiLifecycleActionSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        services.TARGET_SERVICES[name](actor=request.user, target=target, comment=payload.validated_data["comment"])
        return Response(self.get_serializer(self.get_queryset().get(pk=target.pk)).data)

    @extend_schema(request=KpiLifecycleActionSerializer, responses={200: KpiTargetSerializer})
    @action(detail=True, methods=["post"])
    def propose(self, request: Request, pk: str | None = None) -> Response:
        return self._lifecycle(request, "propose")

    @extend_schema(request=KpiLifecycleActionSerializer, responses={200: KpiTargetSerializer})
    @action(detail=True, methods=["post"])
    def approve(self, request: Request, pk: str | None = None) -> Response:
        """Four eyes; the KPI's values get the target (and their status) at once."""
        return self._lifecycle(request, "approve")

    @extend_schema(request=KpiLifecycleActionSerializer, responses={200: KpiTargetSerializer})
    @action(detail=True, methods=["post"])
    def reject(self, request: Request, pk: str | None = None) -> Response:
        return self._lifecycle(request, "reject")

    @extend_schema(request=KpiLifecycleActionSerializer, responses={200: KpiTargetSerializer})
    @action(detail=True, methods=["post"])
    def retire(self, request: Request, pk: str | None = None) -> Response:
        return self._lifecycle(request, "retire")


VALUE_PARAMETERS = [
    OpenApiParameter("kpi", str, description="KPI key."),
    OpenApiParameter("version", int, description="KPI version id (default: the active versions' values)."),
    OpenApiParameter("period_from", date, description="Periods starting on or after this date."),
    OpenApiParameter("period_to", date, description="Periods ending on or before this date."),
    OpenApiParameter("dimension", str, many=True, description="name:value, repeatable (e.g. region:north)."),
    OpenApiParameter("status", str, enum=["green", "amber", "red", "none"]),
]


class KpiValueViewSet(TenantReadOnlyViewSet):
    """Computed KPI values with actual, target, variance, attainment, status and streak.
    `/lineage/` lists the GDP versions a value was computed from."""

    queryset = KpiValue.objects.select_related("period", "kpi_version")
    serializer_class = KpiValueSerializer

    def get_queryset(self) -> Any:
        queryset = super().get_queryset()
        if getattr(self, "swagger_fake_view", False) or self.action != "list":
            return queryset
        params = self.request.query_params
        dims: dict[str, str] = {}
        for item in params.getlist("dimension"):
            name, sep, value = item.partition(":")
            if not sep or not name:
                raise serializers.ValidationError({"dimension": [f"'{item}' is not name:value."]})
            dims[name] = value
        version = params.get("version")
        if version is not None and not version.isdigit():
            raise serializers.ValidationError({"version": ["A version id."]})
        return selectors.kpi_values_list(
            tenant=self.tenant_context.tenant, kpi=params.get("kpi") or None,
            version_id=int(version) if version else None, period_from=_date(params, "period_from"),
            period_to=_date(params, "period_to"), dimensions=dims, status=params.get("status") or None,
        ).order_by("kpi_key", "period_index", "dimensions_key", "id")  # fmt: skip

    @extend_schema(parameters=VALUE_PARAMETERS)
    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().list(request, *args, **kwargs)

    @extend_schema(responses={200: LineagePageSerializer})
    @action(detail=True, methods=["get"])
    def lineage(self, request: Request, pk: str | None = None) -> Response:
        """The GDP versions the value was computed from (believed at its as-of time), with their raw
        record, batch and source; a derived value lists the sources of the values it was derived from."""
        value = self.get_object()
        sources = selectors.kpi_value_lineage(value=value)
        gdps = GoldenDataPoint.objects.none()
        for source in sources:
            gdps = gdps | source.gdps
        page = self.paginate_queryset(gdps.select_related("source").order_by("observed_at", "entity_key", "id"))
        response = self.get_paginated_response(LineageGdpSerializer(page, many=True).data)
        response.data["sources"] = LineageSourceSerializer(sources, many=True).data
        return response


def _date(params: Any, name: str) -> date | None:
    text = params.get(name)
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise serializers.ValidationError({name: [f"'{text}' is not a date (YYYY-MM-DD)."]}) from None
