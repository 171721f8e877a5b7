"""Records in, Golden Data Points out: the ingest pipeline as a source and a steward see it."""

from __future__ import annotations

import io
import json
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.files.storage import default_storage
from django.db import DataError, OperationalError
from django.utils import timezone

from apps.compute import services as compute
from apps.compute.pipeline import batch_process
from apps.host import services as host
from apps.kernel.roles import RoleChoices
from apps.storage.models import GoldenDataPoint, IngestionBatch, RawRecord, Rejection
from tests.compute.conftest import activate_contract, other_session

pytestmark = pytest.mark.django_db

ROWS = [
    {"sale_date": "2026-11-01", "store_id": "S001", "region": "north", "revenue": "120.50", "units": "3"},
    {"sale_date": "2026-11-01", "store_id": "S002", "region": "south", "revenue": "80", "units": "2"},
]


@pytest.fixture
def client(tenant_a, token_client):
    return token_client(tenant_a, RoleChoices.STEWARD, scopes=["read", "write"])


def post(client, source, body, content_type="application/json", key=None):
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
    return client.generic("POST", f"/api/v1/sources/{source.pk}/batches/", body, content_type=content_type, **headers)


def ndjson(rows):
    return "\n".join(json.dumps(r) for r in rows) + "\n"


def csv_body(rows):
    header = list(rows[0])
    return "\n".join([",".join(header), *(",".join(str(r[h]) for h in header) for r in rows)]) + "\n"


def current(measure="revenue", entity="S001"):
    return GoldenDataPoint.objects.current().get(measure=measure, entity_key=entity)


class TestFormats:
    @pytest.mark.parametrize(
        ("content_type", "encode"),
        [("application/json", json.dumps), ("application/x-ndjson", ndjson), ("text/csv", csv_body)],
    )
    def test_each_format_becomes_raw_records_and_one_gdp_per_measure(self, client, source, content_type, encode):
        response = post(client, source, encode(ROWS), content_type)
        assert response.status_code == 201, response.json()
        batch = response.json()
        assert (batch["status"], batch["received"], batch["accepted"], batch["rejected"]) == ("completed", 2, 2, 0)
        assert batch["gdps_created"] == 4
        assert response["Location"].endswith(f"/api/v1/batches/{batch['id']}/")
        raw = RawRecord.objects.get(batch_id=batch["id"], position=0)
        assert raw.payload["store_id"] == "S001"  # exactly as received
        gdp = current()
        assert (gdp.value, gdp.unit, gdp.dimensions) == (Decimal("120.5"), "EUR", {"region": "north"})
        assert gdp.observed_at.date().isoformat() == "2026-11-01"
        assert gdp.raw_record == raw

    @pytest.mark.parametrize(
        ("content_type", "body", "line"),
        [
            ("application/json", '[\n  {"store_id": "S001"},\n  {"store_id" "S002"}\n]', 3),
            ("application/x-ndjson", '{"store_id": "S001"}\n{"store_id": S002}\n', 2),
            ("text/csv", "sale_date,store_id\n2026-11-01,S001\n2026-11-02,S002,extra\n", 3),
        ],
    )
    def test_a_malformed_body_is_refused_with_its_line_and_nothing_is_kept(self, client, source, content_type, body,
                                                                           line):  # fmt: skip
        response = post(client, source, body, content_type)
        assert response.status_code == 400
        problem = response.json()
        assert problem["type"] == "urn:aurum:problem:malformed-payload"
        assert problem["line"] == line
        assert f"line {line}" in problem["detail"]
        assert not IngestionBatch.objects.exists()

    def test_an_unknown_media_type_is_a_415(self, client, source):
        response = post(client, source, "<xml/>", "application/xml")
        assert response.status_code == 415

    def test_a_body_above_the_limit_is_a_413(self, client, source, settings):
        settings.AURUM_MAX_INGEST_BYTES = 50
        response = post(client, source, json.dumps(ROWS * 5))
        assert response.status_code == 413
        assert not IngestionBatch.objects.exists()


class TestFailuresInTheRequest:
    def test_a_pipeline_failure_answers_with_the_received_batch_and_a_retry_gets_it_back(self, client, source,
                                                                                          monkeypatch):  # fmt: skip
        def broken(plan):
            raise DataError("numeric field overflow")

        monkeypatch.setattr("apps.compute.pipeline._check_syntax", broken)
        response = post(client, source, json.dumps(ROWS), key="delivery-1")
        assert response.status_code == 500
        problem = response.json()
        assert (problem["type"], problem["detail"]) == ("urn:aurum:problem:batch-failed",
                                                        "DataError: numeric field overflow")  # fmt: skip
        batch = IngestionBatch.objects.get()
        assert (problem["batch"], batch.status) == (batch.pk, "failed")
        assert response["Location"].endswith(f"/api/v1/batches/{batch.pk}/")
        again = post(client, source, json.dumps(ROWS), key="delivery-1")
        assert (again.status_code, again.json()["id"], again.json()["status"]) == (200, batch.pk, "failed")

    def test_a_run_interrupted_in_the_request_leaves_the_batch_resumable(self, client, source, monkeypatch):
        def lost(plan):
            raise OperationalError("server closed the connection unexpectedly")

        monkeypatch.setattr("apps.compute.pipeline._check_syntax", lost)
        response = post(client, source, json.dumps(ROWS))
        assert (response.status_code, response.json()["status"]) == (202, "processing")
        monkeypatch.undo()
        assert batch_process(response.json()["id"]).status == "completed"  # what the stalled-batches job does
        assert RawRecord.objects.count() == 2


class TestIdempotency:
    def test_the_same_key_and_body_return_the_same_batch(self, client, source):
        first = post(client, source, json.dumps(ROWS), key="delivery-1")
        again = post(client, source, json.dumps(ROWS), key="delivery-1")
        assert (first.status_code, again.status_code) == (201, 200)
        assert again.json()["id"] == first.json()["id"]
        assert IngestionBatch.objects.count() == 1
        assert RawRecord.objects.count() == 2

    def test_the_same_key_with_another_body_is_a_409(self, client, source):
        post(client, source, json.dumps(ROWS), key="delivery-1")
        response = post(client, source, json.dumps(ROWS[:1]), key="delivery-1")
        assert response.status_code == 409
        assert response.json()["type"] == "urn:aurum:problem:idempotency-key-reused"
        assert IngestionBatch.objects.count() == 1


class TestValidation:
    def test_every_failure_is_a_rejection_never_a_silent_drop(self, client, source):
        bad = [
            {"sale_date": "2026-11-01", "store_id": "X1", "region": "north", "revenue": "1", "units": "1"},
            {"sale_date": "2026-11-01", "store_id": "S003", "region": "west", "revenue": "-5", "units": "1"},
            {"sale_date": "not a date", "store_id": "S004", "region": "north", "revenue": "1", "units": "1.5"},
            {"store_id": "S005", "region": "north", "revenue": "1", "units": "1"},
        ]
        batch = post(client, source, json.dumps([*ROWS, *bad])).json()
        assert (batch["status"], batch["accepted"], batch["rejected"]) == ("completed_with_rejections", 2, 4)
        rules = {(r.position, r.field, r.rule) for r in Rejection.objects.filter(batch_id=batch["id"])}
        assert (2, "store_id", "pattern") in rules
        assert (3, "region", "allowed_values") in rules
        assert (3, "revenue", "minimum") in rules
        assert (5, "sale_date", "required") in rules
        assert any(position == 4 and field == "sale_date" for position, field, _ in rules)
        assert any(position == 4 and field == "units" for position, field, _ in rules)
        assert RawRecord.objects.filter(batch_id=batch["id"]).count() == 6  # the raw layer keeps everything
        assert not GoldenDataPoint.objects.filter(entity_key__in=["X1", "S003", "S004", "S005"]).exists()

    def test_a_duplicate_primary_key_in_a_batch_is_rejected(self, client, source):
        batch = post(client, source, json.dumps([ROWS[0], {**ROWS[0], "revenue": "1"}])).json()
        assert batch["rejected"] == 1
        assert Rejection.objects.get(batch_id=batch["id"]).rule == "primary_key"

    def test_the_rejections_are_listed_by_the_api(self, client, source):
        batch = post(client, source, json.dumps([{**ROWS[0], "store_id": "bad"}])).json()
        listed = client.get(f"/api/v1/batches/{batch['id']}/rejections/").json()["results"]
        assert [(r["field"], r["rule"]) for r in listed] == [("store_id", "pattern")]


class TestQualityGate:
    @pytest.fixture
    def gate(self, tenant_a, people):
        def make(on_failure):
            policy = host.policy_create(actor=people["admin"], tenant=tenant_a, kind="quality_gate", name="gate",
                                        parameters={"min_batch_pass_rate": 90, "on_failure": on_failure})  # fmt: skip
            host.policy_activate(actor=people["admin"], policy=policy)

        return make

    BODY = json.dumps([*ROWS, {**ROWS[0], "store_id": "bad"}])  # 2 of 3 pass: 66.7 %

    def test_a_refused_batch_makes_no_gdp(self, client, source, gate):
        gate("refuse_batch")
        batch = post(client, source, self.BODY).json()
        assert batch["status"] == "refused"
        assert "66.67% is below the required 90%" in batch["error"]
        assert not GoldenDataPoint.objects.exists()
        assert RawRecord.objects.count() == 3  # still kept as received

    def test_a_gate_that_accepts_valid_records_keeps_them(self, client, source, gate):
        gate("accept_valid_records")
        batch = post(client, source, self.BODY).json()
        assert batch["status"] == "completed_with_rejections"
        assert GoldenDataPoint.objects.current().count() == 4
        assert Rejection.objects.filter(batch_id=batch["id"], rule="quality_gate").exists()


class TestSpool:
    """The received payload is spooled to file storage for processing, and deleted once the batch is final: the
    raw layer holds its records. (A batch that can still resume keeps it: tests/compute/test_pipeline_resume.py.)"""

    def receive(self, source, body):
        batch, _ = compute.batch_receive(actor=None, source=source, stream=io.BytesIO(body.encode()),
                                         content_type="application/x-ndjson")  # fmt: skip
        assert batch.payload_path and default_storage.exists(batch.payload_path)
        return batch

    @pytest.mark.parametrize(
        ("on_failure", "rows", "status"),
        [
            (None, ROWS, "completed"),
            (None, [*ROWS, {**ROWS[0], "store_id": "bad"}], "completed_with_rejections"),
            ("refuse_batch", [*ROWS, {**ROWS[0], "store_id": "bad"}], "refused"),
        ],
    )
    def test_a_final_batch_has_its_spool_deleted_after_commit(self, source, tenant_a, people, on_failure, rows,
                                                              status, django_capture_on_commit_callbacks):  # fmt: skip
        if on_failure:
            policy = host.policy_create(actor=people["admin"], tenant=tenant_a, kind="quality_gate", name="gate",
                                        parameters={"min_batch_pass_rate": 90, "on_failure": on_failure})  # fmt: skip
            host.policy_activate(actor=people["admin"], policy=policy)
        batch = self.receive(source, ndjson(rows))
        path = batch.payload_path
        with django_capture_on_commit_callbacks() as callbacks:
            batch_process(batch.pk)
        assert default_storage.exists(path)  # not before the final status commits
        for callback in callbacks:
            callback()
        batch.refresh_from_db()
        assert (batch.status, batch.payload_path) == (status, "")
        assert not default_storage.exists(path)
        assert RawRecord.objects.filter(batch=batch).count() == len(rows)

    def test_a_failed_batch_has_its_spool_deleted(self, source, settings, django_capture_on_commit_callbacks):
        settings.AURUM_INLINE_BATCH_BYTES = 10  # not parsed in the request: the worker finds it malformed
        batch = self.receive(source, json.dumps(ROWS[0]) + '\n{"store_id": S002}\n')
        path = batch.payload_path
        with django_capture_on_commit_callbacks(execute=True):
            batch = batch_process(batch.pk)
        assert (batch.status, batch.payload_path) == ("failed", "")
        assert not default_storage.exists(path)
        batch.refresh_from_db()
        assert batch.payload_path == ""

    def test_a_spool_that_cannot_be_deleted_leaves_the_batch_final(self, source, monkeypatch, caplog,
                                                                   django_capture_on_commit_callbacks):  # fmt: skip
        batch = self.receive(source, ndjson(ROWS))
        path = batch.payload_path

        def refuse(name):
            raise PermissionError(13, "Permission denied", name)

        monkeypatch.setattr(default_storage, "delete", refuse)
        with django_capture_on_commit_callbacks(execute=True):
            assert batch_process(batch.pk).status == "completed"
        assert f"Could not delete the spooled payload {path}" in caplog.text
        monkeypatch.undo()
        default_storage.delete(path)


class TestSurvivorship:
    def send(self, client, source, revenue, date="2026-11-01"):
        return post(client, source, json.dumps([{**ROWS[0], "revenue": revenue, "sale_date": date}])).json()

    def test_latest_wins_and_the_old_version_is_kept(self, client, source):
        first = self.send(client, source, "100")
        second = self.send(client, source, "110")
        assert second["superseded"] == 1
        versions = GoldenDataPoint.objects.filter(measure="revenue", entity_key="S001").order_by("recorded_from")
        assert [(v.value, v.recorded_to is None) for v in versions] == [(Decimal("100"), False), (Decimal("110"), True)]
        assert versions[0].superseded_by_batch_id == second["id"]
        assert versions[0].batch_id == first["id"]

    def test_the_same_value_again_makes_no_new_version(self, client, source):
        self.send(client, source, "100")
        again = self.send(client, source, "100.00")
        assert again["superseded"] == 0
        assert GoldenDataPoint.objects.filter(measure="revenue").count() == 1

    def test_the_higher_priority_source_wins(self, tenant_a, people, client):
        contract = activate_contract(tenant_a, people, key="prio", survivorship="source_priority")
        gold = compute.source_create(actor=people["steward"], tenant=tenant_a, contract=contract, key="erp",
                                     name="ERP", priority=200)  # fmt: skip
        tin = compute.source_create(actor=people["steward"], tenant=tenant_a, contract=contract, key="sheet",
                                    name="Sheet", priority=10)  # fmt: skip
        self.send(client, gold, "100")
        lost = self.send(client, tin, "999")
        assert lost["superseded"] == 0
        assert current().value == Decimal("100")
        # revenue lost to the higher priority (kept as a version never current); units was unchanged
        assert GoldenDataPoint.objects.filter(batch_id=lost["id"], recorded_to__isnull=False).count() == 1
        self.send(client, gold, "105")
        assert current().value == Decimal("105")

    def test_a_steward_override_wins_until_removed(self, client, source):
        self.send(client, source, "100")
        gdp = current()
        override = client.post(f"/api/v1/golden-data-points/{gdp.pk}/override/",
                               {"value": "90", "reason": "till miscount"}, format="json")  # fmt: skip
        assert override.status_code == 201, override.json()
        self.send(client, source, "120")
        assert current().value == Decimal("90")
        assert current().is_override
        removed = client.post(f"/api/v1/golden-data-points/{current().pk}/remove-override/", {}, format="json")
        assert removed.status_code == 200
        assert current().value == Decimal("120")  # the latest data, as the rule says
        assert not current().is_override

    def test_an_override_outlives_the_account_of_its_steward(self, client, source):
        """overridden_by has no database foreign key (storage.models.ROW_FK_NOTE): Django's SET_NULL empties it."""
        self.send(client, source, "100")
        response = client.post(f"/api/v1/golden-data-points/{current().pk}/override/",
                               {"value": "90", "reason": "till miscount"}, format="json")  # fmt: skip
        assert response.status_code == 201, response.json()
        steward = current().overridden_by
        assert steward == client.user
        steward.delete()
        assert (current().value, current().is_override, current().overridden_by_id) == (Decimal("90"), True, None)

    @pytest.mark.postgres
    @pytest.mark.django_db(transaction=True)  # the test's transaction would hold the batch's merge lock to its end
    def test_an_override_waits_for_a_merge_of_its_contract_and_is_refused_while_one_goes_on(
        self, client, source, monkeypatch
    ):
        from apps.storage import services as storage_services
        from apps.storage.merge import MERGE_LOCK

        monkeypatch.setattr(storage_services, "OVERRIDE_WAIT", "100ms")
        self.send(client, source, "100")
        url = f"/api/v1/golden-data-points/{current().pk}/override/"
        with other_session() as merging:  # a batch of the contract being merged, in another worker
            merging.execute("SELECT pg_advisory_lock(%s, %s)", [MERGE_LOCK, current().contract_id])
            refused = client.post(url, {"value": "90", "reason": "till miscount"}, format="json")
            assert refused.status_code == 409
            assert refused.json()["type"] == "urn:aurum:problem:contract-being-merged"
            assert (current().value, current().is_override) == (Decimal("100"), False)
        accepted = client.post(url, {"value": "90", "reason": "till miscount"}, format="json")  # the merge is over
        assert accepted.status_code == 201, accepted.json()
        assert (current().value, current().is_override) == (Decimal("90"), True)

    def test_an_override_needs_a_reason(self, client, source):
        self.send(client, source, "100")
        response = client.post(f"/api/v1/golden-data-points/{current().pk}/override/", {"value": "1", "reason": ""},
                               format="json")  # fmt: skip
        assert response.status_code == 400


class TestAsOfAndLineage:
    def test_as_of_gives_what_was_believed_then(self, client, source):
        post(client, source, json.dumps([{**ROWS[0], "revenue": "100"}]))
        between = timezone.now()
        post(client, source, json.dumps([{**ROWS[0], "revenue": "110"}]))
        then = client.get("/api/v1/golden-data-points/", {"as_of": between.isoformat(), "measure": "revenue"}).json()
        now = client.get("/api/v1/golden-data-points/", {"measure": "revenue"}).json()
        assert [r["value"] for r in then["results"]] == ["100.0000000000"]
        assert [r["value"] for r in now["results"]] == ["110.0000000000"]

    def test_lineage_goes_back_to_the_raw_record_batch_and_source(self, client, source):
        batch = post(client, source, json.dumps(ROWS)).json()
        gdp = current()
        lineage = client.get(f"/api/v1/golden-data-points/{gdp.pk}/lineage/").json()
        assert lineage["raw_record"]["payload"]["store_id"] == "S001"
        assert lineage["batch"]["id"] == batch["id"]
        assert lineage["source"]["key"] == "tills"
        assert len(lineage["history"]) == 1

    def test_a_batch_lists_what_it_created_and_superseded(self, client, source):
        first = post(client, source, json.dumps(ROWS)).json()
        second = post(client, source, json.dumps([{**ROWS[0], "revenue": "1"}])).json()
        created = client.get("/api/v1/golden-data-points/", {"batch": second["id"], "history": "true"}).json()
        superseded = client.get("/api/v1/golden-data-points/", {"superseded_by_batch": second["id"],
                                                                "history": "true"}).json()  # fmt: skip
        assert created["count"] == 1
        assert [(r["measure"], r["batch"]) for r in superseded["results"]] == [("revenue", first["id"])]


class TestRawLayer:
    def test_raw_records_cannot_be_changed_or_deleted(self, client, source):
        from apps.storage.models import AppendOnlyError

        post(client, source, json.dumps(ROWS))
        raw = RawRecord.objects.first()
        raw.payload = {"tampered": True}
        with pytest.raises(AppendOnlyError):
            raw.save()
        with pytest.raises(AppendOnlyError):
            RawRecord.objects.all().delete()
        with pytest.raises(AppendOnlyError):
            RawRecord.objects.update(hash="x")

    def test_retention_deletes_only_expired_records(self, client, source, tenant_a, tenant_b):
        from datetime import timedelta

        from apps.storage.services import raw_records_expire

        post(client, source, json.dumps(ROWS))
        kept = RawRecord.objects.count()
        assert raw_records_expire(tenant=tenant_a, older_than_days=30) == 0
        later = timezone.now() + timedelta(days=31)
        assert raw_records_expire(tenant=tenant_b, older_than_days=30, now=later) == 0
        assert RawRecord.objects.count() == kept
        assert raw_records_expire(tenant=tenant_a, older_than_days=30, now=later) == kept
        assert GoldenDataPoint.objects.current().count() == 4  # GDPs stay; their raw link is emptied
        assert not GoldenDataPoint.objects.filter(raw_record__isnull=False).exists()

    def test_the_retention_job_follows_the_effective_policy_and_never_touches_kept_rows(
        self, client, source, tenant_a, tenant_b, people, member
    ):
        """Tenant A keeps raw records 30 days, and 60 for its `counted` contract (a contract's own policy decides
        for it); tenant B has no retention policy and keeps them for ever; a batch still processing keeps its
        records whatever their age (it may need them to resume)."""
        from apps.runtime.models import JobRun
        from apps.storage.services import raw_records_retention_run
        from apps.storage.tasks import expire_raw_records

        def retention(days, contract=None):
            policy = host.policy_create(actor=people["admin"], tenant=tenant_a, contract=contract, kind="retention",
                                        name=f"raw {days}", parameters={"raw_days": days})  # fmt: skip
            host.policy_activate(actor=people["admin"], policy=policy)

        def deliver(target, rows):
            batch, _ = compute.batch_receive(actor=None, source=target, stream=io.BytesIO(json.dumps(rows).encode()),
                                             content_type="application/json")  # fmt: skip
            return batch_process(batch.pk)

        counted = activate_contract(tenant_a, people, key="counted")
        other = compute.source_create(actor=people["steward"], tenant=tenant_a, contract=counted, key="other",
                                      name="Other")  # fmt: skip
        retention(30)
        retention(60, counted)
        b_people = {"steward": member(tenant_b, RoleChoices.STEWARD), "admin": member(tenant_b, RoleChoices.ADMIN)}
        b_source = compute.source_create(actor=b_people["steward"], tenant=tenant_b,
                                         contract=activate_contract(tenant_b, b_people), key="tills", name="Tills")  # fmt: skip
        deliver(source, ROWS)
        deliver(other, ROWS)
        b_batch = deliver(b_source, ROWS)
        stuck, _ = compute.batch_receive(actor=None, source=source, stream=io.BytesIO(json.dumps(ROWS[:1]).encode()),
                                         content_type="application/json")  # fmt: skip
        IngestionBatch.objects.filter(pk=stuck.pk).update(status="processing")  # its worker died after a chunk
        RawRecord.objects.bulk_create([RawRecord(tenant=tenant_a, batch=stuck, position=0, line=1, payload=ROWS[0],
                                                 hash="h", received_at=timezone.now())])  # fmt: skip
        assert RawRecord.objects.count() == 7

        day = timezone.now()
        assert raw_records_retention_run(now=day + timedelta(days=29)) == {}
        assert RawRecord.objects.count() == 7
        assert raw_records_retention_run(now=day + timedelta(days=31)) == {"tenant-a": 2}  # store-sales only
        assert list(RawRecord.objects.filter(batch__source=source).values_list("batch", flat=True)) == [stuck.pk]
        assert RawRecord.objects.filter(batch__source=other).count() == 2
        assert expire_raw_records.apply().get() == 0  # the beat job, today: nothing is that old
        run = JobRun.objects.get(task="storage.expire_raw_records")
        assert (run.status, run.detail) == ("succeeded", {"expired": {}})
        assert RawRecord.objects.count() == 5
        assert raw_records_retention_run(now=day + timedelta(days=61)) == {"tenant-a": 2}  # counted's turn
        assert raw_records_retention_run(now=day + timedelta(days=10000)) == {}
        assert sorted(RawRecord.objects.values_list("tenant__slug", "batch")) == [
            ("tenant-a", stuck.pk), ("tenant-b", b_batch.pk), ("tenant-b", b_batch.pk)]  # fmt: skip
        assert GoldenDataPoint.objects.current().count() == 12  # GDPs stay; their raw link is emptied

    def test_the_retention_job_has_a_daily_beat_schedule(self):
        from django_celery_beat.models import IntervalSchedule, PeriodicTask

        task = PeriodicTask.objects.get(name="Expire raw records")
        assert (task.task, task.enabled) == ("storage.expire_raw_records", True)
        assert (task.interval.every, task.interval.period) == (86400, IntervalSchedule.SECONDS)


@pytest.mark.postgres
def test_on_postgresql_the_database_itself_refuses_to_change_raw_records(client, source):
    from django.db import connection, transaction
    from django.db.utils import DatabaseError

    post(client, source, json.dumps(ROWS))
    for statement in ("UPDATE storage_rawrecord SET hash = 'x'", "DELETE FROM storage_rawrecord"):
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(statement)
    assert RawRecord.objects.count() == 2


@pytest.mark.postgres
def test_on_postgresql_a_raw_payload_is_kept_as_its_canonical_json_text(client, source, tenant_a):
    """`json`, not `jsonb`: the text as written (sorted keys, no spaces, non-ASCII as is), read back as a dict, also
    for a record saved through the ORM; its hash is the hash of that very text."""
    import hashlib

    from django.db import connection

    row = {**ROWS[0], "manager": 'Zoë\t"Q" \\ 東京'}
    batch = post(client, source, json.dumps([row])).json()
    raw = RawRecord.objects.get(batch_id=batch["id"])
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_typeof(payload)::text, payload::text FROM storage_rawrecord WHERE id = %s", [raw.pk])
        kind, text = cursor.fetchone()
    assert kind == "json"
    assert text == json.dumps(row, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert raw.hash == hashlib.sha256(text.encode()).hexdigest()
    assert raw.payload == row
    saved = RawRecord.objects.create(tenant=tenant_a, batch_id=batch["id"], position=1, line=2, payload={"b": [1.5]},
                                     hash="h", received_at=timezone.now())  # fmt: skip
    assert RawRecord.objects.get(pk=saved.pk).payload == {"b": [1.5]}


class TestStorageLimits:
    """Values a Golden Data Point cannot hold are the record's fault: a rejection, never a failed batch."""

    @pytest.mark.parametrize("revenue", ["1" + "0" * 20, "-1" + "0" * 20, "1e25"])
    def test_a_measure_too_large_for_a_gdp_is_rejected(self, client, source, revenue):
        rows = [ROWS[0], {**ROWS[1], "revenue": revenue}]
        response = post(client, source, json.dumps(rows))
        assert response.status_code == 201, response.json()
        batch = response.json()
        assert (batch["status"], batch["accepted"], batch["rejected"]) == ("completed_with_rejections", 1, 1)
        [rejection] = Rejection.objects.filter(batch_id=batch["id"])
        assert (rejection.position, rejection.field, rejection.severity) == (1, "revenue", "error")
        assert GoldenDataPoint.objects.filter(entity_key="S001").count() == 2

    @pytest.mark.postgres  # SQLite keeps decimals as floating point: 20 digits and 2 decimals do not survive
    def test_the_largest_measure_a_gdp_holds_is_accepted(self, client, source):
        rows = [{**ROWS[0], "revenue": "9" * 20 + ".25"}]
        response = post(client, source, json.dumps(rows))
        assert response.status_code == 201, response.json()
        assert response.json()["accepted"] == 1
        assert current().value == Decimal("9" * 20 + ".25")

    @pytest.mark.parametrize(("entity", "longest"), [(["customer"], 500), (["customer", "site"], 249)])
    def test_an_entity_key_too_long_for_a_gdp_is_rejected(self, client, tenant_a, people, entity, longest):
        fields = [
            {"name": "sale_date", "logical_type": "date", "required": True, "role": "time"},
            *({"name": name, "logical_type": "string", "required": True, "role": "entity_key"} for name in entity),
            {"name": "revenue", "logical_type": "number", "required": True, "role": "measure", "unit": "EUR"},
        ]
        contract = activate_contract(tenant_a, people, key="free-keys", fields=fields,
                                     steps=[{"kind": "cast", "field": "sale_date", "params": {"to": "date"}}])  # fmt: skip
        source = compute.source_create(actor=people["steward"], tenant=tenant_a, contract=contract, key="crm",
                                       name="CRM")  # fmt: skip
        row = {"sale_date": "2026-11-01", "revenue": 5, **dict.fromkeys(entity, "c" * longest)}
        rows = [row, {**row, entity[0]: "c" * (longest + 1)}]
        response = post(client, source, json.dumps(rows))
        assert response.status_code == 201, response.json()
        batch = response.json()
        assert (batch["accepted"], batch["rejected"]) == (1, 1)
        [rejection] = Rejection.objects.filter(batch_id=batch["id"])
        assert (rejection.position, rejection.field, rejection.rule) == (1, entity[0], "max_length")
        [gdp] = GoldenDataPoint.objects.filter(contract=contract)
        assert len(gdp.entity_key) == len(entity) * longest + len(entity) - 1

    @pytest.mark.parametrize("value", ["NaN", "1e400", '"a\\u0000b"', '"\\ud800"'])
    def test_a_value_the_raw_layer_cannot_hold_is_a_malformed_payload(self, client, source, value):
        body = ndjson(ROWS) + '{"sale_date": "2026-11-01", "store_id": "S003", "region": "north", "revenue": %s}\n'
        response = post(client, source, body % value, "application/x-ndjson")
        assert response.status_code == 400, response.json()
        problem = response.json()
        assert (problem["type"], problem["line"], problem["position"]) == ("urn:aurum:problem:malformed-payload", 3, 2)
        assert problem["detail"].startswith("line 3: record 2: ")
        assert not RawRecord.objects.exists() and not GoldenDataPoint.objects.exists()
