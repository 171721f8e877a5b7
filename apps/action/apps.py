from apps.kernel.modules import Interfaces, Module, ModuleAppConfig, ModuleDescriptor


class ActionConfig(ModuleAppConfig):
    name = "apps.action"
    label = "action"
    verbose_name = "Action"
    descriptor = ModuleDescriptor(
        category="Action",
        summary="KPIs that do something: rules linking KPI changes to workflows and outcomes in external systems.",
        modules=(
            Module("Workflows", "Rules that react to KPI events."),
            Module("Outcomes", "Action runs in external systems with their results."),
        ),
        interfaces=Interfaces(),
        depends_on=("runtime",),
    )
