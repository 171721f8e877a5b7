"""OpenAPI generation: every operation documents its problem-details error responses."""

from __future__ import annotations

from typing import Any

from drf_spectacular.openapi import AutoSchema

from apps.kernel.api.problems import DEFAULT_PROBLEMS, PROBLEM_CONTENT_TYPE
from apps.kernel.api.serializers import ProblemSerializer


class ProblemAwareAutoSchema(AutoSchema):
    """Adds the problem responses an operation can give: auth (401/403) where a permission
    applies, 404 on detail paths, 400/413/415 on writes, 429 and 500 everywhere, plus a
    view's `extra_error_codes` (e.g. 409) on its writes. (405 answers methods that are not
    operations, so it is described once in the API description.)"""

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
