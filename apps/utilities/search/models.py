"""The search index: one row per findable object of a tenant."""

from __future__ import annotations

from django.contrib.postgres.search import SearchVectorField
from django.db import models

from apps.kernel.models import TenantOwnedModel
from apps.utilities.search.choices import SearchAudienceChoices


class SearchDocument(TenantOwnedModel):
    """An object as search sees it: a title, a body, facets and where to read it.

    Rows are derived data, written only by `search_index_upsert` (and rebuilt by
    `manage.py search_reindex`); the owning app stays the source of truth. `terms` holds the
    document's distinct words (title, body and facet values), which both back ends match
    typos against. On PostgreSQL `search_vector` holds the weighted tsvector (title A, body B,
    facets C) behind a GIN index, and `terms` has a pg_trgm index; on SQLite both columns are
    plain text the portable fallback reads (the vector stays empty).
    """

    kind = models.CharField(max_length=32, help_text="What the object is: product, contract, contract_field, kpi…")
    object_key = models.CharField(max_length=255, help_text="The object's key within its kind and tenant.")
    title = models.CharField(max_length=300)
    body = models.TextField(blank=True)
    facets = models.JSONField(default=dict, blank=True, help_text="Facet name → value or list of values.")
    url = models.CharField(max_length=500, blank=True, help_text="Where a reader gets the object (API path).")
    audience = models.CharField(
        max_length=16, choices=SearchAudienceChoices.choices, default=SearchAudienceChoices.LISTED
    )
    title_terms = models.TextField(blank=True, editable=False)
    terms = models.TextField(blank=True, editable=False)
    search_vector = SearchVectorField(null=True, editable=False)

    class Meta:
        ordering = ["kind", "title"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "kind", "object_key"], name="utilities_searchdoc_unique_key")
        ]
        indexes = [models.Index(fields=["tenant", "kind"], name="utilities_searchdoc_by_kind")]

    def __str__(self) -> str:
        return f"{self.kind}: {self.title}"
