"""manage.py verify_evidence [--tenant SLUG]: walk the evidence chains; exit 1 if any is broken."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from apps.trust.models import EvidenceRecord
from apps.trust.selectors import evidence_verify


class Command(BaseCommand):
    help = "Verify every tenant's evidence chain (or one tenant's); exit status 1 if any chain is broken."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--tenant", metavar="SLUG", help="Only this tenant's chain (default: every tenant).")

    def handle(self, *args: Any, **options: Any) -> None:
        # The tenant model through the ledger's foreign key: trust does not import host.
        tenants = EvidenceRecord._meta.get_field("tenant").related_model._default_manager.order_by("slug")
        if options["tenant"]:
            tenants = tenants.filter(slug=options["tenant"])
            if not tenants.exists():
                raise CommandError(f"No tenant '{options['tenant']}'.")
        broken = 0
        for tenant in tenants.iterator():
            result = evidence_verify(tenant=tenant)
            if result.ok:
                self.stdout.write(f"{tenant.slug}: ok: {result.checked} entries (head {result.head_hash})")
            else:
                broken += 1
                first = result.first_broken or {}
                self.stdout.write(
                    self.style.ERROR(
                        f"{tenant.slug}: BROKEN at entry {first.get('sequence')}: {first.get('reason')} "
                        f"({first.get('detail')}; {result.checked} entries intact before it)"
                    )
                )
        if broken:
            raise CommandError(f"{broken} evidence chain(s) broken.", returncode=1)
