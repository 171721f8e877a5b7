"""Domain errors services raise; the API turns them into problem details, the admin into messages.

Services never raise HTTP exceptions: they raise Django's ValidationError for bad input
(400 with per-field errors) and these for requests that clash with the current state.
"""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """A request the domain refuses. `slug` names the problem type, `extensions` add detail."""

    status_code = 400
    slug = "bad-request"
    title = "Request refused"

    def __init__(self, detail: str, *, slug: str | None = None, title: str | None = None, **extensions: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        if slug:
            self.slug = slug
        if title:
            self.title = title
        self.extensions = extensions


class ConflictError(DomainError):
    """409: the action is not possible in the object's current state (e.g. an illegal transition)."""

    status_code = 409
    slug = "conflict"
    title = "Conflict"


class ForbiddenError(DomainError):
    """403: the actor may not do this (e.g. approve their own proposal)."""

    status_code = 403
    slug = "forbidden"
    title = "Forbidden"


class GoneError(DomainError):
    """410: what was asked for existed and was removed on purpose (e.g. an export file past retention)."""

    status_code = 410
    slug = "gone"
    title = "Gone"
