from __future__ import annotations

from rest_framework import serializers

from apps.trust.models import EvidenceRecord
from apps.trust.selectors import BROKEN_REASONS


class EvidenceRecordSerializer(serializers.ModelSerializer):
    actor = serializers.SlugRelatedField(slug_field="username", read_only=True)
    actor_id = serializers.IntegerField(read_only=True, allow_null=True, help_text="Part of the entry hash.")

    class Meta:
        model = EvidenceRecord
        fields = ("id", "sequence", "kind", "subject", "content", "content_hash", "previous_hash", "entry_hash",
                  "actor", "actor_id", "recorded_at")  # fmt: skip
        read_only_fields = fields


class BrokenLinkSerializer(serializers.Serializer):
    sequence = serializers.IntegerField(help_text="The first entry that does not hold.")
    reason = serializers.ChoiceField(choices=BROKEN_REASONS)
    detail = serializers.CharField()


class EvidenceVerifySerializer(serializers.Serializer):
    ok = serializers.BooleanField()
    checked = serializers.IntegerField(help_text="Entries found intact (before the first broken one, if any).")
    first_broken = BrokenLinkSerializer(allow_null=True)
    head_hash = serializers.CharField(help_text="The last intact entry's hash (64 zeros for an empty chain).")
