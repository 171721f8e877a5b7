"""The data product catalog: what consumers can find, who owns it and what stands behind it."""

from __future__ import annotations

import re

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models

from apps.consumption.catalog.choices import (
    ClassificationChoices,
    ProductKindChoices,
    ProductStatusChoices,
    ProductVisibilityChoices,
)
from apps.kernel.models import TenantOwnedModel

MAX_TAGS = 20
MAX_KPIS = 50
KPI_KEY = re.compile(r"^[A-Za-z0-9_-]{1,100}$")
MAX_TAG_LENGTH = 50


class DataProduct(TenantOwnedModel):
    """A data product of a tenant: a GDP dataset under a data contract, or a set of KPIs.

    Freshness, quality score, SLA status and the sample are not stored: the catalog's selectors
    compute them from the contract and the storage layer when asked. A KPI set names its KPIs by
    key (`kpis`); each must have values or publications in the tenant (storage's KpiValue,
    PublishedOutput), and the product's detail shows each one's newest publication and freshness.
    """

    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=100, help_text="Stable identifier within the tenant, e.g. 'store-sales'.")
    description = models.TextField(blank=True, help_text="Markdown (CommonMark); raw HTML is shown as text.")
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    domain = models.CharField(max_length=100, blank=True)
    tags = models.JSONField(default=list, blank=True, help_text="A list of short labels.")
    classification = models.CharField(
        max_length=16, choices=ClassificationChoices.choices, default=ClassificationChoices.INTERNAL
    )
    kind = models.CharField(max_length=16, choices=ProductKindChoices.choices, default=ProductKindChoices.GDP_DATASET)
    contract = models.ForeignKey(
        "host.DataContract",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="The data contract behind it; its active version governs the data. Required for GDP datasets.",
    )
    kpis = models.JSONField(
        default=list, blank=True, help_text="Keys of the KPIs of a KPI set, e.g. ['net-sales', 'margin']."
    )
    visibility = models.CharField(
        max_length=16, choices=ProductVisibilityChoices.choices, default=ProductVisibilityChoices.MEMBERS
    )
    status = models.CharField(
        max_length=16, choices=ProductStatusChoices.choices, default=ProductStatusChoices.DRAFT, db_index=True
    )
    published_at = models.DateTimeField(null=True, blank=True, editable=False)
    deprecated_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["name", "slug"]
        constraints = [models.UniqueConstraint(fields=["tenant", "slug"], name="consumption_product_unique_slug")]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        super().clean()
        if self.kind == ProductKindChoices.GDP_DATASET and self.contract_id is None:
            raise ValidationError({"contract": "A GDP dataset needs the data contract its data comes under."})
        if not isinstance(self.tags, list) or not all(isinstance(tag, str) for tag in self.tags):
            raise ValidationError({"tags": "A list of text labels."})
        if len(self.tags) > MAX_TAGS:
            raise ValidationError({"tags": f"At most {MAX_TAGS} tags."})
        if any(not tag.strip() or len(tag) > MAX_TAG_LENGTH for tag in self.tags):
            raise ValidationError({"tags": f"Each tag has 1 to {MAX_TAG_LENGTH} characters."})
        self._clean_kpis()

    def _clean_kpis(self) -> None:
        if not isinstance(self.kpis, list) or not all(isinstance(key, str) and KPI_KEY.match(key) for key in self.kpis):
            raise ValidationError({"kpis": "A list of KPI keys (letters, digits, '_' and '-')."})
        if not self.kpis:
            return
        if self.kind != ProductKindChoices.KPI_SET:
            raise ValidationError({"kpis": "Only a KPI set names KPIs."})
        if len(self.kpis) > MAX_KPIS:
            raise ValidationError({"kpis": f"At most {MAX_KPIS} KPIs."})
        from apps.consumption.kpis.selectors import known_kpi_keys

        known = known_kpi_keys(tenant=self.tenant_id, keys=self.kpis)
        unknown = [key for key in self.kpis if key not in known]
        if unknown:
            raise ValidationError({"kpis": f"No values or publications of KPI(s) {', '.join(unknown)} in this tenant."})
