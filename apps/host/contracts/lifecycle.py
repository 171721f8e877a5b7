"""The contract version lifecycle: which transitions exist, and what each is called."""

from __future__ import annotations

from apps.host.choices import ContractStatusChoices as S
from apps.kernel.errors import ConflictError

# from-status → {to-status: action name}
TRANSITIONS: dict[str, dict[str, str]] = {
    S.DRAFT: {S.PROPOSED: "propose", S.RETIRED: "retire"},
    S.PROPOSED: {S.APPROVED: "approve", S.DRAFT: "reject"},
    S.APPROVED: {S.ACTIVE: "activate", S.RETIRED: "retire"},
    S.ACTIVE: {S.DEPRECATED: "deprecate"},
    S.DEPRECATED: {S.ACTIVE: "activate", S.RETIRED: "retire"},
    S.RETIRED: {},
}


class IllegalTransition(ConflictError):
    slug = "illegal-transition"
    title = "Illegal lifecycle transition"


def allowed_next(status: str) -> list[str]:
    return list(TRANSITIONS[status])


def allowed_actions(status: str) -> list[str]:
    return list(TRANSITIONS[status].values())


def check_transition(status: str, to: str) -> None:
    """Raise IllegalTransition (409) naming the allowed next states when `status → to` is not one."""
    if to not in TRANSITIONS[status]:
        nexts = allowed_next(status)
        raise IllegalTransition(
            f"A {status} version cannot become {to}; "
            + (f"allowed next: {', '.join(nexts)}." if nexts else "it is final and read-only."),
            current_status=status,
            allowed_next=nexts,
        )
