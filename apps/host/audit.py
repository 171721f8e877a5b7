"""Field-level audit trail (django-auditlog) of the host's governance models."""

from auditlog.registry import auditlog

from apps.host.models import Membership, Tenant

auditlog.register(Tenant)
auditlog.register(Membership)
