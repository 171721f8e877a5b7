"""Field-level audit trail (django-auditlog) of what stewards edit in compute: sources and normalization rules."""

from auditlog.registry import auditlog

from apps.compute.models import NormalizationRule, Source

auditlog.register(Source, exclude_fields=["updated_at", "last_pulled_at"])
auditlog.register(NormalizationRule)
