"""Field-level audit trail of the schema registry's governance records."""

from auditlog.registry import auditlog

from apps.utilities.models import RegistryConfig, SchemaSubject, SchemaVersion

auditlog.register(SchemaSubject, exclude_fields=["updated_at"])
auditlog.register(SchemaVersion)
auditlog.register(RegistryConfig, exclude_fields=["updated_at"])
