"""URL map for bench/api.py's server: config.urls plus the bare baseline view `/bench/bare/?bytes=N`.

The bare view is the ceiling the API endpoints are measured against: the same middleware, no
authentication, no database, a JSON body of exactly N bytes.
"""

from __future__ import annotations

import json

from django.http import HttpRequest, JsonResponse
from django.urls import path

from config.urls import handler400, handler403, handler404, handler500
from config.urls import urlpatterns as config_urlpatterns

__all__ = ["handler400", "handler403", "handler404", "handler500", "urlpatterns"]

_EMPTY = len(json.dumps({"data": ""}))
_MAX_BYTES = 10_000_000


def bare(request: HttpRequest) -> JsonResponse:
    """`{"data": "xxx…"}`, padded so that the body is `bytes` long (at least the empty object's length)."""
    try:
        size = min(max(int(request.GET.get("bytes", "1000")), _EMPTY), _MAX_BYTES)
    except ValueError:
        size = 1000
    return JsonResponse({"data": "x" * (size - _EMPTY)})


urlpatterns = [path("bench/bare/", bare, name="bench-bare"), *config_urlpatterns]
