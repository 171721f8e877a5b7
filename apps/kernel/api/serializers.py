"""Serializers shared by every app's API."""

from rest_framework import serializers


class FieldProblemSerializer(serializers.Serializer):
    pointer = serializers.CharField(help_text="JSON Pointer into the request body, e.g. '#/scopes/0'.")
    detail = serializers.CharField()
    code = serializers.CharField()


class ProblemSerializer(serializers.Serializer):
    """RFC 9457 problem details (media type application/problem+json)."""

    type = serializers.CharField(help_text="URI naming the problem kind, e.g. urn:aurum:problem:validation.")
    title = serializers.CharField()
    status = serializers.IntegerField()
    detail = serializers.CharField()
    instance = serializers.CharField(required=False)
    request_id = serializers.CharField(required=False)
    errors = FieldProblemSerializer(many=True, required=False, help_text="Field problems (validation only).")
