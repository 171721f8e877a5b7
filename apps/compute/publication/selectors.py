"""Publication reads other code may use: outputs (latest, as published on a day), requests, restatements."""

from __future__ import annotations

from datetime import date
from typing import Any

from django.db.models import QuerySet

from apps.compute.publication.choices import RestatementStatusChoices
from apps.compute.publication.models import PublicationRequest, Restatement
from apps.storage.published import (
    PublishedOutput,
    published_output_as_published_on,
    published_output_latest,
    published_output_list,
)

__all__ = [
    "publication_as_published_on",
    "publication_latest",
    "publication_list",
    "publication_request_list",
    "restatement_get",
    "restatement_list",
]


def publication_list(*, tenant: Any, kpi_key: str | None = None) -> QuerySet[PublishedOutput]:
    return published_output_list(tenant=tenant, kpi_key=kpi_key)


def publication_latest(*, tenant: Any, kpi_key: str, period_id: int | None = None) -> PublishedOutput | None:
    """The KPI's newest output (holding the period, when given)."""
    return published_output_latest(tenant=tenant, kpi_key=kpi_key, period_id=period_id)


def publication_as_published_on(
    *, tenant: Any, kpi_key: str, day: date, period_id: int | None = None
) -> PublishedOutput | None:
    """The output in force at the end of `day` (tenant time zone), holding the period when given."""
    return published_output_as_published_on(tenant=tenant, kpi_key=kpi_key, day=day, period_id=period_id)


def publication_request_list(*, tenant: Any, status: str | None = None) -> QuerySet[PublicationRequest]:
    queryset = PublicationRequest.objects.for_tenant(tenant)
    return queryset.filter(status=status) if status else queryset


def restatement_list(*, tenant: Any, kpi_key: str | None = None, open_only: bool = False) -> QuerySet[Restatement]:
    queryset = Restatement.objects.for_tenant(tenant).select_related("supersedes", "kpi_version")
    if kpi_key:
        queryset = queryset.filter(kpi_key=kpi_key)
    return queryset.filter(status=RestatementStatusChoices.PROPOSED) if open_only else queryset


def restatement_get(*, tenant: Any, pk: int) -> Restatement:
    return restatement_list(tenant=tenant).get(pk=pk)
