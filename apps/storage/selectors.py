"""Storage reads other apps may use: lineage in both directions, and as-of views."""

from __future__ import annotations

from typing import Any

from apps.storage.models import GoldenDataPoint, IngestionBatch

KEY_FIELDS = ("tenant_id", "contract_id", "measure", "entity_key", "dimensions_key", "observed_at")


def gdp_history(*, gdp: GoldenDataPoint) -> list[GoldenDataPoint]:
    """Every version of the GDP's key, newest belief first."""
    key = {name: getattr(gdp, name) for name in KEY_FIELDS}
    return list(
        GoldenDataPoint.objects.filter(**key)
        .select_related("contract", "source", "overridden_by")
        .order_by("-recorded_from", "-id")
    )


def gdp_lineage(*, gdp: GoldenDataPoint) -> dict[str, Any]:
    """GDP → raw record → batch → source, plus the key's history."""
    raw = gdp.raw_record
    batch = gdp.batch
    source = batch.source if batch is not None else gdp.source
    return {
        "gdp": gdp,
        "raw_record": raw,
        "batch": batch,
        "source": source,
        "history": gdp_history(gdp=gdp),
    }


def batch_lineage(*, batch: IngestionBatch) -> dict[str, Any]:
    """Batch → the GDP versions it created and the ones it superseded (querysets, lazily paged)."""
    return {
        "created": GoldenDataPoint.objects.filter(batch=batch),
        "superseded": GoldenDataPoint.objects.filter(superseded_by_batch=batch),
    }
