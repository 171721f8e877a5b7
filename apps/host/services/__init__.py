"""Host services: the only way other apps and the host's own views write host data."""

from apps.host.services.contracts import (
    LIFECYCLE_SERVICES,
    can_approve,
    content_hash,
    contract_create,
    contract_update,
    contract_version_activate,
    contract_version_approve,
    contract_version_create,
    contract_version_deprecate,
    contract_version_propose,
    contract_version_reject,
    contract_version_retire,
    contract_version_update,
)
from apps.host.services.policies import (
    policy_activate,
    policy_create,
    policy_retire,
    policy_revise,
    policy_update,
)
from apps.host.services.tenants import (
    membership_remove,
    membership_set,
    tenant_create,
    tenant_set_status,
    tenant_update,
    user_get_or_create,
)

__all__ = [
    "LIFECYCLE_SERVICES",
    "can_approve",
    "content_hash",
    "contract_create",
    "contract_update",
    "contract_version_activate",
    "contract_version_approve",
    "contract_version_create",
    "contract_version_deprecate",
    "contract_version_propose",
    "contract_version_reject",
    "contract_version_retire",
    "contract_version_update",
    "membership_remove",
    "membership_set",
    "policy_activate",
    "policy_create",
    "policy_retire",
    "policy_revise",
    "policy_update",
    "tenant_create",
    "tenant_set_status",
    "tenant_update",
    "user_get_or_create",
]
