"""Publication API shapes: outputs (read), publish and request bodies, restatements, decisions."""

from __future__ import annotations

from typing import Any

from django.urls import reverse
from rest_framework import serializers

from apps.compute.publication.choices import PublicationRequestStatusChoices, RestatementStatusChoices
from apps.compute.publication.models import PublicationRequest, Restatement
from apps.storage.published import PublicationKindChoices, PublishedOutput


def evidence_url(kind: str) -> str:
    """The trust ledger's entries of this kind (by address: compute does not import trust)."""
    return reverse("evidence-record-list") + f"?kind={kind}"


class ValueRowSerializer(serializers.Serializer):
    period = serializers.CharField()
    period_id = serializers.IntegerField()
    dimensions = serializers.DictField()
    dimensions_key = serializers.CharField()
    actual = serializers.CharField(allow_null=True, help_text="Decimal text without exponent, e.g. '1250.5'.")
    target = serializers.CharField(allow_null=True)
    variance = serializers.CharField(allow_null=True)
    attainment = serializers.CharField(allow_null=True)
    status = serializers.CharField()
    streak = serializers.IntegerField()
    gdp_count = serializers.IntegerField()


class PolicyReasonSerializer(serializers.Serializer):
    kind = serializers.CharField()
    ok = serializers.BooleanField()
    message = serializers.CharField()
    policy = serializers.CharField()
    scope = serializers.CharField()


class PublishedOutputSerializer(serializers.ModelSerializer):
    kpi = serializers.CharField(source="kpi_key")
    kpi_version = serializers.CharField(source="kpi_version_label")
    kind = serializers.ChoiceField(choices=PublicationKindChoices.choices)
    periods = serializers.ListField(child=serializers.CharField(), source="period_labels")
    period_ids = serializers.ListField(child=serializers.IntegerField())
    values = ValueRowSerializer(many=True)
    contract_versions = serializers.ListField(child=serializers.DictField(child=serializers.CharField()))
    published_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    approved_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    superseded_by = serializers.SerializerMethodField()
    policy_reasons = PolicyReasonSerializer(many=True)
    evidence = serializers.SerializerMethodField()

    class Meta:
        model = PublishedOutput
        fields = ("id", "kpi", "kpi_version", "kpi_version_id", "version", "kind", "periods", "period_ids",
                  "contract_versions", "as_of", "content_hash", "values", "published_by", "approved_by",
                  "published_at", "supersedes", "superseded_by", "closed_period", "reason", "policy_reasons",
                  "evidence")  # fmt: skip
        read_only_fields = fields

    def get_superseded_by(self, output: PublishedOutput) -> list[int]:
        return sorted(output.superseded_by.values_list("pk", flat=True))

    def get_evidence(self, output: PublishedOutput) -> str:
        kind = "kpi.restated" if output.kind == PublicationKindChoices.RESTATEMENT else "kpi.published"
        return evidence_url(kind)


class PublishSerializer(serializers.Serializer):
    kpi = serializers.SlugField(help_text="The KPI's key.")
    version = serializers.CharField(required=False, help_text="KPI version; the active one when left out.")
    periods = serializers.ListField(child=serializers.CharField(), required=False, allow_empty=True,
                                    help_text="Period labels of the KPI's calendar and grain, e.g. ['2026-01'].")  # fmt: skip
    period_ids = serializers.ListField(child=serializers.IntegerField(), required=False, allow_empty=True)
    reason = serializers.CharField(required=False, allow_blank=True, default="")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if not attrs.get("periods") and not attrs.get("period_ids"):
            raise serializers.ValidationError({"periods": ["Give period labels (periods) or ids (period_ids)."]})
        return attrs


class PublicationRequestSerializer(serializers.ModelSerializer):
    kpi = serializers.CharField(source="kpi_version.definition.key", read_only=True)
    kpi_version = serializers.CharField(source="kpi_version.version", read_only=True)
    periods = serializers.ListField(child=serializers.CharField(), source="period_labels")
    status = serializers.ChoiceField(choices=PublicationRequestStatusChoices.choices)
    requested_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    decided_by = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = PublicationRequest
        fields = ("id", "kpi", "kpi_version", "kpi_version_id", "periods", "period_ids", "status", "comment",
                  "requested_by", "created_at", "decided_by", "decided_at", "decision_comment", "output")  # fmt: skip
        read_only_fields = fields


class PublicationRequestCreateSerializer(PublishSerializer):
    reason = None
    comment = serializers.CharField(required=False, allow_blank=True, default="")


class DiffRowSerializer(serializers.Serializer):
    period = serializers.CharField()
    period_id = serializers.IntegerField()
    dimensions = serializers.DictField()
    dimensions_key = serializers.CharField()
    old = serializers.CharField(allow_null=True)
    new = serializers.CharField(allow_null=True)
    delta = serializers.CharField(allow_null=True)


class RestatementSerializer(serializers.ModelSerializer):
    kpi = serializers.CharField(source="kpi_key")
    kpi_version = serializers.CharField(source="kpi_version.version", read_only=True)
    supersedes_version = serializers.IntegerField(source="supersedes.version", read_only=True)
    periods = serializers.ListField(child=serializers.CharField(), source="period_labels")
    diff = DiffRowSerializer(many=True)
    downstream = serializers.ListField(child=serializers.CharField())
    status = serializers.ChoiceField(choices=RestatementStatusChoices.choices)
    first_approved_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    decided_by = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = Restatement
        fields = ("id", "kpi", "kpi_version", "kpi_version_id", "supersedes", "supersedes_version", "periods",
                  "period_ids", "as_of", "diff", "downstream", "trigger", "status", "proposed_at",
                  "first_approved_by", "first_approved_at", "first_reason", "decided_by", "decided_at", "reason",
                  "output")  # fmt: skip
        read_only_fields = fields


class ReasonSerializer(serializers.Serializer):
    reason = serializers.CharField(help_text="Why: required.")


class CommentSerializer(serializers.Serializer):
    comment = serializers.CharField(required=False, allow_blank=True, default="")
