from django.db import models

from apps.kernel.roles import RoleChoices

__all__ = ["RoleChoices", "TenantStatusChoices"]


class TenantStatusChoices(models.TextChoices):
    ACTIVE = "active", "Active"
    SUSPENDED = "suspended", "Suspended"
