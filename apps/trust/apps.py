from apps.kernel.modules import Interfaces, Module, ModuleAppConfig, ModuleDescriptor
from apps.trust.choices import EVIDENCE_EVENT_TYPES


class TrustConfig(ModuleAppConfig):
    name = "apps.trust"
    label = "trust"
    verbose_name = "Trust"
    descriptor = ModuleDescriptor(
        category="Trust",
        summary="What makes Aurum's facts provable: evidence, secrets, encryption.",
        modules=(
            Module(
                "Evidence ledger",
                "Per-tenant, hash-chained, append-only ledger (a trigger on PostgreSQL) of contract decisions, "
                "policy changes, steward overrides, period closes, KPI and KPI target decisions, and KPI "
                "publications and restatements (kpi.published, kpi.restated, published by compute), fed by domain "
                "events; verified by API, portal and `manage.py verify_evidence`.",
                built=True,
            ),
            Module("Secrets", "Secrets vault for connector credentials and webhook secrets."),
            Module("Encryption", "Field encryption for restricted data and signing keys for manifests."),
        ),
        interfaces=Interfaces(
            urls=("/api/v1/evidence/", "/api/v1/evidence/verify/"),
            events_consumed=EVIDENCE_EVENT_TYPES,
            services=(
                "apps.trust.services.evidence_append",
                "apps.trust.selectors.evidence_list",
                "apps.trust.selectors.evidence_verify",
            ),
        ),
        depends_on=("runtime",),
    )
