"""Policy services: drafts, new versions, activation (one active per kind and scope), retirement."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from apps.host.choices import PolicyStatusChoices as P
from apps.host.models import Policy
from apps.host.policies.kinds import validate_parameters
from apps.kernel.audit import audit_actor
from apps.kernel.errors import ConflictError, ForbiddenError
from apps.runtime.events import publish_event


@transaction.atomic
def policy_create(
    *,
    actor: Any,
    kind: str,
    name: str,
    parameters: dict[str, Any],
    tenant: Any = None,
    contract: Any = None,
    description: str = "",
) -> Policy:
    """A draft policy. No tenant = platform-wide (superusers only); a contract narrows it to one."""
    if contract is not None:
        tenant = contract.tenant
    _check_scope_right(actor, tenant)
    policy = Policy(
        kind=kind,
        name=name,
        tenant=tenant,
        contract=contract,
        description=description,
        parameters=validate_parameters(kind, parameters),
        created_by=actor if getattr(actor, "is_authenticated", False) else None,
    )
    policy.full_clean()
    with audit_actor(actor):
        policy.save()
    return policy


@transaction.atomic
def policy_update(
    *, actor: Any, policy: Policy, name: str | None = None, parameters: dict[str, Any] | None = None,
    description: str | None = None,
) -> Policy:  # fmt: skip
    """Edit a draft in place; an active or retired policy changes by a new version (policy_revise)."""
    policy = Policy.objects.select_for_update().get(pk=policy.pk)
    _check_scope_right(actor, policy.tenant)
    if policy.status != P.DRAFT:
        raise ConflictError(
            f"Policy '{policy.name}' v{policy.version} is {policy.status}; revise it to change it.",
            slug="policy-frozen",
        )
    if parameters is not None:
        policy.parameters = validate_parameters(policy.kind, parameters)
    policy.name = name if name is not None else policy.name
    policy.description = description if description is not None else policy.description
    with audit_actor(actor):
        policy.save()
    return policy


@transaction.atomic
def policy_revise(*, actor: Any, policy: Policy, parameters: dict[str, Any], name: str | None = None) -> Policy:
    """A new draft version of the policy, same kind and scope; the current one stays in force until
    the new one is activated."""
    _check_scope_right(actor, policy.tenant)
    latest = Policy.objects.filter(lineage=policy.lineage).order_by("-version").first()
    draft = Policy(
        lineage=policy.lineage,
        version=latest.version + 1,
        kind=policy.kind,
        tenant=policy.tenant,
        contract=policy.contract,
        name=name or policy.name,
        description=policy.description,
        parameters=validate_parameters(policy.kind, parameters),
        created_by=actor if getattr(actor, "is_authenticated", False) else None,
    )
    with audit_actor(actor):
        draft.save()
    return draft


@transaction.atomic
def policy_activate(*, actor: Any, policy: Policy) -> Policy:
    """Put the policy in force; the active policy of the same kind and scope is retired."""
    policy = Policy.objects.select_for_update().get(pk=policy.pk)
    _check_scope_right(actor, policy.tenant)
    if policy.status != P.DRAFT:
        raise ConflictError(f"Only a draft can be activated; this one is {policy.status}.", slug="illegal-transition",
                            allowed_next=[P.RETIRED] if policy.status == P.ACTIVE else [])  # fmt: skip
    same_scope = Policy.objects.select_for_update().filter(
        kind=policy.kind, tenant=policy.tenant, contract=policy.contract, status=P.ACTIVE
    )
    for previous in same_scope:
        _set_status(actor, previous, P.RETIRED)
    return _set_status(actor, policy, P.ACTIVE)


@transaction.atomic
def policy_retire(*, actor: Any, policy: Policy) -> Policy:
    policy = Policy.objects.select_for_update().get(pk=policy.pk)
    _check_scope_right(actor, policy.tenant)
    if policy.status == P.RETIRED:
        raise ConflictError("The policy is already retired.", slug="illegal-transition", allowed_next=[])
    return _set_status(actor, policy, P.RETIRED)


def _set_status(actor: Any, policy: Policy, status: str) -> Policy:
    policy.status = status
    now = timezone.now()
    if status == P.ACTIVE:
        policy.activated_at = now
    else:
        policy.retired_at = now
    with audit_actor(actor):
        policy.save(update_fields=["status", "activated_at", "retired_at", "updated_at"])
    publish_event(
        f"policy.{'activated' if status == P.ACTIVE else 'retired'}",
        {"policy": policy.pk, "name": policy.name, "kind": policy.kind, "version": policy.version,
         "scope": policy.scope_label},
        tenant=policy.tenant,
        actor=actor,
    )  # fmt: skip
    return policy


def _check_scope_right(actor: Any, tenant: Any) -> None:
    if tenant is None and not getattr(actor, "is_superuser", False):
        raise ForbiddenError("Only platform operators (superusers) manage platform-wide policies.",
                             slug="platform-policy")  # fmt: skip
