"""Serializers of the native schema registry API."""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.utilities.choices import CompatibilityChoices
from apps.utilities.models import SchemaSubject, SchemaVersion


class CompatibilityLevelField(serializers.ChoiceField):
    """A compatibility level (Confluent's names). Every level field of this API uses it."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(choices=CompatibilityChoices.choices, **kwargs)


class CompatibilityLevelFieldExtension(OpenApiSerializerFieldExtension):
    """Documents the levels once, as the `CompatibilityLevel` component, whatever the field is called
    (`compatibility`, `effective_compatibility`, `mode`)."""

    target_class = CompatibilityLevelField

    def get_name(self) -> str:
        return "CompatibilityLevel"

    def map_serializer_field(self, auto_schema: Any, direction: str) -> dict[str, Any]:
        levels = "; ".join(f"`{value}`: {label}" for value, label in CompatibilityChoices.choices)
        return {"type": "string", "enum": list(CompatibilityChoices.values), "description": levels}


class SchemaVersionSummarySerializer(serializers.ModelSerializer):
    """One version in a subject's history."""

    schema_id = serializers.IntegerField(read_only=True, help_text="The registry-wide id of the schema content.")

    class Meta:
        model = SchemaVersion
        fields = ("version", "schema_id", "breaking", "created_at")
        read_only_fields = fields


class SchemaVersionSerializer(SchemaVersionSummarySerializer):
    """A version with its schema."""

    subject = serializers.CharField(source="subject.name", read_only=True)
    schema = serializers.JSONField(source="schema.schema", read_only=True, help_text="The JSON Schema document.")
    created_by = serializers.CharField(source="created_by.username", read_only=True, allow_null=True, default=None)

    class Meta(SchemaVersionSummarySerializer.Meta):
        fields = ("subject", "version", "schema_id", "schema", "breaking", "created_at", "created_by")
        read_only_fields = fields


class SubjectSerializer(serializers.ModelSerializer):
    """A subject: its own compatibility level (null: the tenant default) and the level in force."""

    compatibility = serializers.SerializerMethodField()
    effective_compatibility = serializers.SerializerMethodField()
    latest_version = serializers.SerializerMethodField()

    class Meta:
        model = SchemaSubject
        fields = (
            "id",
            "name",
            "compatibility",
            "effective_compatibility",
            "lenient",
            "latest_version",
            "created_at",
            "updated_at",
        )
        read_only_fields = fields

    @extend_schema_field(
        CompatibilityLevelField(
            allow_null=True, help_text="The subject's own level; null when it follows the tenant default."
        )
    )
    def get_compatibility(self, subject: SchemaSubject) -> str | None:
        return subject.compatibility or None

    @extend_schema_field(CompatibilityLevelField(help_text="The level registrations are checked under."))
    def get_effective_compatibility(self, subject: SchemaSubject) -> str:
        return subject.compatibility or self.context["default_compatibility"]

    @extend_schema_field(serializers.IntegerField(allow_null=True, help_text="null: no version registered yet."))
    def get_latest_version(self, subject: SchemaSubject) -> int | None:
        if hasattr(subject, "latest_version"):  # annotated by the views' queryset
            return subject.latest_version
        return subject.versions.order_by("-version").values_list("version", flat=True).first()


class SubjectDetailSerializer(SubjectSerializer):
    versions = SchemaVersionSummarySerializer(many=True, read_only=True)

    class Meta(SubjectSerializer.Meta):
        fields = (*SubjectSerializer.Meta.fields, "versions")
        read_only_fields = fields


@extend_schema_field({"type": "object", "additionalProperties": {}})
class JsonSchemaDocumentField(serializers.JSONField):
    """A JSON Schema document: any JSON on the wire, but the registry takes only an object (400 else)."""


class SchemaRegisterSerializer(serializers.Serializer):
    schema = JsonSchemaDocumentField(help_text="A JSON Schema document (a JSON object).")


class CompatibilityCheckSerializer(serializers.Serializer):
    schema = JsonSchemaDocumentField(help_text="The candidate JSON Schema document (a JSON object).")
    mode = CompatibilityLevelField(
        required=False,
        allow_null=True,
        help_text="Check under this level instead of the subject's.",
    )


class IncompatibilitySerializer(serializers.Serializer):
    kind = serializers.CharField(help_text="Stable machine name, e.g. TYPE_CHANGED.")
    path = serializers.CharField(help_text="JSON pointer into the schema, e.g. #/properties/amount.")
    message = serializers.CharField(help_text="What changed and why it breaks.")
    version = serializers.IntegerField(allow_null=True, help_text="The registered version the candidate breaks.")


class CompatibilityResultSerializer(serializers.Serializer):
    compatible = serializers.BooleanField()
    mode = CompatibilityLevelField(help_text="The level that was checked.")
    incompatibilities = IncompatibilitySerializer(many=True, help_text="Empty when compatible.")


class SubjectConfigSerializer(serializers.Serializer):
    compatibility = CompatibilityLevelField(
        required=False,
        allow_null=True,
        help_text="The subject's own level; null returns it to the tenant default. Absent: unchanged.",
    )
    lenient = serializers.BooleanField(required=False, help_text="Absent: unchanged.")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if not attrs:
            raise serializers.ValidationError("Give `compatibility`, `lenient` or both.")
        return attrs


class ChangeSerializer(serializers.Serializer):
    kind = serializers.CharField()
    path = serializers.CharField()
    message = serializers.CharField()


class DiffSerializer(serializers.Serializer):
    """Every difference between two versions, compatible or not, ordered by path."""

    subject = serializers.CharField()
    changes = ChangeSerializer(many=True)

    def get_fields(self) -> dict[str, serializers.Field]:
        fields = super().get_fields()
        # `from` is a Python keyword, so the version fields are added here rather than declared.
        fields["from"] = serializers.IntegerField(help_text="The older version.")
        fields["to"] = serializers.IntegerField(help_text="The newer version.")
        return {name: fields[name] for name in ("subject", "from", "to", "changes")}
