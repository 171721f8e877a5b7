"""Serializers shared by every app's API."""

from __future__ import annotations

import copy
from typing import Any

from rest_framework import serializers


class FieldProblemSerializer(serializers.Serializer):
    pointer = serializers.CharField(help_text="JSON Pointer into the request body, e.g. '#/scopes/0'.")
    detail = serializers.CharField()
    code = serializers.CharField(help_text="Machine-readable reason, e.g. 'required', 'invalid'.")
    line = serializers.IntegerField(
        required=False, allow_null=True, help_text="1-based line in a YAML source (ODCS import), when known."
    )


class ProblemSerializer(serializers.Serializer):
    """RFC 9457 problem details (media type application/problem+json)."""

    type = serializers.CharField(help_text="URI naming the problem kind, e.g. urn:aurum:problem:validation.")
    title = serializers.CharField()
    status = serializers.IntegerField()
    detail = serializers.CharField()
    instance = serializers.CharField(required=False)
    request_id = serializers.CharField(required=False)
    errors = FieldProblemSerializer(many=True, required=False, help_text="Field problems (validation only).")


def documented_variant(
    serializer_class: type[serializers.Serializer],
    name: str,
    *,
    required: tuple[str, ...] = (),
    exclude: tuple[str, ...] = (),
) -> type[serializers.Serializer]:
    """A copy of a write serializer that documents one operation's real constraints: the `required`
    fields become required (and non-blank), the `exclude`d ones are left out. For a view that
    validates with one all-optional serializer and then checks what a create needs, or refuses
    what an update cannot change, so the OpenAPI document states what the API accepts."""
    attrs: dict[str, Any] = {"__module__": serializer_class.__module__, "__doc__": serializer_class.__doc__}
    for field_name, field in serializer_class._declared_fields.items():
        if field_name in exclude:
            attrs[field_name] = None  # DRF drops an inherited field set to None
            continue
        # As Field.__deepcopy__ does: copies of the arguments (a ListField's child is bound to it).
        kwargs = {key: value if key in ("validators", "regex") else copy.deepcopy(value)
                  for key, value in field._kwargs.items()}  # fmt: skip
        if field_name in required:
            kwargs.pop("default", None)
            kwargs["required"] = True
            if "allow_blank" in kwargs:
                kwargs["allow_blank"] = False
        args = [copy.deepcopy(value) for value in field._args]
        attrs[field_name] = type(field)(*args, **kwargs)  # a fresh field keeps the declared order
    return type(name, (serializer_class,), attrs)
