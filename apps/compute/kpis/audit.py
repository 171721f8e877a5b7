"""Field-level audit trail (django-auditlog) of KPI definitions, versions and targets."""

from auditlog.registry import auditlog

from apps.compute.kpis.models import KpiDefinition, KpiTarget, KpiVersion

auditlog.register(KpiDefinition, exclude_fields=["updated_at", "last_scheduled_at"])
auditlog.register(KpiVersion, exclude_fields=["updated_at", "computed_as_of", "computed_at"])
auditlog.register(KpiTarget, exclude_fields=["updated_at"])
