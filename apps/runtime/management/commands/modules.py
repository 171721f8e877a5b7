"""manage.py modules [--json | --import-contracts]: the module registry from the command line."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand

from apps.kernel.modules import import_contracts_toml
from apps.runtime.registry import module_registry


class Command(BaseCommand):
    help = "List the module apps with their modules, dependencies and health."

    def add_arguments(self, parser: Any) -> None:
        group = parser.add_mutually_exclusive_group()
        group.add_argument("--json", action="store_true", help="The registry as JSON.")
        group.add_argument(
            "--import-contracts",
            action="store_true",
            help="Print the import-linter contracts the declared dependencies imply (for pyproject.toml).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["import_contracts"]:
            self.stdout.write(import_contracts_toml())
            return
        entries = module_registry()
        if options["json"]:
            self.stdout.write(json.dumps(entries, indent=2))
            return
        for entry in entries:
            built = sum(m["built"] for m in entry["modules"])
            self.stdout.write(
                f"{entry['category']:<15} apps.{entry['app']:<12} {entry['health']['status']:<9} "
                f"{built}/{len(entry['modules'])} modules built; depends on {', '.join(entry['depends_on']) or '—'}"
            )
