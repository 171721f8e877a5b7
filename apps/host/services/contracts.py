"""Data contract services: authoring drafts and moving versions through their lifecycle.

Every transition is one transaction that checks the lifecycle and the four-eyes rule,
logs a ContractTransition, writes the audit trail and publishes a domain event.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from apps.host.choices import ContractStatusChoices as S
from apps.host.choices import RoleChoices
from apps.host.contracts.jsonschema import version_json_schema
from apps.host.contracts.lifecycle import check_transition
from apps.host.models import (
    ContractField,
    ContractTransition,
    ContractVersion,
    DataContract,
    Membership,
    QualityRule,
    parse_semver,
)
from apps.kernel.audit import audit_actor
from apps.kernel.errors import ConflictError, ForbiddenError
from apps.runtime.events import publish_event
from apps.utilities import selectors as registry
from apps.utilities import services as registry_services

FIELD_ATTRS = (
    "name", "logical_type", "required", "unique", "primary_key", "primary_key_position", "pattern", "minimum",
    "maximum", "allowed_values", "max_length", "unit", "classification", "description", "role", "extra",
)  # fmt: skip
RULE_ATTRS = ("kind", "severity", "threshold", "params", "description", "extra")
VERSION_ATTRS = ("dataset", "notes", "sla_freshness", "sla_completeness", "sla_availability", "support", "odcs")


# --- authoring ------------------------------------------------------------------------
@transaction.atomic
def contract_create(
    *, actor: Any, tenant: Any, key: str, name: str, domain: str = "", owner: Any = None, description: str = ""
) -> DataContract:
    contract = DataContract(tenant=tenant, key=key, name=name, domain=domain, owner=owner, description=description)
    contract.full_clean()
    with audit_actor(actor):
        contract.save()
    publish_event("contract.created", {"contract": key, "name": name}, tenant=tenant, actor=actor)
    return contract


@transaction.atomic
def contract_version_create(
    *,
    actor: Any,
    contract: DataContract,
    version: str,
    fields: list[dict[str, Any]],
    quality_rules: list[dict[str, Any]] | None = None,
    **attrs: Any,
) -> ContractVersion:
    """A new draft version with its fields and rules (rules name their field by `field`)."""
    _refuse_unknown(attrs, VERSION_ATTRS)
    row = ContractVersion(tenant=contract.tenant, contract=contract, version=version, **attrs)
    row.full_clean(exclude=["schema_version"])
    with audit_actor(actor):
        row.save()
        _replace_content(row, fields, quality_rules or [])
    _log(row, "", S.DRAFT, actor, "created")
    return row


@transaction.atomic
def contract_version_update(
    *,
    actor: Any,
    version: ContractVersion,
    fields: list[dict[str, Any]] | None = None,
    quality_rules: list[dict[str, Any]] | None = None,
    **attrs: Any,
) -> ContractVersion:
    """Change a draft. Anything past draft is frozen; retired versions are read-only forever."""
    version = ContractVersion.objects.select_for_update().get(pk=version.pk)
    if not version.is_editable:
        raise ConflictError(
            f"Version {version.version} is {version.status}; only drafts can be edited.",
            slug="version-frozen",
            current_status=version.status,
        )
    _refuse_unknown(attrs, (*VERSION_ATTRS, "version"))
    for name, value in attrs.items():
        setattr(version, name, value)
    version.full_clean(exclude=["schema_version"])
    with audit_actor(actor):
        version.save()
        if fields is not None or quality_rules is not None:
            current_rules = [_rule_dict(rule) for rule in version.quality_rules.select_related("field")]
            _replace_content(
                version,
                fields if fields is not None else [_field_dict(f) for f in version.fields.all()],
                quality_rules if quality_rules is not None else current_rules,
            )
    return version


def _replace_content(version: ContractVersion, fields: list[dict[str, Any]], rules: list[dict[str, Any]]) -> None:
    version.quality_rules.all().delete()
    version.fields.all().delete()
    by_name: dict[str, ContractField] = {}
    errors: dict[str, list[str]] = {}
    for position, spec in enumerate(fields):
        _refuse_unknown(spec, FIELD_ATTRS)
        field = ContractField(version=version, position=position, **spec)
        try:
            field.full_clean(exclude=["version"], validate_unique=False)
        except ValidationError as exc:
            errors.update({f"fields/{position}/{k}": v for k, v in exc.message_dict.items()})
            continue
        if field.name in by_name:
            errors[f"fields/{position}/name"] = [f"Field '{field.name}' appears twice."]
            continue
        by_name[field.name] = field
    for index, spec in enumerate(rules):
        target = spec.get("field")
        if target and target not in by_name:
            errors[f"quality_rules/{index}/field"] = [f"No field '{target}' in this version."]
    if errors:
        raise ValidationError(errors)
    ContractField.objects.bulk_create(by_name.values())
    saved = {f.name: f for f in version.fields.all()}
    new_rules = []
    for spec in rules:
        spec = dict(spec)
        target = spec.pop("field", None)
        _refuse_unknown(spec, RULE_ATTRS)
        rule = QualityRule(version=version, field=saved.get(target) if target else None, **spec)
        rule.full_clean(exclude=["version", "field"])
        new_rules.append(rule)
    QualityRule.objects.bulk_create(new_rules)


def _field_dict(field: ContractField) -> dict[str, Any]:
    return {name: getattr(field, name) for name in FIELD_ATTRS}


def _rule_dict(rule: QualityRule) -> dict[str, Any]:
    return {"field": rule.field.name if rule.field_id else None, **{n: getattr(rule, n) for n in RULE_ATTRS}}


def _refuse_unknown(attrs: dict[str, Any], known: tuple[str, ...]) -> None:
    unknown = sorted(set(attrs) - set(known))
    if unknown:
        raise ValidationError({name: "Unknown attribute." for name in unknown})


def content_hash(version: ContractVersion) -> str:
    """Digest of everything a reviewer approves: version, fields, rules and SLA."""
    content = {
        "version": version.version,
        "fields": [_field_dict(f) for f in version.fields.all()],
        "rules": [_rule_dict(r) for r in version.quality_rules.select_related("field")],
        **{name: getattr(version, name) for name in VERSION_ATTRS if name != "odcs"},
    }
    return hashlib.sha256(json.dumps(content, sort_keys=True, default=str).encode()).hexdigest()


# --- lifecycle --------------------------------------------------------------------------
@transaction.atomic
def contract_version_propose(
    *, actor: Any, version: ContractVersion, confirm_breaking: bool = False, comment: str = ""
) -> ContractVersion:
    """Ask for approval. A schema that breaks the registry subject's compatibility is refused
    unless the major version is raised and the steward confirms the break."""
    version = _locked(version)
    check_transition(version.status, S.PROPOSED)
    if not version.fields.exists():
        raise ValidationError({"fields": "A version needs at least one field before it can be proposed."})
    _check_version_order(version)
    version.breaking_change_confirmed = _check_compatibility(version, confirm_breaking)
    version.content_hash = content_hash(version)
    version.proposed_by, version.proposed_at = _user(actor), timezone.now()
    version.decided_by, version.decided_at, version.decision_comment = None, None, ""
    return _move(
        version,
        S.PROPOSED,
        actor,
        comment,
        [
            "breaking_change_confirmed",
            "content_hash",
            "proposed_by",
            "proposed_at",
            "decided_by",
            "decided_at",
            "decision_comment",
        ],
    )


@transaction.atomic
def contract_version_approve(*, actor: Any, version: ContractVersion, comment: str = "") -> ContractVersion:
    """Four eyes: a different person with the approver right approves exactly what was proposed."""
    version = _locked(version)
    check_transition(version.status, S.APPROVED)
    _check_approver(actor, version)
    if version.content_hash != content_hash(version):
        raise ConflictError("The version changed after it was proposed; propose it again.", slug="content-changed")
    version.decided_by, version.decided_at, version.decision_comment = _user(actor), timezone.now(), comment
    return _move(version, S.APPROVED, actor, comment, ["decided_by", "decided_at", "decision_comment"])


@transaction.atomic
def contract_version_reject(*, actor: Any, version: ContractVersion, comment: str) -> ContractVersion:
    """Send a proposal back to draft with the reviewer's reason."""
    version = _locked(version)
    check_transition(version.status, S.DRAFT)
    if not comment.strip():
        raise ValidationError({"comment": "Say why the version is rejected."})
    _check_approver(actor, version)
    version.decided_by, version.decided_at, version.decision_comment = _user(actor), timezone.now(), comment
    return _move(version, S.DRAFT, actor, comment, ["decided_by", "decided_at", "decision_comment"])


@transaction.atomic
def contract_version_activate(*, actor: Any, version: ContractVersion, comment: str = "") -> ContractVersion:
    """Make the version the contract's one active version; the previous one is deprecated and
    the schema becomes the registry subject's next version."""
    version = _locked(version)
    check_transition(version.status, S.ACTIVE)
    current = ContractVersion.objects.select_for_update().filter(contract=version.contract, status=S.ACTIVE).first()
    if current is not None:
        _move(current, S.DEPRECATED, actor, f"superseded by {version.version}", [])
    if version.schema_version_id is None:
        version.schema_version = registry_services.schema_register(
            actor=actor,
            tenant=version.tenant,
            subject=version.contract.registry_subject,
            schema=version_json_schema(version),
            allow_breaking=version.breaking_change_confirmed,
        )
    version.activated_at = timezone.now()
    return _move(version, S.ACTIVE, actor, comment, ["schema_version", "activated_at"])


@transaction.atomic
def contract_version_deprecate(*, actor: Any, version: ContractVersion, comment: str = "") -> ContractVersion:
    version = _locked(version)
    check_transition(version.status, S.DEPRECATED)
    return _move(version, S.DEPRECATED, actor, comment, [])


@transaction.atomic
def contract_version_retire(*, actor: Any, version: ContractVersion, comment: str = "") -> ContractVersion:
    """Retire for good: a retired version is read-only forever."""
    version = _locked(version)
    check_transition(version.status, S.RETIRED)
    return _move(version, S.RETIRED, actor, comment, [])


LIFECYCLE_SERVICES = {
    "propose": contract_version_propose,
    "approve": contract_version_approve,
    "reject": contract_version_reject,
    "activate": contract_version_activate,
    "deprecate": contract_version_deprecate,
    "retire": contract_version_retire,
}


def can_approve(user: Any, contract: DataContract) -> bool:
    """Tenant admins approve; so does anyone granted `approve_datacontract` on this contract."""
    if not getattr(user, "is_authenticated", False):
        return False
    if user.is_superuser:
        return True
    role = Membership.objects.filter(tenant=contract.tenant, user=user).values_list("role", flat=True).first()
    if role is None:
        return False
    return role == RoleChoices.ADMIN or user.has_perm("host.approve_datacontract", contract)


def _check_approver(actor: Any, version: ContractVersion) -> None:
    if version.proposed_by_id is not None and getattr(actor, "pk", None) == version.proposed_by_id:
        raise ForbiddenError(
            "Four eyes: the person who proposed a version cannot approve or reject it.", slug="four-eyes"
        )
    if not can_approve(actor, version.contract):
        raise ForbiddenError(
            "Approving needs the tenant admin role or the approver right on this contract.", slug="not-an-approver"
        )


def _check_version_order(version: ContractVersion) -> None:
    newest = (
        ContractVersion.objects.filter(contract=version.contract, schema_version__isnull=False)
        .exclude(pk=version.pk)
        .order_by("-major", "-minor", "-patch")
        .first()
    )
    if newest is not None and parse_semver(version.version) <= newest.semver:
        raise ConflictError(
            f"Version {version.version} is not newer than {newest.version}, which was already active.",
            slug="version-not-newer",
        )


def _check_compatibility(version: ContractVersion, confirm_breaking: bool) -> bool:
    """True when the version breaks compatibility and the break is allowed (major raised, confirmed)."""
    subject = registry.subject_get(tenant=version.tenant, name=version.contract.registry_subject)
    if subject is None:
        return False
    problems = registry.schema_incompatibilities(subject=subject, schema=version_json_schema(version))
    if not problems:
        return False
    latest_major = (
        ContractVersion.objects.filter(contract=version.contract, schema_version__isnull=False)
        .order_by("-major")
        .values_list("major", flat=True)
        .first()
        or 0
    )
    details = [{"kind": p.kind, "path": p.path, "message": p.message} for p in problems]
    if version.major <= latest_major:
        raise ConflictError(
            f"Version {version.version} breaks compatibility ({registry.effective_compatibility(subject)}): "
            + "; ".join(p.message for p in problems)
            + f". Raise the major version to {latest_major + 1}.0.0 and confirm the break.",
            slug="breaking-change",
            incompatibilities=details,
        )
    if not confirm_breaking:
        raise ConflictError(
            f"Version {version.version} breaks compatibility: "
            + "; ".join(p.message for p in problems)
            + ". The major version is raised; confirm the break to propose it.",
            slug="breaking-change-unconfirmed",
            incompatibilities=details,
        )
    return True


def _locked(version: ContractVersion) -> ContractVersion:
    return ContractVersion.objects.select_for_update().select_related("contract", "tenant").get(pk=version.pk)


def _move(version: ContractVersion, to: str, actor: Any, comment: str, fields: list[str]) -> ContractVersion:
    previous, version.status = version.status, to
    with audit_actor(actor):
        version.save(update_fields=["status", "updated_at", *fields])
    _log(version, previous, to, actor, comment)
    publish_event(
        f"contract.{_EVENT_BY_STATUS[(previous, to)]}",
        {"contract": version.contract.key, "version": version.version, "from": previous, "to": to,
         "comment": comment},
        tenant=version.tenant,
        actor=actor,
    )  # fmt: skip
    return version


_EVENT_BY_STATUS = {
    (S.DRAFT, S.PROPOSED): "proposed",
    (S.PROPOSED, S.APPROVED): "approved",
    (S.PROPOSED, S.DRAFT): "rejected",
    (S.APPROVED, S.ACTIVE): "activated",
    (S.DEPRECATED, S.ACTIVE): "activated",
    (S.ACTIVE, S.DEPRECATED): "deprecated",
    (S.DRAFT, S.RETIRED): "retired",
    (S.APPROVED, S.RETIRED): "retired",
    (S.DEPRECATED, S.RETIRED): "retired",
}


def _log(version: ContractVersion, previous: str, to: str, actor: Any, comment: str) -> None:
    ContractTransition.objects.create(
        version=version, from_status=previous, to_status=to, actor=_user(actor), comment=comment
    )


def _user(actor: Any) -> Any:
    return actor if isinstance(actor, get_user_model()) and actor.is_authenticated else None
