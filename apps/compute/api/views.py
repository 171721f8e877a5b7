from __future__ import annotations

import logging
from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.reverse import reverse

from apps.compute import services
from apps.compute.api.serializers import (
    IngestionBatchSerializer,
    NormalizationRuleSerializer,
    NormalizationRuleWriteSerializer,
    RejectionSerializer,
    SourceSerializer,
    SourceWriteSerializer,
)
from apps.compute.models import NormalizationRule, Source
from apps.host.models import ContractVersion, DataContract
from apps.kernel.api.serializers import documented_variant
from apps.kernel.api.viewsets import TenantModelViewSet, TenantReadOnlyViewSet
from apps.storage.models import IngestionBatch, Rejection

logger = logging.getLogger(__name__)

INGEST_MEDIA_TYPES = ("application/json", "application/x-ndjson", "text/csv")
# What create and update really take (the views check these on top of SourceWriteSerializer).
SOURCE_CREATE = documented_variant(
    SourceWriteSerializer, "SourceCreateSerializer", required=("key", "name", "contract")
)
SOURCE_UPDATE = documented_variant(SourceWriteSerializer, "SourceUpdateSerializer", exclude=("key", "contract"))
RULE_CREATE = documented_variant(NormalizationRuleWriteSerializer, "NormalizationRuleCreateSerializer",
                                 required=("contract_version", "kind", "field"))  # fmt: skip
RULE_UPDATE = documented_variant(NormalizationRuleWriteSerializer, "NormalizationRuleUpdateSerializer",
                                 exclude=("contract_version",))  # fmt: skip


class RawBodyParser:
    """Leaves the body unread: the ingest action streams it straight into the spool."""

    media_type = "*/*"

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> None:
        return None


class SourceViewSet(mixins.UpdateModelMixin, TenantModelViewSet):
    """Sources of records for the tenant's contracts. POST records to `/sources/{id}/batches/`."""

    queryset = Source.objects.select_related("contract")
    serializer_class = SourceSerializer
    http_method_names = ["get", "post", "patch", "head", "options"]
    filterset_fields = ("kind", "active", "contract__key")
    extra_error_codes = (409,)

    @extend_schema(request=SOURCE_CREATE, responses={201: SourceSerializer})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        payload = SourceWriteSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = dict(payload.validated_data)
        missing = {name: ["This field is required."] for name in ("key", "name", "contract") if name not in data}
        if missing:
            raise serializers.ValidationError(missing)
        key = data.pop("contract")
        contract = DataContract.objects.for_tenant(self.tenant_context.tenant).filter(key=key).first()
        if contract is None:
            raise serializers.ValidationError({"contract": [f"No contract '{key}' in this tenant."]})
        source = services.source_create(actor=request.user, tenant=self.tenant_context.tenant, contract=contract,
                                        **data)  # fmt: skip
        return Response(SourceSerializer(source).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=SOURCE_UPDATE, responses={200: SourceSerializer})
    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        source = self.get_object()
        payload = SourceWriteSerializer(data=request.data, partial=True)
        payload.is_valid(raise_exception=True)
        data = dict(payload.validated_data)
        for fixed in ("key", "contract"):
            if fixed in data:
                raise serializers.ValidationError({fixed: ["A source's key and contract do not change."]})
        source = services.source_update(actor=request.user, source=source, **data)
        return Response(SourceSerializer(source).data)

    @extend_schema(
        operation_id="sources_batches_create",
        request={media: OpenApiTypes.BINARY for media in INGEST_MEDIA_TYPES},
        parameters=[
            OpenApiParameter(
                "Idempotency-Key",
                str,
                OpenApiParameter.HEADER,
                description="Retries with the same key and body return the same batch.",
            ),
        ],
        responses={201: IngestionBatchSerializer, 200: IngestionBatchSerializer, 202: IngestionBatchSerializer},
    )
    @action(detail=True, methods=["post"], parser_classes=[RawBodyParser])
    def batches(self, request: Request, pk: str | None = None) -> Response:
        """Deliver records: a JSON array, NDJSON or CSV body (streamed, never held in memory).

        Small batches are processed in the request (201, final status); large ones are queued
        (202; poll the Location). A retry with the same Idempotency-Key answers 200 with the
        same batch; the same key with another body, 409. Malformed bodies answer 400 with the line.
        """
        source = self.get_object()
        batch, created = services.batch_receive(
            actor=request.user, source=source, stream=request._request, content_type=request.content_type,
            idempotency_key=request.headers.get("Idempotency-Key", "")[:255],
        )  # fmt: skip
        location = reverse("batch-detail", args=[batch.pk], request=request)
        if created:
            try:
                batch = services.batch_dispatch(batch)
            except Exception:  # the delivery is received (the batch exists): the answer says which batch, not only 500
                logger.exception("Processing batch %s failed in the request", batch.pk)
                batch.refresh_from_db()
                if batch.status == "failed":
                    return _failed_batch_response(batch, location, status_code=500)
                # Interrupted (a lost database, a time limit): it stays resumable and the stalled-batches job resumes it.
                return Response(IngestionBatchSerializer(batch).data, status=status.HTTP_202_ACCEPTED,
                                headers={"Location": location})  # fmt: skip
        code = status.HTTP_200_OK if not created else (
            status.HTTP_201_CREATED if batch.finished_at else status.HTTP_202_ACCEPTED)  # fmt: skip
        if batch.status == "failed" and batch.error and created:
            return _failed_batch_response(batch, location)
        return Response(IngestionBatchSerializer(batch).data, status=code, headers={"Location": location})


def _failed_batch_response(batch: IngestionBatch, location: str, status_code: int = 400) -> Response:
    """A batch that failed in the request: the problem says why (a malformed body: with the line; 400) and which
    batch it is. 500 when the pipeline itself failed: a retry with the same Idempotency-Key gets the batch back."""
    from apps.kernel.api.problems import PROBLEM_CONTENT_TYPE, problem_body

    body = problem_body(status_code, slug="batch-failed", title="Batch failed", detail=batch.error, batch=batch.pk)
    return Response(body, status=status_code, headers={"Location": location}, content_type=PROBLEM_CONTENT_TYPE)


class NormalizationRuleViewSet(mixins.UpdateModelMixin, mixins.DestroyModelMixin, TenantModelViewSet):
    """The normalization steps of the tenant's contract versions, in the order they run. A draft version's steps
    are created, changed and deleted here; past draft they are frozen (409 `version-frozen`)."""

    queryset = NormalizationRule.objects.select_related("contract_version__contract").order_by(
        "contract_version__contract__key", "contract_version_id", "position", "id"
    )
    serializer_class = NormalizationRuleSerializer
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]
    filterset_fields = ("contract_version", "contract_version__contract__key", "kind", "field")
    extra_error_codes = (409,)

    @extend_schema(request=RULE_CREATE, responses={201: NormalizationRuleSerializer})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        payload = NormalizationRuleWriteSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = dict(payload.validated_data)
        missing = {name: ["This field is required."] for name in ("contract_version", "kind", "field")
                   if name not in data}  # fmt: skip
        if missing:
            raise serializers.ValidationError(missing)
        version_id = data.pop("contract_version")
        version = ContractVersion.objects.for_tenant(self.tenant_context.tenant).filter(pk=version_id).first()
        if version is None:
            raise serializers.ValidationError(
                {"contract_version": [f"No contract version {version_id} in this tenant."]}
            )
        rule = services.normalization_rule_create(actor=request.user, version=version, **data)
        return Response(self.get_serializer(self.get_queryset().get(pk=rule.pk)).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=RULE_UPDATE, responses={200: NormalizationRuleSerializer})
    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        rule = self.get_object()
        payload = NormalizationRuleWriteSerializer(data=request.data, partial=True)
        payload.is_valid(raise_exception=True)
        data = dict(payload.validated_data)
        if "contract_version" in data:
            raise serializers.ValidationError({"contract_version": ["A rule does not move to another version."]})
        services.normalization_rule_update(actor=request.user, rule=rule, **data)
        return Response(self.get_serializer(self.get_queryset().get(pk=rule.pk)).data)

    def perform_destroy(self, instance: NormalizationRule) -> None:
        services.normalization_rule_delete(actor=self.request.user, rule=instance)


class IngestionBatchViewSet(TenantReadOnlyViewSet):
    """Batches delivered to the tenant's sources: status, counts, timings; rejections per batch."""

    queryset = IngestionBatch.objects.select_related("source", "contract_version__contract")
    serializer_class = IngestionBatchSerializer
    filterset_fields = ("status", "source__key")

    @extend_schema(responses={200: RejectionSerializer(many=True)})
    @action(detail=True, methods=["get"])
    def rejections(self, request: Request, pk: str | None = None) -> Response:
        """Every rule a record (or the batch) failed, with field, message and value."""
        batch = self.get_object()
        page = self.paginate_queryset(Rejection.objects.filter(batch=batch).order_by("position", "id"))
        return self.get_paginated_response(RejectionSerializer(page, many=True).data)
