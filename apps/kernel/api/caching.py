"""Conditional GET for read endpoints: a strong ETag over the rendered body, `If-None-Match` → 304.

Shared by the read APIs that promise caching (storage's Golden Data Points, consumption's KPI
values): the body is still computed to compare, so a 304 saves the transfer, not the query.
"""

from __future__ import annotations

import hashlib
from typing import Any

from django.utils.cache import get_conditional_response, patch_vary_headers

VARY = ("Accept", "Authorization", "Cookie")


def conditional_get(request: Any, response: Any, *, cache_control: str) -> Any:
    """Stamp a 200 GET/HEAD answer with `ETag` (SHA-256 of its body), `Cache-Control` and `Vary`,
    and answer 304 when the request's `If-None-Match` holds that ETag. Anything else passes through."""
    if request.method not in ("GET", "HEAD") or response.status_code != 200 or response.streaming:
        return response
    if hasattr(response, "render"):
        response.render()
    etag = '"' + hashlib.sha256(response.content).hexdigest()[:40] + '"'
    response["ETag"] = etag
    response["Cache-Control"] = cache_control
    patch_vary_headers(response, VARY)
    return get_conditional_response(request, etag=etag, response=response) or response
