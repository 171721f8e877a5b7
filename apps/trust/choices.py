"""Trust constants: the domain events whose facts go to the evidence ledger."""

# Each becomes an entry of kind <event type> in the event's tenant's chain (apps.trust.handlers).
# Types nobody publishes yet (period.closed, kpi.*) are subscribed already: harmless until they exist.
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
    "kpi.published",
    "kpi.restated",
)
