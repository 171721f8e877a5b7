"""Field-level audit trail (django-auditlog) of calendars and period states.

Period rows are not audited one by one: generation writes thousands in bulk, and its
effect is recorded on the calendar (generated years) and in the `calendar.generated` event.
"""

from auditlog.registry import auditlog

from apps.storage.calendars.models import Calendar, PeriodState

auditlog.register(Calendar, exclude_fields=["updated_at"])
auditlog.register(PeriodState, exclude_fields=["updated_at"])
