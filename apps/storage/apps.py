from apps.kernel.modules import Interfaces, Module, ModuleAppConfig, ModuleDescriptor


class StorageConfig(ModuleAppConfig):
    name = "apps.storage"
    label = "storage"
    verbose_name = "Data Storage"
    descriptor = ModuleDescriptor(
        category="Data Storage",
        summary="Where data lives: the append-only raw layer, Golden Data Points, KPI values, published outputs and calendars.",
        modules=(
            Module(
                "Raw data",
                "Records exactly as received, per batch, append-only (a trigger on PostgreSQL); rejections; "
                "retention deletes through one audited door.",
                built=True,
            ),
            Module(
                "Golden Data Points",
                "One trusted value per measure, entity, dimensions and observed time; bitemporal versions; "
                "set-based survivorship (latest or source priority) and steward overrides; lineage both ways.",
                built=True,
            ),
            Module("KPIs", "Computed KPI values per period and dimension set."),
            Module("Published outputs", "Immutable, hashed snapshots of what was published."),
            Module("Calendar alignment", "Gregorian, ISO week and retail 4-4-5 calendars with period tables."),
        ),
        interfaces=Interfaces(
            urls=("/api/v1/golden-data-points/",),
            events_published=("gdp.overridden", "gdp.override_removed"),
            services=(
                "apps.storage.services.gdp_override_set",
                "apps.storage.services.gdp_override_remove",
                "apps.storage.services.raw_records_expire",
                "apps.storage.merge.merge_batch",
                "apps.storage.selectors.gdp_lineage",
                "apps.storage.selectors.batch_lineage",
            ),
        ),
        depends_on=("host", "runtime"),
    )
