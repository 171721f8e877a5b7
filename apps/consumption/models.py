"""Consumption's models live in one package per module; Django finds them through this file."""

# Each module package appends its own import here (webhooks, exports, catalog).
from apps.consumption.catalog.models import DataProduct  # noqa: F401
from apps.consumption.exports.models import ExportJob  # noqa: F401
from apps.consumption.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint  # noqa: F401
