"""Readiness checks of what Aurum depends on: database, cache, broker."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from kombu import Connection


def check_database() -> tuple[bool, str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return True, connection.vendor


def check_cache() -> tuple[bool, str]:
    key = f"aurum:health:{uuid.uuid4().hex}"
    cache.set(key, "1", timeout=10)
    ok = cache.get(key) == "1"
    cache.delete(key)
    return ok, settings.CACHES["default"]["BACKEND"].rsplit(".", 1)[-1]


def check_broker() -> tuple[bool, str]:
    """Connect to the configured broker (read from settings at call time, not at start-up)."""
    url = settings.CELERY_BROKER_URL
    if url.startswith("memory://"):
        return True, "embedded (tasks run in-process)"
    with Connection(url, connect_timeout=2, transport_options={"socket_connect_timeout": 2}) as conn:
        conn.ensure_connection(max_retries=1, timeout=2)
        return True, conn.as_uri()  # as_uri() masks the password


READINESS_CHECKS: dict[str, Callable[[], tuple[bool, str]]] = {
    "database": check_database,
    "cache": check_cache,
    "broker": check_broker,
}


def run_checks(checks: dict[str, Callable[[], tuple[bool, str]]]) -> tuple[bool, dict[str, dict[str, object]]]:
    """Run each check, timing it; an exception is a failed check, never a crashed probe."""
    results: dict[str, dict[str, object]] = {}
    for name, check in checks.items():
        started = time.perf_counter()
        try:
            ok, detail = check()
        except Exception as exc:  # a probe reports failures, it does not raise them
            ok, detail = False, f"{type(exc).__name__}: {exc}"
        results[name] = {"ok": ok, "detail": detail, "ms": round((time.perf_counter() - started) * 1000, 1)}
    return all(r["ok"] for r in results.values()), results
