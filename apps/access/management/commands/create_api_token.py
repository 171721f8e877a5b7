"""manage.py create_api_token --tenant SLUG --user USERNAME --scopes read,write [--expires-days N]"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from apps.access import services
from apps.host.selectors import tenant_get


class Command(BaseCommand):
    help = "Mint an API token and print it once (it cannot be shown again)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--tenant", required=True, help="Tenant slug.")
        parser.add_argument("--user", required=True, help="Username of a member of the tenant.")
        parser.add_argument("--scopes", default="read", help="Comma-separated: read, write, admin.")
        parser.add_argument("--expires-days", type=int, default=None, help="Days until it expires (default: never).")
        parser.add_argument("--name", default="created with manage.py", help="What the token is for.")

    def handle(self, *args: Any, **options: Any) -> None:
        tenant = tenant_get(slug=options["tenant"])
        if tenant is None:
            raise CommandError(f"No tenant '{options['tenant']}'.")
        user = get_user_model().objects.filter(username=options["user"]).first()
        if user is None:
            raise CommandError(f"No user '{options['user']}'.")
        days = options["expires_days"]
        if days is not None and days <= 0:
            raise CommandError("--expires-days must be a positive number of days.")
        expires_at = timezone.now() + timedelta(days=days) if days else None
        try:
            token, plain = services.api_token_create(
                actor=None,
                tenant=tenant,
                user=user,
                name=options["name"],
                scopes=options["scopes"],
                expires_at=expires_at,
            )
        except ValidationError as exc:
            raise CommandError("; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())) from None
        self.stderr.write(
            f"Token {token.display_prefix} for {user} in {tenant.slug}, scopes {', '.join(token.scopes)}"
            f"{', expires ' + expires_at.isoformat() if expires_at else ''}. Shown once:"
        )
        self.stdout.write(plain)
