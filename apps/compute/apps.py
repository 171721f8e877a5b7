from apps.kernel.modules import Interfaces, Module, ModuleAppConfig, ModuleDescriptor, Schedule


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
            Module("Publish", "KPI computation, publication under policies, restatement."),
        ),
        interfaces=Interfaces(
            urls=("/api/v1/sources/", "/api/v1/batches/"),
            events_published=("batch.received", "batch.completed"),
            events_consumed=("contract.version_created",),
            services=(
                "apps.compute.services.source_create",
                "apps.compute.services.source_update",
                "apps.compute.services.batch_receive",
                "apps.compute.services.batch_dispatch",
                "apps.compute.pipeline.batch_process",
            ),
            tasks=("compute.process_batch", "compute.resume_stalled_batches", "compute.pull_source"),
        ),
        depends_on=("storage", "host", "runtime", "security"),
        schedules=(Schedule("Resume stalled batches", "compute.resume_stalled_batches", every_seconds=300),),
    )

    def ready(self) -> None:
        from apps.compute import audit, obligations  # noqa: F401  (auditlog models; lineage obligation checkers)
