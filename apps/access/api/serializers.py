from __future__ import annotations

from rest_framework import serializers

from apps.access.models import ApiToken
from apps.kernel.roles import ScopeChoices


class ApiTokenSerializer(serializers.ModelSerializer):
    prefix = serializers.CharField(source="display_prefix", read_only=True)
    username = serializers.CharField(source="user.username", read_only=True)
    scopes = serializers.ListField(child=serializers.ChoiceField(choices=ScopeChoices.choices))

    class Meta:
        model = ApiToken
        fields = (
            "id",
            "name",
            "prefix",
            "username",
            "scopes",
            "expires_at",
            "last_used_at",
            "revoked_at",
            "created_at",
        )
        read_only_fields = fields


class ApiTokenCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    scopes = serializers.ListField(child=serializers.ChoiceField(choices=ScopeChoices.choices), min_length=1)
    expires_at = serializers.DateTimeField(required=False, allow_null=True)
    username = serializers.CharField(
        required=False, help_text="Whose token: yourself when omitted; another member needs the admin scope."
    )


class ApiTokenCreatedSerializer(ApiTokenSerializer):
    token = serializers.CharField(read_only=True, help_text="The plain token. Shown only in this response.")

    class Meta(ApiTokenSerializer.Meta):
        fields = (*ApiTokenSerializer.Meta.fields, "token")
        read_only_fields = fields
