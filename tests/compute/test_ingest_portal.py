"""The ingestion pages of the steward portal, used the way people use them: create a source, upload a
file, read the batch and its rejections, follow a Golden Data Point back to its raw record, override it."""

from __future__ import annotations

import html
import json
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.messages import get_messages
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from apps.compute import services as compute
from apps.compute.models import NormalizationRule, Source
from apps.host import services as host
from apps.kernel.roles import RoleChoices
from apps.storage.models import GoldenDataPoint, IngestionBatch, RawRecord
from tests.compute.conftest import activate_contract
from tests.factories import RawRecordFactory

pytestmark = pytest.mark.django_db

ROWS = [
    {"sale_date": "2026-11-01", "store_id": "S001", "region": "north", "revenue": "120.50", "units": "3"},
    {"sale_date": "2026-11-01", "store_id": "S002", "region": "south", "revenue": "80", "units": "2"},
]
BAD_ROWS = [
    {"sale_date": "2026-11-01", "store_id": "X1", "region": "north", "revenue": "1", "units": "1"},
    {"sale_date": "2026-11-01", "store_id": "S003", "region": "west", "revenue": "5", "units": "1"},
]
SOURCES = reverse("admin:compute_source_changelist")
SOURCE_ADD = reverse("admin:compute_source_add")
BATCHES = reverse("admin:storage_ingestionbatch_changelist")
GDPS = reverse("admin:storage_goldendatapoint_changelist")
RULES = reverse("admin:compute_normalizationrule_changelist")
RULE_ADD = reverse("admin:compute_normalizationrule_add")


# --- helpers ----------------------------------------------------------------------------------------
def signed_in(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def ndjson(rows: list[dict[str, Any]]) -> bytes:
    return ("\n".join(json.dumps(row) for row in rows) + "\n").encode()


def upload_url(source: Source) -> str:
    return reverse("admin:compute_source_upload", args=[source.pk])


def batch_url(batch: IngestionBatch) -> str:
    return reverse("admin:storage_ingestionbatch_change", args=[batch.pk])


def gdp_url(gdp: GoldenDataPoint, view: str = "change") -> str:
    return reverse(f"admin:storage_goldendatapoint_{view}", args=[gdp.pk])


def upload(client: Client, source: Source, name: str, body: bytes, **data: Any) -> Any:
    return client.post(upload_url(source), {"file": SimpleUploadedFile(name, body), **data}, follow=True)


def page_messages(response: Any) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def shown(response: Any) -> list[Any]:
    assert response.status_code == 200, response.status_code
    return list(response.context["cl"].result_list)


def current(entity: str = "S001", measure: str = "revenue") -> GoldenDataPoint:
    return GoldenDataPoint.objects.current().get(measure=measure, entity_key=entity)


@pytest.fixture
def steward(people: dict[str, Any]) -> Client:
    return signed_in(people["steward"])


@pytest.fixture
def analyst(tenant_a: Any, member: Any) -> Client:
    return signed_in(member(tenant_a, RoleChoices.ANALYST))


# --- sources ------------------------------------------------------------------------------------------
class TestSources:
    def test_a_steward_creates_a_source_through_the_service_and_is_sent_to_its_upload_page(
        self, steward, tenant_a, contract
    ):
        response = steward.post(
            SOURCE_ADD,
            {"tenant": tenant_a.pk, "key": "pos-export", "name": "POS export", "contract": contract.pk,
             "kind": "upload", "priority": 50, "active": "on"},
        )  # fmt: skip
        source = Source.objects.get(key="pos-export")
        assert response.status_code == 302
        assert response["Location"] == upload_url(source)
        assert (source.tenant, source.contract, source.priority) == (tenant_a, contract, 50)

    def test_a_pull_url_the_outbound_guard_refuses_is_an_error_on_the_field(self, steward, tenant_a, contract):
        response = steward.post(
            SOURCE_ADD,
            {"tenant": tenant_a.pk, "key": "feed", "name": "Feed", "contract": contract.pk, "kind": "pull",
             "priority": 100, "active": "on", "pull_url": "http://127.0.0.1:9/export.ndjson", "pull_format": "ndjson",
             "pull_every_seconds": 3600},
        )  # fmt: skip
        assert response.status_code == 200
        errors = response.context["adminform"].form.errors
        assert list(errors) == ["pull_url"], errors
        assert not Source.objects.filter(key="feed").exists()

    def test_the_list_shows_the_last_batch_of_each_source(self, steward, source):
        upload(steward, source, "sales.ndjson", ndjson(ROWS))
        batch = IngestionBatch.objects.get()
        response = steward.get(SOURCES)
        row = shown(response)[0]
        assert (row.key, row._last_batch_id, row._last_batch_status) == ("tills", batch.pk, "completed")
        assert batch_url(batch) in response.content.decode()
        assert upload_url(source) in response.content.decode()


# --- uploads --------------------------------------------------------------------------------------
class TestUpload:
    def test_a_steward_uploads_ndjson_and_lands_on_the_batch_page_with_its_counts(self, steward, source):
        page = steward.get(upload_url(source))
        assert page.status_code == 200
        assert "sale_date" in page.content.decode()  # the fields the contract expects are listed

        response = upload(steward, source, "sales.ndjson", ndjson(ROWS), idempotency_key="tills-2026-11-01")

        batch = IngestionBatch.objects.get()
        assert response.redirect_chain == [(batch_url(batch), 302)]
        assert (batch.status, batch.format, batch.idempotency_key) == ("completed", "ndjson", "tills-2026-11-01")
        assert batch.submitted_by is not None
        text = response.content.decode()
        assert 'id="count-received"><strong>2</strong>' in text
        assert 'id="count-gdps-created"' in text and f"?batch={batch.pk}" in text
        assert any("2 records received, 2 accepted, 0 rejected" in m for m in page_messages(response))
        assert RawRecord.objects.filter(batch=batch).count() == 2

    def test_the_same_file_and_idempotency_key_again_returns_the_first_batch(self, steward, source):
        upload(steward, source, "sales.ndjson", ndjson(ROWS), idempotency_key="k1")
        response = upload(steward, source, "sales.ndjson", ndjson(ROWS), idempotency_key="k1")
        batch = IngestionBatch.objects.get()
        assert response.redirect_chain == [(batch_url(batch), 302)]
        assert any("already uploaded" in m for m in page_messages(response))

    def test_a_malformed_csv_shows_its_line_and_creates_nothing(self, steward, source):
        body = b"sale_date,store_id,region,revenue,units\n2026-11-01,S001,north,1,1\n2026-11-02,S002,south,2,2,extra\n"
        response = upload(steward, source, "sales.csv", body)
        assert response.status_code == 200
        assert response.redirect_chain == []
        errors = response.context["form"].errors["file"]
        assert len(errors) == 1 and "line 3" in errors[0], errors
        assert "line 3" in response.content.decode()
        assert not IngestionBatch.objects.exists()
        assert not RawRecord.objects.exists()

    def test_a_file_of_another_kind_is_refused_by_its_extension(self, steward, source):
        response = upload(steward, source, "sales.xlsx", b"PK\x03\x04")
        assert ".json, .ndjson, .jsonl or .csv" in response.context["form"].errors["file"][0]
        assert not IngestionBatch.objects.exists()

    def test_an_inactive_source_takes_no_upload(self, steward, people, source):
        compute.source_update(actor=people["steward"], source=source, active=False)
        response = upload(steward, source, "sales.ndjson", ndjson(ROWS))
        assert "inactive" in " ".join(response.context["form"].non_field_errors())
        assert not IngestionBatch.objects.exists()

    def test_a_crash_while_processing_lands_on_the_batch_page_with_the_error(self, steward, source, monkeypatch):
        def crash(batch_id: int) -> Any:
            raise RuntimeError("worker exploded")

        monkeypatch.setattr("apps.compute.pipeline.batch_process", crash)
        response = upload(steward, source, "sales.ndjson", ndjson(ROWS))
        batch = IngestionBatch.objects.get()
        assert response.redirect_chain == [(batch_url(batch), 302)]
        assert any("processing it failed: RuntimeError: worker exploded" in m for m in page_messages(response))

    def test_an_analyst_reads_batches_but_may_not_upload(self, steward, analyst, source):
        upload(steward, source, "sales.ndjson", ndjson(ROWS))
        batch = IngestionBatch.objects.get()

        assert [b.pk for b in shown(analyst.get(BATCHES))] == [batch.pk]
        assert analyst.get(batch_url(batch)).status_code == 200
        assert analyst.get(upload_url(source)).status_code == 403
        response = analyst.post(upload_url(source), {"file": SimpleUploadedFile("x.ndjson", ndjson(ROWS))})
        assert response.status_code == 403
        assert IngestionBatch.objects.count() == 1
        assert upload_url(source) not in analyst.get(SOURCES).content.decode()


# --- the batch page ----------------------------------------------------------------------------------
class TestBatchPage:
    def test_the_batch_page_lists_the_rejections_with_field_rule_line_and_value(self, steward, source):
        response = upload(steward, source, "mixed.ndjson", ndjson(ROWS + BAD_ROWS))
        batch = IngestionBatch.objects.get()
        assert (batch.status, batch.received, batch.accepted, batch.rejected) == ("completed_with_rejections", 4, 2, 2)
        assert any("2 rejected" in m for m in page_messages(response))

        rejections = list(response.context["rejections_page"])
        found = {(r.line, r.field, r.rule, r.value) for r in rejections}
        assert (3, "store_id", "pattern", "'X1'") in found  # the line in the file, and the value as shown
        assert (4, "region", "allowed_values", "'west'") in found
        text = response.content.decode()
        assert 'id="rejection-table"' in text
        assert reverse("admin:storage_rawrecord_change", args=[rejections[0].raw_record_id]) in text

    def test_rejections_are_paginated(self, steward, source):
        bad = [{**BAD_ROWS[0], "store_id": f"X{i}"} for i in range(60)]
        upload(steward, source, "bad.ndjson", ndjson(ROWS + bad))
        batch = IngestionBatch.objects.get()
        first = steward.get(batch_url(batch))
        assert len(first.context["rejections_page"]) == 50
        second = steward.get(batch_url(batch) + "?rejections_page=2")
        assert len(second.context["rejections_page"]) == 10
        assert 'id="rejection-pages"' in first.content.decode()

    def test_the_batch_links_to_the_gdps_it_created_and_superseded(self, steward, source):
        upload(steward, source, "first.ndjson", ndjson(ROWS))
        upload(steward, source, "second.ndjson", ndjson([{**ROWS[0], "revenue": "130"}]))
        first, second = IngestionBatch.objects.order_by("pk")
        created = shown(steward.get(GDPS, {"batch": second.pk, "belief": "all"}))
        assert {(g.measure, g.entity_key, g.value) for g in created} == {("revenue", "S001", Decimal("130"))}
        superseded = shown(steward.get(GDPS, {"superseded_by_batch": second.pk, "belief": "all"}))
        assert [(g.batch_id, g.value) for g in superseded] == [(first.pk, Decimal("120.5"))]


# --- Golden Data Points ------------------------------------------------------------------------------
class TestGoldenDataPoints:
    def test_the_gdp_page_traces_the_value_to_its_raw_record_batch_and_source(self, steward, source):
        upload(steward, source, "sales.ndjson", ndjson(ROWS))
        gdp = current()
        response = steward.get(gdp_url(gdp))
        assert response.status_code == 200
        text = html.unescape(response.content.decode())
        assert response.context["raw"] == gdp.raw_record
        assert '"revenue": "120.50"' in text  # the payload exactly as received, pretty-printed
        assert reverse("admin:storage_rawrecord_change", args=[gdp.raw_record_id]) in text
        assert batch_url(gdp.batch) in text
        assert reverse("admin:compute_source_change", args=[source.pk]) in text and "Tills" in text

    def test_the_raw_record_page_counts_its_gdps_and_links_to_exactly_them(self, steward, source):
        upload(steward, source, "sales.ndjson", ndjson(ROWS))
        gdp = current()
        response = steward.get(reverse("admin:storage_rawrecord_change", args=[gdp.raw_record_id]))
        mine = GoldenDataPoint.objects.filter(raw_record_id=gdp.raw_record_id)
        assert response.context["gdp_count"] == mine.count() > 0
        listed = steward.get(response.context["gdps_url"])
        assert listed.status_code == 200
        assert {row.pk for row in listed.context["cl"].result_list} == set(mine.values_list("pk", flat=True))

    def test_after_a_second_upload_the_history_shows_both_versions_and_who_superseded(self, steward, source):
        upload(steward, source, "first.ndjson", ndjson(ROWS))
        old = current()
        upload(steward, source, "second.ndjson", ndjson([{**ROWS[0], "revenue": "130"}]))
        second_batch = IngestionBatch.objects.latest("pk")
        new = current()
        old.refresh_from_db()
        assert old.superseded_by_batch_id == second_batch.pk

        response = steward.get(gdp_url(new))
        rows = response.context["history_rows"]
        assert [(r["version"].pk, r["value"], r["this"]) for r in rows] == [
            (new.pk, "130 EUR", True),
            (old.pk, "120.5 EUR", False),
        ]
        text = response.content.decode()
        assert gdp_url(old) in text and batch_url(second_batch) in text

        response = steward.get(gdp_url(old))  # the old version says it is superseded, and by what
        assert 'id="superseded-note"' in response.content.decode()
        assert response.context["current"] == new

    def test_the_list_shows_current_values_by_default_all_versions_or_a_past_belief(self, steward, source):
        upload(steward, source, "first.ndjson", ndjson(ROWS))
        old = current()
        between = timezone.localtime(timezone.now()).strftime("%Y-%m-%dT%H:%M:%S.%f")
        upload(steward, source, "second.ndjson", ndjson([{**ROWS[0], "revenue": "130"}]))
        new = current()
        search = {"q": "S001"}

        assert {g.pk for g in shown(steward.get(GDPS, search)) if g.measure == "revenue"} == {new.pk}
        every = shown(steward.get(GDPS, {**search, "belief": "all"}))
        assert {g.pk for g in every if g.measure == "revenue"} == {new.pk, old.pk}
        before = shown(steward.get(GDPS, {**search, "as_of": between}))
        assert {g.pk for g in before if g.measure == "revenue"} == {old.pk}
        assert {g.pk for g in shown(steward.get(GDPS, {"measure": "units"}))} == {
            current("S001", "units").pk,
            current("S002", "units").pk,
        }

    def test_a_steward_overrides_a_value_and_removes_the_override(self, steward, people, source):
        upload(steward, source, "sales.ndjson", ndjson(ROWS))
        gdp = current()

        response = steward.post(
            gdp_url(gdp, "override"), {"value": "99.90", "reason": "Till S001 double-counted"}, follow=True
        )
        override = current()
        assert override.is_override and override.value == Decimal("99.9")
        assert override.overridden_by == people["steward"]
        assert response.redirect_chain[-1][0] == gdp_url(override)
        assert any("is now 99.9 EUR" in m for m in page_messages(response))
        assert 'id="remove-override-form"' in response.content.decode()

        response = steward.post(gdp_url(override, "remove_override"), {"reason": "fixed at the till"}, follow=True)
        restored = current()
        assert (restored.is_override, restored.value, restored.batch_id) == (False, Decimal("120.5"), gdp.batch_id)
        assert any("Override removed" in m for m in page_messages(response))

    def test_an_override_without_a_reason_is_refused_with_a_message(self, steward, source):
        upload(steward, source, "sales.ndjson", ndjson(ROWS))
        gdp = current()
        response = steward.post(gdp_url(gdp, "override"), {"value": "1", "reason": "  "}, follow=True)
        assert any("Not overridden" in m for m in page_messages(response))
        assert current().pk == gdp.pk

    def test_removing_an_override_that_is_none_is_a_message_not_an_error_page(self, steward, source):
        upload(steward, source, "sales.ndjson", ndjson(ROWS))
        gdp = current()
        response = steward.post(gdp_url(gdp, "remove_override"), follow=True)
        assert response.status_code == 200
        assert any("not a steward override" in m for m in page_messages(response))

    def test_an_analyst_reads_gdps_but_may_not_override(self, steward, analyst, source):
        upload(steward, source, "sales.ndjson", ndjson(ROWS))
        gdp = current()
        page = analyst.get(gdp_url(gdp))
        assert page.status_code == 200 and 'id="override-form"' not in page.content.decode()
        assert analyst.post(gdp_url(gdp, "override"), {"value": "1", "reason": "x"}).status_code == 403
        assert current().pk == gdp.pk


# --- the raw layer is append-only, in the portal too -----------------------------------------------
class TestRawRecords:
    def test_not_even_a_superuser_changes_or_deletes_a_raw_record(self, superuser, tenant_a):
        record = RawRecordFactory(batch__source__contract__tenant=tenant_a)
        before = RawRecord.objects.filter(pk=record.pk).values().get()
        client = signed_in(superuser)
        change = reverse("admin:storage_rawrecord_change", args=[record.pk])
        delete = reverse("admin:storage_rawrecord_delete", args=[record.pk])

        page = client.get(change)
        assert page.status_code == 200
        assert '"store_id": "S001"' in html.unescape(page.content.decode())
        assert 'name="_save"' not in page.content.decode()
        assert client.post(change, {"payload": '{"store_id": "S999"}'}).status_code == 403
        assert client.post(delete, {"post": "yes"}).status_code == 403
        assert client.get(reverse("admin:storage_rawrecord_add")).status_code == 403
        changelist = client.get(reverse("admin:storage_rawrecord_changelist"))
        assert changelist.context["action_form"] is None
        assert RawRecord.objects.filter(pk=record.pk).values().get() == before

    def test_the_raw_record_list_filters_by_batch(self, steward, source):
        upload(steward, source, "first.ndjson", ndjson(ROWS))
        upload(steward, source, "second.ndjson", ndjson(ROWS[:1] + BAD_ROWS))
        second = IngestionBatch.objects.latest("pk")
        records = shown(steward.get(reverse("admin:storage_rawrecord_changelist"), {"batch": second.pk}))
        assert sorted(r.position for r in records) == [0, 1, 2]
        assert {r.batch_id for r in records} == {second.pk}


# --- tenants ------------------------------------------------------------------------------------------
class TestTenants:
    def test_tenant_bs_steward_never_sees_tenant_as_batches_or_values(self, steward, source, tenant_b, member):
        upload(steward, source, "sales.ndjson", ndjson(ROWS))
        batch, gdp = IngestionBatch.objects.get(), current()
        other = signed_in(member(tenant_b, RoleChoices.STEWARD))

        assert shown(other.get(BATCHES)) == []
        assert shown(other.get(GDPS, {"belief": "all"})) == []
        for url in (batch_url(batch), gdp_url(gdp), upload_url(source)):
            response = other.get(url)
            assert response.status_code == 302 and response["Location"] == reverse("admin:index"), url
        response = other.post(upload_url(source), {"file": SimpleUploadedFile("x.ndjson", ndjson(ROWS))})
        assert response.status_code == 302
        other.post(gdp_url(gdp, "override"), {"value": "1", "reason": "not mine"})
        assert IngestionBatch.objects.count() == 1 and current().pk == gdp.pk


# --- normalization rules ------------------------------------------------------------------------------
class TestNormalizationRules:
    def test_a_steward_adds_a_cast_step_to_a_draft_and_bad_params_are_form_errors(self, steward, people, contract):
        draft = host.contract_version_create(
            actor=people["steward"], contract=contract, version="1.1.0",
            fields=[{"name": "store_id", "logical_type": "string", "role": "entity_key"}], quality_rules=[],
        )  # fmt: skip
        response = steward.post(
            RULE_ADD,
            {"contract_version": draft.pk, "position": 0, "kind": "cast", "field": "x", "params": '{"to": "dat"}'},
        )
        assert response.status_code == 200
        assert "params" in response.context["adminform"].form.errors
        response = steward.post(
            RULE_ADD,
            {"contract_version": draft.pk, "position": 0, "kind": "cast", "field": "x", "params": '{"to": "date"}'},
        )
        assert response.status_code == 302
        rule = NormalizationRule.objects.get(contract_version=draft)
        assert (rule.kind, rule.params) == ("cast", {"to": "date"})

    def test_the_rules_of_an_active_version_are_frozen(self, steward, contract):
        rule = NormalizationRule.objects.filter(contract_version__contract=contract).first()
        change = reverse("admin:compute_normalizationrule_change", args=[rule.pk])
        page = steward.get(change)
        assert page.status_code == 200 and 'id="frozen-note"' in page.content.decode()
        steward.post(change, {"position": 9, "kind": "trim", "field": "y", "params": "{}"})
        steward.post(reverse("admin:compute_normalizationrule_delete", args=[rule.pk]), {"post": "yes"})
        steward.post(RULES, {"action": "delete_selected", "_selected_action": [rule.pk], "post": "yes"})
        rule.refresh_from_db()
        assert (rule.position, rule.kind) == (0, "cast")
        form = steward.get(RULE_ADD).context["adminform"].form
        assert contract.versions.get().pk not in {v.pk for v in form.fields["contract_version"].queryset}

    def test_the_list_shows_a_versions_steps_in_order(self, steward, tenant_a, people):
        contract = activate_contract(tenant_a, people, key="other-sales")
        version = contract.versions.get()
        rows = shown(steward.get(RULES, {"contract_version__id__exact": version.pk}))
        assert [(r.position, r.field) for r in rows] == [(0, "sale_date"), (1, "revenue"), (2, "units")]
