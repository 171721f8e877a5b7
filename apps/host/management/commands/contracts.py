"""manage.py contracts: import data contracts from ODCS v3 YAML files, export a version as ODCS YAML."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.host.models import ContractVersion, DataContract
from apps.host.odcs.importer import contract_import
from apps.host.odcs.mapping import version_to_odcs
from apps.host.odcs.parsing import OdcsError, dump
from apps.host.selectors import tenant_get
from apps.kernel.errors import DomainError


class Command(BaseCommand):
    help = (
        "Data contracts as ODCS v3 (Open Data Contract Standard) YAML. "
        "'export TENANT KEY [--version V]' prints a version (default: the active one, else the newest); "
        "'import TENANT FILE…' creates a draft version from each file."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True, metavar="{export,import}")
        export = actions.add_parser(
            "export",
            help="Print a contract version as ODCS YAML.",
            description="Print a contract version as ODCS v3 YAML: the imported document with everything Aurum "
            "models written over it. Without --version: the active version, else the newest.",
        )
        export.add_argument("tenant", help="Tenant slug.")
        export.add_argument("key", help="Contract key.")
        export.add_argument("--version", dest="contract_version", help="The version to export, e.g. 1.2.0.")
        imports = actions.add_parser(
            "import",
            help="Create draft versions from ODCS YAML files.",
            description="Create a draft version from each ODCS YAML file (and its contract when the key is new). "
            "Each file is imported in its own transaction: the good files of a run are imported even when "
            "others are refused. Every problem of a refused file is printed to stderr as "
            "FILE:LINE: path: message, and the command then exits with a non-zero status.",
        )
        imports.add_argument("tenant", help="Tenant slug.")
        imports.add_argument("files", nargs="+", metavar="FILE", help="ODCS YAML files.")
        imports.add_argument("--key", help="Contract key to import into (one file only); default: derived from it.")
        imports.add_argument("--actor", metavar="USERNAME", help="User recorded as the author.")

    def handle(self, *args: Any, action: str, **options: Any) -> None:
        tenant = tenant_get(slug=options["tenant"])
        if tenant is None:
            raise CommandError(f"No tenant '{options['tenant']}'.")
        if action == "export":
            self._export(tenant, options["key"], options.get("contract_version"))
        else:
            self._import(tenant, options["files"], options.get("key"), options.get("actor"))

    def _export(self, tenant: Any, key: str, version: str | None) -> None:
        contract = DataContract.objects.filter(tenant=tenant, key=key).first()
        if contract is None:
            raise CommandError(f"No contract '{key}' in tenant '{tenant.slug}'.")
        versions = ContractVersion.objects.filter(contract=contract).select_related("contract__tenant")
        if version:
            row = versions.filter(version=version).first()
            if row is None:
                known = ", ".join(versions.values_list("version", flat=True)) or "none"
                raise CommandError(f"Contract '{key}' has no version {version} (it has: {known}).")
        else:
            row = versions.active().first() or versions.order_by("-major", "-minor", "-patch", "-created_at").first()
            if row is None:
                raise CommandError(f"Contract '{key}' has no version yet.")
        self.stdout.write(dump(version_to_odcs(row)), ending="")

    def _import(self, tenant: Any, files: list[str], key: str | None, username: str | None) -> None:
        if key and len(files) > 1:
            raise CommandError("--key names the contract of one file; give a single FILE with it.")
        actor = None
        if username:
            actor = get_user_model().objects.filter(username=username).first()
            if actor is None:
                raise CommandError(f"No user '{username}'.")
        refused = 0
        for name in files:
            problems = self._import_file(tenant, Path(name), key, actor)
            if problems:
                refused += 1
                self.stdout.write(f"{name}: refused ({_count(len(problems), 'problem')})")
                for problem in problems:
                    self.stderr.write(problem)
        if refused:
            raise CommandError(f"{refused} of {_count(len(files), 'file')} refused; see above.")

    def _import_file(self, tenant: Any, path: Path, key: str | None, actor: Any) -> list[str]:
        """Import one file in its own transaction; the problems, one line each ([] when imported)."""
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            return [f"{path}: cannot read the file: {exc}"]
        try:
            version = contract_import(actor=actor, tenant=tenant, text=text, key=key)
        except OdcsError as exc:
            return [
                f"{path}:{problem.line}: {problem.path or '(document)'}: {problem.message}"
                if problem.line
                else f"{path}: {problem.path or '(document)'}: {problem.message}"
                for problem in exc.problems
            ]
        except DomainError as exc:
            return [f"{path}: {exc.detail}"]
        fields, rules = version.fields.count(), version.quality_rules.count()
        self.stdout.write(
            f"{path}: imported {version.contract.key} {version.version} as a draft "
            f"({_count(fields, 'field')}, {_count(rules, 'quality rule')})"
        )
        return []


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"
