"""Project-level app configs."""

from django.contrib.admin.apps import AdminConfig


class AurumAdminConfig(AdminConfig):
    """Django admin with Aurum's site: branding, tenant-aware login and a tenant switcher."""

    default_site = "apps.access.admin_site.AurumAdminSite"
