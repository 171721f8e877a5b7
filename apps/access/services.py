"""Access services: API tokens."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from apps.access import tokens
from apps.access.models import ApiToken
from apps.host.selectors import membership_role
from apps.kernel.audit import audit_actor
from apps.kernel.roles import ROLE_SCOPES, parse_scopes
from apps.runtime.events import publish_event

LAST_USED_RESOLUTION = timedelta(seconds=60)


@transaction.atomic
def api_token_create(
    *,
    actor: Any,
    tenant: Any,
    user: Any,
    name: str,
    scopes: str | list[str],
    expires_at: datetime | None = None,
    issuer_token: ApiToken | None = None,
) -> tuple[ApiToken, str]:
    """Mint a token for `user` in `tenant`; returns the row and the plain token (shown once).

    A token never grants more than its user's role allows, and a token minted with another
    token never outlives or outranks it, so a leaked token cannot be widened.
    """
    scope_list = api_token_validate(
        tenant=tenant, user=user, scopes=scopes, expires_at=expires_at, issuer_token=issuer_token
    )
    plain, prefix, secret_hash = tokens.new_token()
    token = ApiToken(
        tenant=tenant,
        user=user,
        name=name,
        prefix=prefix,
        secret_hash=secret_hash,
        scopes=scope_list,
        expires_at=expires_at,
        created_by=actor if getattr(actor, "is_authenticated", False) else None,
    )
    token.full_clean(exclude=["prefix", "secret_hash"])
    with audit_actor(actor):
        token.save()
    publish_event(
        "token.created",
        {"prefix": token.display_prefix, "user": user.get_username(), "scopes": scope_list},
        tenant=tenant,
        actor=actor,
    )
    return token, plain


def api_token_validate(
    *,
    tenant: Any,
    user: Any,
    scopes: str | list[str],
    expires_at: datetime | None = None,
    issuer_token: ApiToken | None = None,
) -> list[str]:
    """Check a token request without creating anything; returns the normalised scopes.

    Raises ValidationError naming each offending field, so forms and the API can show it.
    """
    try:
        scope_list = parse_scopes(scopes)
    except ValueError as exc:
        raise ValidationError({"scopes": str(exc)}) from None
    role = membership_role(user=user, tenant=tenant)
    if role is None:
        raise ValidationError({"user": f"'{user.get_username()}' is not a member of tenant '{tenant.slug}'."})
    beyond_role = sorted(set(scope_list) - ROLE_SCOPES[role])
    if beyond_role:
        raise ValidationError({"scopes": f"Role '{role}' does not allow scope(s): {', '.join(beyond_role)}."})
    if expires_at is not None and expires_at <= timezone.now():
        raise ValidationError({"expires_at": "The expiry must be in the future."})
    if issuer_token is not None:
        _refuse_widening(issuer_token, scope_list, expires_at)
    return scope_list


def _refuse_widening(issuer: ApiToken, scopes: list[str], expires_at: datetime | None) -> None:
    extra = sorted(set(scopes) - set(issuer.scopes))
    if extra:
        raise ValidationError({"scopes": f"The calling token lacks scope(s): {', '.join(extra)}."})
    if issuer.expires_at is not None and (expires_at is None or expires_at > issuer.expires_at):
        raise ValidationError({"expires_at": "A token created with a token cannot outlive it."})


@transaction.atomic
def api_token_revoke(*, actor: Any, token: ApiToken, reason: str = "") -> ApiToken:
    """Revoke a token for good; it answers 401 from now on."""
    if token.revoked_at is not None:
        return token
    token.revoked_at = timezone.now()
    with audit_actor(actor):
        token.save(update_fields=["revoked_at", "updated_at"])
    publish_event(
        "token.revoked",
        {"prefix": token.display_prefix, "user": token.user.get_username(), "reason": reason},
        tenant=token.tenant,
        actor=actor,
    )
    return token


def api_token_revoke_for_member(*, tenant: Any, user_id: int, reason: str) -> int:
    """Revoke every live token of a user in a tenant (used when the membership ends)."""
    count = 0
    for token in ApiToken.objects.for_tenant(tenant).filter(user_id=user_id, revoked_at__isnull=True):
        api_token_revoke(actor=None, token=token, reason=reason)
        count += 1
    return count


def api_token_authenticate(*, raw: str) -> ApiToken | None:
    """The usable token `raw` names, or None. Notes when it was last used (at most once a minute)."""
    parts = tokens.split_token(raw)
    if parts is None:
        return None
    prefix, secret = parts
    token = ApiToken.objects.select_related("user", "tenant").filter(prefix=prefix).first()
    if token is None or not tokens.matches(secret, token.secret_hash) or not token.is_usable:
        return None
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_RESOLUTION:
        # A plain UPDATE, not save(): no audit noise, no race with a concurrent revoke.
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token
