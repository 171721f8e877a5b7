from apps.kernel.modules import Interfaces, Module, ModuleAppConfig, ModuleDescriptor


class StorageConfig(ModuleAppConfig):
    name = "apps.storage"
    label = "storage"
    verbose_name = "Data Storage"
    descriptor = ModuleDescriptor(
        category="Data Storage",
        summary="Where data lives: the append-only raw layer, Golden Data Points, KPI values, published outputs and calendars.",
        modules=(
            Module("Raw data", "Append-only raw records as received, per ingestion batch."),
            Module("Golden Data Points", "One trusted, versioned value per measure, entity, dimensions and period."),
            Module("KPIs", "Computed KPI values per period and dimension set."),
            Module("Published outputs", "Immutable, hashed snapshots of what was published."),
            Module("Calendar alignment", "Gregorian, ISO week and retail 4-4-5 calendars with period tables."),
        ),
        interfaces=Interfaces(),
        depends_on=("host", "runtime"),
    )
