"""Where batches come from, and the rules that span records and batches.

- Pull sources: a local HTTP server serves NDJSON, an OutboundAllowRule lets the tenant reach
  it, and the beat task `compute.pull_source` (called directly) ingests what it serves, once
  per distinct body.
- Uniqueness across batches, survivorship within a batch, duplicate counts, and the
  batch-level quality rules (an error refuses the batch whole, a warning is reported).
"""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Iterator
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django_celery_beat.models import PeriodicTask

from apps.compute import services as compute
from apps.compute.pipeline import batch_process
from apps.compute.tasks import pull_source
from apps.host import services as host
from apps.kernel.roles import RoleChoices
from apps.runtime.models import JobRun
from apps.security import services as security
from apps.security.outbound import OutboundBlocked
from apps.storage.models import GoldenDataPoint, IngestionBatch, Rejection, UniqueValue
from tests.compute.conftest import CAST_STEPS, FIELDS, activate_contract

pytestmark = pytest.mark.django_db


def known_bug(reason: str, *raises: type[BaseException]) -> pytest.MarkDecorator:
    """A defect reported to the code's owner, shown by the test it marks. Strict: once the code is fixed the
    test passes, the run fails on the unexpected pass, and the marker goes. `pytest --runxfail` shows it fail."""
    return pytest.mark.xfail(strict=True, reason=f"BUG: {reason}", raises=raises or AssertionError)


LOCAL = "127.0.0.1"
ROWS = [
    {"sale_date": "2026-11-01", "store_id": "S001", "region": "north", "revenue": "120.50", "units": "3"},
    {"sale_date": "2026-11-01", "store_id": "S002", "region": "south", "revenue": "80", "units": "2"},
    {"sale_date": "2026-11-01", "store_id": "S003", "region": "south", "revenue": "10", "units": "1"},
]


def ndjson(rows: list[dict[str, Any]]) -> str:
    return "\n".join(json.dumps(r) for r in rows) + "\n"


@pytest.fixture
def client(tenant_a, token_client):
    return token_client(tenant_a, RoleChoices.STEWARD, scopes=["read", "write"])


def post(client, source, rows):
    response = client.generic("POST", f"/api/v1/sources/{source.pk}/batches/", ndjson(rows),
                              content_type="application/x-ndjson")  # fmt: skip
    assert response.status_code == 201, response.json()
    return response.json()


# --- pull sources ----------------------------------------------------------------------------------


class _Feed(BaseHTTPRequestHandler):
    server: _FeedServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self.server.requests.append(self.path)
        status, body = self.server.status, self.server.body.encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/x-ndjson")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _FeedServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__((LOCAL, 0), _Feed)
        self.requests: list[str] = []
        self.status = 200
        self.body = ndjson(ROWS)

    @property
    def url(self) -> str:
        return f"http://{LOCAL}:{self.server_address[1]}/exports/sales.ndjson"


@pytest.fixture
def feed() -> Iterator[_FeedServer]:
    server = _FeedServer()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@pytest.fixture
def allow_rule(feed, tenant_a, superuser):
    return security.outbound_allow(actor=superuser, host=LOCAL, tenant=tenant_a, port=feed.server_address[1])


@pytest.fixture
def pull(tenant_a, people, contract, feed, allow_rule):
    return compute.source_create(actor=people["steward"], tenant=tenant_a, contract=contract, key="feed",
                                 name="Nightly export", kind="pull", pull_url=feed.url, pull_format="ndjson",
                                 pull_every_seconds=300)  # fmt: skip


def job_runs() -> list[JobRun]:
    return list(JobRun.objects.filter(task="compute.pull_source").order_by("started_at", "id"))


class TestPullSource:
    def test_a_pull_creates_and_processes_a_batch(self, pull, feed):
        batch_id = pull_source(pull.pk)
        batch = IngestionBatch.objects.get(pk=batch_id)
        assert (batch.source_id, batch.format, batch.status) == (pull.pk, "ndjson", "completed")
        assert (batch.received, batch.accepted, batch.gdps_created) == (3, 3, 6)
        assert batch.idempotency_key.startswith("pull:")  # each pulled delivery gets its own key
        assert GoldenDataPoint.objects.current().get(measure="revenue", entity_key="S001").value == Decimal("120.5")
        assert feed.requests == ["/exports/sales.ndjson"]
        pull.refresh_from_db()
        assert pull.last_pulled_at is not None
        [run] = job_runs()
        assert (run.status, run.detail) == ("succeeded", {"source": "feed", "batch": batch_id, "new": True})

    def test_an_unchanged_body_makes_no_new_batch_and_a_changed_one_does(self, pull, feed):
        first = pull_source(pull.pk)
        assert pull_source(pull.pk) == first
        assert IngestionBatch.objects.count() == 1
        assert [run.detail["new"] for run in job_runs()] == [True, False]
        feed.body = ndjson([{**ROWS[0], "revenue": "130"}])
        second = pull_source(pull.pk)
        assert second != first
        assert IngestionBatch.objects.get(pk=second).superseded == 1
        assert GoldenDataPoint.objects.current().get(measure="revenue", entity_key="S001").value == Decimal("130")
        assert len(feed.requests) == 3

    def test_without_the_allow_rule_the_outbound_guard_refuses_the_pull(self, pull, feed, allow_rule, superuser):
        security.outbound_disallow(actor=superuser, rule=allow_rule)
        with pytest.raises(OutboundBlocked, match=r"127\.0\.0\.1"):
            pull_source(pull.pk)
        assert feed.requests == []  # refused before connecting
        assert not IngestionBatch.objects.exists()
        [run] = job_runs()
        assert run.status == "failed"
        assert run.error.startswith("OutboundBlocked: Refused")
        pull.refresh_from_db()
        assert pull.last_pulled_at is None

    def test_an_error_answer_is_a_failed_run_and_no_batch(self, pull, feed):
        feed.status = 503
        with pytest.raises(RuntimeError, match="answered 503"):
            pull_source(pull.pk)
        assert not IngestionBatch.objects.exists()
        assert job_runs()[0].status == "failed"

    def test_an_inactive_source_is_not_pulled(self, pull, feed, people):
        compute.source_update(actor=people["steward"], source=pull, active=False)
        assert pull_source(pull.pk) is None
        assert feed.requests == [] and job_runs() == []

    def test_a_private_url_without_an_allow_rule_is_refused_on_save(self, tenant_a, people, contract, feed):
        with pytest.raises(ValidationError) as refused:
            compute.source_create(actor=people["steward"], tenant=tenant_a, contract=contract, key="feed",
                                  name="Feed", kind="pull", pull_url=feed.url, pull_format="ndjson",
                                  pull_every_seconds=300)  # fmt: skip
        assert list(refused.value.message_dict) == ["pull_url"]
        assert "allow" in refused.value.message_dict["pull_url"][0]
        assert not PeriodicTask.objects.filter(task="compute.pull_source").exists()

    def test_the_api_answers_a_private_url_with_a_400_on_pull_url(self, client, contract, feed):
        response = client.post("/api/v1/sources/", {"key": "feed", "name": "Feed", "contract": contract.key,
                                                    "kind": "pull", "pull_url": feed.url, "pull_format": "ndjson",
                                                    "pull_every_seconds": 300}, format="json")  # fmt: skip
        assert response.status_code == 400
        assert "pull_url" in json.dumps(response.json())

    def test_a_body_that_changes_back_is_a_new_delivery(self, pull, feed):
        """A → B → A: the third pull changes the data back, so it must not be taken for a retry of the first."""
        first = pull_source(pull.pk)
        feed.body = ndjson([{**ROWS[0], "revenue": "130"}])
        pull_source(pull.pk)
        feed.body = ndjson(ROWS)
        third = pull_source(pull.pk)
        assert third != first
        assert GoldenDataPoint.objects.current().get(measure="revenue", entity_key="S001").value == Decimal("120.5")

    def test_a_source_whose_allow_rule_was_removed_can_still_be_deactivated(self, pull, allow_rule, superuser,
                                                                            people):  # fmt: skip
        """Stopping the pulls is how a steward reacts to the refusal; the guard is for fetching, not stopping."""
        security.outbound_disallow(actor=superuser, rule=allow_rule)
        compute.source_update(actor=people["steward"], source=pull, active=False)
        assert PeriodicTask.objects.get(name="Pull source tenant-a/feed").enabled is False

    def test_the_beat_schedule_follows_the_source(self, pull, people):
        task = PeriodicTask.objects.get(name="Pull source tenant-a/feed")
        assert (task.task, json.loads(task.args), task.enabled) == ("compute.pull_source", [pull.pk], True)
        assert (task.interval.every, task.interval.period) == (300, "seconds")
        compute.source_update(actor=people["steward"], source=pull, pull_every_seconds=900)
        task.refresh_from_db()
        assert task.interval.every == 900
        compute.source_update(actor=people["steward"], source=pull, active=False)
        task.refresh_from_db()
        assert task.enabled is False
        compute.source_update(actor=people["steward"], source=pull, active=True)
        task.refresh_from_db()
        assert task.enabled is True
        assert PeriodicTask.objects.filter(task="compute.pull_source").count() == 1


def test_a_push_source_has_no_beat_schedule(source):
    assert not PeriodicTask.objects.filter(task="compute.pull_source").exists()


# --- uniqueness across batches ---------------------------------------------------------------------

RECEIPT = {"name": "receipt_no", "logical_type": "string", "required": True, "unique": True, "role": "attribute"}


def receipt(row: dict[str, Any], number: str) -> dict[str, Any]:
    return {**row, "receipt_no": number}


class TestUniqueAcrossBatches:
    @pytest.fixture
    def unique_source(self, tenant_a, people):
        contract = activate_contract(tenant_a, people, key="receipts", fields=[*FIELDS, RECEIPT])
        return compute.source_create(actor=people["steward"], tenant=tenant_a, contract=contract, key="tills",
                                     name="Tills")  # fmt: skip

    def test_a_value_accepted_in_one_batch_is_rejected_in_the_next(self, client, unique_source):
        first = post(client, unique_source, [receipt(ROWS[0], "R1"), receipt(ROWS[1], "R2")])
        assert (first["accepted"], first["rejected"]) == (2, 0)
        second = post(client, unique_source, [receipt(ROWS[2], "R1"), receipt({**ROWS[2], "store_id": "S004"}, "R9")])
        assert (second["status"], second["accepted"], second["rejected"]) == ("completed_with_rejections", 1, 1)
        [rejection] = Rejection.objects.filter(batch_id=second["id"])
        assert (rejection.position, rejection.field, rejection.rule, rejection.severity) == (
            0, "receipt_no", "unique", "error")  # fmt: skip
        assert "earlier batch" in rejection.message
        assert not GoldenDataPoint.objects.filter(entity_key="S003").exists()
        assert GoldenDataPoint.objects.filter(entity_key="S004").count() == 2

    def test_a_value_delivered_earlier_is_rejected_even_when_repeated_in_one_chunk(self, client, unique_source):
        post(client, unique_source, [receipt(ROWS[0], "R1")])
        second = post(client, unique_source, [receipt(ROWS[1], "R1"), receipt(ROWS[2], "R1")])
        assert (second["accepted"], second["rejected"]) == (0, 2)
        assert not GoldenDataPoint.objects.filter(entity_key__in=["S002", "S003"]).exists()

    def test_a_rejected_record_does_not_claim_its_other_unique_values(self, client, tenant_a, people):
        till = {"name": "till_txn", "logical_type": "string", "required": True, "unique": True, "role": "attribute"}
        contract = activate_contract(tenant_a, people, key="two-unique", fields=[*FIELDS, RECEIPT, till])
        source = compute.source_create(actor=people["steward"], tenant=tenant_a, contract=contract, key="tills",
                                       name="Tills")  # fmt: skip
        post(client, source, [{**receipt(ROWS[0], "R1"), "till_txn": "T1"}])
        clash = post(client, source, [{**receipt(ROWS[1], "R1"), "till_txn": "T2"}])  # R1 again: rejected
        assert clash["rejected"] == 1
        later = post(client, source, [{**receipt(ROWS[2], "R3"), "till_txn": "T2"}])  # T2 was never accepted
        assert (later["accepted"], later["rejected"]) == (1, 0), list(
            Rejection.objects.filter(batch_id=later["id"]).values_list("field", "message"))  # fmt: skip

    def test_a_rejected_record_does_not_claim_its_other_unique_values_within_its_batch(self, client, tenant_a,
                                                                                      people):  # fmt: skip
        till = {"name": "till_txn", "logical_type": "string", "required": True, "unique": True, "role": "attribute"}
        contract = activate_contract(tenant_a, people, key="two-unique", fields=[*FIELDS, RECEIPT, till])
        source = compute.source_create(actor=people["steward"], tenant=tenant_a, contract=contract, key="tills",
                                       name="Tills")  # fmt: skip
        post(client, source, [{**receipt(ROWS[0], "R1"), "till_txn": "T1"}])
        batch = post(client, source, [{**receipt(ROWS[1], "R1"), "till_txn": "T2"},  # R1 again: rejected
                                      {**receipt(ROWS[2], "R3"), "till_txn": "T2"}])  # T2: never accepted  # fmt: skip
        assert (batch["accepted"], batch["rejected"]) == (1, 1), list(
            Rejection.objects.filter(batch_id=batch["id"]).values_list("position", "field", "message"))  # fmt: skip

    def test_a_record_rejected_by_normalization_does_not_claim_its_unique_values(self, client, tenant_a, people):
        """The normalizer, not the validator, rejects the first R1 (a strict map_codes it fails): the second is
        the batch's first accepted R1, not its duplicate."""
        channel = {"name": "channel", "logical_type": "string", "role": "attribute"}
        strict = {"kind": "map_codes", "field": "channel", "params": {"mapping": {"web": "web"}, "strict": True}}
        contract = activate_contract(tenant_a, people, key="coded", fields=[*FIELDS, RECEIPT, channel],
                                     steps=[*CAST_STEPS, strict])  # fmt: skip
        source = compute.source_create(actor=people["steward"], tenant=tenant_a, contract=contract, key="tills",
                                       name="Tills")  # fmt: skip
        batch = post(client, source, [{**receipt(ROWS[0], "R1"), "channel": "fax"},  # not a known code: rejected
                                      {**receipt(ROWS[1], "R1"), "channel": "web"}])  # fmt: skip
        assert (batch["accepted"], batch["rejected"]) == (1, 1), list(
            Rejection.objects.filter(batch_id=batch["id"]).values_list("position", "field", "message"))  # fmt: skip

    def test_a_refused_batch_leaves_no_unique_values_behind(self, client, unique_source, tenant_a, people):
        policy = host.policy_create(actor=people["admin"], tenant=tenant_a, kind="quality_gate", name="gate",
                                    parameters={"min_batch_pass_rate": 90, "on_failure": "refuse_batch"})  # fmt: skip
        host.policy_activate(actor=people["admin"], policy=policy)
        bad = {**ROWS[1], "store_id": "bad"}
        refused = post(client, unique_source, [receipt(ROWS[0], "R5"), receipt(bad, "R6"), receipt(bad, "R7")])
        assert refused["status"] == "refused"
        assert not UniqueValue.objects.exists()
        later = post(client, unique_source, [receipt(ROWS[0], "R5")])
        assert (later["status"], later["accepted"]) == ("completed", 1)

    def test_a_failed_batch_leaves_no_unique_values_behind(self, unique_source, people, settings, monkeypatch):
        """A batch that fails after some chunks were committed made no GDP: its values are free again."""
        from apps.storage import bulk

        settings.AURUM_INGEST_CHUNK_SIZE = 1
        settings.AURUM_INLINE_BATCH_BYTES = 10
        body = ndjson([receipt(ROWS[0], "R1"), receipt(ROWS[1], "R2")]).encode()
        batch, _ = compute.batch_receive(actor=people["steward"], source=unique_source, stream=io.BytesIO(body),
                                         content_type="application/x-ndjson")  # fmt: skip
        real, calls = bulk.write_raw_records, []

        def broken(rows):
            calls.append(rows)
            if len(calls) == 2:
                raise RuntimeError("disk full")
            return real(rows)

        monkeypatch.setattr(bulk, "write_raw_records", broken)
        with pytest.raises(RuntimeError, match="disk full"):
            batch_process(batch.pk)
        monkeypatch.undo()
        batch.refresh_from_db()
        assert batch.status == "failed"
        assert batch.error == "RuntimeError: disk full"
        assert not GoldenDataPoint.objects.exists()
        # The same records delivered again are not "already delivered": nothing of them was kept.
        again, _ = compute.batch_receive(actor=people["steward"], source=unique_source, stream=io.BytesIO(body),
                                         content_type="application/x-ndjson")  # fmt: skip
        again = batch_process(again.pk)
        assert list(Rejection.objects.filter(batch=again).values_list("position", "rule", "message")) == []
        assert (again.status, again.accepted, again.gdps_created) == ("completed", 2, 4)

    def test_a_compound_unique_key_accepted_in_one_batch_is_rejected_in_the_next(self, client, tenant_a, people):
        """A unique rule over two fields (ODCS arguments.properties): the pair is the key, across batches too; a
        record with a null part has no key, as within a batch."""
        till = {"name": "till", "logical_type": "string", "role": "attribute"}
        receipt_no = {**RECEIPT, "unique": False}
        rule = {"kind": "unique", "severity": "error", "params": {"properties": ["till", "receipt_no"]}}
        contract = activate_contract(tenant_a, people, key="pairs", fields=[*FIELDS, till, receipt_no], rules=[rule])
        source = compute.source_create(actor=people["steward"], tenant=tenant_a, contract=contract, key="tills",
                                       name="Tills")  # fmt: skip
        first = post(client, source, [{**receipt(ROWS[0], "R1"), "till": "T1"}, receipt(ROWS[1], "R1")])
        assert (first["accepted"], first["rejected"]) == (2, 0)
        second = post(client, source, [{**receipt(ROWS[1], "R1"), "till": "T1"},  # the pair again: rejected
                                       {**receipt(ROWS[2], "R1"), "till": "T2"},  # another pair
                                       {**receipt(ROWS[0], "R1")}])  # no till: no key  # fmt: skip
        rejections = list(Rejection.objects.filter(batch_id=second["id"]).values_list(
            "position", "field", "rule", "message"))  # fmt: skip
        assert rejections == [(0, "till, receipt_no", "unique",
                               "till, receipt_no was already delivered in an earlier batch.")]  # fmt: skip
        assert (second["accepted"], second["rejected"]) == (2, 1)
        assert set(UniqueValue.objects.filter(contract=contract).values_list("field", flat=True)) == {
            "till, receipt_no"}  # fmt: skip
        assert UniqueValue.objects.filter(contract=contract).count() == 2  # (T1, R1) and (T2, R1)

    def test_a_tolerant_compound_unique_rule_also_rejects_a_key_of_an_earlier_batch(self, client, tenant_a, people):
        """As for a one-field rule: the tolerance is about repeats within the batch (warnings, counted)."""
        till = {"name": "till", "logical_type": "string", "role": "attribute"}
        rule = {"kind": "unique", "severity": "error", "threshold": 5, "params": {"properties": ["till", "receipt_no"],
                "unit": "rows"}}  # fmt: skip
        contract = activate_contract(tenant_a, people, key="loose-pairs", fields=[*FIELDS, till, {**RECEIPT,
                                     "unique": False}], rules=[rule])  # fmt: skip
        source = compute.source_create(actor=people["steward"], tenant=tenant_a, contract=contract, key="tills",
                                       name="Tills")  # fmt: skip
        first = post(
            client, source, [{**receipt(ROWS[0], "R1"), "till": "T1"}, {**receipt(ROWS[2], "R1"), "till": "T1"}]
        )
        assert (first["accepted"], first["rejected"]) == (2, 0)  # tolerated within the batch: a warning
        assert Rejection.objects.get(batch_id=first["id"]).severity == "warning"
        again = post(client, source, [{**receipt(ROWS[1], "R1"), "till": "T1"}])
        assert (again["accepted"], again["rejected"]) == (0, 1)
        [rejection] = Rejection.objects.filter(batch_id=again["id"])
        assert (rejection.field, rejection.rule, rejection.severity) == ("till, receipt_no", "unique", "error")

    def test_a_repeat_of_a_compound_key_with_a_long_label_is_a_rejection(self, client, tenant_a, people):
        """Its label (the fields' names) is longer than the rejection's field column: cut, not a failed batch."""
        names = ["till_" + "x" * 120, "receipt_" + "y" * 120]
        fields = [*FIELDS, *({"name": name, "logical_type": "string", "role": "attribute"} for name in names)]
        rule = {"kind": "unique", "severity": "error", "params": {"properties": names}}
        contract = activate_contract(tenant_a, people, key="long-pairs", fields=fields, rules=[rule])
        source = compute.source_create(actor=people["steward"], tenant=tenant_a, contract=contract, key="tills",
                                       name="Tills")  # fmt: skip
        pair = dict.fromkeys(names, "1")
        batch = post(client, source, [{**ROWS[0], **pair}, {**ROWS[1], **pair}])
        assert (batch["status"], batch["accepted"], batch["rejected"]) == ("completed_with_rejections", 1, 1)
        [field] = Rejection.objects.filter(batch_id=batch["id"]).values_list("field", flat=True)
        assert field == ", ".join(names)[:200]
        again = post(client, source, [{**ROWS[2], **pair}])  # and across batches, by its stored label
        assert (again["accepted"], again["rejected"]) == (0, 1)

    def test_a_long_compound_label_is_stored_within_the_column_and_stays_distinct(self):
        from apps.compute.pipeline import _stored_label

        one, other = _stored_label("a" * 190 + ", b" * 10), _stored_label("a" * 190 + ", c" * 10)
        assert len(one) == len(other) == 200
        assert one != other and one.startswith("a" * 167 + "#")
        assert _stored_label("till, receipt_no") == "till, receipt_no"

    def test_a_repeat_within_a_batch_is_one_rejection_whatever_the_chunks(self, client, unique_source, settings):
        """The second R1 is a within-batch repeat, reported once, never as 'an earlier batch'."""
        settings.AURUM_INGEST_CHUNK_SIZE = 1
        batch = post(client, unique_source, [receipt(ROWS[0], "R1"), receipt(ROWS[1], "R1")])
        assert (batch["accepted"], batch["rejected"]) == (1, 1)
        rejections = list(Rejection.objects.filter(batch_id=batch["id"]).values_list("position", "rule", "message"))
        assert len(rejections) == 1, rejections
        assert rejections[0][:2] == (1, "unique")
        assert "earlier batch" not in rejections[0][2]


# --- survivorship within a batch, duplicates -------------------------------------------------------


@pytest.fixture
def receipts(tenant_a, people):
    """The primary key is the receipt, the GDP key is store × region × day: two receipts, one key."""
    fields = [{**f, "primary_key": False, "primary_key_position": None} if f["name"] == "store_id" else f
              for f in FIELDS]  # fmt: skip
    fields.append({**RECEIPT, "unique": False, "primary_key": True, "primary_key_position": 1})
    contract = activate_contract(tenant_a, people, key="receipts", fields=fields)
    return compute.source_create(actor=people["steward"], tenant=tenant_a, contract=contract, key="tills",
                                 name="Tills")  # fmt: skip


def test_the_later_record_of_a_batch_wins_and_the_earlier_is_kept_shadowed(receipts, client):
    source = receipts
    batch = post(client, source, [receipt({**ROWS[0], "revenue": "100", "units": "1"}, "R1"),
                                  receipt({**ROWS[0], "revenue": "150", "units": "2"}, "R2")])  # fmt: skip
    assert (batch["status"], batch["accepted"], batch["gdps_created"], batch["superseded"]) == ("completed", 2, 2, 0)
    versions = GoldenDataPoint.objects.filter(measure="revenue", entity_key="S001").order_by("id")
    assert [(v.value, v.raw_record.position) for v in versions] == [(Decimal("100"), 0), (Decimal("150"), 1)]
    shadowed, winner = versions
    assert winner.recorded_to is None
    assert shadowed.recorded_to == shadowed.recorded_from  # never current
    assert shadowed.batch_id == shadowed.superseded_by_batch_id == batch["id"]
    assert GoldenDataPoint.objects.current().get(measure="units", entity_key="S001").value == Decimal("2")
    history = client.get(f"/api/v1/golden-data-points/{winner.pk}/lineage/").json()["history"]
    assert len(history) == 2


def test_removing_an_override_brings_back_the_batch_winner_not_the_shadowed_record(receipts, client):
    post(client, receipts, [receipt({**ROWS[0], "revenue": "100"}, "R1"), receipt({**ROWS[0], "revenue": "150"}, "R2")])
    winner = GoldenDataPoint.objects.current().get(measure="revenue", entity_key="S001")
    assert winner.value == Decimal("150")
    response = client.post(f"/api/v1/golden-data-points/{winner.pk}/override/", {"value": "90", "reason": "recount"},
                           format="json")  # fmt: skip
    assert response.status_code == 201
    removed = client.post(f"/api/v1/golden-data-points/{response.json()['id']}/remove-override/", {}, format="json")
    assert removed.status_code == 200
    assert GoldenDataPoint.objects.current().get(measure="revenue", entity_key="S001").value == Decimal("150")


def test_a_record_sent_again_in_another_batch_counts_as_a_duplicate(client, source):
    first = post(client, source, ROWS)
    second = post(client, source, ROWS)
    assert (first["duplicates"], second["duplicates"]) == (0, len(ROWS))
    assert (second["gdps_created"], second["superseded"]) == (0, 0)  # the same values change no belief


def test_a_record_repeated_within_a_batch_counts_once(client, source):
    batch = post(client, source, [ROWS[0], ROWS[1], ROWS[0]])
    assert batch["duplicates"] == 1


@pytest.mark.parametrize("candidates_max", [200_000, 0])
def test_repeats_within_a_batch_are_counted_in_the_same_chunk_and_across_chunks(client, source, settings, monkeypatch,
                                                                                candidates_max):  # fmt: skip
    """Every copy after the first counts. The pipeline looks up only the hashes its filter of the batch's hashes
    finds again; with more such candidates than it keeps (none here, in the second case) it counts the repeats
    of every record instead: the same count."""
    from apps.compute import pipeline

    monkeypatch.setattr(pipeline, "REPEAT_CANDIDATES_MAX", candidates_max)
    settings.AURUM_INGEST_CHUNK_SIZE = 2
    batch = post(client, source, [ROWS[0], ROWS[1], ROWS[2], ROWS[2], ROWS[1], ROWS[0], ROWS[0]])
    assert (batch["received"], batch["duplicates"]) == (7, 4)


def test_duplicates_never_exceed_the_records_received(client, source):
    """Both copies of an earlier record are duplicates: 2 of 2 records, not 3."""
    post(client, source, ROWS[:1])
    again = post(client, source, [ROWS[0], ROWS[0]])
    assert again["received"] == 2
    assert again["duplicates"] == 2


# --- batch-level rules -----------------------------------------------------------------------------


def test_a_row_count_error_refuses_the_batch_whole(tenant_a, people, client):
    contract = activate_contract(tenant_a, people, key="counted",
                                 rules=[{"kind": "row_count", "severity": "error", "params": {"min": 5}}])  # fmt: skip
    source = compute.source_create(actor=people["steward"], tenant=tenant_a, contract=contract, key="tills",
                                   name="Tills")  # fmt: skip
    batch = post(client, source, ROWS)
    assert (batch["status"], batch["accepted"], batch["rejected"], batch["gdps_created"]) == ("refused", 3, 0, 0)
    assert batch["error"].startswith("Refused whole: row_count")
    [rejection] = Rejection.objects.filter(batch_id=batch["id"])
    assert (rejection.rule, rejection.severity, rejection.position, rejection.raw_record) == (
        "row_count", "error", None, None)  # fmt: skip
    assert not GoldenDataPoint.objects.exists()


def test_a_completeness_warning_is_reported_and_the_batch_completes(tenant_a, people, client):
    cashier = {"name": "cashier", "logical_type": "string", "required": False, "role": "attribute"}
    contract = activate_contract(tenant_a, people, key="staffed", fields=[*FIELDS, cashier],
                                 rules=[{"kind": "completeness", "field": "cashier", "severity": "warning",
                                         "threshold": 10}])  # fmt: skip
    source = compute.source_create(actor=people["steward"], tenant=tenant_a, contract=contract, key="tills",
                                   name="Tills")  # fmt: skip
    batch = post(client, source, [{**ROWS[0], "cashier": "ann"}, ROWS[1], ROWS[2]])  # 2 of 3 missing
    assert (batch["status"], batch["accepted"], batch["rejected"], batch["gdps_created"]) == ("completed", 3, 0, 6)
    [rejection] = Rejection.objects.filter(batch_id=batch["id"])
    assert (rejection.rule, rejection.field, rejection.severity, rejection.position) == (
        "completeness", "cashier", "warning", None)  # fmt: skip
    listed = client.get(f"/api/v1/batches/{batch['id']}/rejections/").json()["results"]
    assert [(r["rule"], r["severity"]) for r in listed] == [("completeness", "warning")]
