"""KPI services: definitions, versions under four-eyes, targets, and computation runs.

Every lifecycle step is one transaction that checks the transition (illegal → 409 naming the
allowed next states) and the four-eyes rule, logs a KpiTransition, writes the audit trail and
publishes a domain event. Computation (`kpi_compute`) records one PipelineRun per KPI computed.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone

from apps.compute.kpis import engine
from apps.compute.kpis.choices import DirectionChoices, TargetStatusChoices
from apps.compute.kpis.models import KpiDefinition, KpiStatusChoices, KpiTarget, KpiTransition, KpiVersion
from apps.compute.kpis.validation import validate_version
from apps.compute.models import PipelineRun
from apps.host.contracts.lifecycle import IllegalTransition, check_transition
from apps.host.models import Membership
from apps.kernel.audit import audit_actor
from apps.kernel.errors import ConflictError, ForbiddenError
from apps.kernel.roles import RoleChoices
from apps.runtime.events import publish_event
from apps.storage.kpi_values import TargetSpec, kpi_statuses, kpi_values_apply_targets
from apps.storage.merge import MERGE_LOCK
from apps.storage.models import CalendarPeriod

logger = logging.getLogger(__name__)
S = KpiStatusChoices
T = TargetStatusChoices

DEFINITION_ATTRS = ("name", "description", "domain", "owner", "compute_every_seconds")
VERSION_ATTRS = (
    "kind", "contract", "measure", "aggregation", "denominator_measure", "denominator_aggregation", "expression",
    "cumulative_mode", "window_periods", "filters", "calendar", "level", "dimensions", "unit", "display_format",
    "decimals", "direction", "notes",
)  # fmt: skip
# What a reviewer approves: everything that decides the numbers and how they read.
CONTENT_ATTRS = tuple(name for name in VERSION_ATTRS if name != "notes")
TARGET_ATTRS = ("period_from", "period_to", "dimensions", "value", "tolerance_kind", "green_within", "amber_within",
                "owner", "notes")  # fmt: skip

# Targets: from-status → {to-status: action}
TARGET_TRANSITIONS: dict[str, dict[str, str]] = {
    T.DRAFT: {T.PROPOSED: "propose", T.RETIRED: "retire"},
    T.PROPOSED: {T.APPROVED: "approve", T.DRAFT: "reject"},
    T.APPROVED: {T.RETIRED: "retire"},
    T.RETIRED: {},
}


# --- definitions --------------------------------------------------------------------------------------
@transaction.atomic
def kpi_definition_create(
    *,
    actor: Any,
    tenant: Any,
    key: str,
    name: str,
    description: str = "",
    domain: str = "",
    owner: Any = None,
    compute_every_seconds: int | None = None,
) -> KpiDefinition:
    """A new KPI (no version yet). The key is its stable identifier within the tenant."""
    definition = KpiDefinition(tenant=tenant, key=key, name=name, description=description, domain=domain,
                               owner=owner, compute_every_seconds=compute_every_seconds)  # fmt: skip
    definition.full_clean()
    with audit_actor(actor):
        definition.save()
    publish_event("kpi.created", {"kpi": key, "name": name}, tenant=tenant, actor=actor)
    return definition


@transaction.atomic
def kpi_definition_update(*, actor: Any, definition: KpiDefinition, **changes: Any) -> KpiDefinition:
    """Rename, re-describe, re-own or (un)schedule a KPI; its key never changes."""
    if "key" in changes and changes["key"] != definition.key:
        raise ValidationError({"key": "A KPI's key cannot change."})
    changes.pop("key", None)
    _refuse_unknown(changes, DEFINITION_ATTRS)
    for name, value in changes.items():
        setattr(definition, name, value)
    definition.full_clean()
    with audit_actor(actor):
        definition.save()
    return definition


@transaction.atomic
def kpi_definition_delete(*, actor: Any, definition: KpiDefinition) -> None:
    """Delete a KPI that never left draft (with its drafts and targets); anything proposed or further
    is history and stays (retire its versions instead)."""
    definition = KpiDefinition.objects.select_for_update().get(pk=definition.pk)
    if definition.versions.exclude(status=S.DRAFT).exists():
        raise ConflictError(f"KPI '{definition.key}' has versions past draft; retire them instead.",
                            slug="kpi-in-use")  # fmt: skip
    with audit_actor(actor):
        definition.delete()
    publish_event("kpi.deleted", {"kpi": definition.key}, tenant=definition.tenant, actor=actor)


# --- versions: authoring ------------------------------------------------------------------------------
@transaction.atomic
def kpi_version_create(*, actor: Any, definition: KpiDefinition, version: str, **attrs: Any) -> KpiVersion:
    """A new draft version, checked against its contract and the other KPIs (every problem at once)."""
    _refuse_unknown(attrs, VERSION_ATTRS)
    if KpiVersion.objects.filter(definition=definition, version=version).exists():
        raise ValidationError({"version": f"Version {version} of this KPI exists already."})
    row = KpiVersion(tenant=definition.tenant, definition=definition, version=version, **attrs)
    validate_version(row)
    with audit_actor(actor):
        row.save()
    _log(row.definition, row, None, "", S.DRAFT, actor, "created")
    publish_event("kpi.version_created", {"kpi": definition.key, "version": version, "version_id": row.pk},
                  tenant=definition.tenant, actor=actor)  # fmt: skip
    return row


@transaction.atomic
def kpi_version_update(*, actor: Any, version: KpiVersion, semver: str | None = None, **attrs: Any) -> KpiVersion:
    """Change a draft (`semver` renumbers it). Anything past draft is frozen; retired is read-only."""
    version = _locked(version)
    if not version.is_editable:
        raise ConflictError(f"Version {version.version} is {version.status}; only drafts can be edited.",
                            slug="version-frozen", current_status=version.status)  # fmt: skip
    _refuse_unknown(attrs, VERSION_ATTRS)
    for name, value in attrs.items():
        setattr(version, name, value)
    if semver is not None and semver != version.version:
        if KpiVersion.objects.filter(definition=version.definition, version=semver).exists():
            raise ValidationError({"version": f"Version {semver} of this KPI exists already."})
        version.version = semver
    validate_version(version)
    with audit_actor(actor):
        version.save()
    return version


def content_hash(version: KpiVersion) -> str:
    """Digest of everything a reviewer approves."""
    content = {"version": version.version}
    for name in CONTENT_ATTRS:
        field = KpiVersion._meta.get_field(name)
        content[name] = getattr(version, field.attname)
    return hashlib.sha256(json.dumps(content, sort_keys=True, default=str).encode()).hexdigest()


# --- versions: lifecycle ------------------------------------------------------------------------------
@transaction.atomic
def kpi_version_propose(*, actor: Any, version: KpiVersion, comment: str = "") -> KpiVersion:
    """Ask for approval; the version is validated again and its content frozen (hashed)."""
    version = _locked(version)
    check_transition(version.status, S.PROPOSED)
    validate_version(version)
    version.content_hash = content_hash(version)
    version.proposed_by, version.proposed_at = _user(actor), timezone.now()
    version.decided_by, version.decided_at, version.decision_comment = None, None, ""
    return _move(version, S.PROPOSED, actor, comment,
                 ["content_hash", "proposed_by", "proposed_at", "decided_by", "decided_at", "decision_comment"])  # fmt: skip


@transaction.atomic
def kpi_version_approve(*, actor: Any, version: KpiVersion, comment: str = "") -> KpiVersion:
    """Four eyes: a different person with the approver right approves exactly what was proposed."""
    version = _locked(version)
    check_transition(version.status, S.APPROVED)
    _check_approver(actor, version.definition, version.proposed_by_id)
    if version.content_hash != content_hash(version):
        raise ConflictError("The version changed after it was proposed; propose it again.", slug="content-changed")
    version.decided_by, version.decided_at, version.decision_comment = _user(actor), timezone.now(), comment
    return _move(version, S.APPROVED, actor, comment, ["decided_by", "decided_at", "decision_comment"])


@transaction.atomic
def kpi_version_reject(*, actor: Any, version: KpiVersion, comment: str) -> KpiVersion:
    """Send a proposal back to draft with the reviewer's reason."""
    version = _locked(version)
    check_transition(version.status, S.DRAFT)
    if not (comment or "").strip():
        raise ValidationError({"comment": "Say why the version is rejected."})
    _check_approver(actor, version.definition, version.proposed_by_id)
    version.decided_by, version.decided_at, version.decision_comment = _user(actor), timezone.now(), comment
    return _move(version, S.DRAFT, actor, comment, ["decided_by", "decided_at", "decision_comment"])


@transaction.atomic
def kpi_version_activate(*, actor: Any, version: KpiVersion, comment: str = "") -> KpiVersion:
    """Make the version the KPI's one active version (the previous one is deprecated), checked once more
    against its contract; it is computed in full after commit."""
    version = _locked(version)
    check_transition(version.status, S.ACTIVE)
    validate_version(version)
    current = KpiVersion.objects.select_for_update().filter(definition=version.definition, status=S.ACTIVE).first()
    if current is not None:
        _move(current, S.DEPRECATED, actor, f"superseded by {version.version}", [])
    version.activated_at = timezone.now()
    moved = _move(version, S.ACTIVE, actor, comment, ["activated_at"])
    definition_id = version.definition_id
    transaction.on_commit(lambda: _enqueue_compute(definition_id, "activation"))
    return moved


@transaction.atomic
def kpi_version_deprecate(*, actor: Any, version: KpiVersion, comment: str = "") -> KpiVersion:
    version = _locked(version)
    check_transition(version.status, S.DEPRECATED)
    return _move(version, S.DEPRECATED, actor, comment, [])


@transaction.atomic
def kpi_version_retire(*, actor: Any, version: KpiVersion, comment: str = "") -> KpiVersion:
    """Retire for good: a retired version is read-only forever."""
    version = _locked(version)
    check_transition(version.status, S.RETIRED)
    return _move(version, S.RETIRED, actor, comment, [])


LIFECYCLE_SERVICES = {
    "propose": kpi_version_propose,
    "approve": kpi_version_approve,
    "reject": kpi_version_reject,
    "activate": kpi_version_activate,
    "deprecate": kpi_version_deprecate,
    "retire": kpi_version_retire,
}


def can_approve(user: Any, definition: KpiDefinition) -> bool:
    """Tenant admins approve; so does anyone granted `approve_kpidefinition` on this KPI."""
    if not getattr(user, "is_authenticated", False):
        return False
    if user.is_superuser:
        return True
    role = Membership.objects.filter(tenant=definition.tenant, user=user).values_list("role", flat=True).first()
    if role is None:
        return False
    return role == RoleChoices.ADMIN or user.has_perm("compute.approve_kpidefinition", definition)


def _check_approver(actor: Any, definition: KpiDefinition, proposed_by_id: int | None) -> None:
    if proposed_by_id is not None and getattr(actor, "pk", None) == proposed_by_id:
        raise ForbiddenError("Four eyes: the person who proposed it cannot approve or reject it.", slug="four-eyes")
    if not can_approve(actor, definition):
        raise ForbiddenError("Approving needs the tenant admin role or the approver right on this KPI.",
                             slug="not-an-approver")  # fmt: skip


_VERSION_EVENTS = {
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


def _move(version: KpiVersion, to: str, actor: Any, comment: str, fields: list[str]) -> KpiVersion:
    previous, version.status = version.status, to
    with audit_actor(actor):
        version.save(update_fields=["status", "updated_at", *fields])
    _log(version.definition, version, None, previous, to, actor, comment)
    publish_event(
        f"kpi.{_VERSION_EVENTS[(previous, to)]}",
        {"kpi": version.definition.key, "version": version.version, "version_id": version.pk, "from": previous,
         "to": to, "comment": comment},
        tenant=version.tenant,
        actor=actor,
    )  # fmt: skip
    return version


def _locked(version: KpiVersion) -> KpiVersion:
    return (
        KpiVersion.objects.select_for_update(of=("self",))
        .select_related("definition", "tenant", "contract", "calendar")
        .get(pk=version.pk)
    )


# --- targets ------------------------------------------------------------------------------------------
@transaction.atomic
def kpi_target_create(*, actor: Any, definition: KpiDefinition, **attrs: Any) -> KpiTarget:
    """A draft target for the KPI; bands and periods are checked (every problem at once)."""
    _refuse_unknown(attrs, TARGET_ATTRS)
    target = KpiTarget(tenant=definition.tenant, definition=definition, **attrs)
    _validate_target(target)
    with audit_actor(actor):
        target.save()
    _log(definition, None, target, "", T.DRAFT, actor, "created")
    return target


@transaction.atomic
def kpi_target_update(*, actor: Any, target: KpiTarget, **attrs: Any) -> KpiTarget:
    target = KpiTarget.objects.select_for_update(of=("self",)).select_related("definition").get(pk=target.pk)
    if not target.is_editable:
        raise ConflictError(f"The target is {target.status}; only drafts can be edited.", slug="target-frozen",
                            current_status=target.status)  # fmt: skip
    _refuse_unknown(attrs, TARGET_ATTRS)
    for name, value in attrs.items():
        setattr(target, name, value)
    _validate_target(target)
    with audit_actor(actor):
        target.save()
    return target


def _validate_target(target: KpiTarget) -> None:
    errors: dict[str, list[str]] = {}
    try:
        target.full_clean(exclude=["tenant", "definition"])
    except ValidationError as exc:
        errors.update(exc.message_dict)
    first = target.period_from if target.period_from_id else None
    last = target.period_to if target.period_to_id else None
    for name, period in (("period_from", first), ("period_to", last)):
        if period is not None and period.calendar.tenant_id not in (None, target.tenant_id):
            errors.setdefault(name, []).append("Belongs to another tenant.")
    if first is not None and last is not None and first.start > last.end:
        errors.setdefault("period_to", []).append("The range ends before it starts.")
    if target.green_within is not None and target.amber_within is not None:
        if target.green_within < 0:
            errors.setdefault("green_within", []).append("A tolerance is not negative.")
        if target.amber_within < target.green_within:
            errors.setdefault("amber_within", []).append("The amber band must reach at least as far as the green one.")
    dims = target.dimensions
    if not isinstance(dims, dict) or not all(isinstance(v, str | int | float | bool) for v in dims.values()):
        errors.setdefault("dimensions", []).append('An object of dimension values, e.g. {"region": "north"}.')
    else:
        version = target.definition.versions.filter(status=S.ACTIVE).first() or target.definition.versions.first()
        known = set(version.dimensions or []) if version is not None else set()
        unknown = sorted(set(dims) - known)
        if unknown:
            errors.setdefault("dimensions", []).append(
                f"The KPI does not break down by {', '.join(unknown)} (it does by {', '.join(sorted(known)) or 'nothing'})."
            )
    if errors:
        raise ValidationError(errors)


def _target_transition(target: KpiTarget, to: str) -> None:
    if to not in TARGET_TRANSITIONS[target.status]:
        nexts = list(TARGET_TRANSITIONS[target.status])
        raise IllegalTransition(
            f"A {target.status} target cannot become {to}; "
            + (f"allowed next: {', '.join(nexts)}." if nexts else "it is final and read-only."),
            current_status=target.status,
            allowed_next=nexts,
        )


@transaction.atomic
def kpi_target_propose(*, actor: Any, target: KpiTarget, comment: str = "") -> KpiTarget:
    target = _locked_target(target)
    _target_transition(target, T.PROPOSED)
    _validate_target(target)
    target.proposed_by, target.proposed_at = _user(actor), timezone.now()
    target.decided_by, target.decided_at, target.decision_comment = None, None, ""
    return _move_target(target, T.PROPOSED, actor, comment,
                        ["proposed_by", "proposed_at", "decided_by", "decided_at", "decision_comment"])  # fmt: skip


@transaction.atomic
def kpi_target_approve(*, actor: Any, target: KpiTarget, comment: str = "") -> KpiTarget:
    """Four eyes; from now on the target counts: the KPI's values get it stamped at once."""
    target = _locked_target(target)
    _target_transition(target, T.APPROVED)
    _check_approver(actor, target.definition, target.proposed_by_id)
    target.decided_by, target.decided_at, target.decision_comment = _user(actor), timezone.now(), comment
    moved = _move_target(target, T.APPROVED, actor, comment, ["decided_by", "decided_at", "decision_comment"])
    kpi_targets_refresh(definition=target.definition)
    return moved


@transaction.atomic
def kpi_target_reject(*, actor: Any, target: KpiTarget, comment: str) -> KpiTarget:
    target = _locked_target(target)
    _target_transition(target, T.DRAFT)
    if not (comment or "").strip():
        raise ValidationError({"comment": "Say why the target is rejected."})
    _check_approver(actor, target.definition, target.proposed_by_id)
    target.decided_by, target.decided_at, target.decision_comment = _user(actor), timezone.now(), comment
    return _move_target(target, T.DRAFT, actor, comment, ["decided_by", "decided_at", "decision_comment"])


@transaction.atomic
def kpi_target_retire(*, actor: Any, target: KpiTarget, comment: str = "") -> KpiTarget:
    """A retired target no longer counts (values are re-stamped) and is read-only forever."""
    target = _locked_target(target)
    was_approved = target.status == T.APPROVED
    _target_transition(target, T.RETIRED)
    moved = _move_target(target, T.RETIRED, actor, comment, [])
    if was_approved:
        kpi_targets_refresh(definition=target.definition)
    return moved


TARGET_SERVICES = {
    "propose": kpi_target_propose,
    "approve": kpi_target_approve,
    "reject": kpi_target_reject,
    "retire": kpi_target_retire,
}


def _locked_target(target: KpiTarget) -> KpiTarget:
    return KpiTarget.objects.select_for_update(of=("self",)).select_related("definition", "tenant").get(pk=target.pk)


def _move_target(target: KpiTarget, to: str, actor: Any, comment: str, fields: list[str]) -> KpiTarget:
    previous, target.status = target.status, to
    with audit_actor(actor):
        target.save(update_fields=["status", "updated_at", *fields])
    _log(target.definition, None, target, previous, to, actor, comment)
    event = {T.PROPOSED: "proposed", T.APPROVED: "approved", T.DRAFT: "rejected", T.RETIRED: "retired"}[to]
    publish_event(f"kpi.target_{event}",
                  {"kpi": target.definition.key, "target": target.pk, "value": str(target.value), "from": previous,
                   "to": to, "comment": comment},
                  tenant=target.tenant, actor=actor)  # fmt: skip
    return target


def target_specs(definition: KpiDefinition) -> list[TargetSpec]:
    """The KPI's approved targets as storage stamps them (most specific last)."""
    specs = []
    for target in KpiTarget.objects.filter(definition=definition, status=T.APPROVED).select_related(
        "period_from", "period_to"
    ):
        start, end = target.period_from.start, target.period_to.end
        dims = target.dimensions or {}
        specs.append(TargetSpec(
            id=target.pk, start=start, end=end, dimensions=dims, value=target.value,
            tolerance_kind=target.tolerance_kind, green_within=target.green_within, amber_within=target.amber_within,
            specificity=(len(dims), -(end - start).days, target.decided_at or target.created_at, target.pk),
        ))  # fmt: skip
    return specs


@transaction.atomic
def kpi_targets_refresh(*, definition: KpiDefinition) -> int:
    """Re-stamp targets, status and streaks on the active version's values (after a target decision);
    publishes `kpi.status_changed` for each value whose status moved. Returns how many moved."""
    version = KpiVersion.objects.select_for_update().filter(definition=definition, status=S.ACTIVE).first()
    if version is None or version.computed_as_of is None:
        return 0
    return len(_stamp_targets(version, kpi_statuses(kpi_version_id=version.pk), run_id=None))


def _stamp_targets(version: KpiVersion, before: dict[tuple[int, str], str], *, run_id: Any) -> list[Any]:
    changes = kpi_values_apply_targets(
        kpi_version_id=version.pk, targets=target_specs(version.definition),
        lower_is_better=version.direction == DirectionChoices.LOWER_IS_BETTER, before=before,
    )  # fmt: skip
    labels = dict(CalendarPeriod.objects.filter(pk__in={c.period_id for c in changes}).values_list("pk", "label"))
    for change in changes:
        publish_event("kpi.status_changed", {
            "kpi": version.definition.key, "version": version.version, "version_id": version.pk,
            "period": change.period_id, "period_label": labels.get(change.period_id, ""),
            "dimensions": change.dimensions, "from": change.before, "to": change.after,
            "actual": _text(change.actual), "target": _text(change.target), "streak": change.streak,
            "run": str(run_id) if run_id else None,
        }, tenant=version.tenant)  # fmt: skip
    return changes


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


# --- computation --------------------------------------------------------------------------------------
def _settled_now(contract_ids: set[int]) -> datetime:
    """The moment to pin a run to, taken under the contracts' merge locks (PostgreSQL): a merge in flight
    commits first, and a later one records its versions after this moment (it reads the clock after
    taking the lock), so no version recorded before the as-of can appear once the run has read."""
    if connection.vendor != "postgresql" or not contract_ids:
        return timezone.now()
    with transaction.atomic(), connection.cursor() as cursor:
        for contract_id in sorted(contract_ids):
            cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [MERGE_LOCK, contract_id])
        return timezone.now()


def compute_plan(definitions: Iterable[KpiDefinition]) -> list[KpiVersion]:
    """The active versions to compute, in dependency order: the given KPIs, the derived KPIs that read
    them (transitively), and every KPI those derived ones read (so all are as of the same moment)."""
    definitions = list(definitions)
    if not definitions:
        return []
    tenant_id = definitions[0].tenant_id
    active = {v.definition.key: v for v in KpiVersion.objects.active().filter(tenant_id=tenant_id)
              .select_related("definition", "contract", "calendar", "tenant")}  # fmt: skip
    refs = {key: engine.derived_refs(v) for key, v in active.items()}
    wanted = {d.key for d in definitions if d.key in active}
    changed = True
    while changed:  # dependents (downstream) and their references (upstream) until nothing is added
        before = len(wanted)
        wanted |= {key for key, keys in refs.items() if wanted & set(keys)}
        wanted |= {ref for key in list(wanted) for ref in refs.get(key, []) if ref in active}
        changed = len(wanted) != before
    order: list[str] = []
    visiting: set[str] = set()

    def visit(key: str) -> None:
        if key in order or key in visiting:
            return
        visiting.add(key)
        for ref in refs.get(key, []):
            if ref in wanted:
                visit(ref)
        visiting.discard(key)
        order.append(key)

    for key in sorted(wanted):
        visit(key)
    return [active[key] for key in order]


def kpi_compute(
    *,
    actor: Any,
    definitions: Iterable[KpiDefinition],
    as_of: datetime | None = None,
    full: bool = False,
    trigger: str = "manual",
) -> list[PipelineRun]:
    """Compute the KPIs (and the derived KPIs around them, see `compute_plan`) as of one pinned moment.

    Each KPI is one transaction holding its version's row lock, recorded as a PipelineRun (job
    "kpi:<key>") with its counts and timings. Incremental unless `full` or `as_of` lies before the
    version's watermark. A failed KPI fails its run, skips the KPIs that read it, and is raised once
    the others are done.
    """
    plan = compute_plan(definitions)
    as_of = as_of or _settled_now({version.contract_id for version in plan if version.contract_id})
    runs: list[PipelineRun] = []
    # key → (its watermark before this run, the period ids recomputed; None when all were)
    recomputed: dict[str, tuple[datetime | None, list[int] | None]] = {}
    failed: set[str] = set()
    first_error: Exception | None = None
    partials = engine.partials_for(plan, as_of)
    try:
        for version in plan:
            key = version.definition.key
            refs = engine.derived_refs(version)
            run = PipelineRun.objects.create(tenant_id=version.tenant_id, job=f"kpi:{key}"[:100],
                                             counts={"trigger": trigger, "as_of": as_of.isoformat()})  # fmt: skip
            runs.append(run)
            if failed & set(refs):
                _finish_run(run, failed=True, error=f"Not computed: {', '.join(sorted(failed & set(refs)))} failed.")
                failed.add(key)
                continue
            try:
                counts = _compute_one(version, as_of=as_of, run=run, full=full, refs=refs, recomputed=recomputed,
                                      partials=partials)  # fmt: skip
            except Exception as exc:  # recorded on the run; raised after the other KPIs
                logger.exception("KPI %s failed to compute", key)
                _finish_run(run, failed=True, error=f"{type(exc).__name__}: {exc}"[:4000])
                failed.add(key)
                first_error = first_error or exc
                partials.reset()  # its rollback undid what it added to them
                continue
            run.counts.update(counts)
            _finish_run(run, failed=False)
    finally:
        partials.drop()
    if first_error is not None:
        raise first_error
    return runs


def _compute_one(
    version: KpiVersion, *, as_of: datetime, run: PipelineRun, full: bool, refs: list[str],
    recomputed: dict[str, tuple[datetime | None, list[int] | None]], partials: engine.DailyPartials,
) -> dict[str, Any]:  # fmt: skip
    with transaction.atomic():
        version = _locked(version)
        ref_versions: dict[str, int] = {}
        ref_periods: set[int] | None = set()
        for ref in refs:
            ref_version = KpiVersion.objects.active().filter(tenant_id=version.tenant_id, definition__key=ref).first()
            if ref_version is None:
                raise ConflictError(f"KPI '{ref}' has no active version to derive from.", slug="kpi-reference")
            ref_versions[ref] = ref_version.pk
            # Incremental only when every reference was recomputed in this run, incrementally, from the
            # same watermark as this KPI's: then its recomputed periods are all that can have changed.
            previous_watermark, periods = recomputed.get(ref, (None, None))
            if periods is None or previous_watermark != version.computed_as_of:
                ref_periods = None
            elif ref_periods is not None:
                ref_periods |= set(periods)
        before = kpi_statuses(kpi_version_id=version.pk)
        watermark = version.computed_as_of
        now = timezone.now()
        outcome = engine.compute_version(version, as_of=as_of, run_id=run.run_id, computed_at=now, full=full,
                                         refs=ref_versions, ref_periods=ref_periods, partials=partials)  # fmt: skip
        changes = _stamp_targets(version, before, run_id=run.run_id)
        version.computed_as_of, version.computed_at = as_of, now
        version.save(update_fields=["computed_as_of", "computed_at", "updated_at"])
        recomputed[version.definition.key] = (watermark, None if outcome.mode == "full" else outcome.periods)
        publish_event("kpi.computed", {
            "kpi": version.definition.key, "version": version.version, "version_id": version.pk,
            "as_of": as_of.isoformat(), "mode": outcome.mode, "periods": outcome.periods, "run": str(run.run_id),
        }, tenant=version.tenant)  # fmt: skip
    return {"mode": outcome.mode, "periods": len(outcome.periods), "values": outcome.values,
            "deleted": outcome.deleted, "gdps_read": outcome.gdps_read, "status_changes": len(changes),
            "version": version.version, **outcome.timings}  # fmt: skip


def _finish_run(run: PipelineRun, *, failed: bool, error: str = "") -> None:
    run.status = "failed" if failed else "completed"
    run.finished_at = timezone.now()
    run.error = error
    run.counts["seconds"] = round((run.finished_at - run.started_at).total_seconds(), 4)
    run.save(update_fields=["status", "finished_at", "error", "counts", "updated_at"])


def kpi_compute_for_contract(*, tenant: Any, contract_id: int, trigger: str) -> list[PipelineRun]:
    """Incrementally compute the tenant's active KPIs that read the contract (and the derived ones on them)."""
    definitions = (
        KpiDefinition.objects.for_tenant(tenant)
        .filter(versions__status=S.ACTIVE, versions__contract_id=contract_id)
        .distinct()
    )
    return kpi_compute(actor=None, definitions=definitions, trigger=trigger)


def kpi_compute_due(*, now: datetime | None = None) -> list[PipelineRun]:
    """The beat job's work: every scheduled KPI whose interval has passed, computed incrementally."""
    now = now or timezone.now()
    runs: list[PipelineRun] = []
    due = KpiDefinition.objects.filter(compute_every_seconds__isnull=False, versions__status=S.ACTIVE).distinct()
    for definition in due.select_related("tenant"):
        last = definition.last_scheduled_at
        if last is not None and (now - last).total_seconds() < definition.compute_every_seconds:
            continue
        KpiDefinition.objects.filter(pk=definition.pk).update(last_scheduled_at=now)
        try:
            runs += kpi_compute(actor=None, definitions=[definition], trigger="schedule")
        except Exception:  # recorded on its run; the other KPIs still run
            logger.exception("scheduled computation of KPI %s failed", definition.key)
    return runs


def _enqueue_compute(definition_id: int, trigger: str) -> None:
    from apps.compute.kpis.tasks import compute_kpi

    try:
        compute_kpi.delay(definition_id, trigger)
    except Exception:  # a lost hand-off is caught up by the next batch, schedule or manual run
        logger.exception("could not enqueue the computation of KPI %s", definition_id)


# --- helpers ------------------------------------------------------------------------------------------
def _log(definition: KpiDefinition, version: KpiVersion | None, target: KpiTarget | None, previous: str, to: str,
         actor: Any, comment: str) -> None:  # fmt: skip
    KpiTransition.objects.create(definition=definition, version=version, target=target, from_status=previous,
                                 to_status=to, actor=_user(actor), comment=comment)  # fmt: skip


def _user(actor: Any) -> Any:
    return actor if isinstance(actor, get_user_model()) and actor.is_authenticated else None


def _refuse_unknown(attrs: dict[str, Any], known: tuple[str, ...]) -> None:
    unknown = sorted(set(attrs) - set(known))
    if unknown:
        raise ValidationError({name: "Unknown attribute." for name in unknown})
