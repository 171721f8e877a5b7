from apps.consumption.webhooks.choices import DOMAIN_EVENT_TYPES as WEBHOOK_EVENT_TYPES
from apps.kernel.modules import Interfaces, Module, ModuleAppConfig, ModuleDescriptor, Schedule


class ConsumptionConfig(ModuleAppConfig):
    name = "apps.consumption"
    label = "consumption"
    verbose_name = "Consumption"
    descriptor = ModuleDescriptor(
        category="Consumption",
        summary="How consumers get data: catalog, query API, exports and webhooks.",
        modules=(
            Module(
                "APIs",
                "Query API over Golden Data Points (django-filter filters: contract, measure, entity key, batch, "
                "observed range, `dim.<name>`; latest and as-of reads, page-number or snapshot-consistent cursor "
                "pages, field selection) and KPI values (`/api/v1/kpis/{key}/values/`: period range by label or "
                "date, grain, `dim.<name>`; latest computed values or as published: newest, on a day, or one "
                "publication version); ETag and conditional GET, immutable Cache-Control for publications.",
                built=True,
            ),
            Module(
                "Exports",
                "Golden Data Points and KPI values as CSV, JSON, NDJSON, Parquet or XLSX with the query API's "
                "filters: streamed up "
                "to a row threshold, else a Celery job whose file is downloaded through a signed, expiring link; "
                "every export recorded (requester, rows, SHA-256); export-control and classification-handling "
                "policies enforced.",
                built=True,
            ),
            Module(
                "Webhooks",
                "Tenant endpoints receive KPI, contract, batch and period events signed per Standard Webhooks; "
                "SSRF-guarded delivery with retries and backoff, an attempt log, redelivery, test messages, "
                "secret rotation with a grace period, failing endpoints disabled and their admins told.",
                built=True,
            ),
            Module(
                "Catalogs",
                "Data products per tenant (GDP datasets under a contract; KPI sets naming their KPIs by key, each "
                "with its newest publication and the age of its newest value): safe Markdown descriptions, computed "
                "freshness, quality score, SLA status and a sample; visibility for members or listed for consumers; "
                "searchable through Discovery.",
                built=True,
            ),
        ),
        interfaces=Interfaces(
            urls=(
                "/api/v1/webhooks/",
                "/api/v1/webhook-deliveries/",
                "/api/v1/products/",
                "/api/v1/kpis/",
                "/api/v1/exports/gdps/",
                "/api/v1/exports/kpi-values/",
                "/api/v1/export-jobs/",
            ),
            events_published=(
                "export.completed",
                "export.failed",
                "webhook.endpoint_created",
                "webhook.endpoint_updated",
                "webhook.endpoint_deleted",
                "webhook.secret_rotated",
                "webhook.endpoint_disabled",
                "product.created",
                "product.updated",
                "product.published",
                "product.deprecated",
            ),
            events_consumed=WEBHOOK_EVENT_TYPES,
            services=(
                "apps.consumption.exports.services.export_prepare",
                "apps.consumption.exports.services.export_stream",
                "apps.consumption.exports.services.export_job_create",
                "apps.consumption.exports.services.export_job_run",
                "apps.consumption.exports.services.export_download_token",
                "apps.consumption.exports.services.export_download_check",
                "apps.consumption.exports.datasets.register",
                "apps.consumption.exports.datasets.dataset_get",
                "apps.consumption.webhooks.services.webhook_endpoint_create",
                "apps.consumption.webhooks.services.webhook_endpoint_update",
                "apps.consumption.webhooks.services.webhook_endpoint_delete",
                "apps.consumption.webhooks.services.webhook_endpoint_rotate_secret",
                "apps.consumption.webhooks.services.webhook_endpoint_send_test",
                "apps.consumption.webhooks.services.webhook_delivery_redeliver",
                "apps.consumption.webhooks.selectors.webhook_endpoint_list",
                "apps.consumption.webhooks.selectors.webhook_delivery_list",
                "apps.consumption.catalog.services.product_create",
                "apps.consumption.catalog.services.product_update",
                "apps.consumption.catalog.services.product_publish",
                "apps.consumption.catalog.services.product_deprecate",
                "apps.consumption.catalog.selectors.product_list",
                "apps.consumption.catalog.selectors.products_health",
                "apps.consumption.catalog.selectors.product_sample",
                "apps.consumption.kpis.selectors.kpi_values_latest",
                "apps.consumption.kpis.selectors.kpi_values_published",
                "apps.consumption.kpis.selectors.kpi_standings",
            ),
            tasks=(
                "consumption.deliver_webhook",
                "consumption.retry_webhooks",
                "consumption.run_export",
                "consumption.prune_exports",
                "consumption.prune_webhook_deliveries",
            ),
        ),
        depends_on=("storage", "host", "access", "security", "utilities", "runtime"),
        schedules=(
            Schedule("Webhook retries", "consumption.retry_webhooks", every_seconds=15),
            Schedule("Export file retention", "consumption.prune_exports", every_seconds=3600),
            Schedule("Webhook delivery retention", "consumption.prune_webhook_deliveries", every_seconds=3600),
        ),
    )

    def ready(self) -> None:
        # Module packages are not autodiscovered: handlers (runtime), tasks (Celery), audit registration.
        from apps.consumption.catalog import wiring  # noqa: F401  (product audit trail, search index hooks)
        from apps.consumption.exports import tasks as export_tasks  # noqa: F401
        from apps.consumption.webhooks import audit, handlers, tasks  # noqa: F401
