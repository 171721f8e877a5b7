"""Health checks of the runtime module itself, shown on the Modules page."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from apps.runtime.choices import DeadLetterStatusChoices
from apps.runtime.models import DeadLetter, DomainEvent


def outbox_backlog() -> tuple[bool, str]:
    """Events waiting longer than a few sweep periods mean dispatch is stuck."""
    stale = timezone.now() - timedelta(seconds=settings.AURUM_OUTBOX_SWEEP_AFTER_SECONDS * 4)
    waiting = DomainEvent.objects.filter(dispatched_at__isnull=True, occurred_at__lt=stale).count()
    return waiting == 0, f"{waiting} event(s) stuck in the outbox"


def dead_letters() -> tuple[bool, str]:
    pending = DeadLetter.objects.filter(status=DeadLetterStatusChoices.PENDING).count()
    return pending == 0, f"{pending} dead letter(s) waiting for replay"
