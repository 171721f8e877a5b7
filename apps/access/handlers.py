"""Access reacts to host events."""

from __future__ import annotations

from apps.access import services
from apps.runtime.events import subscribe
from apps.runtime.models import DomainEvent


@subscribe("membership.removed", name="access.revoke_tokens_of_removed_member")
def revoke_tokens_of_removed_member(event: DomainEvent) -> None:
    """A former member's tokens stay dead even if the user is later re-invited."""
    services.api_token_revoke_for_member(
        tenant=event.tenant, user_id=event.payload["user_id"], reason="membership removed"
    )
