from apps.kernel.modules import Interfaces, Module, ModuleAppConfig, ModuleDescriptor


class UtilitiesConfig(ModuleAppConfig):
    name = "apps.utilities"
    label = "utilities"
    verbose_name = "Data Utilities"
    descriptor = ModuleDescriptor(
        category="Data Utilities",
        summary="Tools around the data: schema registry with compatibility rules, discovery, migrations.",
        modules=(
            Module(
                "Schema registry",
                "Subjects and versions of JSON Schemas with Confluent-compatible compatibility modes and API.",
            ),
            Module("Discovery", "Full-text search over products, contracts, fields and KPIs."),
            Module("Migration", "Contract migration plans and configuration bundles."),
        ),
        interfaces=Interfaces(),
        depends_on=("runtime",),
    )
