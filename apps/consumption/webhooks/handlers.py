"""Domain events of the webhook types become one delivery per subscribed endpoint of the tenant.

The runtime runs each handler once per event (its writes commit with the handled mark), and
the (endpoint, event) constraint holds even if it did not: a replayed event never sends twice.
"""

from __future__ import annotations

from apps.consumption.webhooks import services
from apps.consumption.webhooks.choices import DOMAIN_EVENT_TYPES
from apps.runtime.events import subscribe
from apps.runtime.models import DomainEvent


def deliver_event(event: DomainEvent) -> None:
    """Queue the event for every active endpoint of its tenant that lists its type."""
    services.webhook_deliveries_for_event(event=event)


# Handler names are stored in the runtime's bookkeeping rows: never rename one that has run.
for _event_type in DOMAIN_EVENT_TYPES:
    subscribe(_event_type, name=f"consumption.webhooks_{_event_type.replace('.', '_')}")(deliver_event)
