"""Domain events: `publish_event` (the outbox write) and `subscribe` (the handler registry).

Services call `publish_event(...)` inside their transaction. After the transaction
commits, the event is handed to Celery; each subscribed handler then runs in its own
task, at most once per event (see services.event_handle). Handlers are registered in
an app's `handlers.py`, which the runtime app imports at start-up:

    @subscribe("membership.removed", name="access.revoke_tokens_of_removed_member")
    def revoke_tokens(event: DomainEvent) -> None: ...

A handler's name is stored in bookkeeping rows; never rename one that has run.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from django.db import transaction

from apps.kernel.api.readcache import tenant_changed
from apps.runtime.models import DomainEvent

logger = logging.getLogger(__name__)

Handler = Callable[[DomainEvent], None]

_handlers_by_type: dict[str, dict[str, Handler]] = {}
_handlers_by_name: dict[str, Handler] = {}


def subscribe(event_type: str, *, name: str) -> Callable[[Handler], Handler]:
    """Register the decorated function as the handler `name` of `event_type` events."""

    def register(func: Handler) -> Handler:
        existing = _handlers_by_name.get(name)
        if existing is not None and existing is not func:
            raise ValueError(f"event handler name {name!r} is already taken by {existing!r}")
        _handlers_by_type.setdefault(event_type, {})[name] = func
        _handlers_by_name[name] = func
        return func

    return register


def handlers_for(event_type: str) -> list[str]:
    return sorted(_handlers_by_type.get(event_type, {}))


def handler_named(name: str) -> Handler:
    try:
        return _handlers_by_name[name]
    except KeyError:
        raise LookupError(f"no event handler named {name!r}") from None


def subscriptions() -> dict[str, list[str]]:
    """Event type → handler names; shown on the Modules page."""
    return {event_type: sorted(names) for event_type, names in sorted(_handlers_by_type.items())}


def publish_event(event_type: str, payload: dict[str, Any], *, tenant: Any = None, actor: Any = None) -> DomainEvent:
    """Record a domain event in the current transaction; dispatch it once that commits.

    Outside a transaction (autocommit) the row is written at once and dispatched at once.
    """
    event = DomainEvent.objects.create(
        type=event_type,
        payload=payload,
        tenant=tenant,
        actor=actor if getattr(actor, "is_authenticated", False) else None,
    )
    transaction.on_commit(lambda: _committed(event))
    return event


def _committed(event: DomainEvent) -> None:
    if event.tenant_id is not None:
        tenant_changed(event.tenant_id)  # the tenant's cached reads are stale now
    _hand_off(event.pk)


def _hand_off(event_id: Any) -> None:
    from apps.runtime.tasks import dispatch_event  # tasks import this module

    try:
        dispatch_event.delay(str(event_id))
    except Exception:  # broker down: the sweep job dispatches it later
        logger.warning("Could not hand event %s to the broker; the outbox sweep will retry", event_id, exc_info=True)
