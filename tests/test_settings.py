"""Settings come from the environment, strictly; production mode refuses unsafe defaults."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from apps.kernel.env import env_bool, env_int, env_list

ROOT = Path(__file__).resolve().parent.parent


def manage(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("AURUM_", "DATABASE_URL", "CELERY_"))}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize(("raw", "expected"), [("1", True), ("yes", True), ("ON", True), ("0", False), ("", False)])
def test_env_bool_reads_the_usual_spellings(monkeypatch, raw, expected):
    monkeypatch.setenv("X_FLAG", raw)
    assert env_bool("X_FLAG") is expected


def test_env_helpers_refuse_junk(monkeypatch):
    monkeypatch.setenv("X_FLAG", "maybe")
    monkeypatch.setenv("X_NUM", "12a")
    with pytest.raises(ImproperlyConfigured, match="not a boolean"):
        env_bool("X_FLAG")
    with pytest.raises(ImproperlyConfigured, match="not an integer"):
        env_int("X_NUM", 1)


def test_env_list_splits_on_commas(monkeypatch):
    monkeypatch.setenv("X_LIST", " a.example.com, ,b.example.com ")
    assert env_list("X_LIST") == ["a.example.com", "b.example.com"]


def test_production_refuses_to_start_without_a_real_secret_key():
    result = manage("check", AURUM_ENV="production", AURUM_ALLOWED_HOSTS="aurum.example.com")
    assert result.returncode != 0
    assert "AURUM_SECRET_KEY" in result.stderr


def test_production_refuses_to_start_without_allowed_hosts():
    result = manage("check", AURUM_ENV="production", AURUM_SECRET_KEY=secrets.token_urlsafe(64))
    assert result.returncode != 0
    assert "AURUM_ALLOWED_HOSTS" in result.stderr


def test_production_passes_the_deployment_checks_without_warnings():
    result = manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        AURUM_ENV="production",
        AURUM_SECRET_KEY=secrets.token_urlsafe(64),
        AURUM_ALLOWED_HOSTS="aurum.example.com",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_the_embedded_defaults_need_no_services(settings):
    assert settings.DATABASES["default"]["ENGINE"] in {
        "django.db.backends.sqlite3",
        "django.db.backends.postgresql",  # when the suite itself runs on DATABASE_URL
    }
    result = manage(
        "shell",
        "-c",
        "from django.conf import settings as s; "
        "print(s.DATABASES['default']['ENGINE'], s.CELERY_TASK_ALWAYS_EAGER, s.DEBUG, s.CACHES['default']['BACKEND'])",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[-4:] == [
        "django.db.backends.sqlite3",
        "True",
        "True",
        "django.core.cache.backends.locmem.LocMemCache",
    ]
