"""OpenLineage run events of the ingest pipeline, checked against the official JSON schemas.

The schemas are copies of ../shared/fixtures/openlineage/ (LF AI & Data, Apache-2.0; LICENSE
beside them) in tests/fixtures/openlineage/. Every emitted event is validated three ways:
against the core schema (OpenLineage.json, with every facet schema in a `referencing`
registry by its `$id`), each facet against the schema its own `_schemaURL` names (so that
URL must be one of the official facet versions), and each facet under its key against the
root of its facet document (so `schema`, `errorMessage`, `outputStatistics` are the names
the spec gives them).
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import uuid
from collections.abc import Iterator
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urldefrag, urlsplit

import jsonschema
import pytest
from referencing import Registry, Resource

from apps.compute import services as compute
from apps.compute.models import PipelineRun
from apps.compute.pipeline import batch_process
from apps.kernel.roles import RoleChoices
from apps.storage.models import IngestionBatch
from tests.compute.conftest import FIELDS, activate_contract

pytestmark = pytest.mark.django_db


def known_bug(reason: str, *raises: type[BaseException]) -> pytest.MarkDecorator:
    """A defect reported to the code's owner, shown by the test it marks. Strict: once the code is fixed the
    test passes, the run fails on the unexpected pass, and the marker goes. `pytest --runxfail` shows it fail."""
    return pytest.mark.xfail(strict=True, reason=f"BUG: {reason}", raises=raises or AssertionError)


SCHEMAS = Path(__file__).resolve().parents[1] / "fixtures" / "openlineage"
CORE_ID = "https://openlineage.io/spec/2-0-2/OpenLineage.json"

ROWS = [
    {"sale_date": "2026-11-01", "store_id": "S001", "region": "north", "revenue": "120.50", "units": "3"},
    {"sale_date": "2026-11-01", "store_id": "S002", "region": "south", "revenue": "80", "units": "2"},
    {"sale_date": "2026-11-01", "store_id": "bad", "region": "south", "revenue": "1", "units": "1"},  # rejected
]


# --- the official schemas --------------------------------------------------------------------------


class OpenLineageSchemas:
    def __init__(self) -> None:
        self.core = json.loads((SCHEMAS / "OpenLineage.json").read_text())
        assert self.core["$id"] == CORE_ID
        self.facets = {}
        for path in sorted((SCHEMAS / "facets").glob("*.json")):
            document = json.loads(path.read_text())
            self.facets[document["$id"]] = document
        assert len(self.facets) >= 30, "copy every facet schema of ../shared/fixtures/openlineage/facets/"
        self.registry = Registry().with_resources(
            (schema_id, Resource.from_contents(document))
            for schema_id, document in [(CORE_ID, self.core), *self.facets.items()]
        )
        self.checker = jsonschema.Draft202012Validator.FORMAT_CHECKER

    def _validator(self, schema: dict[str, Any]) -> jsonschema.Draft202012Validator:
        return jsonschema.Draft202012Validator(schema, registry=self.registry, format_checker=self.checker)

    def validate_event(self, event: dict[str, Any]) -> None:
        """The whole event against the core schema, then every facet against its own schema."""
        self._validator(self.core).validate(event)
        # The event's own schemaURL must point into the spec version we validated against.
        url, fragment = urldefrag(event["schemaURL"])
        assert (url, fragment) == (CORE_ID, "/$defs/RunEvent")
        self._validator({"$ref": event["schemaURL"]}).validate(event)
        # Formats the installed jsonschema does not check without extras.
        datetime.fromisoformat(event["eventTime"])
        assert urlsplit(event["producer"]).scheme in ("http", "https")
        for key, facet in _facets(event):
            self.validate_facet(key, facet)

    def validate_facet(self, key: str, facet: dict[str, Any]) -> None:
        url, fragment = urldefrag(facet["_schemaURL"])
        assert url in self.facets, f"facet {key!r} names {url}, which is not an official facet schema here"
        assert fragment.startswith("/$defs/"), facet["_schemaURL"]
        self._validator({"$ref": facet["_schemaURL"]}).validate(facet)
        document = self.facets[url]
        assert key in document["properties"], f"facet {key!r} is called {list(document['properties'])} by the spec"
        self._validator(document).validate({key: facet})


def _facets(event: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    yield from event["run"].get("facets", {}).items()
    yield from event["job"].get("facets", {}).items()
    for dataset in [*event.get("inputs", []), *event.get("outputs", [])]:
        for group in ("facets", "inputFacets", "outputFacets"):
            yield from dataset.get(group, {}).items()


@pytest.fixture(scope="module")
def schemas() -> OpenLineageSchemas:
    return OpenLineageSchemas()


def test_the_validator_accepts_a_valid_event_and_refuses_broken_ones(schemas):
    """The checks below can fail: a broken event or facet is refused."""
    example = _sample_event()
    schemas.validate_event(example)
    for broken in (
        {**example, "run": {"runId": "not-a-uuid"}},
        {**example, "eventType": "DONE"},
        {key: value for key, value in example.items() if key != "eventTime"},
    ):
        with pytest.raises(jsonschema.ValidationError):
            schemas.validate_event(broken)
    facet = example["run"]["facets"]["errorMessage"]
    with pytest.raises(jsonschema.ValidationError):
        schemas.validate_facet("errorMessage", {k: v for k, v in facet.items() if k != "programmingLanguage"})
    with pytest.raises(jsonschema.ValidationError):
        schemas.validate_facet("errorMessage", {k: v for k, v in facet.items() if k != "_producer"})
    with pytest.raises(AssertionError, match="official facet schema"):
        schemas.validate_facet("errorMessage", {**facet, "_schemaURL": facet["_schemaURL"].replace("1-0-1", "9-9-9")})
    with pytest.raises(AssertionError, match="is called"):
        schemas.validate_facet("error", facet)


def _sample_event() -> dict[str, Any]:
    producer = "https://example.com/producer"
    return {
        "eventTime": "2026-11-25T10:00:00+00:00",
        "producer": producer,
        "schemaURL": f"{CORE_ID}#/$defs/RunEvent",
        "eventType": "FAIL",
        "run": {
            "runId": str(uuid.uuid4()),
            "facets": {
                "errorMessage": {
                    "_producer": producer,
                    "_schemaURL": "https://openlineage.io/spec/facets/1-0-1/ErrorMessageRunFacet.json"
                    "#/$defs/ErrorMessageRunFacet",
                    "message": "boom",
                    "programmingLanguage": "python",
                }
            },
        },
        "job": {"namespace": "ns", "name": "job"},
        "inputs": [],
        "outputs": [],
    }


# --- helpers ---------------------------------------------------------------------------------------


@pytest.fixture
def client(tenant_a, token_client):
    return token_client(tenant_a, RoleChoices.STEWARD, scopes=["read", "write"])


def post(client, source, rows, key=None):
    body = "\n".join(json.dumps(r) for r in rows) + "\n"
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
    return client.generic(
        "POST", f"/api/v1/sources/{source.pk}/batches/", body, content_type="application/x-ndjson", **headers
    )


def read_events(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture
def lineage_file(settings, tmp_path) -> Path:
    path = tmp_path / "openlineage.jsonl"
    settings.AURUM_OPENLINEAGE_FILE = str(path)
    settings.AURUM_OPENLINEAGE_URL = ""
    return path


# --- a processed batch -----------------------------------------------------------------------------


def test_a_processed_batch_writes_start_and_complete_with_one_run_id(client, source, lineage_file, schemas):
    response = post(client, source, ROWS)
    assert response.status_code == 201, response.json()
    batch = IngestionBatch.objects.get(pk=response.json()["id"])
    assert (batch.received, batch.accepted, batch.gdps_created) == (3, 2, 4)  # rowCount must be GDPs, not records

    events = read_events(lineage_file)
    assert [e["eventType"] for e in events] == ["START", "COMPLETE"]
    for event in events:
        schemas.validate_event(event)
    start, complete = events
    run = PipelineRun.objects.get(batch=batch)
    assert run.status == "completed"
    assert start["run"]["runId"] == complete["run"]["runId"] == str(run.run_id)
    assert uuid.UUID(start["run"]["runId"]).version == 4
    assert datetime.fromisoformat(start["eventTime"]) <= datetime.fromisoformat(complete["eventTime"])
    for event in events:
        assert event["job"]["namespace"] == "aurum://tenant-a"
        assert event["job"]["name"] == "ingest/tills"
        assert [(d["namespace"], d["name"]) for d in event["inputs"]] == [
            ("aurum://tenant-a", f"sources/tills/batches/{batch.pk}")
        ]
        assert [(d["namespace"], d["name"]) for d in event["outputs"]] == [
            ("aurum://tenant-a", "contracts/store-sales/golden-data-points")
        ]
        schema = event["outputs"][0]["facets"]["schema"]
        assert [(f["name"], f["type"]) for f in schema["fields"]] == [(f["name"], f["logical_type"]) for f in FIELDS]
        assert "errorMessage" not in event["run"]["facets"]
    assert "outputFacets" not in start["outputs"][0]
    assert complete["outputs"][0]["outputFacets"]["outputStatistics"]["rowCount"] == batch.gdps_created == 4


def test_each_run_has_its_own_run_id(client, source, lineage_file, schemas):
    post(client, source, ROWS[:1])
    post(client, source, [{**ROWS[0], "revenue": "130"}])
    events = read_events(lineage_file)
    assert [e["eventType"] for e in events] == ["START", "COMPLETE", "START", "COMPLETE"]
    first, second = {events[0]["run"]["runId"], events[1]["run"]["runId"]}, {events[2]["run"]["runId"]}
    assert len(first) == 1 and first != second
    # The second batch superseded revenue and left units unchanged: one GDP created.
    assert events[3]["outputs"][0]["outputFacets"]["outputStatistics"]["rowCount"] == 1


def test_nothing_is_emitted_when_neither_setting_is_set(client, source, settings, tmp_path):
    settings.AURUM_OPENLINEAGE_FILE = settings.AURUM_OPENLINEAGE_URL = ""
    assert post(client, source, ROWS).status_code == 201
    assert list(tmp_path.iterdir()) == []


# --- failing batches -------------------------------------------------------------------------------


def assert_start_then_fail(events, schemas, batch, message):
    assert [e["eventType"] for e in events] == ["START", "FAIL"]
    for event in events:
        schemas.validate_event(event)
    start, fail = events
    assert start["run"]["runId"] == fail["run"]["runId"] == str(PipelineRun.objects.get(batch=batch).run_id)
    error = fail["run"]["facets"]["errorMessage"]
    assert message in error["message"]
    assert error["programmingLanguage"] == "python"
    assert "outputFacets" not in fail["outputs"][0]  # nothing was written
    assert "errorMessage" not in start["run"]["facets"]


def test_a_contract_without_a_measure_fails_with_an_error_message_facet(
    tenant_a, people, client, lineage_file, schemas
):
    no_measure = [f for f in FIELDS if f["role"] != "measure"]
    contract = activate_contract(tenant_a, people, key="no-measure", fields=no_measure,
                                 steps=[{"kind": "cast", "field": "sale_date", "params": {"to": "date"}}])  # fmt: skip
    source = compute.source_create(actor=people["steward"], tenant=tenant_a, contract=contract, key="tills",
                                   name="Tills")  # fmt: skip
    response = post(client, source, ROWS[:1])
    assert response.status_code == 400
    batch = IngestionBatch.objects.get(pk=response.json()["batch"])
    assert batch.status == "failed"
    assert_start_then_fail(read_events(lineage_file), schemas, batch, "no field has the role 'measure'")
    fail = read_events(lineage_file)[1]
    schema = fail["outputs"][0]["facets"]["schema"]
    assert [f["name"] for f in schema["fields"]] == [f["name"] for f in no_measure]
    assert PipelineRun.objects.get(batch=batch).status == "failed"


def test_a_malformed_large_batch_fails_on_the_worker_with_start_and_fail(
    source, people, settings, lineage_file, schemas
):
    import io

    settings.AURUM_INLINE_BATCH_BYTES = 10  # too large to be parsed in the request
    body = (json.dumps(ROWS[0]) + "\n" + '{"store_id": S002}\n').encode()
    batch, created = compute.batch_receive(actor=people["steward"], source=source, stream=io.BytesIO(body),
                                           content_type="application/x-ndjson")  # fmt: skip
    assert created and batch.status == "received"
    batch = batch_process(batch.pk)
    assert batch.status == "failed"
    assert "line 2" in batch.error
    assert_start_then_fail(read_events(lineage_file), schemas, batch, "line 2")


# --- the HTTP transport ----------------------------------------------------------------------------


class _Collector(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.received.append((self.path, self.headers.get("Content-Type"), body))
        self.send_response(201)
        self.send_header("Content-Length", "0")
        self.end_headers()


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Collector)
        self.received: list[tuple[str, str | None, bytes]] = []


@pytest.fixture
def collector() -> Iterator[_Server]:
    server = _Server()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def test_events_are_posted_to_the_configured_url(client, source, settings, collector, schemas):
    settings.AURUM_OPENLINEAGE_FILE = ""
    settings.AURUM_OPENLINEAGE_URL = f"http://127.0.0.1:{collector.server_address[1]}/api/v1/lineage"
    assert post(client, source, ROWS).status_code == 201
    assert [(path, ctype) for path, ctype, _ in collector.received] == [
        ("/api/v1/lineage", "application/json"),
        ("/api/v1/lineage", "application/json"),
    ]
    events = [json.loads(body) for _, _, body in collector.received]
    assert [e["eventType"] for e in events] == ["START", "COMPLETE"]
    assert events[0]["run"]["runId"] == events[1]["run"]["runId"]
    for event in events:
        schemas.validate_event(event)


def test_the_file_and_the_url_both_receive_every_event(client, source, settings, lineage_file, collector):
    settings.AURUM_OPENLINEAGE_URL = f"http://127.0.0.1:{collector.server_address[1]}/api/v1/lineage"
    assert post(client, source, ROWS).status_code == 201
    assert [json.loads(body) for _, _, body in collector.received] == read_events(lineage_file)


def _closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]  # closed again when the block ends: nothing listens there


def test_a_failing_emission_does_not_fail_the_batch(client, source, settings, tmp_path, caplog):
    settings.AURUM_OPENLINEAGE_URL = f"http://127.0.0.1:{_closed_port()}/api/v1/lineage"
    settings.AURUM_OPENLINEAGE_FILE = str(tmp_path / "no-such-dir" / "events.jsonl")
    with caplog.at_level(logging.WARNING, logger="apps.compute.lineage"):
        response = post(client, source, ROWS)
    assert response.status_code == 201, response.json()
    batch = IngestionBatch.objects.get(pk=response.json()["id"])
    assert (batch.status, batch.gdps_created) == ("completed_with_rejections", 4)
    assert PipelineRun.objects.get(batch=batch).status == "completed"
    warnings = [r.getMessage() for r in caplog.records if r.name == "apps.compute.lineage"]
    assert warnings == ["Could not emit an OpenLineage START event", "Could not emit an OpenLineage COMPLETE event"]


# --- refused batches and stopped runs --------------------------------------------------------------


def _gate(tenant, people, on_failure: str) -> None:
    from apps.host import services as host

    policy = host.policy_create(actor=people["admin"], tenant=tenant, kind="quality_gate", name="ninety",
                                parameters={"min_batch_pass_rate": 90, "on_failure": on_failure})  # fmt: skip
    host.policy_activate(actor=people["admin"], policy=policy)


def test_a_refused_batch_completes_its_run_and_reports_the_failed_gate_as_an_assertion(
    client, source, tenant_a, people, lineage_file, schemas
):
    """Deliberate: the run worked and decided to refuse the data. COMPLETE, rowCount 0, and the refusal in the
    input's dataQualityAssertions (success false); FAIL is for runs that could not do their work."""
    _gate(tenant_a, people, "refuse_batch")
    response = post(client, source, ROWS)  # 2 of 3 valid: 66.67%
    assert response.status_code == 201, response.json()
    batch = IngestionBatch.objects.get(pk=response.json()["id"])
    assert (batch.status, batch.gdps_created) == ("refused", 0)
    assert PipelineRun.objects.get(batch=batch).status == "completed"
    events = read_events(lineage_file)
    assert [e["eventType"] for e in events] == ["START", "COMPLETE"]
    for event in events:
        schemas.validate_event(event)
    start, complete = events
    assert "inputFacets" not in start["inputs"][0]
    assert complete["outputs"][0]["outputFacets"]["outputStatistics"]["rowCount"] == 0
    assert "errorMessage" not in complete["run"]["facets"]
    [gate] = complete["inputs"][0]["inputFacets"]["dataQualityAssertions"]["assertions"]
    assert gate == {"assertion": "quality_gate", "name": "ninety", "success": False, "severity": "error",
                    "description": "Pass rate 66.67% is below the required 90%.", "actual": "66.67",
                    "expected": "90.00"}  # fmt: skip


def test_a_batch_rule_that_refuses_the_batch_is_an_assertion_of_its_column(tenant_a, people, client, lineage_file,
                                                                           schemas):  # fmt: skip
    cashier = {"name": "cashier", "logical_type": "string", "required": False, "role": "attribute"}
    contract = activate_contract(tenant_a, people, key="staffed", fields=[*FIELDS, cashier],
                                 rules=[{"kind": "completeness", "field": "cashier", "severity": "error",
                                         "threshold": 10}, {"kind": "row_count", "severity": "warning",
                                                            "params": {"min": 10}}])  # fmt: skip
    source = compute.source_create(actor=people["steward"], tenant=tenant_a, contract=contract, key="tills",
                                   name="Tills")  # fmt: skip
    assert post(client, source, ROWS[:2]).json()["status"] == "refused"
    complete = read_events(lineage_file)[-1]
    schemas.validate_event(complete)
    assertions = complete["inputs"][0]["inputFacets"]["dataQualityAssertions"]["assertions"]
    assert sorted((a["assertion"], a.get("column"), a["success"], a["severity"]) for a in assertions) == [
        ("completeness", "cashier", False, "error"), ("row_count", None, False, "warn")]  # fmt: skip


def test_a_passed_gate_is_a_successful_assertion(client, source, tenant_a, people, lineage_file, schemas):
    _gate(tenant_a, people, "refuse_batch")
    assert post(client, source, ROWS[:2]).json()["status"] == "completed"
    complete = read_events(lineage_file)[-1]
    schemas.validate_event(complete)
    [gate] = complete["inputs"][0]["inputFacets"]["dataQualityAssertions"]["assertions"]
    assert (gate["assertion"], gate["success"], gate["actual"]) == ("quality_gate", True, "100.00")


class WorkerKilled(BaseException):
    """Not an Exception: nothing in the pipeline catches it, as nothing survives a SIGKILL."""


def test_the_run_of_a_killed_worker_is_aborted_when_the_batch_resumes(source, people, settings, lineage_file,
                                                                      schemas, monkeypatch):  # fmt: skip
    import io

    from apps.storage import bulk

    settings.AURUM_INLINE_BATCH_BYTES = 10
    body = ("\n".join(json.dumps(r) for r in ROWS) + "\n").encode()
    batch, _ = compute.batch_receive(actor=people["steward"], source=source, stream=io.BytesIO(body),
                                     content_type="application/x-ndjson")  # fmt: skip

    def killed(rows: Any) -> int:
        raise WorkerKilled()

    monkeypatch.setattr(bulk, "write_raw_records", killed)
    with pytest.raises(WorkerKilled):
        batch_process(batch.pk)
    monkeypatch.undo()
    assert [e["eventType"] for e in read_events(lineage_file)] == ["START"]  # all a killed worker says
    batch_process(batch.pk)
    events = read_events(lineage_file)
    assert [e["eventType"] for e in events] == ["START", "ABORT", "START", "COMPLETE"]
    for event in events:
        schemas.validate_event(event)
    dead, resumed = PipelineRun.objects.filter(batch=batch).order_by("started_at", "id")
    assert events[0]["run"]["runId"] == events[1]["run"]["runId"] == str(dead.run_id)
    assert events[2]["run"]["runId"] == events[3]["run"]["runId"] == str(resumed.run_id)
    assert events[1]["run"]["facets"]["errorMessage"]["message"] == dead.error
    assert dead.error.startswith("Abandoned")
