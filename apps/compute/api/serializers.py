from __future__ import annotations

from rest_framework import serializers

from apps.compute.choices import NormalizationKindChoices, SourceKindChoices
from apps.compute.models import NormalizationRule, Source
from apps.storage.choices import PayloadFormatChoices
from apps.storage.models import IngestionBatch, Rejection


class SourceSerializer(serializers.ModelSerializer):
    contract = serializers.SlugRelatedField(slug_field="key", read_only=True)

    class Meta:
        model = Source
        fields = ("id", "key", "name", "contract", "kind", "priority", "active", "pull_url", "pull_format",
                  "pull_every_seconds", "last_pulled_at", "description", "created_at")  # fmt: skip
        read_only_fields = fields


class SourceWriteSerializer(serializers.Serializer):
    key = serializers.SlugField(max_length=100, required=False)
    name = serializers.CharField(max_length=200, required=False)
    contract = serializers.SlugField(required=False, help_text="Key of the contract (create only).")
    kind = serializers.ChoiceField(choices=SourceKindChoices.choices, required=False)
    priority = serializers.IntegerField(required=False, min_value=-32768, max_value=32767)
    active = serializers.BooleanField(required=False)
    pull_url = serializers.URLField(required=False, allow_blank=True)
    pull_format = serializers.ChoiceField(choices=PayloadFormatChoices.choices, required=False, allow_blank=True)
    pull_every_seconds = serializers.IntegerField(required=False, allow_null=True, min_value=60)
    description = serializers.CharField(required=False, allow_blank=True)


class NormalizationRuleSerializer(serializers.ModelSerializer):
    contract = serializers.CharField(source="contract_version.contract.key", read_only=True)
    version = serializers.CharField(source="contract_version.version", read_only=True)
    version_status = serializers.CharField(source="contract_version.status", read_only=True)

    class Meta:
        model = NormalizationRule
        fields = ("id", "contract", "contract_version", "version", "version_status", "position", "kind", "field",
                  "params", "description")  # fmt: skip
        read_only_fields = fields


class NormalizationRuleWriteSerializer(serializers.Serializer):
    contract_version = serializers.IntegerField(required=False, help_text="Id of a draft version (create only).")
    position = serializers.IntegerField(
        required=False, min_value=0, max_value=2147483647, help_text="Steps run in ascending position (default: last)."
    )
    kind = serializers.ChoiceField(choices=NormalizationKindChoices.choices, required=False)
    field = serializers.CharField(max_length=200, required=False, help_text="The field the step writes.")
    params = serializers.JSONField(required=False, help_text='What the kind needs, e.g. {"to": "date"}.')
    description = serializers.CharField(required=False, allow_blank=True)


class IngestionBatchSerializer(serializers.ModelSerializer):
    source = serializers.SlugRelatedField(slug_field="key", read_only=True)
    contract_version = serializers.SerializerMethodField()

    class Meta:
        model = IngestionBatch
        fields = ("id", "source", "contract_version", "format", "status", "idempotency_key", "checksum",
                  "size_bytes", "received", "accepted", "rejected", "duplicates", "superseded", "gdps_created",
                  "created_at", "started_at", "finished_at", "error")  # fmt: skip
        read_only_fields = fields

    def get_contract_version(self, batch: IngestionBatch) -> str | None:
        version = batch.contract_version
        return f"{version.contract.key} {version.version}" if version else None


class RejectionSerializer(serializers.ModelSerializer):
    class Meta:
        model = Rejection
        fields = ("id", "position", "line", "field", "rule", "severity", "message", "value", "raw_record")
        read_only_fields = fields
