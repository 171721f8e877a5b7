"""Writes to the search index: upsert and remove documents, rebuild a tenant's index."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import connection, transaction

from apps.utilities.search import registry
from apps.utilities.search.choices import SearchAudienceChoices
from apps.utilities.search.models import SearchDocument
from apps.utilities.search.text import distinct_tokens, facet_text, tokens

# The text search configuration: no stemming, no stop words. Catalog text is full of
# identifiers and several languages; prefix matching and trigrams do what stemming would.
TS_CONFIG = "simple"


def _clean_facets(facets: dict[str, Any] | None) -> dict[str, Any]:
    if facets is None:
        return {}
    if not isinstance(facets, dict):
        raise ValidationError({"facets": "Facets are an object of name → value or list of values."})
    cleaned: dict[str, Any] = {}
    for name, value in facets.items():
        if not isinstance(name, str) or not name:
            raise ValidationError({"facets": "Facet names are non-empty strings."})
        if isinstance(value, list | tuple):
            cleaned[name] = [str(item) for item in value if item not in (None, "")]
        elif value not in (None, ""):
            cleaned[name] = str(value)
    return cleaned


@transaction.atomic
def search_index_upsert(
    *,
    tenant: Any,
    kind: str,
    object_key: str,
    title: str,
    body: str = "",
    facets: dict[str, Any] | None = None,
    url: str = "",
    audience: str = SearchAudienceChoices.LISTED,
) -> SearchDocument:
    """Create or replace the document of (`kind`, `object_key`) in the tenant's index.

    Runs in the caller's transaction, so an object and its document commit together. Facet
    values are strings or lists of strings; they are searchable as well as countable.
    """
    errors = {}
    if not kind or len(kind) > 32:
        errors["kind"] = "A kind has 1 to 32 characters."
    if not object_key or len(object_key) > 255:
        errors["object_key"] = "An object key has 1 to 255 characters."
    if not (title or "").strip():
        errors["title"] = "A document needs a title."
    if audience not in SearchAudienceChoices.values:
        errors["audience"] = f"One of {', '.join(SearchAudienceChoices.values)}."
    if errors:
        raise ValidationError(errors)
    facets = _clean_facets(facets)
    title = title.strip()[:300]
    extra = facet_text(facets)
    document, _ = SearchDocument.objects.update_or_create(
        tenant=tenant,
        kind=kind,
        object_key=object_key,
        defaults={
            "title": title,
            "body": body or "",
            "facets": facets,
            "url": url,
            "audience": audience,
            "title_terms": " ".join(tokens(title)),
            "terms": " ".join(distinct_tokens(title, body or "", extra)),
        },
    )
    if connection.vendor == "postgresql":
        # The words go in already normalized, so both back ends see the same tokens.
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE utilities_searchdocument SET search_vector ="
                " setweight(to_tsvector(%s::regconfig, %s), 'A')"
                " || setweight(to_tsvector(%s::regconfig, %s), 'B')"
                " || setweight(to_tsvector(%s::regconfig, %s), 'C')"
                " WHERE id = %s",
                [
                    TS_CONFIG, document.title_terms,
                    TS_CONFIG, " ".join(tokens(body or "")),
                    TS_CONFIG, " ".join(tokens(extra)),
                    document.pk,
                ],
            )  # fmt: skip
    return document


@transaction.atomic
def search_index_remove(*, tenant: Any, kind: str, object_key: str | None = None) -> int:
    """Remove the document of (`kind`, `object_key`), or every `kind` document when no key is given."""
    queryset = SearchDocument.objects.for_tenant(tenant).filter(kind=kind)
    if object_key is not None:
        queryset = queryset.filter(object_key=object_key)
    deleted, _ = queryset.delete()
    return deleted


def search_reindex(*, tenant_slug: str | None = None) -> dict[str, int]:
    """Rebuild the index from its owners: each registered reindexer's kinds are emptied and rewritten.

    One transaction per reindexer, so a failure leaves that part of the index as it was.
    Returns documents written per reindexer.
    """
    written: dict[str, int] = {}
    for entry in registry.reindexers():
        with transaction.atomic():
            stale = SearchDocument.objects.filter(kind__in=entry.kinds)
            if tenant_slug is not None:
                stale = stale.filter(tenant__slug=tenant_slug)
            stale.delete()
            written[", ".join(entry.kinds)] = entry.func(tenant_slug=tenant_slug)
    return written
