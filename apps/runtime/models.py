"""Runtime models: the transactional outbox, handler bookkeeping, dead letters, job runs."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models

from apps.kernel.models import TenantQuerySet
from apps.runtime.choices import DeadLetterStatusChoices, JobRunStatusChoices


class DomainEvent(models.Model):
    """A fact a service recorded in its own transaction (the outbox row).

    Written with the change it describes, so an event exists if and only if the change
    committed. `dispatched_at` is set once the event has been handed to Celery; the sweep
    job re-dispatches rows left undispatched (a crash between commit and hand-off).
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey("host.Tenant", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    type = models.CharField(max_length=100, db_index=True)
    payload = models.JSONField(default=dict)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    occurred_at = models.DateTimeField(auto_now_add=True, db_index=True)
    dispatched_at = models.DateTimeField(null=True, blank=True)

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["-occurred_at"]
        indexes = [
            models.Index(
                fields=["occurred_at"],
                name="runtime_event_undispatched",
                condition=models.Q(dispatched_at__isnull=True),
            )
        ]

    def __str__(self) -> str:
        return f"{self.type} ({self.id})"


class EventOwnedQuerySet(TenantQuerySet):
    tenant_lookup = "event__tenant"


class HandledEvent(models.Model):
    """Marks that a handler finished an event; the key that makes handlers idempotent."""

    event = models.ForeignKey(DomainEvent, on_delete=models.CASCADE, related_name="handled")
    handler = models.CharField(max_length=200)
    handled_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["event", "handler"], name="runtime_handled_once")]

    def __str__(self) -> str:
        return f"{self.handler} ← {self.event_id}"


class DeadLetter(models.Model):
    """A handler that exhausted its retries on an event; replayable from the admin."""

    event = models.ForeignKey(DomainEvent, on_delete=models.CASCADE, related_name="dead_letters")
    handler = models.CharField(max_length=200)
    attempts = models.PositiveIntegerField()
    error = models.TextField()
    traceback = models.TextField(blank=True)
    status = models.CharField(
        max_length=20, choices=DeadLetterStatusChoices.choices, default=DeadLetterStatusChoices.PENDING
    )
    created_at = models.DateTimeField(auto_now_add=True)
    replayed_at = models.DateTimeField(null=True, blank=True)
    replayed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    objects = EventOwnedQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.handler} on {self.event.type}"


class JobRun(models.Model):
    """One run of a scheduled or recorded job: what ran, when, how long, and how it ended."""

    task = models.CharField(max_length=200, db_index=True)
    started_at = models.DateTimeField(auto_now_add=True, db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=20, choices=JobRunStatusChoices.choices, default=JobRunStatusChoices.RUNNING)
    detail = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return f"{self.task} @ {self.started_at:%Y-%m-%d %H:%M:%S}"

    @property
    def duration_seconds(self) -> float | None:
        if self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()
