"""Trust: the per-tenant, hash-chained evidence ledger."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from apps.kernel.models import TenantQuerySet


class AppendOnlyError(Exception):
    """The evidence ledger is append-only: entries are never changed or deleted."""


class EvidenceRecordQuerySet(TenantQuerySet):
    """Reads, and refusals: raised before any SQL, so the caller's transaction stays usable."""

    def update(self, **kwargs: object) -> int:
        raise AppendOnlyError("Evidence entries are never changed.")

    def bulk_update(self, objs: object, fields: object, batch_size: int | None = None) -> int:
        raise AppendOnlyError("Evidence entries are never changed.")

    def bulk_create(self, objs: object, *args: object, **kwargs: object) -> list[EvidenceRecord]:
        raise AppendOnlyError("Entries are appended one by one, through apps.trust.services.evidence_append.")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise AppendOnlyError("Evidence entries are never deleted.")


class EvidenceRecord(models.Model):
    """One entry of a tenant's evidence ledger: a governance fact that must be provable later.

    Entries form one chain per tenant: entry n holds the hash of entry n-1
    (`previous_hash`) and its own `entry_hash` over its fields, so changing, removing or
    reordering any entry breaks the chain from there on (`selectors.evidence_verify`).
    The byte layout of both hashes is in `apps.trust.hashing`. Written only by
    `services.evidence_append`; never updated or deleted (model and queryset refuse, and
    on PostgreSQL a trigger refuses UPDATE and DELETE whoever sends them).
    """

    id = models.BigAutoField(primary_key=True)
    # Looked up through the (tenant, sequence) unique index: no index of its own.
    tenant = models.ForeignKey("host.Tenant", on_delete=models.PROTECT, related_name="+", db_index=False)
    sequence = models.PositiveBigIntegerField(help_text="Position in the tenant's chain: 1, 2, 3 …")
    kind = models.CharField(max_length=100, help_text="What happened, e.g. contract.approved.")
    subject = models.CharField(max_length=300, help_text="What it is about, e.g. contract orders 1.1.0.")
    content = models.JSONField(help_text="The facts, stored in canonical form (see apps.trust.hashing).")
    content_hash = models.CharField(max_length=64, help_text="SHA-256 of the canonical JSON of content.")
    previous_hash = models.CharField(max_length=64, help_text="The previous entry's entry hash; 64 zeros for entry 1.")
    entry_hash = models.CharField(max_length=64, help_text="SHA-256 over this entry's fields and previous_hash.")
    # PROTECT: the actor's id is part of the entry hash, so the user row must stay (deactivate, not delete).
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    recorded_at = models.DateTimeField()

    objects = EvidenceRecordQuerySet.as_manager()

    class Meta:
        ordering = ["tenant_id", "-sequence"]
        verbose_name = "evidence record"
        constraints = [
            models.UniqueConstraint(fields=["tenant", "sequence"], name="trust_evidencerecord_unique_sequence")
        ]
        indexes = [models.Index(fields=["tenant", "kind", "sequence"], name="trust_evidencerecord_by_kind")]

    def __str__(self) -> str:
        return f"#{self.sequence} {self.kind}: {self.subject}"

    def save(self, *args: object, **kwargs: object) -> None:
        if not self._state.adding:
            raise AppendOnlyError("Evidence entries are never changed.")
        super().save(*args, **kwargs)

    def delete(self, *args: object, **kwargs: object) -> tuple[int, dict[str, int]]:
        raise AppendOnlyError("Evidence entries are never deleted.")
