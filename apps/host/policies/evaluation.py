"""The one policy evaluation service: `evaluate(action, subject) → Decision`.

Any module asks before it acts ("may this batch be accepted?", "may this output be
published?"). For each policy kind the action involves, the most specific active
policy decides (contract over tenant over platform); each check gives a reason, and
the decision is allowed only when every reason passes. Evaluation changes nothing, so
the admin's "simulate" is the same call.

Facts the host cannot know (a batch's pass rate, who approved a publication) come in
`subject.facts`. Lineage obligations are checked by checkers that modules register
with `register_obligation_checker`; an obligation nobody can check fails closed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from apps.host.choices import CLASSIFICATION_RANK
from apps.host.choices import PolicyKindChoices as K
from apps.host.models import Policy

ACTIONS: dict[str, tuple[str, ...]] = {
    "batch.accept": (K.QUALITY_GATE,),
    "output.publish": (K.QUALITY_GATE, K.PUBLICATION_APPROVAL, K.LINEAGE_OBLIGATION),
    "export.create": (K.CLASSIFICATION_HANDLING, K.EXPORT_CONTROL),
    "data.retain": (K.RETENTION,),
}

ObligationChecker = Callable[["PolicySubject"], tuple[bool, str]]
_obligation_checkers: dict[str, ObligationChecker] = {}


def register_obligation_checker(requirement: str) -> Callable[[ObligationChecker], ObligationChecker]:
    """Let a module prove a lineage requirement, e.g. compute for 'kpi_values_traceable_to_raw'."""

    def register(func: ObligationChecker) -> ObligationChecker:
        _obligation_checkers[requirement] = func
        return func

    return register


@dataclass(frozen=True)
class PolicySubject:
    tenant: Any
    contract: Any = None
    facts: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Reason:
    kind: str
    ok: bool
    message: str
    policy_id: int | None = None
    policy_name: str = ""
    scope: str = ""


@dataclass(frozen=True)
class Decision:
    action: str
    allowed: bool
    reasons: tuple[Reason, ...]
    deciding: dict[str, Policy | None]
    treatments: dict[str, Any] = field(default_factory=dict)

    @property
    def failures(self) -> list[Reason]:
        return [reason for reason in self.reasons if not reason.ok]


@dataclass(frozen=True)
class ResolvedPolicy:
    kind: str
    policy: Policy | None
    overridden: tuple[Policy, ...]


def effective_policies(*, tenant: Any, contract: Any = None) -> dict[str, ResolvedPolicy]:
    """Per kind: the active policy that decides for this tenant/contract, and the ones it overrides."""
    candidates = Policy.objects.active().for_tenant(tenant).select_related("tenant", "contract")
    candidates = [p for p in candidates if p.contract_id is None or (contract and p.contract_id == contract.pk)]
    rank = {"contract": 0, "tenant": 1, "platform": 2}
    resolved = {}
    for kind in K.values:
        ranked = sorted((p for p in candidates if p.kind == kind), key=lambda p: (rank[p.scope], -p.version))
        resolved[kind] = ResolvedPolicy(kind, ranked[0] if ranked else None, tuple(ranked[1:]))
    return resolved


def evaluate(action: str, subject: PolicySubject) -> Decision:
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}; known: {', '.join(ACTIONS)}")
    resolved = effective_policies(tenant=subject.tenant, contract=subject.contract)
    reasons: list[Reason] = []
    treatments: dict[str, Any] = {}
    for kind in ACTIONS[action]:
        policy = resolved[kind].policy
        if policy is None:
            reasons.append(Reason(kind, True, "No active policy of this kind applies; nothing to enforce."))
            continue
        for ok, message in _CHECKS[kind](policy.parameters, subject, action, treatments):
            reasons.append(Reason(kind, ok, message, policy.pk, policy.name, policy.scope_label))
    return Decision(
        action=action,
        allowed=all(reason.ok for reason in reasons),
        reasons=tuple(reasons),
        deciding={kind: resolved[kind].policy for kind in ACTIONS[action]},
        treatments=treatments,
    )


Check = list[tuple[bool, str]]


def _quality_gate(params: dict[str, Any], subject: PolicySubject, action: str, _t: dict[str, Any]) -> Check:
    key = "min_publish_pass_rate" if action == "output.publish" else "min_batch_pass_rate"
    minimum = params.get(key)
    if minimum is None:
        return [(True, f"The quality gate sets no {key.replace('_', ' ')}.")]
    rate = subject.facts.get("pass_rate")
    if rate is None:
        return [(False, "The pass rate is unknown, so the quality gate cannot pass.")]
    if float(rate) < float(minimum):
        return [(False, f"Pass rate {float(rate):g}% is below the required {float(minimum):g}%.")]
    return [(True, f"Pass rate {float(rate):g}% meets the required {float(minimum):g}%.")]


def _publication_approval(params: dict[str, Any], subject: PolicySubject, _a: str, _t: dict[str, Any]) -> Check:
    if not params.get("four_eyes"):
        return [(True, "Publication needs no second approval.")]
    publisher = subject.facts.get("publisher")
    approvers = [a for a in subject.facts.get("approvers", []) if a != publisher]
    if not approvers:
        return [(False, "Four eyes: a second person must approve the publication.")]
    return [(True, f"Approved by {', '.join(str(a) for a in approvers)}, not the publisher.")]


def _lineage_obligation(params: dict[str, Any], subject: PolicySubject, _a: str, _t: dict[str, Any]) -> Check:
    results: Check = []
    given = subject.facts.get("lineage", {})
    for requirement in params.get("requirements", []):
        if requirement in _obligation_checkers:  # a module that can prove it decides, not the caller
            ok, message = _obligation_checkers[requirement](subject)
            results.append((ok, f"{requirement}: {message}"))
        elif requirement in given:
            ok = bool(given[requirement])
            results.append((ok, f"{requirement}: {'proven' if ok else 'not met'} (reported by the caller)."))
        else:
            results.append((False, f"{requirement}: no module can prove this yet, so it is not met."))
    days = params.get("retain_lineage_days")
    if days:
        retention = effective_policies(tenant=subject.tenant, contract=subject.contract)[K.RETENTION].policy
        kept = (retention.parameters.get("lineage_days") if retention else None) or 0
        ok = kept >= days
        results.append((ok, f"Lineage must be kept {days} days; the retention policy keeps it "
                            f"{kept or 'no set number of'} days."))  # fmt: skip
    return results


def _classification_handling(params: dict[str, Any], subject: PolicySubject, _a: str, out: dict[str, Any]) -> Check:
    handled = {}
    for name, level in subject.facts.get("fields", {}).items():
        treatment = params.get(level, "allowed")
        if treatment != "allowed":
            handled[name] = treatment
    out["fields"] = handled
    summary = ", ".join(f"{name} {treatment}" for name, treatment in sorted(handled.items())) or "no field treated"
    return [(True, f"Field treatments: {summary}.")]


def _export_control(params: dict[str, Any], subject: PolicySubject, _a: str, treatments: dict[str, Any]) -> Check:
    results: Check = []
    facts = subject.facts
    formats = params.get("allowed_formats")
    if formats and facts.get("format") not in formats:
        results.append((False, f"Format {facts.get('format')!r} is not allowed; allowed: {', '.join(formats)}."))
    elif formats:
        results.append((True, f"Format {facts.get('format')} is allowed."))
    max_rows = params.get("max_rows")
    if max_rows is not None:
        rows = facts.get("rows")
        ok = rows is not None and rows <= max_rows
        results.append(
            (ok, f"{rows if rows is not None else 'An unknown number of'} rows; at most {max_rows} may leave.")
        )
    ceiling = params.get("max_classification")
    if ceiling is not None:
        # Excluded, masked or encrypted fields do not leave in the clear; only untreated ones count.
        treated = set(treatments.get("fields", {}))
        leaving = {name: level for name, level in facts.get("fields", {}).items() if name not in treated}
        above = sorted(
            name for name, level in leaving.items() if CLASSIFICATION_RANK[level] > CLASSIFICATION_RANK[ceiling]
        )
        if above:
            results.append((False, f"Fields above '{ceiling}' would leave in the clear: {', '.join(above)}."))
        else:
            results.append((True, f"No field above '{ceiling}' leaves."))
    return results


def _retention(params: dict[str, Any], _s: PolicySubject, _a: str, treatments: dict[str, Any]) -> Check:
    treatments["retention_days"] = dict(params)
    return [
        (True, "Keep: " + ", ".join(f"{layer.removesuffix('_days')} {days} days" for layer, days in params.items()))
    ]


_CHECKS = {
    K.QUALITY_GATE: _quality_gate,
    K.PUBLICATION_APPROVAL: _publication_approval,
    K.LINEAGE_OBLIGATION: _lineage_obligation,
    K.CLASSIFICATION_HANDLING: _classification_handling,
    K.EXPORT_CONTROL: _export_control,
    K.RETENTION: _retention,
}


@register_obligation_checker("contract_active")
def _contract_active(subject: PolicySubject) -> tuple[bool, str]:
    if subject.contract is None:
        return False, "no contract given."
    active = subject.contract.versions.filter(status="active").values_list("version", flat=True).first()
    return (True, f"version {active} is active.") if active else (False, "the contract has no active version.")
