from __future__ import annotations

from rest_framework import serializers

from apps.storage.models import GoldenDataPoint


class GoldenDataPointSerializer(serializers.ModelSerializer):
    contract = serializers.SlugRelatedField(slug_field="key", read_only=True)
    source = serializers.SlugRelatedField(slug_field="key", read_only=True)
    overridden_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    current = serializers.SerializerMethodField()

    class Meta:
        model = GoldenDataPoint
        fields = ("id", "contract", "measure", "entity_key", "dimensions", "observed_at", "value", "unit",
                  "quality_flags", "source", "source_priority", "batch", "raw_record", "recorded_from", "recorded_to",
                  "current", "superseded_by_batch", "is_override", "override_reason", "overridden_by")  # fmt: skip
        read_only_fields = fields

    def get_current(self, gdp: GoldenDataPoint) -> bool:
        return gdp.recorded_to is None


class RawRecordLineageSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    position = serializers.IntegerField()
    line = serializers.IntegerField(allow_null=True)
    payload = serializers.JSONField()
    hash = serializers.CharField()
    received_at = serializers.DateTimeField()


class BatchLineageSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.CharField()
    received = serializers.IntegerField()
    created_at = serializers.DateTimeField()


class SourceLineageSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    key = serializers.CharField()
    name = serializers.CharField()
    priority = serializers.IntegerField()


class GdpLineageSerializer(serializers.Serializer):
    gdp = GoldenDataPointSerializer()
    raw_record = RawRecordLineageSerializer(allow_null=True)
    batch = BatchLineageSerializer(allow_null=True)
    source = SourceLineageSerializer(allow_null=True)
    history = GoldenDataPointSerializer(many=True, help_text="Every version of this key, newest first.")


class OverrideSerializer(serializers.Serializer):
    value = serializers.DecimalField(max_digits=30, decimal_places=10)
    reason = serializers.CharField()


class OverrideRemoveSerializer(serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, default="")
