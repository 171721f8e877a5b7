from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.compute.kpis.choices import (
    AggregationChoices,
    CumulativeModeChoices,
    DirectionChoices,
    DisplayFormatChoices,
    GrainLevelChoices,
    KpiKindChoices,
    ToleranceKindChoices,
)
from apps.compute.kpis.models import KpiDefinition, KpiTarget, KpiTransition, KpiVersion
from apps.compute.kpis.services import TARGET_TRANSITIONS
from apps.host.contracts.lifecycle import allowed_actions
from apps.storage.models import GoldenDataPoint, KpiValue

USER = serializers.SlugRelatedField(slug_field="username", read_only=True)


class KpiTransitionSerializer(serializers.ModelSerializer):
    actor = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = KpiTransition
        fields = ("from_status", "to_status", "actor", "comment", "at")
        read_only_fields = fields


class KpiDefinitionSerializer(serializers.ModelSerializer):
    owner = serializers.SlugRelatedField(slug_field="username", read_only=True)
    active_version = serializers.SerializerMethodField()

    class Meta:
        model = KpiDefinition
        fields = ("id", "key", "name", "description", "domain", "owner", "compute_every_seconds", "last_scheduled_at",
                  "active_version", "created_at", "updated_at")  # fmt: skip
        read_only_fields = fields

    def get_active_version(self, definition: KpiDefinition) -> str | None:
        active = getattr(definition, "active_versions", None)
        if active is None:
            active = [v for v in definition.versions.all() if v.status == "active"]
        return active[0].version if active else None


class KpiDefinitionWriteSerializer(serializers.Serializer):
    key = serializers.SlugField(max_length=100, required=False, help_text="Create only; never changes.")
    name = serializers.CharField(max_length=200, required=False)
    description = serializers.CharField(required=False, allow_blank=True)
    domain = serializers.CharField(max_length=100, required=False, allow_blank=True)
    compute_every_seconds = serializers.IntegerField(required=False, allow_null=True, min_value=60)


class KpiVersionSerializer(serializers.ModelSerializer):
    kpi = serializers.CharField(source="definition.key", read_only=True)
    contract = serializers.SlugRelatedField(slug_field="key", read_only=True)
    calendar = serializers.SlugRelatedField(slug_field="key", read_only=True)
    proposed_by = USER
    decided_by = USER
    allowed_actions = serializers.SerializerMethodField()
    transitions = KpiTransitionSerializer(many=True, read_only=True)

    class Meta:
        model = KpiVersion
        fields = ("id", "kpi", "version", "status", "allowed_actions", "kind", "contract", "measure", "aggregation",
                  "denominator_measure", "denominator_aggregation", "expression", "cumulative_mode", "window_periods",
                  "filters", "calendar", "level", "dimensions", "unit", "display_format", "decimals", "direction",
                  "notes", "content_hash", "proposed_by", "proposed_at", "decided_by", "decided_at",
                  "decision_comment", "activated_at", "computed_as_of", "computed_at", "transitions", "created_at",
                  "updated_at")  # fmt: skip
        read_only_fields = fields

    def get_allowed_actions(self, version: KpiVersion) -> list[str]:
        return allowed_actions(version.status)


class KpiVersionWriteSerializer(serializers.Serializer):
    """Create or change a draft version. `contract` and `calendar` are keys."""

    version = serializers.CharField(max_length=64, required=False, help_text="Semantic version, e.g. 1.0.0.")
    kind = serializers.ChoiceField(choices=KpiKindChoices.choices, required=False)
    contract = serializers.SlugField(required=False, allow_null=True)
    measure = serializers.CharField(max_length=200, required=False, allow_blank=True)
    aggregation = serializers.ChoiceField(choices=AggregationChoices.choices, required=False, allow_blank=True)
    denominator_measure = serializers.CharField(max_length=200, required=False, allow_blank=True)
    denominator_aggregation = serializers.ChoiceField(
        choices=AggregationChoices.choices, required=False, allow_blank=True
    )
    expression = serializers.CharField(required=False, allow_blank=True)
    cumulative_mode = serializers.ChoiceField(choices=CumulativeModeChoices.choices, required=False, allow_blank=True)
    window_periods = serializers.IntegerField(required=False, allow_null=True, min_value=1, max_value=520)
    filters = serializers.DictField(required=False)
    calendar = serializers.SlugField(required=False)
    level = serializers.ChoiceField(choices=GrainLevelChoices.choices, required=False)
    dimensions = serializers.ListField(child=serializers.CharField(max_length=200), required=False)
    unit = serializers.CharField(max_length=50, required=False, allow_blank=True)
    display_format = serializers.ChoiceField(choices=DisplayFormatChoices.choices, required=False)
    decimals = serializers.IntegerField(required=False, min_value=0, max_value=10)
    direction = serializers.ChoiceField(choices=DirectionChoices.choices, required=False)
    notes = serializers.CharField(required=False, allow_blank=True)


class KpiLifecycleActionSerializer(serializers.Serializer):
    comment = serializers.CharField(required=False, allow_blank=True, default="")


class KpiTargetSerializer(serializers.ModelSerializer):
    kpi = serializers.CharField(source="definition.key", read_only=True)
    period_from_label = serializers.CharField(source="period_from.label", read_only=True)
    period_to_label = serializers.CharField(source="period_to.label", read_only=True)
    owner = USER
    proposed_by = USER
    decided_by = USER
    allowed_actions = serializers.SerializerMethodField()
    transitions = KpiTransitionSerializer(many=True, read_only=True)

    class Meta:
        model = KpiTarget
        fields = ("id", "kpi", "period_from", "period_from_label", "period_to", "period_to_label", "dimensions",
                  "value", "tolerance_kind", "green_within", "amber_within", "owner", "status", "allowed_actions",
                  "notes", "proposed_by", "proposed_at", "decided_by", "decided_at", "decision_comment",
                  "transitions", "created_at", "updated_at")  # fmt: skip
        read_only_fields = fields

    def get_allowed_actions(self, target: KpiTarget) -> list[str]:
        return list(TARGET_TRANSITIONS[target.status].values())


class KpiTargetWriteSerializer(serializers.Serializer):
    kpi = serializers.SlugField(required=False, help_text="Key of the KPI (create only).")
    period_from = serializers.IntegerField(required=False, help_text="Id of the first calendar period.")
    period_to = serializers.IntegerField(required=False, help_text="Id of the last calendar period.")
    dimensions = serializers.DictField(required=False)
    value = serializers.DecimalField(max_digits=30, decimal_places=10, required=False)
    tolerance_kind = serializers.ChoiceField(choices=ToleranceKindChoices.choices, required=False)
    green_within = serializers.DecimalField(max_digits=30, decimal_places=10, required=False)
    amber_within = serializers.DecimalField(max_digits=30, decimal_places=10, required=False)
    notes = serializers.CharField(required=False, allow_blank=True)


class PeriodRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    label = serializers.CharField()
    level = serializers.CharField()
    start = serializers.DateField()
    end = serializers.DateField()


class KpiValueSerializer(serializers.ModelSerializer):
    kpi = serializers.CharField(source="kpi_key", read_only=True)
    version = serializers.CharField(source="kpi_version.version", read_only=True)
    period = PeriodRefSerializer(read_only=True)

    class Meta:
        model = KpiValue
        fields = ("id", "kpi", "version", "kpi_version", "period", "dimensions", "actual", "numerator",
                  "denominator", "target", "kpi_target", "variance", "attainment", "status", "streak", "gdp_count",
                  "as_of", "run_id", "computed_at")  # fmt: skip
        read_only_fields = fields


class LineageGdpSerializer(serializers.ModelSerializer):
    source = serializers.SlugRelatedField(slug_field="key", read_only=True)

    class Meta:
        model = GoldenDataPoint
        fields = ("id", "measure", "entity_key", "dimensions", "observed_at", "value", "unit", "recorded_from",
                  "recorded_to", "is_override", "contract_version", "raw_record", "batch", "source")  # fmt: skip
        read_only_fields = fields


class LineageSourceSerializer(serializers.Serializer):
    kpi = serializers.CharField()
    version = serializers.CharField()
    value = serializers.IntegerField(source="value_id")
    first_day = serializers.SerializerMethodField()
    last_day = serializers.SerializerMethodField()
    gdps = serializers.SerializerMethodField()

    @extend_schema_field(serializers.DateField())
    def get_first_day(self, source: Any) -> Any:
        return source.days[0]

    @extend_schema_field(serializers.DateField())
    def get_last_day(self, source: Any) -> Any:
        return source.days[1]

    @extend_schema_field(serializers.IntegerField())
    def get_gdps(self, source: Any) -> int:
        return source.gdps.count()


class LineagePageSerializer(serializers.Serializer):
    """The value's sources (one per KPI read: several for a derived value) and their GDP versions, paged."""

    count = serializers.IntegerField()
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    sources = LineageSourceSerializer(many=True)
    results = LineageGdpSerializer(many=True)


class ComputeRequestSerializer(serializers.Serializer):
    full = serializers.BooleanField(required=False, default=False, help_text="Recompute every period.")
    as_of = serializers.DateTimeField(required=False, allow_null=True, help_text="Pinned recorded time (default now).")


class PipelineRunSerializer(serializers.Serializer):
    run_id = serializers.UUIDField()
    job = serializers.CharField()
    status = serializers.CharField()
    started_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)
    counts = serializers.DictField()
    error = serializers.CharField(allow_blank=True)
