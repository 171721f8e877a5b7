"""Field-level audit trail of webhook endpoints; the signing secrets never enter the log.

Deliveries are not audited field by field: each attempt is its own row (who asked for a
manual one included), which is the better record of what happened to a message.
"""

from auditlog.registry import auditlog

from apps.consumption.webhooks.models import WebhookEndpoint

auditlog.register(WebhookEndpoint, exclude_fields=["secret", "previous_secret", "consecutive_failures", "updated_at"])
