"""Gateway protections applied before any view runs."""

from __future__ import annotations

import re
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from apps.kernel.api.problems import problem_json_response


class RequestSizeLimitMiddleware:
    """Refuses bodies above AURUM_MAX_REQUEST_BYTES with 413 before they are read.

    Django only limits bodies it buffers itself; DRF parsers read the stream directly,
    so without this a client could send an unbounded JSON body. Ingestion paths
    (AURUM_LARGE_BODY_PATHS) get the larger AURUM_MAX_INGEST_BYTES and count bytes as they
    stream, which also covers bodies sent without a Content-Length.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.large_body_paths = [re.compile(pattern) for pattern in settings.AURUM_LARGE_BODY_PATHS]

    def __call__(self, request: HttpRequest) -> HttpResponse:
        limit = settings.AURUM_MAX_REQUEST_BYTES
        if any(pattern.match(request.path) for pattern in self.large_body_paths):
            limit = settings.AURUM_MAX_INGEST_BYTES  # ingestion endpoints stream and re-check as they read
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return problem_json_response(request, 400, detail="Content-Length is not a number.")
        if length > limit:
            return problem_json_response(
                request,
                413,
                detail=f"The body has {length} bytes; this server accepts at most {limit}.",
                max_bytes=limit,
            )
        return self.get_response(request)
