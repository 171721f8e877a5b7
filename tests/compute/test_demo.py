"""The demo shows issue 5's flow: a source and a batch, a governed KPI with a target, computed values and a
publication under four eyes, with their evidence. Loading it twice creates nothing new."""

from __future__ import annotations

from io import StringIO

import pytest
from django.apps import apps
from django.core.management import call_command

from apps.compute.kpis.models import KpiDefinition, KpiTarget, KpiVersion
from apps.compute.models import NormalizationRule, Source
from apps.compute.publication.models import PublicationRequest
from apps.host.models import Tenant
from apps.storage.models import IngestionBatch, KpiValue
from apps.storage.published import PublishedOutput
from apps.trust import selectors as trust

pytestmark = pytest.mark.django_db


def row_counts() -> dict[str, int]:
    return {model._meta.label: model._default_manager.count() for model in apps.get_models()}


def seed(capture) -> str:
    out = StringIO()
    with capture(execute=True):  # the events are dispatched (evidence, KPI runs) as after a real commit
        call_command("seed_demo", stdout=out)
    return out.getvalue()


def test_the_demo_walks_from_a_batch_to_a_published_kpi_with_evidence_once(django_capture_on_commit_callbacks):
    printed = seed(django_capture_on_commit_callbacks)
    acme = Tenant.objects.get(slug="acme")
    assert "published store-revenue v1" in printed

    source = Source.objects.get(tenant=acme, key="tills")
    assert NormalizationRule.objects.filter(contract_version__contract=source.contract, kind="cast",
                                            field="sale_date").count() == 2  # 1.0.0 and the proposed 1.1.0  # fmt: skip
    [batch] = IngestionBatch.objects.filter(source=source)
    assert (batch.status, batch.received, batch.accepted, batch.rejected) == ("completed", 48, 48, 0)

    [definition] = KpiDefinition.objects.filter(tenant=acme)
    [version] = KpiVersion.objects.filter(definition=definition)
    assert (definition.key, version.status, version.proposed_by.username, version.decided_by.username) == (
        "store-revenue", "active", "acme-steward", "acme-admin")  # fmt: skip
    assert KpiTarget.objects.get(definition=definition).status == "approved"
    values = KpiValue.objects.filter(kpi_version=version)
    assert values.count() == 8  # 2 fiscal periods, 4 regions
    assert set(values.values_list("status", flat=True)) == {"green", "amber", "red"}
    north = values.get(period__label="FY2026-P08", dimensions__region="north")
    assert (north.actual, north.target, north.status) == (10650, 10000, "green")

    [output] = PublishedOutput.objects.filter(tenant=acme)
    assert (output.kpi_key, output.period_labels, output.published_by.username, output.approved_by.username) == (
        "store-revenue", ["FY2026-P08", "FY2026-P09"], "acme-steward", "acme-admin")  # fmt: skip
    assert PublicationRequest.objects.get().status == "published"

    kinds = set(trust.evidence_list(tenant=acme).values_list("kind", flat=True))
    assert {"kpi.approved", "kpi.activated", "kpi.target_approved", "kpi.published"} <= kinds
    result = trust.evidence_verify(tenant=acme)
    assert result.ok and result.checked == trust.evidence_list(tenant=acme).count()

    before = row_counts()
    again = seed(django_capture_on_commit_callbacks)
    assert row_counts() == before  # nothing created twice: no row, no event, no evidence entry
    assert "normalization steps exist" in again and trust.evidence_verify(tenant=acme).ok
