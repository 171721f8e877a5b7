"""manage.py search_reindex [--tenant SLUG]: rebuild the search index from its owners."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from apps.utilities.search.models import SearchDocument
from apps.utilities.search.services import search_reindex


class Command(BaseCommand):
    help = "Rebuild the discovery index (products, contracts, fields) of one tenant or of all tenants."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--tenant", metavar="SLUG", help="Only this tenant (default: every tenant).")

    def handle(self, *args: Any, **options: Any) -> None:
        slug = options.get("tenant")
        if slug is not None:
            # Utilities sits below host: the tenant is checked through the index's own foreign key.
            tenant_model = SearchDocument._meta.get_field("tenant").related_model
            if not tenant_model._default_manager.filter(slug=slug).exists():
                raise CommandError(f"No tenant '{slug}'.")
        written = search_reindex(tenant_slug=slug)
        for kinds, count in written.items():
            self.stdout.write(f"{kinds}: {count} document(s)")
        where = f"tenant '{slug}'" if slug else "all tenants"
        self.stdout.write(self.style.SUCCESS(f"Search index rebuilt for {where}: {sum(written.values())} document(s)."))
