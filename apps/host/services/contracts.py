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

CONTRACT_SUBJECTS_OWNER = "host.contracts"
registry_services.register_managed_prefix("contract.", owner=CONTRACT_SUBJECTS_OWNER)

FIELD_ATTRS = (
    "name", "logical_type", "required", "unique", "primary_key", "primary_key_position", "pattern", "minimum",
    "maximum", "allowed_values", "max_length", "unit", "classification", "description", "role", "extra",
)  # fmt: skip
RULE_ATTRS = ("kind", "severity", "threshold", "params", "description", "extra")
VERSION_ATTRS = ("dataset", "notes", "sla_freshness", "sla_completeness", "sla_availability", "support", "odcs")


# --- authoring ------------------------------------------------------------------------
@transaction.atomic
def contract_create(
    *,
    actor: Any,
    tenant: Any,
    key: str,
    name: str,
    domain: str = "",
    owner: Any = None,
    description: str = "",
    survivorship: str = "latest",
) -> DataContract:
    contract = DataContract(tenant=tenant, key=key, name=name, domain=domain, owner=owner, description=description,
                            survivorship=survivorship)  # fmt: skip
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
    copied_from: ContractVersion | None = None,
    **attrs: Any,
) -> ContractVersion:
    """A new draft version with its fields and rules (rules name their field by `field`).

    `copied_from` names the version it was derived from; the `contract.version_created` event
    carries it, so modules that keep their own per-version settings (compute's normalization
    rules) can copy them.

    Every problem (version attributes, each field, each rule) is reported at once, keyed by
    its path: "version", "fields/2/pattern", "quality_rules/0/field".
    """
    _refuse_unknown(attrs, VERSION_ATTRS)
    row = ContractVersion(tenant=contract.tenant, contract=contract, version=version, **attrs)
    content = _validated(row, fields, quality_rules or [])
    with audit_actor(actor):
        row.save()
        _save_content(row, *content)
    _log(row, "", S.DRAFT, actor, "created")
    publish_event(
        "contract.version_created",
        {"contract": contract.key, "version": row.version, "version_id": row.pk,
         "copied_from_id": copied_from.pk if copied_from is not None else None},
        tenant=contract.tenant,
        actor=actor,
    )  # fmt: skip
    return row


@transaction.atomic
def contract_version_update(
    *,
    actor: Any,
    version: ContractVersion,
    semver: str | None = None,
    fields: list[dict[str, Any]] | None = None,
    quality_rules: list[dict[str, Any]] | None = None,
    **attrs: Any,
) -> ContractVersion:
    """Change a draft (`semver` renumbers it). Anything past draft is frozen; retired is read-only forever.

    Fields and rules, when given, replace the current ones as a whole.
    """
    version = ContractVersion.objects.select_for_update().get(pk=version.pk)
    if not version.is_editable:
        raise ConflictError(
            f"Version {version.version} is {version.status}; only drafts can be edited.",
            slug="version-frozen",
            current_status=version.status,
        )
    _refuse_unknown(attrs, VERSION_ATTRS)
    for name, value in attrs.items():
        setattr(version, name, value)
    if semver is not None:
        version.version = semver
    if fields is None:
        fields = [_field_dict(f) for f in version.fields.all()]
    if quality_rules is None:
        quality_rules = [_rule_dict(rule) for rule in version.quality_rules.select_related("field")]
    content = _validated(version, fields, quality_rules)
    with audit_actor(actor):
        version.save()
        _save_content(version, *content)
    return version


def _validated(
    version: ContractVersion, fields: list[dict[str, Any]], rules: list[dict[str, Any]]
) -> tuple[list[ContractField], list[tuple[str | None, QualityRule]]]:
    """Unsaved fields and rules for `version`, or one ValidationError naming every problem."""
    errors: dict[str, list[str]] = {}
    try:
        version.full_clean(exclude=["schema_version", "tenant", "contract"])
    except ValidationError as exc:
        errors.update(exc.message_dict)
    # full_clean skips the (contract, version) constraint when `contract` is excluded.
    if (
        ContractVersion.objects.filter(contract=version.contract, version=version.version)
        .exclude(pk=version.pk)
        .exists()
    ):
        errors.setdefault("version", []).append(f"Version {version.version} of this contract exists already.")
    field_rows: dict[str, ContractField] = {}
    for position, spec in enumerate(fields):
        unknown = sorted(set(spec) - set(FIELD_ATTRS))
        if unknown:
            errors.update({f"fields/{position}/{name}": ["Unknown attribute."] for name in unknown})
            continue
        field = ContractField(position=position, **spec)
        try:
            field.full_clean(exclude=["version"], validate_unique=False)
        except ValidationError as exc:
            errors.update({f"fields/{position}/{k}": v for k, v in exc.message_dict.items()})
            continue
        if field.name in field_rows:
            errors[f"fields/{position}/name"] = [f"Field '{field.name}' appears twice."]
        field_rows[field.name] = field
    rule_rows: list[tuple[str | None, QualityRule]] = []
    for index, spec in enumerate(rules):
        spec = dict(spec)
        target = spec.pop("field", None)
        if target and target not in field_rows:
            errors[f"quality_rules/{index}/field"] = [f"No field '{target}' in this version."]
        unknown = sorted(set(spec) - set(RULE_ATTRS))
        if unknown:
            errors.update({f"quality_rules/{index}/{name}": ["Unknown attribute."] for name in unknown})
            continue
        rule = QualityRule(**spec)
        try:
            rule.full_clean(exclude=["version", "field"])
        except ValidationError as exc:
            errors.update({f"quality_rules/{index}/{k}": v for k, v in exc.message_dict.items()})
        rule_rows.append((target, rule))
    if errors:
        raise ValidationError(errors)
    return list(field_rows.values()), rule_rows


def _save_content(
    version: ContractVersion, fields: list[ContractField], rules: list[tuple[str | None, QualityRule]]
) -> None:
    version.quality_rules.all().delete()
    version.fields.all().delete()
    for field in fields:
        field.version = version
    saved = {f.name: f for f in ContractField.objects.bulk_create(fields)}
    for target, rule in rules:
        rule.version, rule.field = version, saved.get(target) if target else None
    QualityRule.objects.bulk_create([rule for _, rule in rules])


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
            managed_by=CONTRACT_SUBJECTS_OWNER,
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
            + "; ".join(p.message.rstrip(".") for p in problems)
            + f". Raise the major version to {latest_major + 1}.0.0 and confirm the break.",
            slug="breaking-change",
            incompatibilities=details,
        )
    if not confirm_breaking:
        raise ConflictError(
            f"Version {version.version} breaks compatibility: "
            + "; ".join(p.message.rstrip(".") for p in problems)
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


@transaction.atomic
def contract_update(*, actor: Any, contract: DataContract, **changes: Any) -> DataContract:
    """Rename or re-describe a contract; its key never changes (versions and subjects hang on it)."""
    if "key" in changes and changes["key"] != contract.key:
        raise ValidationError({"key": "A contract's key cannot change."})
    changes.pop("key", None)
    _refuse_unknown(changes, ("name", "domain", "description", "owner", "survivorship"))
    for name, value in changes.items():
        setattr(contract, name, value)
    contract.full_clean()
    with audit_actor(actor):
        contract.save()
    return contract
