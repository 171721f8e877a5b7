"""Shapes of the module registry, for the OpenAPI schema."""

from rest_framework import serializers


class ModuleSerializer(serializers.Serializer):
    name = serializers.CharField()
    summary = serializers.CharField()
    built = serializers.BooleanField(help_text="False: in the module map, not implemented yet.")


class InterfacesSerializer(serializers.Serializer):
    urls = serializers.ListField(child=serializers.CharField())
    events_published = serializers.ListField(child=serializers.CharField())
    events_consumed = serializers.ListField(child=serializers.CharField())
    services = serializers.ListField(child=serializers.CharField())
    tasks = serializers.ListField(child=serializers.CharField())


class CheckSerializer(serializers.Serializer):
    ok = serializers.BooleanField()
    detail = serializers.CharField()
    ms = serializers.FloatField()


class HealthSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=["ok", "degraded"])
    checks = serializers.DictField(child=CheckSerializer())


class ModuleAppSerializer(serializers.Serializer):
    app = serializers.CharField()
    category = serializers.CharField()
    summary = serializers.CharField()
    modules = ModuleSerializer(many=True)
    interfaces = InterfacesSerializer()
    handlers = serializers.ListField(child=serializers.CharField())
    depends_on = serializers.ListField(child=serializers.CharField())
    doc = serializers.CharField()
    health = HealthSerializer()


class ModuleRegistrySerializer(serializers.Serializer):
    results = ModuleAppSerializer(many=True)
