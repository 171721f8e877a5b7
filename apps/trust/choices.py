"""Trust constants: the domain events whose facts go to the evidence ledger."""

# Each becomes an entry of kind <event type> in the event's tenant's chain (apps.trust.handlers).
EVIDENCE_EVENT_TYPES: tuple[str, ...] = (
    "contract.approved",
    "contract.rejected",
    "contract.activated",
    "contract.retired",
    "policy.activated",
    "policy.retired",
    "gdp.overridden",
    "gdp.override_removed",
    "period.closed",
    "kpi.approved",
    "kpi.rejected",
    "kpi.activated",
    "kpi.retired",
    "kpi.target_approved",
    "kpi.target_rejected",
    "kpi.published",
    "kpi.restated",
)
