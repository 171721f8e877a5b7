"""manage.py seed_demo: load the demo data of every module, idempotently."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from apps.kernel.modules import module_apps


class Command(BaseCommand):
    help = "Load demo tenants, accounts (one per role) and each module's demo data. Safe to run again."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--force", action="store_true", help="Allow running in production mode.")

    def handle(self, *args: Any, force: bool = False, **options: Any) -> None:
        if settings.PRODUCTION and not force:
            raise CommandError("Refusing to load demo accounts with known passwords in production (use --force).")
        context: dict[str, Any] = {}
        with transaction.atomic():
            for config in module_apps():
                seed = _demo_seeder(config.name)
                if seed is None:
                    continue
                for line in seed(context):
                    self.stdout.write(f"[{config.label}] {line}")
        self.stdout.write(self.style.SUCCESS("Demo data ready."))


def _demo_seeder(app_module: str) -> Any:
    """An app contributes demo data with a `demo.seed(context)` function (optional)."""
    from importlib import import_module
    from importlib.util import find_spec

    if find_spec(f"{app_module}.demo") is None:
        return None
    return getattr(import_module(f"{app_module}.demo"), "seed", None)
