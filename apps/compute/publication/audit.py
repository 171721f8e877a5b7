"""Field-level audit trail of publication requests and restatements (their decisions)."""

from auditlog.registry import auditlog

from apps.compute.publication.models import PublicationRequest, Restatement

auditlog.register(PublicationRequest)
auditlog.register(Restatement, exclude_fields=["updated_at"])
