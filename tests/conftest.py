"""Shared fixtures: tenants A and B, personas per role, API clients, service markers.

Tests marked `postgres` or `redis` skip with a reason when the service is missing, so
`make test` passes on a fresh machine. CI sets AURUM_REQUIRE_SERVICES (e.g.
"postgres,redis") and then a missing service fails those tests instead: CI can never
pass by skipping them.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.core.cache import cache
from django.db import connection
from rest_framework.test import APIClient

from apps.kernel.localcache import clear_all
from apps.kernel.roles import RoleChoices
from config.celery import app as celery_app
from tests.factories import ApiTokenFactory, MembershipFactory, TenantFactory, UserFactory

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
REDIS_URL = os.environ.get("AURUM_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
REQUIRED = {s.strip() for s in os.environ.get("AURUM_REQUIRE_SERVICES", "").split(",") if s.strip()}


def redis_available() -> bool:
    try:
        import redis

        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping())
    except Exception:
        return False


def browser_available() -> bool:
    return importlib.util.find_spec("playwright") is not None and os.path.exists(CHROMIUM)


def _skip_or_fail(service: str, reason: str) -> None:
    if service in REQUIRED:
        pytest.fail(f"AURUM_REQUIRE_SERVICES names {service}, but: {reason}", pytrace=False)
    pytest.skip(reason)


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("postgres") and connection.vendor != "postgresql":
        _skip_or_fail("postgres", "needs PostgreSQL: run with DATABASE_URL=postgres://…")
    if item.get_closest_marker("redis") and not redis_available():
        _skip_or_fail("redis", f"needs Redis at {REDIS_URL} (AURUM_TEST_REDIS_URL)")
    if item.get_closest_marker("browser") and not browser_available():
        _skip_or_fail("browser", f"needs Playwright and Debian's chromium at {CHROMIUM} (apt-get install chromium)")


@pytest.fixture(autouse=True, scope="session")
def _celery_runs_eagerly() -> Iterator[None]:
    """Tasks run in the test process, whatever broker the environment names; the worker
    tests start real workers in subprocesses instead."""
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = previous


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings: Any) -> None:
    """PBKDF2 costs ~0.25 s a user by design; tests create hundreds of users."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _fresh_cache() -> None:
    cache.clear()  # rate-limit counters must not leak from one test into the next
    clear_all()  # nor cached tokens and reads (SQLite reuses the ids of rolled-back rows)


@pytest.fixture
def tenant_a(db: Any) -> Any:
    return TenantFactory(slug="tenant-a", name="Tenant A")


@pytest.fixture
def tenant_b(db: Any) -> Any:
    return TenantFactory(slug="tenant-b", name="Tenant B")


@pytest.fixture
def member(db: Any) -> Callable[..., Any]:
    """member(tenant, role) → a user with that role in that tenant."""

    def make(tenant: Any, role: str = RoleChoices.STEWARD, **user_fields: Any) -> Any:
        user = UserFactory(**user_fields)
        MembershipFactory(tenant=tenant, user=user, role=role)
        return user

    return make


@pytest.fixture
def outsider(db: Any) -> Any:
    """Signed-in, but a member of no tenant."""
    return UserFactory(username="outsider")


@pytest.fixture
def superuser(db: Any) -> Any:
    return UserFactory(username="root", is_superuser=True, is_staff=True)


@pytest.fixture
def api_client() -> APIClient:
    return APIClient()


@pytest.fixture
def token_client(db: Any) -> Callable[..., APIClient]:
    """token_client(tenant, role="steward", scopes=None) → an APIClient with a bearer token."""

    def make(
        tenant: Any, role: str = RoleChoices.STEWARD, scopes: list[str] | None = None, user: Any = None
    ) -> APIClient:
        if user is None:
            user = UserFactory()
            MembershipFactory(tenant=tenant, user=user, role=role)
        token = ApiTokenFactory(tenant=tenant, user=user, scopes=scopes or ["read", "write", "admin"])
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token.plain}")
        client.token = token  # type: ignore[attr-defined]
        client.user = user  # type: ignore[attr-defined]
        return client

    return make
