"""The module registry: every module app's self-description plus its live health."""

from __future__ import annotations

from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.executor import MigrationExecutor
from django.utils.module_loading import import_string

from apps.kernel.modules import module_apps
from apps.runtime.events import subscriptions
from apps.runtime.health import run_checks


def module_registry(*, with_health: bool = True) -> list[dict[str, Any]]:
    """One entry per module app, in dependency order (lowest layer first)."""
    pending = _unapplied_migrations_by_app() if with_health else {}
    handlers = subscriptions()
    entries = []
    for config in module_apps():
        d = config.descriptor
        entry: dict[str, Any] = {
            "app": config.label,
            "category": d.category,
            "summary": d.summary,
            "modules": [{"name": m.name, "summary": m.summary, "built": m.built} for m in d.modules],
            "interfaces": {
                "urls": list(d.interfaces.urls),
                "events_published": list(d.interfaces.events_published),
                "events_consumed": list(d.interfaces.events_consumed),
                "services": list(d.interfaces.services),
                "tasks": list(d.interfaces.tasks),
            },
            "handlers": sorted(
                name for names in handlers.values() for name in names if name.startswith(f"{config.label}.")
            ),
            "depends_on": list(d.depends_on),
            "doc": f"docs/modules/{config.label}.md",
        }
        if with_health:
            entry["health"] = _module_health(config.label, d.health_checks, pending.get(config.label, []))
        entries.append(entry)
    return entries


def _module_health(label: str, check_paths: tuple[str, ...], unapplied: list[str]) -> dict[str, Any]:
    checks: dict[str, Any] = {"migrations": lambda: (not unapplied, ", ".join(unapplied) or "all applied")}
    for path in check_paths:
        checks[path.rsplit(".", 1)[-1]] = import_string(path)
    ok, results = run_checks(checks)
    return {"status": "ok" if ok else "degraded", "checks": results}


def _unapplied_migrations_by_app() -> dict[str, list[str]]:
    executor = MigrationExecutor(connections[DEFAULT_DB_ALIAS])
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    pending: dict[str, list[str]] = {}
    for migration, _backwards in plan:
        pending.setdefault(migration.app_label, []).append(migration.name)
    return pending
