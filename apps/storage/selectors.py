"""Storage reads other apps may use: lineage in both directions, and as-of views."""

from __future__ import annotations

from typing import Any

from apps.storage.models import GoldenDataPoint, IngestionBatch


def gdp_history(*, gdp: GoldenDataPoint) -> list[GoldenDataPoint]:
    """Every version of the GDP's key, newest belief first."""
    return list(
        GoldenDataPoint.objects.of_key(gdp)
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


# --- catalog health: freshness, pass rate and a sample per contract ---------------------------------
def contract_last_data_at(*, contract_ids: list[int]) -> dict[int, Any]:
    """Contract id → when its data last changed or was last confirmed: the newer of the newest
    current GDP version's `recorded_from` and the newest completed batch's `finished_at`."""
    from django.db.models import Max

    from apps.storage.choices import BatchStatusChoices

    newest: dict[int, Any] = {}
    gdps = (
        GoldenDataPoint.objects.filter(contract_id__in=contract_ids, recorded_to__isnull=True)
        .values("contract_id")
        .annotate(at=Max("recorded_from"))
    )
    completed = (BatchStatusChoices.COMPLETED, BatchStatusChoices.COMPLETED_WITH_REJECTIONS)
    batches = (
        IngestionBatch.objects.filter(source__contract_id__in=contract_ids, status__in=completed)
        .values("source__contract_id")
        .annotate(at=Max("finished_at"))
    )
    for contract_id, at in [(r["contract_id"], r["at"]) for r in gdps] + [
        (r["source__contract_id"], r["at"]) for r in batches
    ]:
        if at is not None and (contract_id not in newest or at > newest[contract_id]):
            newest[contract_id] = at
    return newest


def contract_batch_pass_rates(*, contract_ids: list[int], last: int = 20) -> dict[int, tuple[int, int, int]]:
    """Contract id → (accepted, received, batches) over the last `last` finished batches of its sources.

    Finished means completed (with or without rejections) or refused by the quality gate; failed
    batches are technical failures, not data quality, and are left out. One query.
    """
    from django.db.models import F, Window
    from django.db.models.functions import RowNumber

    from apps.storage.choices import BatchStatusChoices

    finished = (
        BatchStatusChoices.COMPLETED,
        BatchStatusChoices.COMPLETED_WITH_REJECTIONS,
        BatchStatusChoices.REFUSED,
    )
    rows = (
        IngestionBatch.objects.filter(source__contract_id__in=contract_ids, status__in=finished)
        .annotate(
            of_contract=F("source__contract_id"),
            rank=Window(RowNumber(), partition_by=[F("source__contract_id")], order_by=[F("created_at").desc(),
                                                                                        F("id").desc()]),
        )
        .filter(rank__lte=last)
        .values_list("of_contract", "accepted", "received")
    )  # fmt: skip
    totals: dict[int, tuple[int, int, int]] = {}
    for contract_id, accepted, received in rows:
        a, r, n = totals.get(contract_id, (0, 0, 0))
        totals[contract_id] = (a + accepted, r + received, n + 1)
    return totals


def contract_gdp_sample(*, contract_id: int, limit: int = 5) -> list[GoldenDataPoint]:
    """A few current Golden Data Points of the contract, newest observation first."""
    return list(
        GoldenDataPoint.objects.filter(contract_id=contract_id, recorded_to__isnull=True).order_by(
            "-observed_at", "measure", "entity_key", "id"
        )[:limit]
    )
