"""Trust records governance facts from other modules' domain events in the evidence ledger.

Trust imports no module that publishes them: a handler reads only the event (its tenant,
payload and actor). The runtime runs each handler once per event, its append committing
with the handled mark, so a retried or replayed event never appends twice; the event's
id in the content ties each entry back to its outbox row.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from apps.runtime.events import subscribe
from apps.runtime.models import DomainEvent
from apps.trust import services
from apps.trust.choices import EVIDENCE_EVENT_TYPES

logger = logging.getLogger(__name__)

SUBJECT_KEYS = ("kpi", "period", "calendar", "name", "key", "version")


def record_evidence(event: DomainEvent) -> None:
    """Append the event's facts to its tenant's chain; platform-wide events (no tenant) have no chain."""
    if event.tenant_id is None:
        logger.info("Event %s (%s) has no tenant: no evidence chain to append to", event.pk, event.type)
        return
    services.evidence_append(
        tenant=event.tenant,
        kind=event.type,
        subject=evidence_subject(event.type, event.payload),
        content={
            "event_id": str(event.pk),
            "occurred_at": event.occurred_at.isoformat(),
            "payload": event.payload,
        },
        actor=event.actor,
    )


def evidence_subject(event_type: str, payload: dict[str, Any]) -> str:
    """A short line naming what the event is about, e.g. "contract orders 1.1.0"."""
    noun = event_type.split(".", 1)[0]
    if noun == "contract":
        parts = [noun, payload.get("contract"), payload.get("version")]
    elif noun == "policy":
        version = payload.get("version")
        parts = [noun, payload.get("name") or payload.get("policy"), f"v{version}" if version is not None else None]
    elif noun == "gdp":
        parts = [noun, payload.get("measure"), payload.get("entity_key"), payload.get("observed_at")]
    elif noun == "period":
        parts = [
            noun,
            payload.get("calendar_key") or payload.get("calendar"),
            payload.get("label") or payload.get("period"),
        ]
    else:
        parts = [noun, *(payload.get(key) for key in SUBJECT_KEYS)]
    text = " ".join(str(part) for part in parts if part not in (None, ""))
    return re.sub(r"[\x00-\x1f\x7f]+", " ", text)[:300]


# Handler names are stored in the runtime's bookkeeping rows: never rename one that has run.
for _event_type in EVIDENCE_EVENT_TYPES:
    subscribe(_event_type, name=f"trust.record_{_event_type.replace('.', '_')}")(record_evidence)
