from __future__ import annotations

from datetime import datetime
from typing import Any

from django.contrib.auth import get_user_model
from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.consumption.catalog.choices import (
    ClassificationChoices,
    FreshnessChoices,
    ProductKindChoices,
    ProductVisibilityChoices,
    SlaStatusChoices,
)
from apps.consumption.catalog.markdown import render_markdown
from apps.consumption.catalog.models import MAX_KPIS, MAX_TAG_LENGTH, MAX_TAGS, DataProduct
from apps.consumption.catalog.selectors import ProductHealth
from apps.consumption.kpis.selectors import KpiStanding
from apps.host.models import DataContract


class ContractVersionRefSerializer(serializers.Serializer):
    contract = serializers.CharField(help_text="Contract key.")
    version = serializers.CharField(help_text="Its active version, or null when none is active.", allow_null=True)
    sla_freshness_seconds = serializers.IntegerField(allow_null=True)


class ProductHealthSerializer(serializers.Serializer):
    freshness = serializers.ChoiceField(FreshnessChoices.choices)
    last_data_at = serializers.DateTimeField(allow_null=True, help_text="Newest GDP version or completed batch.")
    age_seconds = serializers.IntegerField(allow_null=True)
    freshness_target_seconds = serializers.IntegerField(
        allow_null=True, help_text="SLA freshness of the contract's active version."
    )
    quality_score = serializers.DecimalField(
        max_digits=5, decimal_places=2, allow_null=True, help_text="% of records accepted over the recent batches."
    )
    batches_considered = serializers.IntegerField()
    sla_status = serializers.ChoiceField(SlaStatusChoices.choices)


def health_data(health: ProductHealth) -> dict[str, Any]:
    def seconds(value: Any) -> int | None:
        return int(value.total_seconds()) if value is not None else None

    return {
        "freshness": health.freshness,
        "last_data_at": health.last_data_at,
        "age_seconds": seconds(health.age),
        "freshness_target_seconds": seconds(health.freshness_target),
        "quality_score": health.quality_score,
        "batches_considered": health.batches_considered,
        "sla_status": health.sla_status,
    }


class DataProductSerializer(serializers.ModelSerializer):
    owner = serializers.SlugRelatedField(slug_field="username", read_only=True)
    contract = serializers.SerializerMethodField()
    health = serializers.SerializerMethodField()
    url = serializers.SerializerMethodField()

    class Meta:
        model = DataProduct
        fields = ("id", "slug", "name", "kind", "status", "visibility", "classification", "domain", "tags", "owner",
                  "contract", "kpis", "health", "url", "published_at", "deprecated_at", "created_at",
                  "updated_at")  # fmt: skip
        read_only_fields = fields

    def _health(self, product: DataProduct) -> ProductHealth | None:
        return self.context.get("health", {}).get(product.pk)

    @extend_schema_field(ContractVersionRefSerializer(allow_null=True))
    def get_contract(self, product: DataProduct) -> dict[str, Any] | None:
        if product.contract_id is None:
            return None
        health = self._health(product)
        version = health.active_version if health else None
        target = version.sla_freshness if version is not None else None
        return {
            "contract": product.contract.key,
            "version": version.version if version is not None else None,
            "sla_freshness_seconds": int(target.total_seconds()) if target is not None else None,
        }

    @extend_schema_field(ProductHealthSerializer(allow_null=True))
    def get_health(self, product: DataProduct) -> dict[str, Any] | None:
        health = self._health(product)
        return health_data(health) if health is not None else None

    @extend_schema_field(serializers.CharField())
    def get_url(self, product: DataProduct) -> str:
        return f"/api/v1/products/{product.slug}/"


class GdpSampleSerializer(serializers.Serializer):
    measure = serializers.CharField()
    entity_key = serializers.CharField(allow_null=True, help_text="Null when a key field is confidential or above.")
    dimensions = serializers.DictField(child=serializers.JSONField())
    observed_at = serializers.DateTimeField()
    value = serializers.DecimalField(max_digits=30, decimal_places=10, allow_null=True)
    unit = serializers.CharField()


class KpiPublicationSummarySerializer(serializers.Serializer):
    version = serializers.IntegerField()
    kind = serializers.CharField(help_text="publication, restatement or period_close.")
    published_at = serializers.DateTimeField()
    content_hash = serializers.CharField()


class ProductKpiSerializer(serializers.Serializer):
    """One KPI of a KPI set: its newest publication and the freshness of its computed values."""

    key = serializers.CharField()
    latest_publication = KpiPublicationSummarySerializer(allow_null=True)
    last_computed_at = serializers.DateTimeField(allow_null=True, help_text="Newest current value's computation.")
    age_seconds = serializers.IntegerField(allow_null=True, help_text="Age of the newest current value.")
    values_url = serializers.CharField()


def kpi_data(standing: KpiStanding, now: datetime) -> dict[str, Any]:
    output = standing.latest_publication
    at = standing.last_computed_at
    return {
        "key": standing.key,
        "latest_publication": None if output is None else {
            "version": output.version, "kind": output.kind, "published_at": output.published_at,
            "content_hash": output.content_hash,
        },
        "last_computed_at": at,
        "age_seconds": int(max((now - at).total_seconds(), 0)) if at is not None else None,
        "values_url": f"/api/v1/kpis/{standing.key}/values/",
    }  # fmt: skip


class DataProductDetailSerializer(DataProductSerializer):
    description = serializers.CharField(help_text="The Markdown source.")
    description_html = serializers.SerializerMethodField(help_text="Safe HTML: no raw HTML, http/https/mailto links.")
    sample = serializers.SerializerMethodField()
    kpi_details = serializers.SerializerMethodField()

    class Meta(DataProductSerializer.Meta):
        fields = (*DataProductSerializer.Meta.fields, "description", "description_html", "sample", "kpi_details")
        read_only_fields = fields

    @extend_schema_field(ProductKpiSerializer(many=True))
    def get_kpi_details(self, product: DataProduct) -> list[dict[str, Any]]:
        standings = self.context.get("kpis", {})
        now = timezone.now()
        return [kpi_data(standings[key], now) for key in product.kpis or [] if key in standings]

    @extend_schema_field(serializers.CharField())
    def get_description_html(self, product: DataProduct) -> str:
        return render_markdown(product.description)

    @extend_schema_field(GdpSampleSerializer(many=True))
    def get_sample(self, product: DataProduct) -> list[dict[str, Any]]:
        return GdpSampleSerializer(self.context.get("sample", []), many=True).data


class DataProductWriteSerializer(serializers.Serializer):
    slug = serializers.SlugField(max_length=100)
    name = serializers.CharField(max_length=200)
    description = serializers.CharField(required=False, allow_blank=True, max_length=20000)
    owner = serializers.CharField(required=False, allow_blank=True, help_text="Username of a tenant member.")
    domain = serializers.CharField(required=False, allow_blank=True, max_length=100)
    tags = serializers.ListField(
        child=serializers.CharField(max_length=MAX_TAG_LENGTH), required=False, max_length=MAX_TAGS
    )
    classification = serializers.ChoiceField(ClassificationChoices.choices, required=False)
    kind = serializers.ChoiceField(ProductKindChoices.choices, required=False)
    contract = serializers.CharField(required=False, allow_blank=True, help_text="Key of a data contract.")
    visibility = serializers.ChoiceField(ProductVisibilityChoices.choices, required=False)
    kpis = serializers.ListField(
        child=serializers.SlugField(max_length=100), required=False, max_length=MAX_KPIS,
        help_text="Keys of the KPIs of a KPI set; each needs values or publications in the tenant.",
    )  # fmt: skip

    def validate_owner(self, value: str) -> Any:
        if not value:
            return None
        tenant = self.context["tenant"]
        user = get_user_model().objects.filter(username=value, aurum_memberships__tenant=tenant).first()
        if user is None:
            raise serializers.ValidationError(f"'{value}' is not a member of this tenant.")
        return user

    def validate_contract(self, value: str) -> Any:
        if not value:
            return None
        contract = DataContract.objects.for_tenant(self.context["tenant"]).filter(key=value).first()
        if contract is None:
            raise serializers.ValidationError(f"No contract '{value}' in this tenant.")
        return contract
