"""RFC 9457 problem details for every API error.

Every error leaves the API as `application/problem+json` with a stable `type` URI
(`urn:aurum:problem:<slug>`), a `title`, the HTTP `status`, a human `detail`, the
`instance` path, the request id, and for validation errors an `errors` list with one
entry per field problem (`pointer` is a JSON Pointer into the request body).
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, HttpRequest, JsonResponse
from rest_framework import exceptions, status
from rest_framework.response import Response

from apps.kernel.errors import DomainError
from apps.kernel.logcontext import request_id_var

logger = logging.getLogger("aurum.api")

PROBLEM_CONTENT_TYPE = "application/problem+json"
PROBLEM_TYPE_PREFIX = "urn:aurum:problem:"

# slug and title per status when the exception does not name its own.
DEFAULT_PROBLEMS: dict[int, tuple[str, str]] = {
    400: ("bad-request", "Bad request"),
    401: ("not-authenticated", "Authentication required"),
    403: ("permission-denied", "Forbidden"),
    404: ("not-found", "Not found"),
    405: ("method-not-allowed", "Method not allowed"),
    406: ("not-acceptable", "Not acceptable"),
    409: ("conflict", "Conflict"),
    413: ("payload-too-large", "Payload too large"),
    415: ("unsupported-media-type", "Unsupported media type"),
    429: ("throttled", "Too many requests"),
    500: ("server-error", "Internal server error"),
    503: ("unavailable", "Service unavailable"),
}


# Titles for DRF's exceptions whose kind differs from the status's usual one.
DRF_TITLES = {
    "authentication_failed": "Authentication failed",
    "parse_error": "Malformed request body",
    "not_acceptable": "Not acceptable",
}


class Problem(exceptions.APIException):
    """An API error with its own problem type. Subclass or raise with arguments."""

    status_code = status.HTTP_400_BAD_REQUEST
    slug = "bad-request"
    title = "Bad request"
    default_detail = "The request could not be processed."

    def __init__(
        self,
        detail: str | None = None,
        *,
        status_code: int | None = None,
        slug: str | None = None,
        title: str | None = None,
        **extensions: Any,
    ) -> None:
        super().__init__(detail)
        if status_code is not None:
            self.status_code = status_code
        if slug is not None:
            self.slug = slug
        if title is not None:
            self.title = title
        self.extensions = extensions


class Conflict(Problem):
    """409: the request clashes with the current state (e.g. an illegal lifecycle transition)."""

    status_code = status.HTTP_409_CONFLICT
    slug = "conflict"
    title = "Conflict"
    default_detail = "The request conflicts with the current state of the resource."


class PayloadTooLarge(Problem):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    slug = "payload-too-large"
    title = "Payload too large"
    default_detail = "The request body is larger than this endpoint accepts."


class TenantSuspended(Problem):
    status_code = status.HTTP_403_FORBIDDEN
    slug = "tenant-suspended"
    title = "Tenant suspended"
    default_detail = "This tenant is suspended; its API access is refused."


class NoActiveTenant(Problem):
    status_code = status.HTTP_403_FORBIDDEN
    slug = "no-active-tenant"
    title = "No tenant chosen"
    default_detail = "Choose a tenant first (portal tenant switcher), or use an API token of a tenant."


class InsufficientScope(Problem):
    status_code = status.HTTP_403_FORBIDDEN
    slug = "insufficient-scope"
    title = "Insufficient scope or role"


def problem_body(
    status_code: int,
    *,
    slug: str | None = None,
    title: str | None = None,
    detail: str = "",
    instance: str = "",
    **extensions: Any,
) -> dict[str, Any]:
    default_slug, default_title = DEFAULT_PROBLEMS.get(status_code, ("error", "Error"))
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_PREFIX + (slug or default_slug),
        "title": title or default_title,
        "status": status_code,
        "detail": detail,
    }
    if instance:
        body["instance"] = instance
    request_id = request_id_var.get()
    if request_id != "-":
        body["request_id"] = request_id
    body.update(extensions)
    return body


def problem_json_response(request: HttpRequest, status_code: int, **kwargs: Any) -> JsonResponse:
    """A problem response outside DRF (middleware, Django's 404/500 handlers)."""
    body = problem_body(status_code, instance=request.path, **kwargs)
    return JsonResponse(body, status=status_code, content_type=PROBLEM_CONTENT_TYPE)


def field_errors(detail: Any, pointer: str = "#") -> list[dict[str, str]]:
    """Flatten DRF's nested error detail into [{pointer, detail, code}] entries."""
    if isinstance(detail, dict):
        out: list[dict[str, str]] = []
        for key, value in detail.items():
            child = pointer if key == "non_field_errors" else f"{pointer}/{key}"
            out.extend(field_errors(value, child))
        return out
    if isinstance(detail, list):
        if all(isinstance(item, exceptions.ErrorDetail | str) for item in detail):
            return [_entry(pointer, item) for item in detail]
        out = []
        for index, item in enumerate(detail):
            out.extend(field_errors(item, f"{pointer}/{index}"))
        return out
    return [_entry(pointer, detail)]


def _entry(pointer: str, item: Any) -> dict[str, str]:
    return {"pointer": pointer, "detail": str(item), "code": getattr(item, "code", "invalid")}


def problem_exception_handler(exc: Exception, context: dict[str, Any]) -> Response:
    """DRF EXCEPTION_HANDLER: every exception becomes a problem response, 500s included."""
    request = context.get("request")
    instance = request.path if request is not None else ""
    exc = _translate(exc)
    headers: dict[str, str] = {}

    if isinstance(exc, exceptions.APIException):
        status_code = exc.status_code
        extensions: dict[str, Any] = dict(getattr(exc, "extensions", {}))
        if isinstance(exc, exceptions.ValidationError):
            extensions["errors"] = field_errors(exc.detail)
            detail = _validation_summary(extensions["errors"])
            slug, title = "validation", "Invalid input"
        else:
            detail = str(exc.detail) if not isinstance(exc.detail, dict | list) else "See errors."
            # Our Problem subclasses name their slug; DRF's exceptions give it by default_code.
            slug = getattr(exc, "slug", None) or exc.default_code.replace("_", "-")
            title = getattr(exc, "title", None) or DRF_TITLES.get(exc.default_code)
        if isinstance(exc, exceptions.Throttled) and exc.wait is not None:
            headers["Retry-After"] = str(int(exc.wait) + 1)
        if isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed) and request is not None:
            authenticate_header = _authenticate_header(context)
            if authenticate_header:
                headers["WWW-Authenticate"] = authenticate_header
            else:
                status_code = 403
    else:
        logger.exception("Unhandled error in API view", exc_info=exc)
        status_code, slug, title, extensions = 500, None, None, {}
        detail = "An unexpected error occurred; it has been logged with this request id."

    from rest_framework.views import set_rollback  # rest_framework.views imports our permissions

    set_rollback()  # an open ATOMIC block must not commit half of a failed request
    body = problem_body(status_code, slug=slug, title=title, detail=detail, instance=instance, **extensions)
    return Response(body, status=status_code, headers=headers, content_type=PROBLEM_CONTENT_TYPE)


def _translate(exc: Exception) -> Exception:
    if isinstance(exc, DomainError):
        return Problem(exc.detail, status_code=exc.status_code, slug=exc.slug, title=exc.title, **exc.extensions)
    if isinstance(exc, DjangoValidationError):
        detail = exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        return exceptions.ValidationError(detail)
    if isinstance(exc, Http404):
        return exceptions.NotFound()
    if isinstance(exc, DjangoPermissionDenied):
        return exceptions.PermissionDenied()
    if isinstance(exc, RequestDataTooBig):
        return PayloadTooLarge()
    return exc


def _authenticate_header(context: dict[str, Any]) -> str | None:
    view = context.get("view")
    request = context.get("request")
    if view is None or request is None:
        return None
    return view.get_authenticate_header(request)


def _validation_summary(errors: list[dict[str, str]]) -> str:
    if len(errors) == 1:
        where = errors[0]["pointer"].removeprefix("#/") or "body"
        return f"{where}: {errors[0]['detail']}"
    return f"{len(errors)} problems in the request; see errors."
