"""Host models: tenants and memberships, data contracts, policies."""

from apps.host.models.contracts import (
    ContractField,
    ContractTransition,
    ContractVersion,
    DataContract,
    QualityRule,
    parse_semver,
)
from apps.host.models.policies import Policy
from apps.host.models.tenants import Membership, Tenant, slug_validator, validate_timezone

__all__ = [
    "ContractField",
    "ContractTransition",
    "ContractVersion",
    "DataContract",
    "Membership",
    "Policy",
    "QualityRule",
    "Tenant",
    "parse_semver",
    "slug_validator",
    "validate_timezone",
]
