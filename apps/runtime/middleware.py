"""Request id: taken from a sane X-Request-ID header or generated; echoed on the response."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.utils.log import log_response

from apps.kernel.logcontext import request_id_var, tenant_var, user_var

_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


class RequestIdMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        incoming = request.headers.get("X-Request-ID", "")
        request_id = incoming if _VALID_REQUEST_ID.match(incoming) else uuid.uuid4().hex
        request.request_id = request_id  # type: ignore[attr-defined]
        tokens = [request_id_var.set(request_id), user_var.set("-"), tenant_var.set("-")]
        try:
            response = self.get_response(request)
            if response.status_code >= 400:
                # Django logs error responses after the middleware chain returns, when this
                # context is gone; logging here (log_response marks the response as logged,
                # so Django does not log it again) keeps request id, user and tenant on the line.
                log_response("%s: %s", response.reason_phrase, request.path, response=response, request=request)
        finally:
            for var, token in zip((request_id_var, user_var, tenant_var), tokens, strict=True):
                var.reset(token)
        response["X-Request-ID"] = request_id
        return response
