"""KPIs react to the pipeline: a completed batch recomputes the KPIs over its contract, incrementally."""

from __future__ import annotations

from apps.compute.kpis import services
from apps.runtime.events import subscribe
from apps.runtime.models import DomainEvent
from apps.storage.choices import BatchStatusChoices
from apps.storage.models import IngestionBatch

CHANGED = (BatchStatusChoices.COMPLETED, BatchStatusChoices.COMPLETED_WITH_REJECTIONS)


@subscribe("batch.completed", name="compute.compute_kpis_of_batch")
def compute_kpis_of_batch(event: DomainEvent) -> None:
    """The batch's contract's active KPIs, as of now (incremental: only the periods the batch touched)."""
    payload = event.payload
    if payload.get("status") not in CHANGED or not (payload.get("gdps_created") or payload.get("superseded")):
        return
    batch = IngestionBatch.objects.select_related("contract_version", "tenant").filter(pk=payload["batch"]).first()
    if batch is None or batch.contract_version is None:
        return
    services.kpi_compute_for_contract(tenant=batch.tenant, contract_id=batch.contract_version.contract_id,
                                      trigger=f"batch:{batch.pk}")  # fmt: skip
