"""The transactional outbox: events commit with their change, handlers run once, failures
retry and end in dead letters that can be replayed, and the sweep job catches stragglers."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.core.management.sql import emit_post_migrate_signal
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from apps.kernel.roles import RoleChoices
from apps.runtime import events, services, tasks
from apps.runtime.choices import DeadLetterStatusChoices, JobRunStatusChoices
from apps.runtime.events import publish_event
from apps.runtime.models import DeadLetter, DomainEvent, HandledEvent, JobRun
from apps.runtime.schedules import ensure_module_schedules
from tests.factories import DeadLetterFactory, DomainEventFactory

pytestmark = pytest.mark.django_db


class Handlers:
    """Registers test handlers under unique names and event types; forgets them afterwards."""

    def __init__(self) -> None:
        self.event_type = f"tests.runtime.{uuid.uuid4().hex[:12]}"
        self._registered: list[tuple[str, str]] = []

    def add(self, func: Callable[[DomainEvent], None], *, event_type: str | None = None) -> str:
        event_type = event_type or self.event_type
        name = f"tests.{func.__name__}.{uuid.uuid4().hex[:12]}"
        events.subscribe(event_type, name=name)(func)
        self._registered.append((event_type, name))
        return name

    def forget(self) -> None:
        for event_type, name in self._registered:
            events._handlers_by_name.pop(name, None)
            by_type = events._handlers_by_type.get(event_type, {})
            by_type.pop(name, None)
            if not by_type:
                events._handlers_by_type.pop(event_type, None)


@pytest.fixture
def handlers() -> Iterator[Handlers]:
    registry = Handlers()
    yield registry
    registry.forget()


class Flaky:
    """A handler that fails while `broken` (or for its first `failures` calls), recording each call."""

    def __init__(self, *, failures: int | None = None) -> None:
        self.__name__ = "flaky"
        self.failures = failures
        self.broken = failures is None
        self.calls: list[Any] = []

    def __call__(self, event: DomainEvent) -> None:
        self.calls.append(event.pk)
        if self.broken or (self.failures is not None and len(self.calls) <= self.failures):
            raise RuntimeError("downstream is down")


def recorder(calls: list[Any]) -> Callable[[DomainEvent], None]:
    def record(event: DomainEvent) -> None:
        calls.append(event.pk)

    return record


# --- publish and dispatch -------------------------------------------------------------------


def test_it_writes_the_event_in_the_transaction_and_dispatches_it_after_commit(
    tenant_a, handlers, django_capture_on_commit_callbacks
):
    calls: list[Any] = []
    name = handlers.add(recorder(calls))

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with transaction.atomic():
            event = publish_event(handlers.event_type, {"n": 1}, tenant=tenant_a)
            assert DomainEvent.objects.filter(pk=event.pk, dispatched_at__isnull=True).exists()
        assert calls == []  # nothing runs before the commit

    assert len(callbacks) == 1
    event.refresh_from_db()
    assert event.dispatched_at is not None
    assert event.payload == {"n": 1} and event.tenant == tenant_a
    assert calls == [event.pk]
    assert HandledEvent.objects.filter(event=event, handler=name).exists()


def test_a_rolled_back_transaction_leaves_no_event_and_runs_no_handler(
    tenant_a, handlers, django_capture_on_commit_callbacks
):
    calls: list[Any] = []
    handlers.add(recorder(calls))

    def failing_change() -> None:
        with transaction.atomic():
            publish_event(handlers.event_type, {}, tenant=tenant_a)
            raise RuntimeError("the change failed")

    with django_capture_on_commit_callbacks(execute=True) as callbacks, pytest.raises(RuntimeError):
        failing_change()

    assert callbacks == []
    assert not DomainEvent.objects.filter(type=handlers.event_type).exists()
    assert calls == []


def test_it_runs_every_subscribed_handler_of_the_event_type_and_no_other(
    tenant_a, handlers, django_capture_on_commit_callbacks
):
    first: list[Any] = []
    second: list[Any] = []
    other: list[Any] = []
    handlers.add(recorder(first))
    handlers.add(recorder(second))
    handlers.add(recorder(other), event_type=f"{handlers.event_type}.other")

    with django_capture_on_commit_callbacks(execute=True):
        event = publish_event(handlers.event_type, {}, tenant=tenant_a)

    assert first == [event.pk] and second == [event.pk]
    assert other == []


def test_an_actor_that_is_not_signed_in_is_not_recorded(tenant_a):
    from django.contrib.auth.models import AnonymousUser

    event = publish_event("tests.runtime.anonymous", {}, tenant=tenant_a, actor=AnonymousUser())
    assert event.actor is None


def test_fanning_out_an_already_dispatched_event_does_nothing(tenant_a, handlers):
    calls: list[Any] = []
    name = handlers.add(recorder(calls))
    event = DomainEventFactory(tenant=tenant_a, type=handlers.event_type)

    assert services.event_fan_out(event_id=event.pk) == [name]
    assert services.event_fan_out(event_id=event.pk) == []
    assert calls == [event.pk]


# --- idempotent handlers ----------------------------------------------------------------------


def test_handling_an_event_twice_runs_the_handler_once(tenant_a, handlers):
    calls: list[Any] = []
    name = handlers.add(recorder(calls))
    event = DomainEventFactory(tenant=tenant_a, type=handlers.event_type)

    assert services.event_handle(event_id=event.pk, handler=name) is True
    assert services.event_handle(event_id=event.pk, handler=name) is False

    assert calls == [event.pk]
    assert HandledEvent.objects.filter(event=event, handler=name).count() == 1


def test_a_failing_handler_leaves_neither_its_writes_nor_the_handled_mark(tenant_a, handlers):
    def half_done(event: DomainEvent) -> None:
        JobRun.objects.create(task="tests.half_done")
        raise RuntimeError("failed halfway")

    name = handlers.add(half_done)
    event = DomainEventFactory(tenant=tenant_a, type=handlers.event_type)

    with pytest.raises(RuntimeError, match="failed halfway"):
        services.event_handle(event_id=event.pk, handler=name)

    assert not JobRun.objects.filter(task="tests.half_done").exists()
    assert not HandledEvent.objects.filter(event=event).exists()


def test_an_unknown_handler_name_is_an_error(tenant_a):
    event = DomainEventFactory(tenant=tenant_a)
    with pytest.raises(LookupError, match="no event handler named"):
        services.event_handle(event_id=event.pk, handler="tests.never_registered")


def test_a_handler_name_cannot_be_taken_twice(handlers):
    def one(event: DomainEvent) -> None: ...

    def another(event: DomainEvent) -> None: ...

    name = handlers.add(one)
    with pytest.raises(ValueError, match="already taken"):
        events.subscribe(handlers.event_type, name=name)(another)


# --- retries and dead letters -----------------------------------------------------------------


def test_a_failing_handler_is_retried_until_it_succeeds(
    settings, tenant_a, handlers, django_capture_on_commit_callbacks
):
    settings.AURUM_HANDLER_MAX_RETRIES = 5
    handler = Flaky(failures=2)
    name = handlers.add(handler)

    with django_capture_on_commit_callbacks(execute=True):
        event = publish_event(handlers.event_type, {}, tenant=tenant_a)

    assert len(handler.calls) == 3
    assert HandledEvent.objects.filter(event=event, handler=name).exists()
    assert not DeadLetter.objects.filter(event=event).exists()


def test_it_dead_letters_a_handler_after_its_retries(settings, tenant_a, handlers, django_capture_on_commit_callbacks):
    settings.AURUM_HANDLER_MAX_RETRIES = 2
    handler = Flaky()
    name = handlers.add(handler)

    with django_capture_on_commit_callbacks(execute=True):
        event = publish_event(handlers.event_type, {}, tenant=tenant_a)

    assert len(handler.calls) == 3  # the first attempt and two retries
    letter = DeadLetter.objects.get(event=event, handler=name)
    assert letter.attempts == 3
    assert letter.error == "RuntimeError: downstream is down"
    assert "Traceback" in letter.traceback and "downstream is down" in letter.traceback
    assert letter.status == DeadLetterStatusChoices.PENDING
    assert not HandledEvent.objects.filter(event=event, handler=name).exists()


def test_replaying_a_dead_letter_runs_the_handler_again_and_only_once(
    settings, tenant_a, superuser, handlers, django_capture_on_commit_callbacks
):
    settings.AURUM_HANDLER_MAX_RETRIES = 1
    handler = Flaky()
    name = handlers.add(handler)
    with django_capture_on_commit_callbacks(execute=True):
        event = publish_event(handlers.event_type, {}, tenant=tenant_a)
    letter = DeadLetter.objects.get(event=event, handler=name)
    assert len(handler.calls) == 2

    handler.broken = False  # the cause is fixed
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        services.dead_letter_replay(actor=superuser, dead_letter=letter)
    assert len(callbacks) == 1

    letter.refresh_from_db()
    assert letter.status == DeadLetterStatusChoices.REPLAYED
    assert letter.replayed_by == superuser and letter.replayed_at is not None
    assert len(handler.calls) == 3
    assert HandledEvent.objects.filter(event=event, handler=name).exists()

    replayed_at = letter.replayed_at
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        services.dead_letter_replay(actor=superuser, dead_letter=letter)
    assert callbacks == []
    assert len(handler.calls) == 3
    letter.refresh_from_db()
    assert letter.replayed_at == replayed_at
    assert DeadLetter.objects.filter(event=event).count() == 1


def test_a_replay_that_fails_again_gets_fresh_retries_and_a_new_dead_letter(
    settings, tenant_a, superuser, handlers, django_capture_on_commit_callbacks
):
    settings.AURUM_HANDLER_MAX_RETRIES = 1
    handler = Flaky()
    name = handlers.add(handler)
    with django_capture_on_commit_callbacks(execute=True):
        event = publish_event(handlers.event_type, {}, tenant=tenant_a)
    first = DeadLetter.objects.get(event=event, handler=name)

    with django_capture_on_commit_callbacks(execute=True):
        services.dead_letter_replay(actor=superuser, dead_letter=first)

    assert len(handler.calls) == 4
    first.refresh_from_db()
    assert first.status == DeadLetterStatusChoices.REPLAYED
    second = DeadLetter.objects.exclude(pk=first.pk).get(event=event, handler=name)
    assert second.status == DeadLetterStatusChoices.PENDING and second.attempts == 2


# --- the dead-letter admin ---------------------------------------------------------------------


def _replay_in_admin(client: Any, *letters: DeadLetter) -> Any:
    url = reverse("admin:runtime_deadletter_changelist")
    return client.post(url, {"action": "replay", "_selected_action": [letter.pk for letter in letters]})


def test_a_superuser_replays_dead_letters_from_the_admin(
    client, superuser, tenant_a, handlers, django_capture_on_commit_callbacks
):
    calls: list[Any] = []
    name = handlers.add(recorder(calls))
    letter = DeadLetterFactory(handler=name, event=DomainEventFactory(tenant=tenant_a, type=handlers.event_type))
    already = DeadLetterFactory(
        handler=name,
        event=DomainEventFactory(tenant=tenant_a, type=handlers.event_type),
        status=DeadLetterStatusChoices.REPLAYED,
    )
    client.force_login(superuser)

    with django_capture_on_commit_callbacks(execute=True):
        response = _replay_in_admin(client, letter, already)

    assert response.status_code == 302
    letter.refresh_from_db()
    assert letter.status == DeadLetterStatusChoices.REPLAYED and letter.replayed_by == superuser
    assert calls == [letter.event_id]  # the letter that was replayed before is left alone
    assert HandledEvent.objects.filter(event=letter.event, handler=name).exists()
    page = client.get(response["Location"])
    assert "Replaying 1 dead letter(s)." in page.content.decode()


def test_a_tenant_admin_replays_only_the_dead_letters_of_their_tenant(
    client, member, tenant_a, tenant_b, handlers, django_capture_on_commit_callbacks
):
    calls: list[Any] = []
    name = handlers.add(recorder(calls))
    ours = DeadLetterFactory(handler=name, event=DomainEventFactory(tenant=tenant_a, type=handlers.event_type))
    theirs = DeadLetterFactory(handler=name, event=DomainEventFactory(tenant=tenant_b, type=handlers.event_type))
    client.force_login(member(tenant_a, RoleChoices.ADMIN))

    with django_capture_on_commit_callbacks(execute=True):
        _replay_in_admin(client, ours, theirs)

    ours.refresh_from_db()
    theirs.refresh_from_db()
    assert ours.status == DeadLetterStatusChoices.REPLAYED
    assert theirs.status == DeadLetterStatusChoices.PENDING
    assert calls == [ours.event_id]


def test_an_auditor_sees_dead_letters_but_cannot_replay_them(
    client, member, tenant_a, handlers, django_capture_on_commit_callbacks
):
    calls: list[Any] = []
    name = handlers.add(recorder(calls))
    letter = DeadLetterFactory(handler=name, event=DomainEventFactory(tenant=tenant_a, type=handlers.event_type))
    client.force_login(member(tenant_a, RoleChoices.AUDITOR))

    assert client.get(reverse("admin:runtime_deadletter_changelist")).status_code == 200
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        _replay_in_admin(client, letter)

    letter.refresh_from_db()
    assert letter.status == DeadLetterStatusChoices.PENDING
    assert callbacks == [] and calls == []


# --- the outbox sweep ---------------------------------------------------------------------------


def _age(event: DomainEvent, seconds: int) -> DomainEvent:
    DomainEvent.objects.filter(pk=event.pk).update(occurred_at=timezone.now() - timedelta(seconds=seconds))
    event.refresh_from_db()
    return event


def test_the_sweep_dispatches_old_undispatched_events_and_leaves_fresh_ones(tenant_a, handlers):
    calls: list[Any] = []
    handlers.add(recorder(calls))
    stuck = _age(DomainEventFactory(tenant=tenant_a, type=handlers.event_type), 120)
    fresh = DomainEventFactory(tenant=tenant_a, type=handlers.event_type)
    done_at = timezone.now() - timedelta(seconds=100)
    done = _age(DomainEventFactory(tenant=tenant_a, type=handlers.event_type, dispatched_at=done_at), 120)

    assert services.outbox_sweep(older_than_seconds=30) == 1

    stuck.refresh_from_db()
    fresh.refresh_from_db()
    done.refresh_from_db()
    assert stuck.dispatched_at is not None
    assert fresh.dispatched_at is None
    assert done.dispatched_at == done_at
    assert calls == [stuck.pk]


def test_the_sweep_job_records_a_successful_run_with_its_count(settings, tenant_a):
    settings.AURUM_OUTBOX_SWEEP_AFTER_SECONDS = 30
    for _ in range(2):
        _age(DomainEventFactory(tenant=tenant_a), 60)
    DomainEventFactory(tenant=tenant_a)

    assert tasks.sweep_outbox.delay().get() == 2

    run = JobRun.objects.get(task="runtime.sweep_outbox")
    assert run.status == JobRunStatusChoices.SUCCEEDED
    assert run.detail == {"dispatched": 2}
    assert run.finished_at is not None and run.duration_seconds >= 0
    assert DomainEvent.objects.filter(dispatched_at__isnull=True).count() == 1


def test_a_failing_sweep_job_records_a_failed_run(monkeypatch):
    def broken(**kwargs: Any) -> int:
        raise RuntimeError("database on fire")

    monkeypatch.setattr(services, "outbox_sweep", broken)
    with pytest.raises(RuntimeError, match="database on fire"):
        tasks.sweep_outbox()

    run = JobRun.objects.get(task="runtime.sweep_outbox")
    assert run.status == JobRunStatusChoices.FAILED
    assert run.error == "RuntimeError: database on fire"
    assert run.finished_at is not None


def test_a_job_run_records_a_failure_and_lets_the_error_through():
    def failing_job() -> None:
        with services.job_run("tests.job") as run:
            run.detail = {"half": True}
            raise ValueError("bad input")

    with pytest.raises(ValueError, match="bad input"):
        failing_job()

    run = JobRun.objects.get(task="tests.job")
    assert run.status == JobRunStatusChoices.FAILED
    assert run.error == "ValueError: bad input"


# --- the beat schedule ---------------------------------------------------------------------------


def test_migrate_creates_the_outbox_sweep_schedule():
    task = PeriodicTask.objects.get(name="Outbox sweep")
    assert task.task == "runtime.sweep_outbox" and task.enabled
    assert (task.interval.every, task.interval.period) == (60, IntervalSchedule.SECONDS)


def test_the_post_migrate_hook_recreates_a_missing_schedule():
    PeriodicTask.objects.filter(name="Outbox sweep").delete()

    emit_post_migrate_signal(verbosity=0, interactive=False, db="default")

    assert PeriodicTask.objects.filter(name="Outbox sweep", task="runtime.sweep_outbox").exists()


def test_ensuring_schedules_never_overwrites_an_operators_edit():
    task = PeriodicTask.objects.get(name="Outbox sweep")
    task.interval, _ = IntervalSchedule.objects.get_or_create(every=300, period=IntervalSchedule.SECONDS)
    task.enabled = False
    task.save()

    assert ensure_module_schedules() == []

    task.refresh_from_db()
    assert task.interval.every == 300 and not task.enabled
    assert PeriodicTask.objects.filter(name="Outbox sweep").count() == 1
