"""Publishing KPI values under the host's policies, restating published numbers, snapshotting closed periods.

Before any output exists, `evaluate("output.publish", …)` decides over the quality gate (the pass
rate of the batches behind the values), the lineage obligations (compute proves
`kpi_values_traceable_to_raw` and `sources_under_active_contract`) and the publication approval
(four eyes: the publisher and a different approver). A refusal is a 409 `publication-refused`
naming every unmet condition. Each publication is one transaction holding the KPI definition's
row lock (so publication versions count 1, 2, 3 … without gaps), and writes `kpi.published` —
or `kpi.restated` for a restatement — in that transaction; the trust ledger appends an entry
for each.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q, Sum
from django.utils import timezone

from apps.compute.kpis import engine
from apps.compute.kpis.models import KpiDefinition, KpiStatusChoices, KpiVersion
from apps.compute.publication.choices import PublicationRequestStatusChoices as R
from apps.compute.publication.choices import RestatementStatusChoices as S
from apps.compute.publication.models import PublicationRequest, Restatement
from apps.host.choices import PolicyKindChoices
from apps.host.models import ContractVersion, Membership
from apps.host.policies.evaluation import Decision, PolicySubject, evaluate
from apps.kernel.audit import audit_actor
from apps.kernel.errors import ConflictError, ForbiddenError
from apps.kernel.roles import EDITOR_ROLES
from apps.runtime.events import publish_event
from apps.storage.models import CalendarPeriod, GoldenDataPoint, IngestionBatch
from apps.storage.published import (
    PublicationKindChoices,
    PublishedOutput,
    number_text,
    published_output_create,
    value_rows,
)

ACTION = "output.publish"


# --- what lies behind a KPI's values ------------------------------------------------------------------
def _versions_behind(version: KpiVersion) -> list[KpiVersion]:
    """The version and, for a derived KPI, the active versions it reads (transitively)."""
    seen: dict[int, KpiVersion] = {}
    todo = [version]
    while todo:
        current = todo.pop()
        if current.pk in seen:
            continue
        seen[current.pk] = current
        for key in engine.derived_refs(current):
            ref = KpiVersion.objects.active().filter(tenant_id=version.tenant_id, definition__key=key).first()
            if ref is not None:
                todo.append(ref)
    return list(seen.values())


def gdps_behind(version: KpiVersion, periods: Sequence[CalendarPeriod]) -> Any:
    """The Golden Data Points believed at the version's `computed_as_of` that its values of `periods`
    read: of its contracts and measures (through derived references too), observed within the periods.
    Dimension filters are not applied (a superset). Cumulative KPIs also read earlier periods of their
    window; those are not included."""
    as_of = version.computed_as_of or timezone.now()
    sources = Q()
    for behind in _versions_behind(version):
        if behind.contract_id is not None:
            sources |= Q(contract_id=behind.contract_id, measure__in=engine.measures_of(behind))
    if not sources:
        return GoldenDataPoint.objects.none()
    days = Q()
    for period in periods:
        start, end = engine.day_bounds(period.start, period.end)
        days |= Q(observed_at__gte=start, observed_at__lt=end)
    return GoldenDataPoint.objects.as_of(as_of).filter(sources, days, tenant_id=version.tenant_id)


def pass_rate(version: KpiVersion, periods: Sequence[CalendarPeriod]) -> float | None:
    """Accepted ÷ received records (in %) over the batches behind the values; None when no batch is."""
    batch_ids = gdps_behind(version, periods).filter(batch__isnull=False).values("batch_id").distinct()
    totals = IngestionBatch.objects.filter(pk__in=batch_ids).aggregate(received=Sum("received"),
                                                                       accepted=Sum("accepted"))  # fmt: skip
    if totals["received"] is None:
        return None
    if not totals["received"]:
        return 100.0  # batches without records to judge (the pipeline's rule for one batch)
    return round(100.0 * (totals["accepted"] or 0) / totals["received"], 2)


def contract_versions_behind(version: KpiVersion, periods: Sequence[CalendarPeriod]) -> list[dict[str, str]]:
    ids = gdps_behind(version, periods).values("contract_version_id").distinct()
    rows = ContractVersion.objects.filter(pk__in=ids).select_related("contract").order_by("contract__key", "version")
    return [{"contract": row.contract.key, "version": row.version} for row in rows]


# --- checks -------------------------------------------------------------------------------------------
def periods_for(version: KpiVersion, periods: Iterable[Any]) -> list[CalendarPeriod]:
    """The periods (ids, labels or rows) as rows of the version's calendar and grain, in period order;
    ValidationError on anything else."""
    refs = [p if isinstance(p, str) else getattr(p, "pk", p) for p in periods]
    if not refs:
        raise ValidationError({"periods": ["Choose at least one period."]})
    ids = [r for r in refs if isinstance(r, int)]
    labels = [r for r in refs if isinstance(r, str)]
    found: dict[Any, CalendarPeriod] = {}
    rows = CalendarPeriod.objects.filter(calendar_id=version.calendar_id, level=version.level)
    for row in rows.filter(Q(pk__in=ids) | Q(label__in=labels)):
        found[row.pk] = found[row.label] = row
    missing = [str(r) for r in refs if r not in found]
    if missing:
        raise ValidationError({"periods": [
            f"Not a {version.get_level_display().lower()} of calendar '{version.calendar.key}': {', '.join(missing)}."
        ]})  # fmt: skip
    unique = {found[r].pk: found[r] for r in refs}
    return sorted(unique.values(), key=lambda p: (p.start, p.index))


def _check_publishable(version: KpiVersion) -> None:
    if version.status != KpiStatusChoices.ACTIVE:
        raise ConflictError(f"Version {version.version} of {version.definition.key} is {version.status}; only the "
                            "active version is published.", slug="kpi-not-active")  # fmt: skip
    if version.computed_as_of is None:
        raise ConflictError(f"{version.definition.key} {version.version} has not been computed yet.",
                            slug="kpi-not-computed")  # fmt: skip


def can_publish(user: Any, tenant: Any) -> bool:
    """Stewards and tenant admins of the tenant publish and decide; so do superusers."""
    if not getattr(user, "is_authenticated", False):
        return False
    if user.is_superuser:
        return True
    return Membership.objects.filter(tenant=tenant, user=user, role__in=EDITOR_ROLES).exists()


def _check_steward(actor: Any, tenant: Any) -> None:
    if not can_publish(actor, tenant):
        raise ForbiddenError("Publishing and deciding on publications needs the steward or tenant admin role.",
                             slug="not-a-steward")  # fmt: skip


def publication_check(
    *,
    tenant: Any,
    version: KpiVersion,
    periods: Sequence[CalendarPeriod],
    publisher: Any,
    approvers: Sequence[Any] = (),
) -> Decision:
    """The host's decision on publishing these values, as it stands (changes nothing: the admin previews it)."""
    facts = {
        "pass_rate": pass_rate(version, periods),
        "publisher": getattr(publisher, "pk", None),
        "approvers": [a.pk for a in approvers if a is not None],
        "kpi_version_id": version.pk,
        "period_ids": [p.pk for p in periods],
    }
    return evaluate(ACTION, PolicySubject(tenant=tenant, contract=version.contract, facts=facts))


def four_eyes_required(decision: Decision) -> bool:
    """True when the only unmet conditions are the publication approval's (a second person is missing)."""
    failures = decision.failures
    return bool(failures) and all(r.kind == PolicyKindChoices.PUBLICATION_APPROVAL for r in failures)


def reasons_json(decision: Decision) -> list[dict[str, Any]]:
    return [{"kind": r.kind, "ok": r.ok, "message": r.message, "policy": r.policy_name, "scope": r.scope}
            for r in decision.reasons]  # fmt: skip


def _refuse(decision: Decision, what: str) -> None:
    unmet = [row for row in reasons_json(decision) if not row["ok"]]
    raise ConflictError(
        f"{what} is refused: {len(unmet)} condition(s) unmet: " + " ".join(row["message"] for row in unmet),
        slug="publication-refused", title="Publication refused", unmet=unmet,
    )  # fmt: skip


# --- publishing ---------------------------------------------------------------------------------------
def _locked_version(version: KpiVersion) -> KpiVersion:
    """Lock the KPI definition (publications of one KPI are serialized) and reload the version."""
    KpiDefinition.objects.select_for_update().filter(pk=version.definition_id).first()
    return KpiVersion.objects.select_related("definition", "calendar", "contract", "tenant").get(pk=version.pk)


def _user(actor: Any) -> Any:
    return actor if isinstance(actor, get_user_model()) and actor.is_authenticated else None


def _name(user: Any) -> str | None:
    return user.get_username() if user is not None else None


def _published_payload(output: PublishedOutput) -> dict[str, Any]:
    """What the trust ledger and webhooks get: everything that identifies the output, and its hash."""
    return {
        "kpi": output.kpi_key, "version": output.kpi_version_label, "kpi_version_id": output.kpi_version_id,
        "publication": output.pk, "publication_version": output.version, "kind": output.kind,
        "periods": list(output.period_labels), "period_ids": list(output.period_ids),
        "as_of": output.as_of.isoformat(), "content_hash": output.content_hash, "rows": len(output.values),
        "contract_versions": output.contract_versions, "published_by": _name(output.published_by),
        "approved_by": _name(output.approved_by), "published_at": output.published_at.isoformat(),
        "supersedes": output.supersedes_id, "reason": output.reason,
    }  # fmt: skip


def _create_output(
    *, version: KpiVersion, periods: Sequence[CalendarPeriod], kind: str, published_by: Any, approved_by: Any = None,
    decision: Decision | None = None, reason: str = "", closed_period: Any = None,
) -> PublishedOutput:  # fmt: skip
    rows, ids, labels = value_rows(kpi_version_id=version.pk, period_ids=[p.pk for p in periods])
    output = published_output_create(
        tenant=version.tenant, kpi_key=version.definition.key, kpi_version=version, kind=kind, period_ids=ids,
        values=rows, period_labels=labels, as_of=version.computed_as_of,
        contract_versions=contract_versions_behind(version, periods), published_by=_user(published_by),
        approved_by=_user(approved_by), published_at=timezone.now(), closed_period=closed_period, reason=reason,
        policy_reasons=reasons_json(decision) if decision is not None else [],
    )  # fmt: skip
    publish_event("kpi.published", _published_payload(output), tenant=version.tenant, actor=_user(published_by))
    return output


@transaction.atomic
def kpi_publish(
    *, actor: Any, tenant: Any, version: KpiVersion, periods: Iterable[Any], reason: str = ""
) -> PublishedOutput:
    """Publish the active version's values of `periods` (ids, labels or rows of its calendar and grain).

    Refused (409 `publication-refused`, every unmet condition listed) when a policy does not pass;
    where four eyes are demanded, use `publication_request_create` and a second person's approval.
    """
    _check_tenant(version, tenant)
    _check_steward(actor, tenant)
    version = _locked_version(version)
    _check_publishable(version)
    chosen = periods_for(version, periods)
    decision = publication_check(tenant=tenant, version=version, periods=chosen, publisher=actor)
    if not decision.allowed:
        _refuse(decision, "Publishing")
    return _create_output(version=version, periods=chosen, kind=PublicationKindChoices.PUBLICATION,
                          published_by=actor, decision=decision, reason=reason.strip())  # fmt: skip


def _check_tenant(version: KpiVersion, tenant: Any) -> None:
    if version.tenant_id != getattr(tenant, "pk", None):
        raise ValidationError({"kpi": ["Belongs to another tenant."]})


@transaction.atomic
def publication_request_create(
    *, actor: Any, tenant: Any, version: KpiVersion, periods: Iterable[Any], comment: str = ""
) -> PublicationRequest:
    """Ask a second person to approve a publication (four eyes); nothing is published yet."""
    _check_tenant(version, tenant)
    _check_steward(actor, tenant)
    version = _locked_version(version)
    _check_publishable(version)
    chosen = periods_for(version, periods)
    request = PublicationRequest(tenant=tenant, kpi_version=version, period_ids=[p.pk for p in chosen],
                                 period_labels=[p.label for p in chosen], comment=comment.strip(),
                                 requested_by=_user(actor))  # fmt: skip
    with audit_actor(actor):
        request.save()
    return request


def _locked_request(request: PublicationRequest) -> PublicationRequest:
    request = PublicationRequest.objects.select_for_update().get(pk=request.pk)
    if request.status != R.PENDING:
        raise ConflictError(f"The request is {request.get_status_display().lower()}; only pending requests are "
                            "decided.", slug="illegal-transition", current_status=request.status)  # fmt: skip
    return request


@transaction.atomic
def publication_request_approve(*, actor: Any, request: PublicationRequest, comment: str = "") -> PublicationRequest:
    """Four eyes: a different steward approves; every policy is evaluated again and the output created."""
    _check_steward(actor, request.tenant)
    request = _locked_request(request)
    if request.requested_by_id is not None and request.requested_by_id == getattr(actor, "pk", None):
        raise ForbiddenError("Four eyes: the person who requested the publication cannot approve it.",
                             slug="four-eyes")  # fmt: skip
    version = _locked_version(request.kpi_version)
    _check_publishable(version)
    chosen = periods_for(version, request.period_ids)
    decision = publication_check(tenant=request.tenant, version=version, periods=chosen,
                                 publisher=request.requested_by, approvers=[_user(actor)])  # fmt: skip
    if not decision.allowed:
        _refuse(decision, "Publishing")
    output = _create_output(version=version, periods=chosen, kind=PublicationKindChoices.PUBLICATION,
                            published_by=request.requested_by, approved_by=actor, decision=decision,
                            reason=request.comment)  # fmt: skip
    request.status, request.output = R.PUBLISHED, output
    request.decided_by, request.decided_at, request.decision_comment = _user(actor), timezone.now(), comment.strip()
    with audit_actor(actor):
        request.save()
    return request


@transaction.atomic
def publication_request_reject(*, actor: Any, request: PublicationRequest, comment: str) -> PublicationRequest:
    if not (comment or "").strip():
        raise ValidationError({"comment": ["Say why the publication is rejected."]})
    _check_steward(actor, request.tenant)
    request = _locked_request(request)
    if request.requested_by_id is not None and request.requested_by_id == getattr(actor, "pk", None):
        raise ForbiddenError("Four eyes: the person who requested the publication cannot decide on it.",
                             slug="four-eyes")  # fmt: skip
    request.status = R.REJECTED
    request.decided_by, request.decided_at, request.decision_comment = _user(actor), timezone.now(), comment.strip()
    with audit_actor(actor):
        request.save()
    return request


# --- restatements -------------------------------------------------------------------------------------
def downstream_of(version: KpiVersion) -> list[str]:
    """Keys of the tenant's active derived KPIs that read this KPI (directly)."""
    key = version.definition.key
    derived = (
        KpiVersion.objects.active().filter(tenant_id=version.tenant_id, kind="derived").select_related("definition")
    )
    return sorted(v.definition.key for v in derived if key in engine.derived_refs(v))


def _diff(old: dict[tuple[int, str], dict[str, Any]], new: dict[tuple[int, str], dict[str, Any]],
          labels: dict[int, str], order: dict[int, int]) -> list[dict[str, Any]]:  # fmt: skip
    """Per period and dimension set whose published number (`actual`) would change: old, new and delta."""
    from decimal import Decimal

    changes = []
    for key in sorted(set(old) | set(new), key=lambda k: (order.get(k[0], 0), k[1])):
        before, after = old.get(key), new.get(key)
        old_value = before["actual"] if before else None
        new_value = after["actual"] if after else None
        if old_value == new_value:
            continue
        delta = None
        if old_value is not None and new_value is not None:
            delta = number_text(Decimal(new_value) - Decimal(old_value))
        row = after or before
        changes.append({
            "period": labels.get(key[0], row["period"]), "period_id": key[0], "dimensions": row["dimensions"],
            "dimensions_key": key[1], "old": old_value, "new": new_value, "delta": delta,
        })  # fmt: skip
    return changes


@transaction.atomic
def restatements_detect(
    *, tenant: Any, version: KpiVersion, period_ids: Sequence[int] | None = None, trigger: str = ""
) -> list[Restatement]:
    """Compare the version's current values of published periods with what is in force; propose restatements.

    For each output in force for one of `period_ids` (None: every published period of the KPI), the
    version's current values of that output's periods are compared, period by period, with the
    output in force for each period. Any change of a published number (a value that changed, appeared
    or disappeared) proposes one restatement superseding that output — or refreshes the one already
    proposed for it (a first approval is then void); a proposal whose numbers match again is rejected
    by Aurum. Returns the restatements proposed or refreshed.
    """
    version = _locked_version(version)
    key = version.definition.key
    outputs = list(PublishedOutput.objects.filter(tenant=tenant, kpi_key=key).order_by("-version"))
    if not outputs:
        return []

    def in_force(period_id: int) -> PublishedOutput | None:
        return next((o for o in outputs if period_id in (o.period_ids or [])), None)

    scope = set(period_ids) if period_ids is not None else {p for o in outputs for p in o.period_ids}
    targets = {o.pk: o for o in (in_force(p) for p in scope) if o is not None}
    touched: list[Restatement] = []
    for output in sorted(targets.values(), key=lambda o: o.version):
        rows, ids, labels = value_rows(kpi_version_id=version.pk, period_ids=output.period_ids)
        new = {(row["period_id"], row["dimensions_key"]): row for row in rows}
        old: dict[tuple[int, str], dict[str, Any]] = {}
        for period_id in output.period_ids:
            holder = in_force(period_id) or output
            old.update({k: v for k, v in holder.rows_by_key().items() if k[0] == period_id})
        diff = _diff(old, new, dict(zip(ids, labels, strict=True)), {pid: n for n, pid in enumerate(ids)})
        open_one = Restatement.objects.select_for_update().filter(supersedes=output, status=S.PROPOSED).first()
        if not diff:
            if open_one is not None:
                open_one.status, open_one.decided_at = S.REJECTED, timezone.now()
                open_one.reason = "Aurum: the numbers match the publication again; nothing to restate."
                open_one.save()
            continue
        fields = {"kpi_key": key, "kpi_version": version, "period_ids": ids, "period_labels": labels, "values": rows,
                  "as_of": version.computed_as_of, "diff": diff, "downstream": downstream_of(version),
                  "trigger": trigger[:200]}  # fmt: skip
        if open_one is not None:
            same = open_one.values == rows and open_one.kpi_version_id == version.pk and open_one.diff == diff
            if same:
                continue
            for name, value in fields.items():
                setattr(open_one, name, value)
            open_one.proposed_at = timezone.now()
            open_one.first_approved_by, open_one.first_approved_at, open_one.first_reason = None, None, ""
            open_one.save()
            touched.append(open_one)
        else:
            touched.append(Restatement.objects.create(tenant=tenant, supersedes=output, proposed_at=timezone.now(),
                                                      **fields))  # fmt: skip
    return touched


def _locked_restatement(restatement: Restatement) -> Restatement:
    restatement = Restatement.objects.select_for_update().select_related("supersedes", "tenant").get(pk=restatement.pk)
    if restatement.status != S.PROPOSED:
        raise ConflictError(f"The restatement is {restatement.status}; only proposed ones are decided.",
                            slug="illegal-transition", current_status=restatement.status)  # fmt: skip
    return restatement


@transaction.atomic
def restatement_approve(*, actor: Any, restatement: Restatement, reason: str) -> Restatement:
    """A steward approves with a reason: a new output supersedes the old one and `kpi.restated` is written.

    Every policy is evaluated as for a publication. Where four eyes are demanded, the first approval
    is recorded (`first_approved_by`) and the restatement stays proposed until a different steward
    approves it; the output is then published by the first and approved by the second.
    """
    if not (reason or "").strip():
        raise ValidationError({"reason": ["Say why the numbers are restated."]})
    _check_steward(actor, restatement.tenant)
    version = _locked_version(restatement.kpi_version)
    restatement = _locked_restatement(restatement)
    first = restatement.first_approved_by
    if first is not None and first.pk == getattr(actor, "pk", None):
        raise ForbiddenError("Four eyes: you gave the first approval; a different steward must give the second.",
                             slug="four-eyes")  # fmt: skip
    periods = list(CalendarPeriod.objects.filter(pk__in=restatement.period_ids).order_by("start", "index"))
    publisher = first or _user(actor)
    approvers = [_user(actor)] if first is not None else []
    decision = publication_check(tenant=restatement.tenant, version=version, periods=periods, publisher=publisher,
                                 approvers=approvers)  # fmt: skip
    now = timezone.now()
    if not decision.allowed:
        if first is None and four_eyes_required(decision):
            restatement.first_approved_by, restatement.first_approved_at = _user(actor), now
            restatement.first_reason = reason.strip()
            with audit_actor(actor):
                restatement.save()
            return restatement
        _refuse(decision, "Restating")
    reasons = [r for r in (restatement.first_reason, reason.strip()) if r]
    old = restatement.supersedes
    output = published_output_create(
        tenant=restatement.tenant, kpi_key=restatement.kpi_key, kpi_version=version,
        kind=PublicationKindChoices.RESTATEMENT, period_ids=restatement.period_ids, values=restatement.values,
        period_labels=restatement.period_labels, as_of=restatement.as_of,
        contract_versions=contract_versions_behind(version, periods), published_by=publisher,
        approved_by=_user(actor) if first is not None else None, published_at=now, supersedes=old,
        reason="\n".join(dict.fromkeys(reasons)), policy_reasons=reasons_json(decision),
    )  # fmt: skip
    restatement.status, restatement.output = S.APPROVED, output
    restatement.decided_by, restatement.decided_at, restatement.reason = _user(actor), now, reason.strip()
    with audit_actor(actor):
        restatement.save()
    payload = _published_payload(output) | {
        "restatement": restatement.pk, "supersedes_version": old.version, "superseded_hash": old.content_hash,
        "diff": restatement.diff, "downstream": restatement.downstream,
    }  # fmt: skip
    publish_event("kpi.restated", payload, tenant=restatement.tenant, actor=_user(actor))
    return restatement


@transaction.atomic
def restatement_reject(*, actor: Any, restatement: Restatement, reason: str) -> Restatement:
    """The published numbers stay; the proposal is closed with the steward's reason."""
    if not (reason or "").strip():
        raise ValidationError({"reason": ["Say why the restatement is rejected."]})
    _check_steward(actor, restatement.tenant)
    restatement = _locked_restatement(restatement)
    restatement.status = S.REJECTED
    restatement.decided_by, restatement.decided_at, restatement.reason = _user(actor), timezone.now(), reason.strip()
    with audit_actor(actor):
        restatement.save()
    return restatement


# --- period close -------------------------------------------------------------------------------------
def _grain_periods_within(version: KpiVersion, closed: CalendarPeriod) -> list[CalendarPeriod]:
    return list(
        CalendarPeriod.objects.filter(calendar_id=closed.calendar_id, level=version.level, start__gte=closed.start,
                                      end__lte=closed.end).order_by("start", "index")
    )  # fmt: skip


@transaction.atomic
def period_close_snapshot(*, tenant: Any, period: CalendarPeriod, actor: Any = None) -> list[PublishedOutput]:
    """Snapshot every active KPI of the period's calendar whose grain periods lie within the closed period.

    One output of kind `period_close` per KPI (its values as last computed, possibly none), published
    by whoever closed the period; no policy is evaluated (the snapshot records the books at close, it
    is not a release). From then on, a change of those numbers proposes a restatement. Idempotent: a
    KPI with a snapshot of this period gets no second one.
    """
    outputs = []
    versions = (
        KpiVersion.objects.active()
        .filter(tenant=tenant, calendar_id=period.calendar_id, computed_as_of__isnull=False)
        .select_related("definition")
        .order_by("definition__key")
    )
    for candidate in versions:
        grain = _grain_periods_within(candidate, period)
        if not grain:
            continue
        version = _locked_version(candidate)
        key = version.definition.key
        if PublishedOutput.objects.filter(tenant=tenant, kpi_key=key, closed_period=period).exists():
            continue
        outputs.append(_create_output(version=version, periods=grain, kind=PublicationKindChoices.PERIOD_CLOSE,
                                      published_by=actor, closed_period=period,
                                      reason=f"{period.label} closed."))  # fmt: skip
    return outputs
