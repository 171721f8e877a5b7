"""Modules describe themselves: each app's AppConfig carries a `ModuleDescriptor`.

The descriptor is data. It feeds the portal's Modules page, the `/api/v1/modules/`
endpoint, and a test that keeps it in agreement with the import-linter contracts, the
docs in docs/modules/ and the code (every named service must import, every URL prefix
must resolve).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from django.apps import AppConfig, apps


@dataclass(frozen=True)
class Module:
    """One module of the module map, e.g. Host → "Data contracts"."""

    name: str
    summary: str
    built: bool = False  # False: named in the module map, not implemented yet


@dataclass(frozen=True)
class Interfaces:
    urls: tuple[str, ...] = ()  # URL prefixes served, e.g. "/api/v1/tenants/"
    events_published: tuple[str, ...] = ()
    events_consumed: tuple[str, ...] = ()
    services: tuple[str, ...] = ()  # dotted paths of public service/selector functions
    tasks: tuple[str, ...] = ()  # Celery task names


@dataclass(frozen=True)
class Schedule:
    """A periodic job the module needs; created in django-celery-beat on migrate if missing.

    Once created it belongs to the operators: edits in the admin are never overwritten.
    """

    name: str
    task: str
    every_seconds: int


@dataclass(frozen=True)
class ModuleDescriptor:
    category: str
    summary: str
    modules: tuple[Module, ...]
    interfaces: Interfaces = field(default_factory=Interfaces)
    depends_on: tuple[str, ...] = ()  # labels of apps this app may import
    # Dotted paths of callables returning (ok: bool, detail: str), run by the Modules page.
    health_checks: tuple[str, ...] = ()
    schedules: tuple[Schedule, ...] = ()


class ModuleAppConfig(AppConfig):
    """Base AppConfig of the ten module apps."""

    default_auto_field = "django.db.models.BigAutoField"
    descriptor: ModuleDescriptor


def module_apps() -> Iterator[ModuleAppConfig]:
    """The installed module apps, in INSTALLED_APPS order."""
    for config in apps.get_app_configs():
        if isinstance(config, ModuleAppConfig):
            yield config


HealthCheck = Callable[[], tuple[bool, str]]


def import_contracts() -> list[dict[str, object]]:
    """The import-linter contracts the descriptors imply (kept in pyproject.toml; a test compares).

    Each app may import only the apps it declares (direct imports; an allowed app may in
    turn use its own dependencies). The kernel imports no module app.
    """
    configs = list(module_apps())
    labels = sorted(config.label for config in configs)
    contracts: list[dict[str, object]] = [
        {
            "id": "kernel",
            "name": "The kernel imports no module app",
            "type": "forbidden",
            "source_modules": ["apps.kernel"],
            "forbidden_modules": [f"apps.{label}" for label in labels],
        }
    ]
    for config in sorted(configs, key=lambda c: c.label):
        allowed = set(config.descriptor.depends_on) | {config.label}
        forbidden = [f"apps.{label}" for label in labels if label not in allowed]
        deps = ", ".join(config.descriptor.depends_on) or "no other app"
        contracts.append(
            {
                "id": config.label,
                "name": f"{config.label} imports only {deps}",
                "type": "forbidden",
                "source_modules": [f"apps.{config.label}"],
                "forbidden_modules": forbidden,
                "allow_indirect_imports": "true",
            }
        )
    return contracts


def import_contracts_toml() -> str:
    lines = []
    for contract in import_contracts():
        lines.append("[[tool.importlinter.contracts]]")
        for key, value in contract.items():
            if isinstance(value, list):
                items = ", ".join(f'"{v}"' for v in value)
                lines.append(f"{key} = [{items}]")
            else:
                lines.append(f'{key} = "{value}"')
        lines.append("")
    return "\n".join(lines)
