"""Health probes: liveness says the process serves; readiness checks database, cache and broker."""

from __future__ import annotations

import pytest

from apps.runtime import health
from tests.conftest import REDIS_URL

pytestmark = pytest.mark.django_db


def test_liveness_answers_ok_without_touching_dependencies(client, monkeypatch):
    def broken() -> tuple[bool, str]:
        raise AssertionError("liveness must not run readiness checks")

    monkeypatch.setitem(health.READINESS_CHECKS, "database", broken)
    response = client.get("/health/live")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert "no-cache" in response["Cache-Control"]


def test_readiness_reports_database_cache_and_broker(client):
    response = client.get("/health/ready")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert set(body["checks"]) == {"database", "cache", "broker"}
    for name, check in body["checks"].items():
        assert check["ok"] is True, name
        assert isinstance(check["ms"], float | int)
    assert "no-cache" in response["Cache-Control"]


def test_readiness_is_503_when_a_check_raises(client, monkeypatch):
    def cache_down() -> tuple[bool, str]:
        raise ConnectionError("cache unreachable")

    monkeypatch.setitem(health.READINESS_CHECKS, "cache", cache_down)
    response = client.get("/health/ready")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["cache"]["ok"] is False
    assert body["checks"]["cache"]["detail"] == "ConnectionError: cache unreachable"
    assert body["checks"]["database"]["ok"] is True


def test_readiness_is_503_when_a_check_reports_failure(client, monkeypatch):
    monkeypatch.setitem(health.READINESS_CHECKS, "database", lambda: (False, "read-only replica"))
    response = client.get("/health/ready")
    assert response.status_code == 503
    assert response.json()["checks"]["database"]["detail"] == "read-only replica"


def test_readiness_only_answers_get(client):
    assert client.post("/health/ready").status_code == 405


def test_an_embedded_broker_is_always_ready(settings):
    settings.CELERY_BROKER_URL = "memory://localhost/"
    assert health.check_broker() == (True, "embedded (tasks run in-process)")


@pytest.mark.redis
def test_readiness_connects_to_a_real_redis_broker(client, settings):
    settings.CELERY_BROKER_URL = REDIS_URL
    response = client.get("/health/ready")
    assert response.status_code == 200, response.json()
    broker = response.json()["checks"]["broker"]
    assert broker["ok"] is True
    assert broker["detail"].startswith("redis://") and broker["detail"].endswith(REDIS_URL.rsplit("/", 1)[-1])


def test_readiness_is_503_when_the_broker_does_not_answer(client, settings):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    response = client.get("/health/ready")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["broker"]["ok"] is False
    assert "127.0.0.1:1" in body["checks"]["broker"]["detail"]
    assert body["checks"]["database"]["ok"] is True
