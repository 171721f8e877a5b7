"""Field-level audit trail (django-auditlog) of the host's governance models."""

from auditlog.registry import auditlog

from apps.host.models import ContractVersion, DataContract, Membership, Policy, Tenant

auditlog.register(Tenant)
auditlog.register(Membership)
auditlog.register(DataContract)
# Fields and rules change only with their draft; the version's log and the transition log cover them.
auditlog.register(ContractVersion, exclude_fields=["updated_at", "content_hash"])
auditlog.register(Policy, exclude_fields=["updated_at"])
