from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from rest_framework import serializers

from apps.host.choices import PolicyKindChoices, RoleChoices, SurvivorshipChoices
from apps.host.contracts.lifecycle import allowed_actions
from apps.host.models import (
    ContractField,
    ContractTransition,
    ContractVersion,
    DataContract,
    Membership,
    Policy,
    QualityRule,
    Tenant,
)
from apps.host.policies.evaluation import ACTIONS


class TenantSerializer(serializers.ModelSerializer):
    class Meta:
        model = Tenant
        fields = ("id", "slug", "name", "status", "timezone", "created_at")
        read_only_fields = fields


class MembershipSerializer(serializers.ModelSerializer):
    username = serializers.CharField(source="user.username", read_only=True)

    class Meta:
        model = Membership
        fields = ("id", "username", "role", "created_at", "updated_at")
        read_only_fields = ("id", "username", "created_at", "updated_at")


class MembershipCreateSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=150)
    role = serializers.ChoiceField(choices=RoleChoices.choices)

    def validate_username(self, value: str) -> Any:
        user = get_user_model().objects.filter(username=value, is_active=True).first()
        if user is None:
            raise serializers.ValidationError(f"No active account is called '{value}'.")
        return user


class MembershipUpdateSerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=RoleChoices.choices)


# --- data contracts -------------------------------------------------------------------------
class DataContractSerializer(serializers.ModelSerializer):
    owner = serializers.SlugRelatedField(slug_field="username", read_only=True)
    active_version = serializers.SerializerMethodField()
    registry_subject = serializers.CharField(read_only=True)

    class Meta:
        model = DataContract
        fields = ("id", "key", "name", "domain", "owner", "description", "survivorship", "active_version",
                  "registry_subject", "created_at", "updated_at")  # fmt: skip
        read_only_fields = ("id", "created_at", "updated_at")

    def get_active_version(self, contract: DataContract) -> str | None:
        # Prefetched as `active_versions` by the view, so a list costs no query per row.
        active = getattr(contract, "active_versions", None)
        if active is None:
            active = list(contract.versions.filter(status="active"))
        return active[0].version if active else None


class DataContractCreateSerializer(serializers.Serializer):
    key = serializers.SlugField(max_length=100)
    name = serializers.CharField(max_length=200)
    domain = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")
    description = serializers.CharField(required=False, allow_blank=True, default="")
    survivorship = serializers.ChoiceField(choices=SurvivorshipChoices.choices, required=False,
                                           help_text="Which value wins when a Golden Data Point already exists.")  # fmt: skip


class ContractFieldSerializer(serializers.ModelSerializer):
    class Meta:
        model = ContractField
        fields = ("name", "logical_type", "required", "unique", "primary_key", "primary_key_position", "pattern",
                  "minimum", "maximum", "allowed_values", "max_length", "unit", "classification", "description",
                  "role")  # fmt: skip


class QualityRuleSerializer(serializers.ModelSerializer):
    field = serializers.CharField(source="field.name", allow_null=True, required=False, default=None)

    class Meta:
        model = QualityRule
        fields = ("field", "kind", "severity", "threshold", "params", "description")


class ContractTransitionSerializer(serializers.ModelSerializer):
    actor = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = ContractTransition
        fields = ("from_status", "to_status", "actor", "comment", "at")


class ContractVersionSerializer(serializers.ModelSerializer):
    contract = serializers.SlugRelatedField(slug_field="key", read_only=True)
    fields = ContractFieldSerializer(many=True, read_only=True)
    quality_rules = QualityRuleSerializer(many=True, read_only=True)
    transitions = ContractTransitionSerializer(many=True, read_only=True)
    proposed_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    decided_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    allowed_actions = serializers.SerializerMethodField()
    schema_version = serializers.SerializerMethodField()

    class Meta:
        model = ContractVersion
        fields = ("id", "contract", "version", "status", "allowed_actions", "dataset", "notes", "fields",
                  "quality_rules", "sla_freshness", "sla_completeness", "sla_availability", "support",
                  "breaking_change_confirmed", "proposed_by", "proposed_at", "decided_by", "decided_at",
                  "decision_comment", "activated_at", "schema_version", "transitions", "created_at", "updated_at")  # fmt: skip
        read_only_fields = fields

    def get_allowed_actions(self, version: ContractVersion) -> list[str]:
        return allowed_actions(version.status)

    def get_schema_version(self, version: ContractVersion) -> int | None:
        return version.schema_version.version if version.schema_version_id else None


class ContractVersionWriteSerializer(serializers.Serializer):
    """Create or change a draft; fields and rules are replaced as a whole when given."""

    contract = serializers.SlugField(help_text="Key of the contract (create only).", required=False)
    version = serializers.CharField(max_length=64, required=False)
    dataset = serializers.CharField(max_length=200, required=False, allow_blank=True)
    notes = serializers.CharField(required=False, allow_blank=True)
    sla_freshness = serializers.DurationField(required=False, allow_null=True)
    sla_completeness = serializers.DecimalField(max_digits=5, decimal_places=2, required=False, allow_null=True)
    sla_availability = serializers.DecimalField(max_digits=6, decimal_places=3, required=False, allow_null=True)
    support = serializers.ListField(child=serializers.DictField(), required=False)
    fields = serializers.ListField(child=serializers.DictField(), required=False)
    quality_rules = serializers.ListField(child=serializers.DictField(), required=False)


class LifecycleActionSerializer(serializers.Serializer):
    comment = serializers.CharField(required=False, allow_blank=True, default="")
    confirm_breaking = serializers.BooleanField(
        required=False, default=False, help_text="Propose only: confirm a break of compatibility (major raised)."
    )


# --- policies -------------------------------------------------------------------------------
class PolicySerializer(serializers.ModelSerializer):
    contract = serializers.SlugRelatedField(slug_field="key", read_only=True)
    scope = serializers.CharField(read_only=True)

    class Meta:
        model = Policy
        fields = ("id", "lineage", "version", "kind", "name", "description", "scope", "contract", "parameters",
                  "status", "activated_at", "retired_at", "created_at", "updated_at")  # fmt: skip
        read_only_fields = fields


class PolicyWriteSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=PolicyKindChoices.choices, required=False)
    name = serializers.CharField(max_length=200, required=False)
    description = serializers.CharField(required=False, allow_blank=True)
    contract = serializers.SlugField(required=False, allow_null=True, help_text="Key: narrows the policy to it.")
    parameters = serializers.DictField(required=False)


class PolicyEvaluateSerializer(serializers.Serializer):
    action = serializers.ChoiceField(choices=sorted(ACTIONS))
    contract = serializers.SlugField(required=False, allow_null=True)
    facts = serializers.DictField(required=False, default=dict)


class ReasonSerializer(serializers.Serializer):
    kind = serializers.CharField()
    ok = serializers.BooleanField()
    message = serializers.CharField()
    policy_id = serializers.IntegerField(allow_null=True)
    policy_name = serializers.CharField()
    scope = serializers.CharField()


class DecisionSerializer(serializers.Serializer):
    action = serializers.CharField()
    allowed = serializers.BooleanField()
    reasons = ReasonSerializer(many=True)
    treatments = serializers.DictField()


class SchemaChangeSerializer(serializers.Serializer):
    kind = serializers.CharField()
    path = serializers.CharField()
    message = serializers.CharField()
