from apps.kernel.modules import Interfaces, Module, ModuleAppConfig, ModuleDescriptor


class ConsumptionConfig(ModuleAppConfig):
    name = "apps.consumption"
    label = "consumption"
    verbose_name = "Consumption"
    descriptor = ModuleDescriptor(
        category="Consumption",
        summary="How consumers get data: catalog, query API, exports and webhooks.",
        modules=(
            Module("APIs", "Query API over products, KPI values and GDPs."),
            Module("Exports", "Streaming and background exports (CSV, JSON, Parquet, XLSX)."),
            Module("Webhooks", "Signed (Standard Webhooks) deliveries with retries."),
            Module("Catalogs", "Data product catalog with discovery."),
        ),
        interfaces=Interfaces(),
        depends_on=("storage", "host", "access", "security", "utilities", "runtime"),
    )
