"""OpenAPI generation: every operation documents its problem-details error responses."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import FieldDoesNotExist
from drf_spectacular.openapi import AutoSchema
from rest_framework import serializers

from apps.kernel.api.problems import DEFAULT_PROBLEMS, PROBLEM_CONTENT_TYPE
from apps.kernel.api.serializers import ProblemSerializer


class ProblemAwareAutoSchema(AutoSchema):
    """Adds the problem responses an operation can give: auth (401/403) where a permission
    applies, 404 on detail paths, 400/413/415 on writes, 429 and 500 everywhere, plus a
    view's `extra_error_codes` (e.g. 409) on its writes. (405 answers methods that are not
    operations, so it is described once in the API description.)

    Also documents what a ModelSerializer field renders from its model column, whatever the
    field's own arguments: null for a nullable column (e.g. `SlugRelatedField(read_only=True)`
    on an optional FK; DRF renders null when the column is), and "" for a read-only choice,
    URL, slug… field over a `blank=True` column (DRF drops `allow_blank` from read-only fields,
    so drf-spectacular would document only the choices, or a format "" does not meet)."""

    def _get_serializer_field_meta(self, field: Any, direction: str) -> dict[str, Any]:
        meta = super()._get_serializer_field_meta(field, direction)
        if direction == "response" or getattr(field, "read_only", False):
            column = model_column(field)
            if column is not None and column.null:
                meta["nullable"] = True
        return meta

    def _map_serializer_field(self, field: Any, direction: str, bypass_extensions: bool = False) -> dict[str, Any]:
        column = model_column(field) if field.read_only and not getattr(field, "allow_blank", True) else None
        renders_blank = column is not None and column.blank and column.empty_strings_allowed
        if renders_blank and isinstance(field, serializers.ChoiceField):
            field.allow_blank = True  # read-only: validates nothing, so only the document changes
        schema = super()._map_serializer_field(field, direction, bypass_extensions)
        if renders_blank and schema.get("type") == "string" and ("format" in schema or "pattern" in schema):
            # e.g. a URLField over a blank column: a URI, or "".
            inner = {key: value for key, value in schema.items() if key != "readOnly"}
            schema = {"anyOf": [inner, {"type": "string", "enum": [""]}], "readOnly": True}
        return schema

    def _get_response_bodies(self, direction: str = "response") -> dict[str, Any]:
        responses = super()._get_response_bodies(direction)
        for code in self._error_codes():
            key = str(code)
            if key not in responses:
                body = self._get_response_for_code(ProblemSerializer, key, [PROBLEM_CONTENT_TYPE], direction)
                body["description"] = DEFAULT_PROBLEMS[code][1]
                responses[key] = body
        return responses

    def _error_codes(self) -> list[int]:
        codes = [429, 500]
        if self._has_auth():
            codes += [401, 403]
        if self._is_detail_operation():
            codes.append(404)
        if self.method in ("POST", "PUT", "PATCH"):
            codes += [400, 413, 415]
        if self.method in ("POST", "PUT", "PATCH", "DELETE"):
            codes += list(getattr(self.view, "extra_error_codes", ()))
        return sorted(set(codes))

    def _has_auth(self) -> bool:
        return bool(getattr(self.view, "permission_classes", None)) and not getattr(self.view, "public_endpoint", False)

    def _is_detail_operation(self) -> bool:
        return "{" in self.path


def model_column(field: Any) -> Any:
    """The concrete model column a ModelSerializer field reads directly, or None."""
    parent = getattr(field, "parent", None)
    model = getattr(getattr(parent, "Meta", None), "model", None)
    if not isinstance(parent, serializers.ModelSerializer) or model is None:
        return None
    if isinstance(field, serializers.SerializerMethodField | serializers.ManyRelatedField) or "." in field.source:
        return None
    try:
        column = model._meta.get_field(field.source)
    except FieldDoesNotExist:
        return None
    # Reverse relations say null=True too, but render a list; only a concrete column can be null.
    return column if column.concrete and not column.many_to_many else None
