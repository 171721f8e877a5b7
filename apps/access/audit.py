"""Field-level audit trail of access models; the secret digest never enters the log."""

from auditlog.registry import auditlog

from apps.access.models import ApiToken

auditlog.register(ApiToken, exclude_fields=["secret_hash", "last_used_at", "updated_at"])
