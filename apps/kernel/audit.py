"""Audit actor for services: who made a change, recorded by django-auditlog."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from auditlog.context import auditlog_value, set_actor


@contextmanager
def audit_actor(actor: Any) -> Iterator[None]:
    """Attribute the audit entries written inside the block to `actor`.

    auditlog's `set_actor` does not restore an outer context (the request's, set by its
    middleware) when it ends, which would leave the outer signal receiver connected
    forever; restoring the outer value here keeps nesting safe.
    """
    if not getattr(actor, "is_authenticated", False):
        actor = None
    previous = auditlog_value.get(None)
    with set_actor(actor):
        yield
    if previous is not None:
        auditlog_value.set(previous)
