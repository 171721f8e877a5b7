"""Tenant roles and token scopes: the vocabulary every permission check speaks."""

from __future__ import annotations

from django.db import models


class RoleChoices(models.TextChoices):
    ADMIN = "admin", "Tenant admin"
    STEWARD = "steward", "Data steward"
    ANALYST = "analyst", "Analyst"
    AUDITOR = "auditor", "Auditor"
    CONSUMER = "consumer", "Consumer"


class ScopeChoices(models.TextChoices):
    """What a request may do: read, write (create/change), admin (manage the tenant)."""

    READ = "read", "Read"
    WRITE = "write", "Write"
    ADMIN = "admin", "Admin"


ALL_SCOPES = frozenset(ScopeChoices.values)

# What each role may do, whatever its token says: a token never exceeds its owner's role.
ROLE_SCOPES: dict[str, frozenset[str]] = {
    RoleChoices.ADMIN: frozenset({"read", "write", "admin"}),
    RoleChoices.STEWARD: frozenset({"read", "write"}),
    RoleChoices.ANALYST: frozenset({"read"}),
    RoleChoices.AUDITOR: frozenset({"read"}),
    RoleChoices.CONSUMER: frozenset({"read"}),
}

# Roles that may sign in to the steward portal (Django admin). Consumers use the API.
PORTAL_ROLES = frozenset({RoleChoices.ADMIN, RoleChoices.STEWARD, RoleChoices.ANALYST, RoleChoices.AUDITOR})
EDITOR_ROLES = frozenset({RoleChoices.ADMIN, RoleChoices.STEWARD})
TENANT_ADMIN_ROLES = frozenset({RoleChoices.ADMIN})


def parse_scopes(raw: str | list[str] | tuple[str, ...]) -> list[str]:
    """Turn "read,write" or ["read", "write"] into a sorted list; unknown scopes raise ValueError."""
    items = raw.split(",") if isinstance(raw, str) else list(raw)
    scopes = sorted({item.strip() for item in items if item.strip()})
    unknown = [scope for scope in scopes if scope not in ALL_SCOPES]
    if unknown:
        raise ValueError(f"unknown scope(s): {', '.join(unknown)}; use {', '.join(sorted(ALL_SCOPES))}")
    if not scopes:
        raise ValueError("at least one scope is needed")
    return scopes
