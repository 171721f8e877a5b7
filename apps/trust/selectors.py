"""Trust reads: a tenant's evidence entries, and the verification of its chain."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from apps.trust import hashing
from apps.trust.models import EvidenceRecord, EvidenceRecordQuerySet

# Why an entry breaks the chain, in the order they are checked.
SEQUENCE_GAP = "sequence gap"
CONTENT_ALTERED = "content altered"
LINK_BROKEN = "link broken"
ENTRY_HASH_MISMATCH = "entry hash mismatch"
BROKEN_REASONS = (SEQUENCE_GAP, CONTENT_ALTERED, LINK_BROKEN, ENTRY_HASH_MISMATCH)


@dataclass(frozen=True)
class VerifyResult:
    """`ok` with the number of entries `checked`, or the first entry that breaks the chain.

    `first_broken` is {sequence, reason, detail}; `checked` then counts the intact entries
    before it. `head_hash` is the last intact entry's hash: note it somewhere Aurum does
    not control, and a later rewrite of the whole chain from before it shows (a chain by
    itself cannot prove that its newest entries were not cut off or rewritten).
    """

    ok: bool
    checked: int
    first_broken: dict[str, Any] | None = None
    head_hash: str = hashing.ZERO_HASH

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def evidence_list(*, tenant: Any, kind: str | None = None) -> EvidenceRecordQuerySet:
    """The tenant's entries, newest first; `kind` filters exactly (e.g. contract.approved)."""
    queryset = EvidenceRecord.objects.for_tenant(tenant).order_by("-sequence")
    return queryset.filter(kind=kind) if kind else queryset


def evidence_verify(*, tenant: Any, chunk_size: int = 2000) -> VerifyResult:
    """Walk the tenant's chain from entry 1 and report the first entry that does not hold.

    Each entry, in sequence order, must: come next (no gap), have content that hashes to
    its `content_hash`, link to the previous entry's hash, and have an `entry_hash` that
    recomputes. Streams with `.iterator()`, so memory stays flat however long the chain.
    """
    expected_sequence, previous_hash, checked = 1, hashing.ZERO_HASH, 0
    rows = EvidenceRecord.objects.for_tenant(tenant).order_by("sequence")
    for entry in rows.iterator(chunk_size=chunk_size):
        problem = _problem(entry, expected_sequence, previous_hash)
        if problem is not None:
            reason, detail = problem
            broken = {"sequence": entry.sequence, "reason": reason, "detail": detail}
            return VerifyResult(ok=False, checked=checked, first_broken=broken, head_hash=previous_hash)
        expected_sequence, previous_hash, checked = entry.sequence + 1, entry.entry_hash, checked + 1
    return VerifyResult(ok=True, checked=checked, head_hash=previous_hash)


def _problem(entry: EvidenceRecord, expected_sequence: int, previous_hash: str) -> tuple[str, str] | None:
    if entry.sequence != expected_sequence:
        return SEQUENCE_GAP, f"expected entry {expected_sequence}, found entry {entry.sequence}"
    try:
        content_hash = hashing.content_hash(entry.content)
    except (TypeError, ValueError) as exc:
        return CONTENT_ALTERED, f"the content is no longer canonical JSON: {exc}"
    if content_hash != entry.content_hash:
        return CONTENT_ALTERED, "the content does not hash to the recorded content hash"
    if entry.previous_hash != previous_hash:
        what = "64 zeros" if expected_sequence == 1 else f"entry {expected_sequence - 1}'s hash"
        return LINK_BROKEN, f"previous_hash is not {what}"
    recomputed = hashing.entry_hash(
        previous_hash=entry.previous_hash,
        sequence=entry.sequence,
        kind=entry.kind,
        subject=entry.subject,
        content_hash=entry.content_hash,
        recorded_at=entry.recorded_at,
        actor_id=entry.actor_id,
    )
    if recomputed != entry.entry_hash:
        return ENTRY_HASH_MISMATCH, "the entry's fields do not hash to its entry hash"
    return None
