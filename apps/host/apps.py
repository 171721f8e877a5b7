from apps.kernel.modules import Interfaces, Module, ModuleAppConfig, ModuleDescriptor


class HostConfig(ModuleAppConfig):
    name = "apps.host"
    label = "host"
    verbose_name = "Host"
    descriptor = ModuleDescriptor(
        category="Host",
        summary="Who the platform serves and under which rules: tenants, memberships, policies, "
        "data contracts and lineage obligations.",
        modules=(
            Module("Tenants", "Tenants, their status and timezone; memberships with a role per tenant.", built=True),
            Module(
                "Platform policies",
                "Six typed policy kinds with validated parameters; platform, tenant and contract scope (the most "
                "specific wins); versions; one evaluation service and a simulator.",
                built=True,
            ),
            Module(
                "Data contracts",
                "Versions with fields, quality rules and SLA; draft → proposed → approved → active → deprecated → "
                "retired with four-eyes approval; compatibility guarded by the schema registry; ODCS v3 import and "
                "export (API, portal, manage.py contracts).",
                built=True,
            ),
            Module(
                "Lineage obligations",
                "A policy kind naming what must be traceable before publishing; checked by the evaluation service. "
                "Host proves 'contract_active'; compute registers the checkers of 'sources_under_active_contract' "
                "and 'kpi_values_traceable_to_raw'.",
                built=True,
            ),
        ),
        interfaces=Interfaces(
            urls=(
                "/api/v1/tenants/",
                "/api/v1/memberships/",
                "/api/v1/contracts/",
                "/api/v1/contracts/import/",
                "/api/v1/contract-versions/",
                "/api/v1/policies/",
                "/api/v1/policies/evaluate/",
            ),
            events_published=(
                "tenant.created",
                "tenant.suspended",
                "tenant.activated",
                "membership.changed",
                "membership.removed",
                "contract.created",
                "contract.version_created",
                "contract.proposed",
                "contract.approved",
                "contract.rejected",
                "contract.activated",
                "contract.deprecated",
                "contract.retired",
                "policy.activated",
                "policy.retired",
            ),
            events_consumed=(
                "contract.created",
                "contract.version_created",
                "contract.activated",
                "contract.deprecated",
                "contract.retired",
            ),
            services=(
                "apps.host.services.tenant_create",
                "apps.host.services.tenant_set_status",
                "apps.host.services.tenant_update",
                "apps.host.services.membership_set",
                "apps.host.services.membership_remove",
                "apps.host.selectors.memberships_for_user",
                "apps.host.selectors.tenant_get",
                "apps.host.services.contract_create",
                "apps.host.services.contract_update",
                "apps.host.services.can_approve",
                "apps.host.selectors.contract_version_diff",
                "apps.host.odcs.importer.contract_import",
                "apps.host.odcs.mapping.version_to_odcs",
                "apps.host.services.contract_version_create",
                "apps.host.services.contract_version_update",
                "apps.host.services.contract_version_propose",
                "apps.host.services.contract_version_approve",
                "apps.host.services.contract_version_reject",
                "apps.host.services.contract_version_activate",
                "apps.host.services.contract_version_deprecate",
                "apps.host.services.contract_version_retire",
                "apps.host.services.policy_create",
                "apps.host.services.policy_update",
                "apps.host.services.policy_revise",
                "apps.host.services.policy_activate",
                "apps.host.services.policy_retire",
                "apps.host.policies.evaluation.evaluate",
                "apps.host.policies.evaluation.effective_policies",
                "apps.host.policies.evaluation.register_obligation_checker",
            ),
        ),
        depends_on=("runtime", "utilities"),
    )

    def ready(self) -> None:
        from apps.host import (
            audit,  # noqa: F401  (registers models with django-auditlog)
            search_indexing,  # noqa: F401  (contracts in the discovery index)
        )
