"""Trust services: appending to a tenant's evidence ledger."""

from __future__ import annotations

import re
from typing import Any

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone

from apps.trust import hashing
from apps.trust.models import EvidenceRecord

KIND_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")
CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")
# First key of pg_advisory_xact_lock(int, int): "the evidence chain of tenant <second key>".
EVIDENCE_LOCK_CLASS = 0x7472_7573  # "trus"


@transaction.atomic
def evidence_append(
    *, tenant: Any, kind: str, subject: str, content: dict[str, Any], actor: Any = None
) -> EvidenceRecord:
    """Append one entry to the tenant's chain, linked to the entry before it.

    Runs in the caller's transaction: the entry exists if and only if the caller's change
    commits. Two appends for the same tenant at once must not both link to the same head
    (a forked chain), so the chain is locked first: on PostgreSQL with a transaction-level
    advisory lock per tenant (held until the caller's transaction ends; a first entry has
    no row to lock with SELECT … FOR UPDATE); on SQLite the database write lock serialises
    writers. The unique (tenant, sequence) constraint is the last line of defence.
    """
    _check(tenant=tenant, kind=kind, subject=subject, content=content)
    canonical = hashing.canonical_content(content)
    actor_id = actor.pk if getattr(actor, "is_authenticated", False) else None
    _lock_chain(tenant.pk)
    head = (
        EvidenceRecord.objects.filter(tenant=tenant).order_by("-sequence").values_list("sequence", "entry_hash").first()
    )
    sequence, previous_hash = (head[0] + 1, head[1]) if head else (1, hashing.ZERO_HASH)
    recorded_at = timezone.now()
    content_hash = hashing.content_hash(canonical)
    return EvidenceRecord.objects.create(
        tenant=tenant,
        sequence=sequence,
        kind=kind,
        subject=subject,
        content=canonical,
        content_hash=content_hash,
        previous_hash=previous_hash,
        entry_hash=hashing.entry_hash(
            previous_hash=previous_hash,
            sequence=sequence,
            kind=kind,
            subject=subject,
            content_hash=content_hash,
            recorded_at=recorded_at,
            actor_id=actor_id,
        ),
        actor_id=actor_id,
        recorded_at=recorded_at,
    )


def _lock_chain(tenant_id: int) -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            # int4 second key; ids beyond it share a lock with another tenant, which only serialises more.
            cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [EVIDENCE_LOCK_CLASS, tenant_id % 2_147_483_647])


def _check(*, tenant: Any, kind: str, subject: str, content: Any) -> None:
    errors: dict[str, str] = {}
    if tenant is None or getattr(tenant, "pk", None) is None:
        errors["tenant"] = "Evidence belongs to one tenant's chain; name the tenant."
    if not KIND_PATTERN.match(kind or "") or len(kind) > 100:
        errors["kind"] = "Lowercase letters, digits, '.', '_' and '-', at most 100, e.g. contract.approved."
    if not subject or len(subject) > 300 or CONTROL_CHARACTERS.search(subject):
        errors["subject"] = "One line of at most 300 characters, without control characters."
    if not isinstance(content, dict):
        errors["content"] = "A JSON object of the facts."
    else:
        try:
            hashing.canonical_json(content)
        except (TypeError, ValueError) as exc:
            errors["content"] = str(exc)
    if errors:
        raise ValidationError(errors)
