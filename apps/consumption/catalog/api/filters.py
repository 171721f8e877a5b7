from __future__ import annotations

from typing import Any

import django_filters
from django.db import models

from apps.consumption.catalog import selectors
from apps.consumption.catalog.choices import (
    ClassificationChoices,
    FreshnessChoices,
    ProductKindChoices,
    ProductStatusChoices,
    ProductVisibilityChoices,
)
from apps.consumption.catalog.models import DataProduct


class CharInFilter(django_filters.BaseInFilter, django_filters.CharFilter):
    """A comma-separated list of values."""


class DataProductFilterSet(django_filters.FilterSet):
    domain = django_filters.CharFilter(field_name="domain", lookup_expr="iexact", help_text="Business domain.")
    owner = django_filters.CharFilter(field_name="owner__username", help_text="Owner's username.")
    tag = CharInFilter(method="filter_tag", help_text="Any of these tags (comma-separated).")
    classification = django_filters.MultipleChoiceFilter(choices=ClassificationChoices.choices)
    kind = django_filters.MultipleChoiceFilter(choices=ProductKindChoices.choices)
    status = django_filters.MultipleChoiceFilter(choices=ProductStatusChoices.choices)
    visibility = django_filters.ChoiceFilter(choices=ProductVisibilityChoices.choices)
    contract = django_filters.CharFilter(field_name="contract__key", help_text="Key of the data contract behind it.")
    freshness = django_filters.MultipleChoiceFilter(
        choices=FreshnessChoices.choices, method="filter_freshness", help_text="Computed freshness state."
    )

    class Meta:
        model = DataProduct
        fields: list[str] = []

    def filter_tag(self, queryset: models.QuerySet, name: str, value: Any) -> models.QuerySet:
        tags = [tag.strip() for tag in value or [] if tag.strip()]
        if not tags:
            return queryset
        return queryset.filter(pk__in=selectors.product_ids_with_tags(queryset=queryset, tags=tags))

    def filter_freshness(self, queryset: models.QuerySet, name: str, value: Any) -> models.QuerySet:
        if not value:
            return queryset
        return queryset.filter(pk__in=selectors.product_ids_with_freshness(queryset=queryset, states=list(value)))
