from apps.kernel.modules import Interfaces, Module, ModuleAppConfig, ModuleDescriptor


class ComputeConfig(ModuleAppConfig):
    name = "apps.compute"
    label = "compute"
    verbose_name = "Compute"
    descriptor = ModuleDescriptor(
        category="Compute",
        summary="The pipeline: ingest, normalize, validate, build Golden Data Points, compute and publish KPIs.",
        modules=(
            Module("Ingest", "Push, upload and scheduled-pull sources into batches."),
            Module("Normalize", "Ordered normalization rules per contract version."),
            Module("Transform", "Validation against contracts and survivorship into Golden Data Points."),
            Module("Publish", "KPI computation, publication under policies, restatement."),
        ),
        interfaces=Interfaces(),
        depends_on=("storage", "host", "runtime"),
    )
