from __future__ import annotations

from rest_framework import serializers

from apps.storage.kpi_values import KpiStatusChoices


class KpiPeriodSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    label = serializers.CharField(help_text="e.g. FY2026-P03.")
    level = serializers.CharField(allow_null=True, help_text="day, week, period, quarter, half or year.")
    start = serializers.DateField(allow_null=True)
    end = serializers.DateField(allow_null=True, help_text="Last day, inclusive.")


def _number(help_text: str = "") -> serializers.DecimalField:
    return serializers.DecimalField(max_digits=30, decimal_places=10, allow_null=True, help_text=help_text)


class KpiValueRowSerializer(serializers.Serializer):
    """One value of a KPI for a period and a dimension set, computed ("latest") or as published."""

    id = serializers.IntegerField(
        allow_null=True, help_text="The computed value's id (latest reads); null if published."
    )
    kpi = serializers.CharField()
    kpi_version = serializers.CharField(help_text="The KPI version the value was computed under, e.g. 1.0.0.")
    period = KpiPeriodSerializer()
    dimensions = serializers.DictField(child=serializers.JSONField())
    actual = _number()
    target = _number()
    variance = _number("actual − target.")
    attainment = _number("% of target attained.")
    status = serializers.ChoiceField(KpiStatusChoices.choices)
    streak = serializers.IntegerField(help_text="Consecutive missed periods up to this one.")
    gdp_count = serializers.IntegerField()
    as_of = serializers.DateTimeField(help_text="Recorded time of the GDP belief the value was computed from.")
    computed_at = serializers.DateTimeField(allow_null=True, help_text="Latest reads only.")
    publication = serializers.IntegerField(allow_null=True, help_text="The publication version it comes from.")


class KpiPublicationRefSerializer(serializers.Serializer):
    version = serializers.IntegerField()
    kind = serializers.CharField(help_text="publication, restatement or period_close.")
    kpi_version = serializers.CharField(source="kpi_version_label")
    published_at = serializers.DateTimeField()
    as_of = serializers.DateTimeField()
    content_hash = serializers.CharField(help_text="SHA-256 of the publication's canonical JSON.")
