"""Rate limits, cached tokens and cached reads on the shared Redis cache that production uses."""

from __future__ import annotations

import uuid

import pytest

from apps.access import services
from apps.kernel.api.throttling import PrincipalRateThrottle
from apps.kernel.roles import RoleChoices
from tests.conftest import REDIS_URL

pytestmark = [pytest.mark.django_db, pytest.mark.redis]


@pytest.fixture(autouse=True)
def redis_cache(settings):
    settings.CACHES = {"default": {"BACKEND": "apps.kernel.cache.RedisCache", "LOCATION": REDIS_URL,
                                   "KEY_PREFIX": f"test-{uuid.uuid4().hex}"}}  # fmt: skip
    settings.AURUM_TOKEN_CACHE_SECONDS = 30


def test_the_rate_limit_counts_per_principal_in_a_fixed_window(tenant_a, token_client, monkeypatch):
    monkeypatch.setattr(PrincipalRateThrottle, "THROTTLE_RATES", {"principal": "2/min"})
    first, second = token_client(tenant_a, RoleChoices.ADMIN), token_client(tenant_a, RoleChoices.ADMIN)
    assert [first.get("/api/v1/tenants/").status_code for _ in range(3)] == [200, 200, 429]
    assert second.get("/api/v1/tenants/").status_code == 200  # a bucket of its own
    assert 0 < int(first.get("/api/v1/tenants/")["Retry-After"]) <= 60


def test_a_cached_token_is_refused_once_revoked(tenant_a, member):
    user = member(tenant_a, RoleChoices.STEWARD)
    token, plain = services.api_token_create(actor=user, tenant=tenant_a, user=user, name="x", scopes=["read"])
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plain}")
    assert [client.get("/api/v1/tenants/").status_code for _ in range(2)] == [200, 200]
    services.api_token_revoke(actor=user, token=token)
    assert client.get("/api/v1/tenants/").status_code == 401


def test_a_read_is_served_again_until_the_tenant_changes(tenant_a, token_client, django_capture_on_commit_callbacks):
    from apps.consumption.catalog import services as catalog

    client = token_client(tenant_a, RoleChoices.STEWARD, scopes=["read"])
    catalog.product_create(actor=None, tenant=tenant_a, slug="p0", name="P0", kind="kpi_set")
    assert not client.get("/api/v1/products/").has_header("Age")
    assert client.get("/api/v1/products/").has_header("Age")
    with django_capture_on_commit_callbacks(execute=True):
        catalog.product_create(actor=None, tenant=tenant_a, slug="p1", name="P1", kind="kpi_set")
    fresh = client.get("/api/v1/products/")
    assert not fresh.has_header("Age") and len(fresh.json()["results"]) == 2


def test_a_warm_cached_read_costs_one_read_of_the_cache_and_one_rate_count(tenant_a, token_client, monkeypatch):
    """The token's and the read's generations come in one round trip; bodies and contexts are in the process."""
    from django.core.cache import caches
    from redis.client import Pipeline

    cache = caches["default"]  # the backend itself: the `cache` proxy is replaced when the settings are restored
    client = token_client(tenant_a, RoleChoices.STEWARD, scopes=["read"])
    assert client.get("/api/v1/products/").status_code == 200
    calls: list[str] = []
    for name in ("get", "get_many", "set", "incr", "add"):
        real = getattr(cache, name)
        monkeypatch.setattr(cache, name, lambda *a, _real=real, _name=name, **k: calls.append(_name) or _real(*a, **k))
    real_execute = Pipeline.execute
    monkeypatch.setattr(
        Pipeline, "execute", lambda self, *a, **k: calls.append("pipeline") or real_execute(self, *a, **k)
    )
    response = client.get("/api/v1/products/")
    assert response.status_code == 200 and response.has_header("Age")
    assert calls == ["get_many", "pipeline"]


def test_a_rate_count_expires_with_its_window(tenant_a, token_client):
    from django.core.cache import cache

    client = token_client(tenant_a, RoleChoices.ADMIN)
    assert client.get("/api/v1/tenants/").status_code == 200
    redis = cache._cache.get_client(write=False)
    keys = [key for key in redis.keys(f"{cache.key_prefix}*") if b"throttle" in key]
    assert len(keys) == 1 and 0 < redis.ttl(keys[0]) <= 61 and int(redis.get(keys[0])) == 1


def test_the_backend_reuses_its_redis_clients():
    from django.core.cache import caches

    backend = caches["default"]._cache
    assert backend.get_client("a", write=True) is backend.get_client("b", write=True)
    assert caches["default"].get_many(["nothing"]) == {}
