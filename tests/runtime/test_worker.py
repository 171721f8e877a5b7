"""End to end through the real broker: a service in one process publishes an event, a real
Celery worker (another process) consumes it from Redis and runs the handler."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import quote

import pytest
import redis
from django.db import connection

from apps.access.models import ApiToken
from apps.runtime.models import DomainEvent, HandledEvent
from tests.conftest import REDIS_URL
from tests.factories import ApiTokenFactory, MembershipFactory, TenantFactory, UserFactory

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.worker]

PROJECT_ROOT = Path(__file__).resolve().parents[2]
TIMEOUT_SECONDS = 60


def _test_database_url() -> str:
    """The URL of the database this test runs against (pytest-django's test_<name>)."""
    db = connection.settings_dict
    user = quote(db.get("USER") or "", safe="")
    password = quote(db.get("PASSWORD") or "", safe="")
    credentials = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    port = f":{db['PORT']}" if db.get("PORT") else ""
    return f"postgres://{credentials}{db.get('HOST') or ''}{port}/{quote(db['NAME'], safe='')}"


def _env(queue: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DATABASE_URL=_test_database_url(),
        CELERY_BROKER_URL=REDIS_URL,
        AURUM_CELERY_EAGER="0",
        AURUM_CELERY_QUEUE=queue,
        DJANGO_SETTINGS_MODULE="config.settings",
        PYTHONUNBUFFERED="1",
    )
    return env


def _cleanup_queue(queue: str) -> None:
    """Delete the queue's list, its bindings and anything else named after it (the name is unique)."""
    client = redis.Redis.from_url(REDIS_URL)
    keys = {queue, f"_kombu.binding.{queue}", *client.scan_iter(match=f"*{queue}*")}
    client.delete(*keys)
    client.close()


@pytest.mark.django_db(transaction=True)
def test_a_real_worker_revokes_the_tokens_of_a_removed_member(tmp_path):
    tenant = TenantFactory()
    user = UserFactory()
    membership = MembershipFactory(tenant=tenant, user=user)
    token = ApiTokenFactory(tenant=tenant, user=user)

    queue = f"aurum-test-{uuid.uuid4().hex}"
    env = _env(queue)
    log_path = tmp_path / "worker.log"
    log = log_path.open("w")
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool", "solo", "--concurrency", "1",
         "-Q", queue, "-n", f"{queue}@%h", "--without-gossip", "--without-mingle", "--without-heartbeat",
         "--loglevel", "info"],
        cwd=PROJECT_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip

    def worker_output() -> str:
        log.flush()
        return log_path.read_text(errors="replace")[-8000:]

    try:
        code = (
            "from apps.host.models import Membership\n"
            "from apps.host.services import membership_remove\n"
            f"membership_remove(actor=None, membership=Membership.objects.get(pk={membership.pk}))\n"
        )
        shell = subprocess.run(
            [sys.executable, "manage.py", "shell", "-c", code],
            cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=TIMEOUT_SECONDS,
        )  # fmt: skip
        assert shell.returncode == 0, f"manage.py shell failed:\n{shell.stdout}\n{shell.stderr}"
        assert DomainEvent.objects.filter(type="membership.removed", tenant=tenant).exists()

        deadline = time.monotonic() + TIMEOUT_SECONDS
        while not ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=False).exists():
            assert worker.poll() is None, f"the worker exited with {worker.returncode}:\n{worker_output()}"
            assert time.monotonic() < deadline, (
                f"the token was not revoked within {TIMEOUT_SECONDS}s.\n"
                f"shell output:\n{shell.stdout}\n{shell.stderr}\nworker output:\n{worker_output()}"
            )
            time.sleep(0.25)

        event = DomainEvent.objects.get(type="membership.removed", tenant=tenant)
        assert event.dispatched_at is not None
        assert HandledEvent.objects.filter(event=event, handler="access.revoke_tokens_of_removed_member").exists(), (
            worker_output()
        )
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()
        log.close()
        _cleanup_queue(queue)
