from django.db import models

from apps.host.choices import ClassificationChoices

__all__ = [
    "ClassificationChoices",
    "FreshnessChoices",
    "ProductKindChoices",
    "ProductStatusChoices",
    "ProductVisibilityChoices",
    "SlaStatusChoices",
]


class ProductKindChoices(models.TextChoices):
    GDP_DATASET = "gdp_dataset", "GDP dataset"
    KPI_SET = "kpi_set", "KPI set"


class ProductVisibilityChoices(models.TextChoices):
    """Who may find and read a product (once published): see apps.consumption.catalog.selectors."""

    MEMBERS = "members", "Tenant members only"
    LISTED = "listed", "Listed for every consumer of the tenant"


class ProductStatusChoices(models.TextChoices):
    DRAFT = "draft", "Draft"
    PUBLISHED = "published", "Published"
    DEPRECATED = "deprecated", "Deprecated"


class FreshnessChoices(models.TextChoices):
    FRESH = "fresh", "Fresh"
    STALE = "stale", "Stale"
    UNKNOWN = "unknown", "Unknown"


class SlaStatusChoices(models.TextChoices):
    MET = "met", "Met"
    BREACHED = "breached", "Breached"
    UNKNOWN = "unknown", "Unknown"
