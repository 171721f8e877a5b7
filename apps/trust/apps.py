from apps.kernel.modules import Interfaces, Module, ModuleAppConfig, ModuleDescriptor


class TrustConfig(ModuleAppConfig):
    name = "apps.trust"
    label = "trust"
    verbose_name = "Trust"
    descriptor = ModuleDescriptor(
        category="Trust",
        summary="What makes Aurum's facts provable: evidence, secrets, encryption.",
        modules=(
            Module("Evidence ledger", "Per-tenant, hash-chained record of approvals, publications and period closes."),
            Module("Secrets", "Secrets vault for connector credentials and webhook secrets."),
            Module("Encryption", "Field encryption for restricted data and signing keys for manifests."),
        ),
        interfaces=Interfaces(),
        depends_on=("runtime",),
    )
