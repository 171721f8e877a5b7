from apps.kernel.modules import Interfaces, Module, ModuleAppConfig, ModuleDescriptor, Schedule

KPI_EVENTS = (
    "kpi.created", "kpi.deleted", "kpi.version_created", "kpi.proposed", "kpi.approved", "kpi.rejected",
    "kpi.activated", "kpi.deprecated", "kpi.retired", "kpi.target_proposed", "kpi.target_approved",
    "kpi.target_rejected", "kpi.target_retired", "kpi.computed", "kpi.status_changed",
)  # fmt: skip
KPI_SERVICES = tuple(
    f"apps.compute.kpis.services.{name}"
    for name in (
        "kpi_definition_create",
        "kpi_definition_update",
        "kpi_definition_delete",
        "kpi_version_create",
        "kpi_version_update",
        "kpi_version_propose",
        "kpi_version_approve",
        "kpi_version_reject",
        "kpi_version_activate",
        "kpi_version_deprecate",
        "kpi_version_retire",
        "kpi_target_create",
        "kpi_target_update",
        "kpi_target_propose",
        "kpi_target_approve",
        "kpi_target_reject",
        "kpi_target_retire",
        "kpi_targets_refresh",
        "kpi_compute",
        "kpi_compute_for_contract",
        "kpi_compute_due",
    )
)
KPI_SERVICES += ("apps.compute.kpis.selectors.kpi_values_list", "apps.compute.kpis.selectors.kpi_value_lineage")
KPI_URLS = ("/api/v1/kpi-definitions/", "/api/v1/kpi-versions/", "/api/v1/kpi-targets/", "/api/v1/kpi-values/")
KPI_TASKS = ("compute.compute_kpi", "compute.compute_due_kpis")
PUBLISH_EVENTS = ("kpi.published", "kpi.restated")
PUBLISH_SERVICES = tuple(
    f"apps.compute.publication.{name}"
    for name in (
        "services.kpi_publish",
        "services.publication_check",
        "services.publication_request_create",
        "services.publication_request_approve",
        "services.publication_request_reject",
        "services.restatements_detect",
        "services.restatement_approve",
        "services.restatement_reject",
        "services.period_close_snapshot",
        "selectors.publication_latest",
        "selectors.publication_as_published_on",
        "selectors.restatement_list",
    )
)
PUBLISH_URLS = ("/api/v1/kpi-publications/", "/api/v1/publication-requests/", "/api/v1/restatements/")


class ComputeConfig(ModuleAppConfig):
    name = "apps.compute"
    label = "compute"
    verbose_name = "Compute"
    descriptor = ModuleDescriptor(
        category="Compute",
        summary="The pipeline: ingest, normalize, validate, build Golden Data Points, compute and publish KPIs.",
        modules=(
            Module(
                "Ingest",
                "Push (API), upload (portal) and scheduled-pull sources; JSON, NDJSON and CSV bodies streamed to a "
                "spool; Idempotency-Key; small batches in the request, large ones on a worker that resumes.",
                built=True,
            ),
            Module(
                "Normalize",
                "Ordered normalization rules per contract version (rename, cast with locales, "
                "units, trim/case, code maps, defaults, safe derived expressions).",
                built=True,
            ),
            Module(
                "Transform",
                "Validation against the contract version and its quality rules; the quality gate; "
                "survivorship into Golden Data Points; OpenLineage run events.",
                built=True,
            ),
            Module(
                "KPIs",
                "Governed KPI definitions with versions under four-eyes (simple, ratio, derived, cumulative), "
                "targets with tolerance bands, set-based incremental as-of computation into KPI values, lineage "
                "to the GDP versions read; computed when a batch completes, on a schedule, or by hand.",
                built=True,
            ),
            Module(
                "Publish",
                "Immutable, hashed publications of KPI values under the host's policies (quality gate, lineage "
                "obligations, four-eyes requests); restatements proposed when published numbers change, approved "
                "with a reason; period-close snapshots.",
                built=True,
            ),
        ),
        interfaces=Interfaces(
            urls=("/api/v1/sources/", "/api/v1/batches/", *KPI_URLS, *PUBLISH_URLS),
            events_published=("batch.received", "batch.completed", *KPI_EVENTS, *PUBLISH_EVENTS),
            events_consumed=("contract.version_created", "batch.completed", "kpi.computed", "period.closed"),
            services=(
                "apps.compute.services.source_create",
                "apps.compute.services.source_update",
                "apps.compute.services.batch_receive",
                "apps.compute.services.batch_dispatch",
                "apps.compute.pipeline.batch_process",
                *KPI_SERVICES,
                *PUBLISH_SERVICES,
            ),
            tasks=("compute.process_batch", "compute.resume_stalled_batches", "compute.pull_source", *KPI_TASKS),
        ),
        depends_on=("storage", "host", "runtime", "security"),
        schedules=(
            Schedule("Resume stalled batches", "compute.resume_stalled_batches", every_seconds=300),
            Schedule("Compute due KPIs", "compute.compute_due_kpis", every_seconds=60),
        ),
    )

    def ready(self) -> None:
        from apps.compute import audit, obligations  # noqa: F401  (auditlog models; lineage obligation checkers)
        from apps.compute.kpis import audit as kpi_audit  # noqa: F401  (auditlog of KPI definitions, versions, targets)
        from apps.compute.publication import wiring  # noqa: F401  (publication pages, handlers, obligation checker)
