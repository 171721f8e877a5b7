from django.db import models


class SearchAudienceChoices(models.TextChoices):
    """Who in the tenant may find a document."""

    LISTED = "listed", "Every reader of the tenant, consumers included"
    MEMBERS = "members", "Tenant members only (not consumers)"
