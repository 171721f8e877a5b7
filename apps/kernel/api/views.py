"""Views shared by the whole API."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, JsonResponse

from apps.kernel.api.problems import problem_json_response


def api_not_found(request: HttpRequest, *args: Any, **kwargs: Any) -> JsonResponse:
    """Any unknown /api/v1/ path: a problem-details 404, also with DEBUG on (where Django
    would otherwise answer its HTML debug page instead of handler404)."""
    return problem_json_response(request, 404, detail="No API resource at this address.")
