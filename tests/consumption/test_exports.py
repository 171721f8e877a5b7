"""Exports: every format read back, streaming vs background jobs, signed links, export policies."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import zipfile
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pyarrow.parquet as pq
import pytest
from django.core import signing
from django.test import Client

from apps.consumption.exports import services
from apps.consumption.exports.models import ExportJob
from apps.host.models import ContractField, ContractVersion
from apps.kernel.roles import RoleChoices
from tests.factories import (
    ContractVersionFactory,
    DataContractFactory,
    GoldenDataPointFactory,
    IngestionBatchFactory,
    PolicyFactory,
    SourceFactory,
)

pytestmark = pytest.mark.django_db
URL = "/api/v1/exports/gdps/"
DAY = datetime(2026, 11, 1, tzinfo=UTC)
FIELDS = [
    ("sale_date", "time", "internal"),
    ("store_id", "entity_key", "internal"),
    ("region", "dimension", "public"),
    ("channel", "dimension", "internal"),
    ("revenue", "measure", "internal"),
    ("margin", "measure", "confidential"),
    ("manager", "attribute", "restricted"),
]


@pytest.fixture
def contract(tenant_a):
    contract = DataContractFactory(tenant=tenant_a, key="sales")
    version = ContractVersionFactory(contract=contract, status="active")
    for position, (name, role, classification) in enumerate(FIELDS):
        ContractField.objects.create(version=version, position=position, name=name, role=role,
                                     logical_type="string", classification=classification)  # fmt: skip
    return contract


@pytest.fixture
def rows(contract):
    batch = IngestionBatchFactory(source=SourceFactory(contract=contract))
    version = ContractVersion.objects.get(contract=contract)
    made = []
    for i in range(6):
        made.append(GoldenDataPointFactory(
            batch=batch, contract_version=version, measure="revenue" if i % 3 else "margin", entity_key=f"S{i}",
            dimensions={"region": "EU" if i % 2 else "US", "channel": "web"}, observed_at=DAY + timedelta(days=i),
            value=Decimal(f"{i}.25"), unit="EUR", quality_flags=["late"] if i == 1 else [],
        ))  # fmt: skip
    return made


@pytest.fixture
def client(tenant_a, token_client):
    return token_client(tenant_a, RoleChoices.CONSUMER, scopes=["read"])


def body(response) -> bytes:
    assert response.status_code == 200, response.content[:500] if hasattr(response, "content") else response
    return b"".join(response.streaming_content)


def expected(rows):
    return [
        {"id": r.pk, "contract": "sales", "contract_version": "1.0.0", "measure": r.measure, "entity_key": r.entity_key,
         "dimensions": r.dimensions, "observed_at": r.observed_at, "value": r.value, "unit": "EUR",
         "quality_flags": r.quality_flags, "source": r.source.key, "batch": r.batch_id,
         "recorded_from": r.recorded_from, "recorded_to": None, "is_override": False}
        for r in sorted(rows, key=lambda r: r.pk)
    ]  # fmt: skip


def policy(tenant, kind, parameters, contract=None):
    return PolicyFactory(tenant=tenant, kind=kind, parameters=parameters, status="active", contract=contract)


class TestFormats:
    def test_csv(self, client, rows):
        data = list(csv.DictReader(io.StringIO(body(client.get(URL, {"format": "csv"})).decode())))
        assert len(data) == len(rows)
        for got, want in zip(data, expected(rows), strict=True):
            assert int(got["id"]) == want["id"] and got["measure"] == want["measure"]
            assert json.loads(got["dimensions"]) == want["dimensions"]
            assert datetime.fromisoformat(got["observed_at"]) == want["observed_at"]
            assert Decimal(got["value"]) == want["value"]
            assert json.loads(got["quality_flags"]) == want["quality_flags"]
            assert datetime.fromisoformat(got["recorded_from"]) == want["recorded_from"]
            assert got["recorded_to"] == "" and got["is_override"] == "false"
            assert (got["contract"], got["contract_version"], got["source"]) == ("sales", "1.0.0", want["source"])

    @pytest.mark.parametrize("fmt", ["json", "ndjson"])
    def test_json_and_ndjson(self, client, rows, fmt):
        raw = body(client.get(URL, {"format": fmt})).decode()
        data = json.loads(raw) if fmt == "json" else [json.loads(line) for line in raw.splitlines()]
        assert len(data) == len(rows)
        for got, want in zip(data, expected(rows), strict=True):
            assert got["id"] == want["id"] and got["dimensions"] == want["dimensions"]
            assert Decimal(got["value"]) == want["value"] and got["quality_flags"] == want["quality_flags"]
            assert datetime.fromisoformat(got["observed_at"]) == want["observed_at"]
            assert got["recorded_to"] is None and got["is_override"] is False

    def test_an_empty_json_export_is_an_empty_array(self, client, contract):
        assert json.loads(body(client.get(URL, {"format": "json"}))) == []

    def test_parquet(self, client, rows):
        table = pq.read_table(io.BytesIO(body(client.get(URL, {"format": "parquet"}))))
        data = table.to_pylist()
        assert table.schema.field("value").type.scale == 10
        for got, want in zip(data, expected(rows), strict=True):
            assert got["id"] == want["id"] and got["value"] == want["value"]
            assert got["observed_at"] == want["observed_at"]
            assert json.loads(got["dimensions"]) == want["dimensions"]
            assert got["is_override"] is False and got["recorded_to"] is None

    def test_xlsx(self, client, rows):
        book = zipfile.ZipFile(io.BytesIO(body(client.get(URL, {"format": "xlsx", "fields": "id,entity_key,value"}))))
        sheet = book.read("xl/worksheets/sheet1.xml").decode()
        shared = book.read("xl/sharedStrings.xml").decode() if "xl/sharedStrings.xml" in book.namelist() else ""
        strings = re.findall(r"<t[^>]*>([^<]*)</t>", shared)
        cells = []
        for row in re.findall(r"<row [^>]*>(.*?)</row>", sheet):
            values = []
            for attrs, inner in re.findall(r"<c ([^>]*)>(.*?)</c>", row):
                if 't="s"' in attrs:
                    values.append(strings[int(re.search(r"<v>(.*?)</v>", inner)[1])])
                elif 't="inlineStr"' in attrs or 't="str"' in attrs:
                    values.append(re.search(r"<t[^>]*>(.*?)</t>", inner)[1])
                else:
                    values.append(float(re.search(r"<v>(.*?)</v>", inner)[1]))
            cells.append(values)
        assert cells[0] == ["id", "entity_key", "value"]
        assert cells[1:] == [[float(w["id"]), w["entity_key"], float(w["value"])] for w in expected(rows)]

    def test_fields_and_filters_are_those_of_the_query_api(self, client, rows):
        data = list(csv.reader(io.StringIO(body(client.get(URL, {"dim.region": "EU", "fields": "entity_key,value",
                                                                  "measure": "revenue"})).decode())))  # fmt: skip
        assert data[0] == ["entity_key", "value"]
        assert [[key, Decimal(value)] for key, value in data[1:]] == [[r.entity_key, r.value] for r in sorted(
            rows, key=lambda r: r.pk) if r.dimensions["region"] == "EU" and r.measure == "revenue"]  # fmt: skip

    def test_bad_input_is_a_problem(self, client, rows):
        for params, pointer in (({"format": "pdf"}, "#/format"), ({"fields": "id,secret"}, "#/fields"),
                                ({"observed_at__gte": "soon"}, "#/observed_at__gte")):  # fmt: skip
            response = client.get(URL, params)
            assert response.status_code == 400 and response["Content-Type"] == "application/problem+json"
            assert response.json()["errors"][0]["pointer"] == pointer

    def test_a_moment_with_no_utc_equivalent_is_a_problem_not_a_server_error(self, client, rows):
        # Year 0 in UTC: the database adapters cannot convert it (it was a 500).
        for name in ("observed_at__lt", "as_of"):
            response = client.get(URL, {name: "0001-01-01T00:20:05+08:00"})
            assert response.status_code == 400, (name, response.content[:300])
            assert response.json()["errors"][0]["pointer"] == f"#/{name}"


class TestRecording:
    def test_a_stream_records_rows_checksum_and_requester(self, client, rows):
        response = client.get(URL, {"format": "csv"})
        job = ExportJob.objects.get(pk=response["X-Export-Id"])
        assert job.status == "running" and job.mode == "stream"
        content = body(response)
        job.refresh_from_db()
        assert job.status == "completed" and job.row_count == len(rows)
        assert job.checksum == hashlib.sha256(content).hexdigest() and job.size_bytes == len(content)
        assert job.requested_by == client.user and job.finished_at is not None

    def test_a_stream_the_client_abandons_is_recorded_as_failed(self, client, rows, tenant_a):
        prepared = services.export_prepare(tenant=tenant_a, dataset="gdps", format="ndjson", params={})
        job, chunks = services.export_stream(actor=client.user, prepared=prepared)
        next(chunks)
        chunks.close()  # what the server does when the client goes away
        job.refresh_from_db()
        assert job.status == "failed" and "stopped reading" in job.error


@pytest.mark.postgres
class TestCopyPath:
    """On PostgreSQL unmasked CSV comes from COPY: the same bytes as the writer, whichever path is taken."""

    @pytest.fixture
    def awkward(self, rows):
        tricky = ["a,b", 'say "hi"', "two\nlines", "Zürich ✓", ""]
        for row, text in zip(rows, tricky, strict=False):
            row.entity_key, row.unit = text, text
            row.value = Decimal("0.0000001") if text == "" else row.value
            row.recorded_from = row.recorded_from.replace(microsecond=123450)
            row.save()
        rows[-1].value = None
        rows[-1].recorded_from = rows[-1].recorded_from.replace(microsecond=0)
        rows[-1].is_override = True
        rows[-1].save()
        return rows

    def test_copy_writes_what_the_writer_writes(self, awkward, tenant_a):
        from apps.consumption.exports.pgcopy import CopyCsv
        from apps.consumption.exports.writers import write_csv

        for fields in ("", "entity_key,value,recorded_from"):
            prepared = services.export_prepare(tenant=tenant_a, dataset="gdps", format="csv", params={"fields": fields})
            body = prepared.body()
            assert isinstance(body, CopyCsv)
            copied = b"".join(body)
            assert copied == b"".join(write_csv(prepared.columns, prepared.rows()))
            assert body.count == len(awkward)
        assert "0.0000001000" in copied.decode() and '"two\nlines"' in copied.decode()

    def test_masked_values_take_the_writer(self, rows, tenant_a):
        policy(tenant_a, "classification_handling", {"internal": "masked"})
        prepared = services.export_prepare(tenant=tenant_a, dataset="gdps", format="csv", params={})
        assert not isinstance(prepared.body(), services.CopyCsv)

    def test_a_copy_the_client_abandons_leaves_the_connection_usable(self, client, rows, tenant_a, settings):
        from apps.consumption.exports import pgcopy

        settings.DEBUG = False
        pgcopy.CHUNK_BYTES, saved = 1, pgcopy.CHUNK_BYTES
        try:
            prepared = services.export_prepare(tenant=tenant_a, dataset="gdps", format="csv", params={})
            job, chunks = services.export_stream(actor=client.user, prepared=prepared)
            next(chunks), next(chunks)  # the header, then the first row
            chunks.close()
        finally:
            pgcopy.CHUNK_BYTES = saved
        job.refresh_from_db()
        assert job.status == "failed" and job.row_count >= 1


@pytest.fixture
def job(client, rows, settings, django_capture_on_commit_callbacks):
    """A background export job, completed, with its file."""
    settings.AURUM_EXPORT_STREAM_MAX_ROWS = 1
    with django_capture_on_commit_callbacks(execute=True):
        response = client.get(URL, {"format": "json"})
    return ExportJob.objects.get(pk=response.json()["id"])


class TestJobs:
    def test_above_the_threshold_a_job_writes_a_file_behind_a_signed_link(
        self, client, rows, settings, django_capture_on_commit_callbacks
    ):
        settings.AURUM_EXPORT_STREAM_MAX_ROWS = 3
        with django_capture_on_commit_callbacks(execute=True):
            response = client.get(URL, {"format": "csv"})
        assert response.status_code == 202
        job = client.get(response["Location"]).json()
        assert job["status"] == "completed" and job["mode"] == "job" and job["row_count"] == len(rows)
        download = client.get(job["download_url"])
        content = b"".join(download.streaming_content)
        assert download.status_code == 200 and hashlib.sha256(content).hexdigest() == job["checksum"]
        assert len(list(csv.DictReader(io.StringIO(content.decode())))) == len(rows)
        assert job["download_expires_in"] == 3600

    def test_below_the_threshold_no_job_is_queued(self, client, rows, settings):
        settings.AURUM_EXPORT_STREAM_MAX_ROWS = len(rows)
        response = client.get(URL, {"format": "csv"})
        assert response.status_code == 200 and response.streaming
        body(response)

    def test_an_expired_link_is_refused(self, client, job, monkeypatch):
        url = client.get(f"/api/v1/export-jobs/{job.pk}/").json()["download_url"]
        later = signing.time.time() + 3601
        monkeypatch.setattr(signing.time, "time", lambda: later)
        response = client.get(url)
        assert response.status_code == 403 and response.json()["type"] == "urn:aurum:problem:link-expired"

    def test_a_link_is_bound_to_its_job_and_tenant(self, client, job, tenant_a, tenant_b, token_client):
        url = f"/api/v1/export-jobs/{job.pk}/download/"
        forged = signing.TimestampSigner(salt=services.SIGNER_SALT).sign(f"{job.pk}:{tenant_b.pk}")
        for token, slug in ((forged, "invalid-link"), ("nonsense", "invalid-link"), ("", "invalid-link")):
            response = client.get(url, {"signature": token})
            assert response.status_code == 403 and response.json()["type"] == f"urn:aurum:problem:{slug}"
        good = services.export_download_token(job=job)
        other = token_client(tenant_b, RoleChoices.ADMIN)
        assert other.get(url, {"signature": good}).status_code == 404  # another tenant: not found
        assert other.get(f"/api/v1/export-jobs/{job.pk}/").status_code == 404

    def test_a_job_without_a_file_cannot_be_downloaded(self, client, tenant_a):
        job = ExportJob.objects.create(tenant=tenant_a, dataset="gdps", format="csv", mode="job")
        token = services.export_download_token(job=job)
        response = client.get(f"/api/v1/export-jobs/{job.pk}/download/", {"signature": token})
        assert response.status_code == 409 and response.json()["type"] == "urn:aurum:problem:not-ready"


class TestRetention:
    """Background export files are deleted after AURUM_EXPORT_FILE_DAYS; the job stays, as expired."""

    def test_a_file_past_retention_is_deleted_and_its_link_answers_gone(self, client, job, settings):
        from django.core.files.storage import default_storage
        from django.utils import timezone

        url = client.get(f"/api/v1/export-jobs/{job.pk}/").json()["download_url"]
        name, checksum = job.file.name, job.checksum
        assert services.export_files_prune(now=timezone.now() + timedelta(days=6)) == 0  # younger than 7 days
        assert services.export_files_prune(now=timezone.now() + timedelta(days=8)) == 1
        job.refresh_from_db()
        assert job.status == "expired" and not job.file and job.checksum == checksum and job.row_count
        assert not default_storage.exists(name)
        response = client.get(url)
        assert response.status_code == 410 and response.json()["type"] == "urn:aurum:problem:export-expired"
        assert services.export_files_prune(now=timezone.now() + timedelta(days=30)) == 0  # nothing left to delete

    def test_the_beat_job_records_what_it_deleted(self, job):
        from apps.consumption.exports.tasks import prune_exports
        from apps.runtime.models import JobRun

        ExportJob.objects.filter(pk=job.pk).update(finished_at=job.finished_at - timedelta(days=8))
        assert prune_exports() == 1
        assert JobRun.objects.get(task="consumption.prune_exports").detail == {"files_deleted": 1}


class TestPolicies:
    def test_every_unmet_condition_is_named(self, client, rows, tenant_a):
        policy(tenant_a, "export_control", {"allowed_formats": ["parquet"], "max_rows": 2,
                                            "max_classification": "internal"})  # fmt: skip
        response = client.get(URL, {"format": "csv"})
        assert response.status_code == 403 and response["Content-Type"] == "application/problem+json"
        problem = response.json()
        assert problem["type"] == "urn:aurum:problem:export-refused"
        messages = " ".join(item["message"] for item in problem["unmet"])
        assert "Format 'csv' is not allowed" in messages
        assert "6 rows; at most 2 may leave" in messages
        assert "margin" in messages and "above 'internal'" in messages
        assert len(problem["unmet"]) == 3
        assert not ExportJob.objects.exists()

    def test_narrower_filters_or_fields_can_meet_the_policy(self, client, rows, tenant_a):
        policy(tenant_a, "export_control", {"max_rows": 4, "max_classification": "internal"})
        assert client.get(URL, {"measure": "revenue"}).status_code == 200

    def test_excluded_fields_are_dropped_and_masked_ones_hidden(self, client, rows, tenant_a, contract):
        policy(tenant_a, "classification_handling", {"confidential": "excluded", "public": "masked"})
        policy(tenant_a, "export_control", {"max_classification": "internal"})
        data = json.loads(body(client.get(URL, {"format": "json"})))
        assert {row["measure"] for row in data} == {"revenue"}  # margin (confidential) rows dropped
        assert all(row["dimensions"] == {"region": "***", "channel": "web"} for row in data)  # region public
        job = ExportJob.objects.get()
        assert job.row_count == 4
        assert job.treatments["sales"]["rows_dropped_for_measures"] == ["margin"]
        assert job.treatments["sales"]["dimensions"] == {"region": "masked"}

    def test_masked_entity_keys_and_values(self, client, rows, tenant_a, contract):
        ContractField.objects.filter(name__in=["store_id", "revenue"]).update(classification="restricted")
        policy(tenant_a, "classification_handling", {"restricted": "masked"})
        data = json.loads(body(client.get(URL, {"format": "json", "measure": "revenue"})))
        assert data and all(row["entity_key"] == "***" and row["value"] is None for row in data)

    def test_a_field_that_must_be_encrypted_cannot_leave(self, client, rows, tenant_a):
        policy(tenant_a, "classification_handling", {"confidential": "encrypted"})
        response = client.get(URL, {"format": "csv"})
        assert response.status_code == 403
        assert "must be encrypted" in response.json()["unmet"][0]["message"]
        assert client.get(URL, {"measure": "revenue"}).status_code == 200  # margin does not leave

    def test_a_contract_policy_overrides_the_tenants(self, client, rows, tenant_a, contract):
        policy(tenant_a, "export_control", {"allowed_formats": ["parquet"]})
        policy(tenant_a, "export_control", {"allowed_formats": ["csv"]}, contract=contract)
        assert client.get(URL, {"format": "csv"}).status_code == 200


class TestPortal:
    def test_the_admin_lists_the_tenants_exports_with_a_download_link(self, tenant_a, member, client, rows, settings,
                                                                       django_capture_on_commit_callbacks):  # fmt: skip
        settings.AURUM_EXPORT_STREAM_MAX_ROWS = 1
        with django_capture_on_commit_callbacks(execute=True):
            job_id = client.get(URL, {"format": "csv"}).json()["id"]
        portal = Client()
        portal.force_login(member(tenant_a, RoleChoices.ANALYST))
        page = portal.get("/admin/consumption/exportjob/").content.decode()
        link = re.search(rf'href="(/api/v1/export-jobs/{job_id}/download/\?signature=[^"]+)"', page)
        assert link, page[:2000]
        assert portal.get(f"/admin/consumption/exportjob/{job_id}/change/").status_code == 200
        download = portal.get(link[1].replace("&amp;", "&"))
        assert download.status_code == 200 and b"".join(download.streaming_content).startswith(b"id,contract")


class TestKpiValues:
    KPI_URL = "/api/v1/exports/kpi-values/"

    def test_parquet_read_back(self, client, kpi):
        raw = body(client.get(self.KPI_URL, {"format": "parquet", "kpi": "net-sales", "grain": "period"}))
        data = pq.read_table(io.BytesIO(raw)).to_pylist()
        want = sorted((v for (label, _), v in kpi["values"].items() if label != "FY2026-Q1"),
                      key=lambda v: (v.period.start, v.dimensions_key, v.pk))  # fmt: skip
        assert [row["id"] for row in data] == [v.pk for v in want]
        for got, value in zip(data, want, strict=True):
            assert got["kpi"] == "net-sales" and got["kpi_version"] == "1.0.0" and got["grain"] == "period"
            assert got["period"] == value.period.label and got["period_start"] == value.period.start.isoformat()
            assert got["actual"] == value.actual and got["status"] == value.status
            assert json.loads(got["dimensions"]) == value.dimensions
            assert got["as_of"] == value.as_of

    def test_the_filters_of_the_kpi_values_api(self, client, kpi):
        query = {"format": "json", "kpi": "net-sales", "period_from": "FY2026-P02", "grain": "period",
                 "dim.region": "US"}  # fmt: skip
        data = json.loads(body(client.get(self.KPI_URL, query)))
        assert [(row["period"], row["dimensions"]) for row in data] == [
            ("FY2026-P02", {"region": "US"}), ("FY2026-P03", {"region": "US"})]  # fmt: skip
        assert json.loads(body(client.get(self.KPI_URL, {"format": "json", "kpi": "other"}))) == []
        response = client.get(self.KPI_URL, {"format": "csv", "period_to": "FY1999-P01"})
        assert response.status_code == 400 and response.json()["errors"][0]["pointer"] == "#/period_to"

    def test_a_large_export_is_a_job(self, client, kpi, settings, django_capture_on_commit_callbacks):
        settings.AURUM_EXPORT_STREAM_MAX_ROWS = 2
        with django_capture_on_commit_callbacks(execute=True):
            response = client.get(self.KPI_URL, {"format": "csv", "kpi": "net-sales"})
        assert response.status_code == 202
        job = client.get(response["Location"]).json()
        assert job["status"] == "completed" and job["dataset"] == "kpi-values" and job["row_count"] == 8
        content = b"".join(client.get(job["download_url"]).streaming_content)
        assert len(list(csv.DictReader(io.StringIO(content.decode())))) == 8

    def test_policies_govern_the_kpis_contract_fields(self, client, kpi, tenant_a):
        version = ContractVersionFactory(contract=kpi["version"].contract, status="active")
        for position, (name, role, classification) in enumerate(
            [("region", "dimension", "public"), ("revenue", "measure", "confidential")]
        ):
            ContractField.objects.create(version=version, position=position, name=name, role=role,
                                         logical_type="string", classification=classification)  # fmt: skip
        policy(tenant_a, "export_control", {"allowed_formats": ["csv"]})
        refused = client.get(self.KPI_URL, {"format": "json"})
        assert refused.status_code == 403 and refused.json()["type"] == "urn:aurum:problem:export-refused"
        policy(tenant_a, "export_control", {"allowed_formats": ["json"]}, contract=kpi["version"].contract)
        policy(tenant_a, "classification_handling", {"confidential": "masked", "public": "excluded"})
        data = json.loads(body(client.get(self.KPI_URL, {"format": "json"})))
        assert data and all(row["actual"] is None and row["dimensions"] == {} for row in data)
        assert row_status_kept(data)


def row_status_kept(data):
    return all(row["status"] in ("green", "red") for row in data)
