"""Consumption's portal pages live in each module package's admin.py; Django autodiscovers only this file."""

from apps.consumption.catalog import admin as catalog_admin  # noqa: F401
from apps.consumption.exports import admin as exports_admin  # noqa: F401
from apps.consumption.webhooks import admin as webhooks_admin  # noqa: F401
