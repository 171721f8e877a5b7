"""OpenLineage RunEvents for pipeline runs: START, then COMPLETE, FAIL or ABORT.

- COMPLETE: the run did its work to the end, whatever it decided about the data. A batch the
  quality gate (or an error-severity batch rule) refused is such a run: it ends `refused`, not
  `failed`, its PipelineRun is `completed`, and the refusal is reported as data, in the input
  dataset's `dataQualityAssertions` facet (success false) with `rowCount` 0, as a data quality
  tool reports a failed test of a run that worked. FAIL is kept for runs that could not do their
  work (an error), with the `errorMessage` facet; a lineage consumer alerting on FAIL is then
  alerted by broken pipelines, not by suppliers' bad data.
- ABORT: the run stopped before its end without an error of the batch (a killed worker, the
  task's soft time limit, a lost database); the batch stays `processing` and a later run, with a
  new runId, resumes it.

Sent where operators point them: AURUM_OPENLINEAGE_FILE appends JSON lines (what the
openlineage-python file transport writes), AURUM_OPENLINEAGE_URL POSTs each event (Marquez's
`/api/v1/lineage` accepts them). Neither set: nothing is emitted. The endpoint is operator
configuration, not tenant input, so it is called directly rather than through the outbound
guard. Emission never breaks a pipeline run: failures are logged.
"""

from __future__ import annotations

import json
import logging
import urllib.request
from datetime import UTC, datetime
from typing import Any

from django.conf import settings

logger = logging.getLogger(__name__)

SPEC = "https://openlineage.io/spec/2-0-2/OpenLineage.json"
PRODUCER = "https://github.com/aurum-data/aurum"
SCHEMA_FACET = "https://openlineage.io/spec/facets/1-2-0/SchemaDatasetFacet.json#/$defs/SchemaDatasetFacet"
ERROR_FACET = "https://openlineage.io/spec/facets/1-0-1/ErrorMessageRunFacet.json#/$defs/ErrorMessageRunFacet"
ASSERTIONS_FACET = (
    "https://openlineage.io/spec/facets/1-1-0/DataQualityAssertionsDatasetFacet.json"
    "#/$defs/DataQualityAssertionsDatasetFacet"
)
OUTPUT_STATS_FACET = (
    "https://openlineage.io/spec/facets/1-0-2/OutputStatisticsOutputDatasetFacet.json"
    "#/$defs/OutputStatisticsOutputDatasetFacet"
)


def namespace(batch: Any) -> str:
    return f"aurum://{batch.tenant.slug}"


def run_event(
    event_type: str, run: Any, batch: Any, *, error: str = "", assertions: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    version = batch.contract_version
    contract_key = version.contract.key if version is not None else "unknown"
    inputs: list[dict[str, Any]] = [{"namespace": namespace(batch),
                                     "name": f"sources/{batch.source.key}/batches/{batch.pk}", "facets": {}}]  # fmt: skip
    if assertions:
        inputs[0]["inputFacets"] = {
            "dataQualityAssertions": {"_producer": PRODUCER, "_schemaURL": ASSERTIONS_FACET, "assertions": assertions}
        }
    output: dict[str, Any] = {"namespace": namespace(batch), "name": f"contracts/{contract_key}/golden-data-points",
                              "facets": {}}  # fmt: skip
    if version is not None:
        output["facets"]["schema"] = {
            "_producer": PRODUCER,
            "_schemaURL": SCHEMA_FACET,
            "fields": [
                {"name": f.name, "type": f.logical_type, "description": f.description or f.get_role_display()}
                for f in version.fields.all()
            ],
        }
    if event_type == "COMPLETE":
        output["outputFacets"] = {
            "outputStatistics": {
                "_producer": PRODUCER,
                "_schemaURL": OUTPUT_STATS_FACET,
                "rowCount": batch.gdps_created,
            }
        }
    event: dict[str, Any] = {
        "eventTime": datetime.now(UTC).isoformat(),
        "producer": PRODUCER,
        "schemaURL": f"{SPEC}#/$defs/RunEvent",
        "eventType": event_type,
        "run": {"runId": str(run.run_id), "facets": {}},
        "job": {"namespace": namespace(batch), "name": f"ingest/{batch.source.key}", "facets": {}},
        "inputs": inputs,
        "outputs": [output],
    }
    if error:
        event["run"]["facets"]["errorMessage"] = {
            "_producer": PRODUCER, "_schemaURL": ERROR_FACET, "message": error[:2000], "programmingLanguage": "python",
        }  # fmt: skip
    return event


def emit(event: dict[str, Any]) -> None:
    path, url = settings.AURUM_OPENLINEAGE_FILE, settings.AURUM_OPENLINEAGE_URL
    try:
        if path:
            with open(path, "a", encoding="utf-8") as handle:
                handle.write(json.dumps(event) + "\n")
        if url:
            request = urllib.request.Request(  # noqa: S310 (operator-configured http(s) endpoint)
                url, data=json.dumps(event).encode(), headers={"Content-Type": "application/json"}, method="POST"
            )
            with urllib.request.urlopen(request, timeout=10):  # noqa: S310
                pass
    except Exception:  # lineage is observability: it must never fail the run it describes
        logger.warning("Could not emit an OpenLineage %s event", event.get("eventType"), exc_info=True)


def emit_start(run: Any, batch: Any) -> None:
    if _enabled():
        emit(run_event("START", run, batch))


def emit_complete(run: Any, batch: Any, *, assertions: list[dict[str, Any]] | None = None) -> None:
    if _enabled():
        emit(run_event("COMPLETE", run, batch, assertions=assertions))


def emit_fail(run: Any, batch: Any, error: str) -> None:
    if _enabled():
        emit(run_event("FAIL", run, batch, error=error))


def emit_abort(run: Any, batch: Any, reason: str) -> None:
    if _enabled():
        emit(run_event("ABORT", run, batch, error=reason))


def _enabled() -> bool:
    return bool(settings.AURUM_OPENLINEAGE_FILE or settings.AURUM_OPENLINEAGE_URL)
