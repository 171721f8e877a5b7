from __future__ import annotations

from typing import Any

from rest_framework import serializers

from apps.storage.models import GoldenDataPoint


class FieldSelectionMixin:
    """`context["fields"]`, when given, keeps only those fields (the API's `?fields=a,b`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        wanted = self.context.get("fields")  # type: ignore[attr-defined]
        if wanted:
            for name in set(self.fields) - set(wanted):  # type: ignore[attr-defined]
                self.fields.pop(name)  # type: ignore[attr-defined]


def parse_field_selection(raw: str | None, allowed: tuple[str, ...]) -> tuple[str, ...] | None:
    """`a,b` → ("a", "b"), in the order of `allowed`; None when nothing was asked. Unknown names → 400."""
    if raw is None or not raw.strip():
        return None
    asked = [name.strip() for name in raw.split(",") if name.strip()]
    unknown = [name for name in asked if name not in allowed]
    if unknown:
        raise serializers.ValidationError(
            {"fields": [f"Unknown field(s): {', '.join(unknown)}. Known: {', '.join(allowed)}."]}
        )
    return tuple(name for name in allowed if name in asked)


class GoldenDataPointSerializer(FieldSelectionMixin, serializers.ModelSerializer):
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
