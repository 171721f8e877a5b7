"""Publishing KPIs: immutable hashed outputs, policies (each kind refuses), four eyes, events and evidence."""

from __future__ import annotations

import hashlib
import json
from decimal import Decimal
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.utils import DatabaseError

from apps.compute.publication import services
from apps.compute.publication.models import PublicationRequest
from apps.host import services as host
from apps.kernel.errors import ConflictError, ForbiddenError
from apps.kernel.roles import RoleChoices
from apps.runtime.models import DomainEvent
from apps.storage.models import IngestionBatch, KpiValue
from apps.storage.published import ImmutableOutputError, PublishedOutput, content_hash_of
from apps.trust import selectors as trust
from tests.compute.test_kpi_fixtures import *  # noqa: F403
from tests.compute.test_kpi_fixtures import compute, d, load, make_kpi

ROWS = [
    {"day": d(2026, 1, 5), "store": "S1", "region": "north", "revenue": 100},
    {"day": d(2026, 1, 9), "store": "S3", "region": "south", "revenue": 200},
    {"day": d(2026, 2, 3), "store": "S1", "region": "north", "revenue": 80},
]


@pytest.fixture
def sales(world: Any) -> Any:
    """Revenue by region, computed, over January and February 2026."""
    world.batch = load(world, ROWS)
    world.kpi = make_kpi(world, "revenue", measure="revenue", aggregation="sum", dimensions=["region"])
    compute(world, world.kpi)
    world.kpi.refresh_from_db()
    return world


def policy(world: Any, kind: str, parameters: dict[str, Any]) -> None:
    row = host.policy_create(actor=world.admin, tenant=world.tenant, kind=kind, name=kind, parameters=parameters)
    host.policy_activate(actor=world.admin, policy=row)


def publish(world: Any, *labels: str, actor: Any = None) -> PublishedOutput:
    return services.kpi_publish(actor=actor or world.steward, tenant=world.tenant, version=world.kpi,
                                periods=list(labels or ("2026-01", "2026-02")))  # fmt: skip


def expected_hash(output: PublishedOutput) -> str:
    """The documented layout (apps/storage/published.py), written out independently."""
    document = {
        "kpi": output.kpi_key,
        "kpi_version": output.kpi_version_label,
        "as_of": output.as_of.astimezone(__import__("datetime").UTC).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00"),
        "periods": output.period_labels,
        "values": output.values,
    }
    text = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class TestPublish:
    def test_it_creates_an_output_with_the_values_and_the_documented_hash(self, sales):
        output = publish(sales)
        assert (output.kpi_key, output.version, output.kind, output.kpi_version_label) == (
            "revenue",
            1,
            "publication",
            "1.0.0",
        )
        assert output.period_labels == ["2026-01", "2026-02"]
        assert [(r["period"], r["dimensions"], r["actual"]) for r in output.values] == [
            ("2026-01", {"region": "north"}, "100"),
            ("2026-01", {"region": "south"}, "200"),
            ("2026-02", {"region": "north"}, "80"),
        ]
        assert output.contract_versions == [{"contract": "shop", "version": "1.0.0"}]
        assert output.as_of == sales.kpi.computed_as_of
        assert output.published_by == sales.steward
        assert output.content_hash == expected_hash(output) == content_hash_of(output)
        stored = PublishedOutput.objects.get(pk=output.pk)  # what the database gives back hashes the same
        assert content_hash_of(stored) == output.content_hash

    def test_a_publication_is_never_changed_or_deleted(self, sales):
        output = publish(sales)
        output.reason = "edited"
        with pytest.raises(ImmutableOutputError):
            output.save()
        with pytest.raises(ImmutableOutputError):
            PublishedOutput.objects.filter(pk=output.pk).update(reason="edited")
        with pytest.raises(ImmutableOutputError):
            output.delete()
        with pytest.raises(ImmutableOutputError):
            PublishedOutput.objects.filter(pk=output.pk).delete()
        assert PublishedOutput.objects.get(pk=output.pk).reason == ""

    @pytest.mark.postgres
    def test_on_postgresql_the_database_refuses_updates_and_deletes(self, sales):
        output = publish(sales)
        for sql in ("UPDATE storage_publishedoutput SET reason = 'x' WHERE id = %s",
                    "DELETE FROM storage_publishedoutput WHERE id = %s"):  # fmt: skip
            with pytest.raises(DatabaseError, match="immutable"), transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(sql, [output.pk])
        assert PublishedOutput.objects.filter(pk=output.pk, reason="").exists()

    def test_publication_versions_count_per_kpi(self, sales):
        assert [publish(sales, "2026-01").version, publish(sales, "2026-02").version] == [1, 2]

    def test_it_refuses_periods_outside_the_kpis_calendar_and_grain(self, sales):
        with pytest.raises(ValidationError) as error:
            publish(sales, "2026-01", "2026-Q1", "nonsense")
        assert "2026-Q1, nonsense" in str(error.value.message_dict["periods"])

    def test_an_analyst_cannot_publish(self, sales, member):
        with pytest.raises(ForbiddenError):
            publish(sales, actor=member(sales.tenant, RoleChoices.ANALYST))

    def test_only_the_active_computed_version_is_published(self, sales):
        draft = make_kpi(sales, "draft-kpi", measure="revenue", activate=False)
        with pytest.raises(ConflictError, match="only the active version"):
            services.kpi_publish(actor=sales.steward, tenant=sales.tenant, version=draft, periods=["2026-01"])

    def test_kpi_published_is_written_in_the_same_transaction_and_the_ledger_appends_it(
        self, sales, django_capture_on_commit_callbacks
    ):
        def publish_then_fail() -> None:
            with transaction.atomic():
                publish(sales)
                assert DomainEvent.objects.filter(type="kpi.published").count() == 1
                raise RuntimeError("roll back")

        with pytest.raises(RuntimeError):
            publish_then_fail()
        assert not DomainEvent.objects.filter(type="kpi.published").exists()
        assert not PublishedOutput.objects.exists()

        with django_capture_on_commit_callbacks(execute=True):
            output = publish(sales)
        event = DomainEvent.objects.get(type="kpi.published")
        assert event.tenant == sales.tenant and event.actor == sales.steward
        assert {k: event.payload[k] for k in ("kpi", "version", "publication", "publication_version", "periods",
                                               "content_hash", "published_by")} == {
            "kpi": "revenue", "version": "1.0.0", "publication": output.pk, "publication_version": 1,
            "periods": ["2026-01", "2026-02"], "content_hash": output.content_hash,
            "published_by": sales.steward.username,
        }  # fmt: skip
        [entry] = trust.evidence_list(tenant=sales.tenant, kind="kpi.published")
        assert entry.subject == "kpi revenue 1.0.0"
        assert entry.content["payload"]["content_hash"] == output.content_hash
        assert entry.actor == sales.steward
        assert trust.evidence_verify(tenant=sales.tenant).ok


class TestPolicies:
    def test_the_quality_gate_refuses_a_low_pass_rate_of_the_batches_behind_the_values(self, sales):
        IngestionBatch.objects.filter(pk=sales.batch.pk).update(received=10, accepted=9)
        policy(sales, "quality_gate", {"min_batch_pass_rate": 50, "min_publish_pass_rate": 95})
        with pytest.raises(ConflictError) as refusal:
            publish(sales)
        assert refusal.value.slug == "publication-refused"
        assert [(u["kind"], u["message"]) for u in refusal.value.extensions["unmet"]] == [
            ("quality_gate", "Pass rate 90% is below the required 95%.")
        ]
        assert not PublishedOutput.objects.exists()
        IngestionBatch.objects.filter(pk=sales.batch.pk).update(received=10, accepted=10)
        assert publish(sales).policy_reasons[0]["message"] == "Pass rate 100% meets the required 95%."

    def test_the_lineage_obligation_refuses_values_that_do_not_trace_to_raw_records(self, sales):
        policy(sales, "lineage_obligation", {"requirements": ["kpi_values_traceable_to_raw"]})
        with pytest.raises(ConflictError) as refusal:
            publish(sales)
        assert [u["message"] for u in refusal.value.extensions["unmet"]] == [
            "kpi_values_traceable_to_raw: 3 of 3 Golden Data Points behind the values no longer trace to a raw "
            "record (expired by retention, or written without one)."
        ]

    def test_the_lineage_obligation_passes_when_every_gdp_has_its_raw_record(self, sales):
        from apps.storage.models import GoldenDataPoint, RawRecord

        policy(sales, "lineage_obligation", {"requirements": ["kpi_values_traceable_to_raw"]})
        for position, gdp in enumerate(GoldenDataPoint.objects.filter(tenant=sales.tenant)):
            raw = RawRecord.objects.create(tenant=sales.tenant, batch=sales.batch, position=position, line=position + 1,
                                           payload={}, hash=f"{position:064d}", received_at=gdp.recorded_from)  # fmt: skip
            GoldenDataPoint.objects.filter(pk=gdp.pk).update(raw_record=raw)
        output = publish(sales)
        assert "all 3 Golden Data Points behind the values trace" in output.policy_reasons[-1]["message"]

    def test_four_eyes_refuses_a_publication_without_a_second_approver(self, sales):
        policy(sales, "publication_approval", {"four_eyes": True})
        with pytest.raises(ConflictError) as refusal:
            publish(sales)
        assert [u["message"] for u in refusal.value.extensions["unmet"]] == [
            "Four eyes: a second person must approve the publication."
        ]

    def test_a_refusal_names_every_unmet_condition(self, sales):
        IngestionBatch.objects.filter(pk=sales.batch.pk).update(received=4, accepted=3)
        policy(sales, "quality_gate", {"min_batch_pass_rate": 50, "min_publish_pass_rate": 99})
        policy(sales, "lineage_obligation", {"requirements": ["kpi_values_traceable_to_raw"]})
        policy(sales, "publication_approval", {"four_eyes": True})
        with pytest.raises(ConflictError) as refusal:
            publish(sales)
        assert [u["kind"] for u in refusal.value.extensions["unmet"]] == [
            "quality_gate",
            "publication_approval",
            "lineage_obligation",
        ]
        assert "3 condition(s) unmet" in refusal.value.detail


class TestFourEyes:
    def test_a_request_is_published_only_when_a_different_steward_approves(self, sales, member):
        policy(sales, "publication_approval", {"four_eyes": True})
        request = services.publication_request_create(actor=sales.steward, tenant=sales.tenant, version=sales.kpi,
                                                      periods=["2026-01"], comment="January")  # fmt: skip
        assert not PublishedOutput.objects.exists()
        with pytest.raises(ForbiddenError) as refusal:
            services.publication_request_approve(actor=sales.steward, request=request)
        assert refusal.value.slug == "four-eyes"
        other = member(sales.tenant, RoleChoices.STEWARD, username="other-steward")
        request = services.publication_request_approve(actor=other, request=request, comment="ok")
        output = request.output
        assert (request.status, output.published_by, output.approved_by) == ("published", sales.steward, other)
        assert output.period_labels == ["2026-01"]
        assert {r["kind"]: r["ok"] for r in output.policy_reasons}["publication_approval"] is True
        with pytest.raises(ConflictError):
            services.publication_request_approve(actor=other, request=request)

    def test_an_approval_still_needs_the_other_policies(self, sales, member):
        policy(sales, "publication_approval", {"four_eyes": True})
        policy(sales, "lineage_obligation", {"requirements": ["kpi_values_traceable_to_raw"]})
        request = services.publication_request_create(actor=sales.steward, tenant=sales.tenant, version=sales.kpi,
                                                      periods=["2026-01"])  # fmt: skip
        with pytest.raises(ConflictError) as refusal:
            services.publication_request_approve(actor=sales.admin, request=request)
        assert [u["kind"] for u in refusal.value.extensions["unmet"]] == ["lineage_obligation"]
        assert PublicationRequest.objects.get(pk=request.pk).status == "pending"

    def test_a_rejection_needs_a_comment_and_publishes_nothing(self, sales):
        request = services.publication_request_create(actor=sales.steward, tenant=sales.tenant, version=sales.kpi,
                                                      periods=["2026-01"])  # fmt: skip
        with pytest.raises(ValidationError):
            services.publication_request_reject(actor=sales.admin, request=request, comment=" ")
        request = services.publication_request_reject(actor=sales.admin, request=request, comment="wrong month")
        assert request.status == "rejected" and not PublishedOutput.objects.exists()


def test_values_move_with_the_data_but_the_output_does_not(sales):
    output = publish(sales, "2026-01")
    KpiValue.objects.filter(kpi_version=sales.kpi, dimensions_key__contains="north",
                            period__label="2026-01").update(actual=Decimal("999"))  # fmt: skip
    assert PublishedOutput.objects.get(pk=output.pk).values[0]["actual"] == "100"
