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
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL,
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
