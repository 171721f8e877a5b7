"""The KPI pages of the portal: define, version (lifecycle buttons), target, compute now, values, lineage."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse

from apps.compute.kpis.models import KpiDefinition, KpiTarget, KpiVersion
from apps.runtime.models import DomainEvent
from apps.storage.models import KpiValue
from tests.compute.test_kpi_compute import ROWS
from tests.compute.test_kpi_fixtures import *  # noqa: F403
from tests.compute.test_kpi_fixtures import compute, load, make_kpi


def signed_in(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def page_messages(response: Any) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


@pytest.fixture
def shop(world: Any) -> Any:
    load(world, ROWS)
    return world


VERSION_FORM = {
    "version": "1.0.0", "kind": "simple", "measure": "revenue", "aggregation": "sum", "level": "period",
    "dimensions": '["region"]', "filters": "{}", "display_format": "number", "decimals": "2", "direction": "higher",
    "unit": "EUR", "notes": "", "denominator_measure": "", "denominator_aggregation": "", "expression": "",
    "cumulative_mode": "", "window_periods": "",
}  # fmt: skip


class TestDefining:
    def test_a_steward_defines_a_kpi_through_the_service(self, shop):
        client = signed_in(shop.steward)
        response = client.post(reverse("admin:compute_kpidefinition_add"),
                               {"key": "net-sales", "name": "Net sales", "versions-TOTAL_FORMS": "0",
                                "versions-INITIAL_FORMS": "0"}, follow=True)  # fmt: skip
        assert response.status_code == 200
        definition = KpiDefinition.objects.get(key="net-sales")
        assert definition.tenant == shop.tenant
        assert DomainEvent.objects.filter(type="kpi.created", payload__kpi="net-sales").exists()

    def test_a_duplicate_key_is_a_form_error(self, shop):
        make_kpi(shop, "revenue", measure="revenue")
        response = signed_in(shop.steward).post(reverse("admin:compute_kpidefinition_add"), {
            "key": "revenue", "name": "Again", "versions-TOTAL_FORMS": "0", "versions-INITIAL_FORMS": "0"})  # fmt: skip
        assert response.status_code == 200
        assert "exists already" in str(response.context["adminform"].form.errors["key"])

    def test_a_version_that_does_not_fit_the_contract_shows_the_error_on_its_field(self, shop):
        definition = make_kpi(shop, "revenue", measure="revenue", activate=False).definition
        form = {**VERSION_FORM, "version": "2.0.0", "definition": definition.pk, "contract": shop.contract.pk,
                "calendar": shop.calendar.pk, "measure": "profit"}  # fmt: skip
        response = signed_in(shop.steward).post(reverse("admin:compute_kpiversion_add"), form)
        assert response.status_code == 200
        errors = response.context["adminform"].form.errors
        assert "'profit' is not a measure" in errors["measure"][0]
        assert not KpiVersion.objects.filter(version="2.0.0").exists()

    def test_a_version_number_taken_is_a_form_error(self, shop):
        definition = make_kpi(shop, "revenue", measure="revenue", activate=False).definition
        form = {**VERSION_FORM, "definition": definition.pk, "contract": shop.contract.pk,
                "calendar": shop.calendar.pk}  # fmt: skip
        response = signed_in(shop.steward).post(reverse("admin:compute_kpiversion_add"), form)
        assert response.status_code == 200
        assert "exists already" in response.context["adminform"].form.errors["version"][0]

    def test_a_valid_version_is_created_as_a_draft(self, shop):
        definition = make_kpi(shop, "revenue", measure="revenue", activate=False).definition
        form = {**VERSION_FORM, "version": "2.0.0", "definition": definition.pk, "contract": shop.contract.pk,
                "calendar": shop.calendar.pk}  # fmt: skip
        response = signed_in(shop.steward).post(reverse("admin:compute_kpiversion_add"), form, follow=True)
        assert response.status_code == 200
        version = KpiVersion.objects.get(definition=definition, version="2.0.0")
        assert (version.status, version.dimensions, version.unit) == ("draft", ["region"], "EUR")


class TestLifecycleButtons:
    def test_propose_then_approve_by_another_then_activate(self, shop):
        version = make_kpi(shop, "revenue", measure="revenue", activate=False)
        step = reverse("admin:compute_kpiversion_step", args=[version.pk])
        page = signed_in(shop.steward).get(reverse("admin:compute_kpiversion_change", args=[version.pk]))
        assert b'id="action-propose"' in page.content
        signed_in(shop.steward).post(step, {"action": "propose"})
        refused = signed_in(shop.steward).post(step, {"action": "approve"}, follow=True)
        assert any("Four eyes" in m for m in page_messages(refused))
        signed_in(shop.admin).post(step, {"action": "approve", "comment": "fine"})
        signed_in(shop.admin).post(step, {"action": "activate"})
        assert KpiVersion.objects.get(pk=version.pk).status == "active"

    def test_a_step_that_is_not_allowed_now_is_refused_with_a_message(self, shop):
        version = make_kpi(shop, "revenue", measure="revenue", activate=False)
        response = signed_in(shop.admin).post(reverse("admin:compute_kpiversion_step", args=[version.pk]),
                                              {"action": "activate"}, follow=True)  # fmt: skip
        assert any("not a step" in m for m in page_messages(response))
        assert KpiVersion.objects.get(pk=version.pk).status == "draft"

    def test_targets_are_proposed_and_approved_with_the_same_buttons(self, shop):
        kpi = make_kpi(shop, "revenue", measure="revenue")
        client = signed_in(shop.steward)
        client.post(reverse("admin:compute_kpitarget_add"), {
            "definition": kpi.definition.pk, "period_from": shop.period(2026, 1).pk,
            "period_to": shop.period(2026, 3).pk, "dimensions": "{}", "value": "100", "tolerance_kind": "percent",
            "green_within": "0", "amber_within": "10", "notes": "",
        })  # fmt: skip
        target = KpiTarget.objects.get(definition=kpi.definition)
        step = reverse("admin:compute_kpitarget_step", args=[target.pk])
        client.post(step, {"action": "propose"})
        signed_in(shop.admin).post(step, {"action": "approve"})
        assert KpiTarget.objects.get(pk=target.pk).status == "approved"


class TestComputeAndValues:
    def test_compute_now_computes_and_reports_the_run(self, shop):
        kpi = make_kpi(shop, "revenue", measure="revenue", dimensions=["region"])
        client = signed_in(shop.steward)
        page = client.get(reverse("admin:compute_kpidefinition_change", args=[kpi.definition.pk]))
        assert b'id="action-compute"' in page.content
        response = client.post(reverse("admin:compute_kpidefinition_compute", args=[kpi.definition.pk]),
                               {"full": "0"}, follow=True)  # fmt: skip
        assert any("kpi:revenue: full — 3 periods, 5 values, 7 GDPs read" in m for m in page_messages(response))
        assert KpiValue.objects.filter(kpi_version=kpi).count() == 5

    def test_the_values_list_shows_status_badges_and_filters_by_status(self, shop):
        from decimal import Decimal

        from apps.compute.kpis import services as kpis

        kpi = make_kpi(shop, "revenue", measure="revenue", dimensions=["region"])
        target = kpis.kpi_target_create(actor=shop.steward, definition=kpi.definition, period_from=shop.period(2026, 1),
                                        period_to=shop.period(2026, 3), value=Decimal("100"), amber_within=10)  # fmt: skip
        kpis.kpi_target_propose(actor=shop.steward, target=target)
        kpis.kpi_target_approve(actor=shop.admin, target=target)
        compute(shop, kpi)
        url = reverse("admin:storage_kpivalue_changelist")
        response = signed_in(shop.steward).get(url)
        assert b"aurum-kpi-status-red" in response.content and b"aurum-kpi-status-green" in response.content
        red = signed_in(shop.steward).get(url, {"status__exact": "red"})
        assert len(red.context["cl"].result_list) == 3

    def test_a_value_page_shows_its_lineage(self, shop):
        kpi = make_kpi(shop, "revenue", measure="revenue", dimensions=["region"])
        compute(shop, kpi)
        value = KpiValue.objects.get(kpi_version=kpi, period__label="2026-01", dimensions__region="north")
        response = signed_in(shop.steward).get(reverse("admin:storage_kpivalue_change", args=[value.pk]))
        assert response.status_code == 200
        assert b"3 GDP versions, 2026-01-01 to 2026-01-31" in response.content
        assert response.content.count(b"<td>tills</td>") == 3


class TestGuidance:
    def test_the_target_form_offers_the_kpis_periods_not_every_day_of_every_calendar(self, shop):
        kpi = make_kpi(shop, "revenue", measure="revenue")
        form = signed_in(shop.steward).get(reverse("admin:compute_kpitarget_add"), {"definition": kpi.definition.pk})
        periods = form.context["adminform"].form.fields["period_from"].queryset
        assert periods.exists() and not periods.exclude(calendar=kpi.calendar).exists()
        assert not periods.filter(level__in=["day", "week"]).exists()  # the KPI's grain (period) or coarser
        plain = signed_in(shop.steward).get(reverse("admin:compute_kpitarget_add"))
        assert not plain.context["adminform"].form.fields["period_from"].queryset.filter(level="day").exists()

    def test_the_proposer_is_not_offered_approve_and_a_new_kpi_leads_to_its_first_version(self, shop):
        version = make_kpi(shop, "revenue", measure="revenue", activate=False)
        signed_in(shop.steward).post(reverse("admin:compute_kpiversion_step", args=[version.pk]), {"action": "propose"})
        page = signed_in(shop.steward).get(reverse("admin:compute_kpiversion_change", args=[version.pk]))
        assert b'id="action-approve"' not in page.content and b"You proposed it" in page.content
        page = signed_in(shop.admin).get(reverse("admin:compute_kpiversion_change", args=[version.pk]))
        assert b'id="action-approve"' in page.content
        response = signed_in(shop.steward).post(reverse("admin:compute_kpidefinition_add"),
                                                 {"key": "visits", "name": "Visits", "versions-TOTAL_FORMS": "0",
                                                  "versions-INITIAL_FORMS": "0"})  # fmt: skip
        assert response.status_code == 302 and "kpiversion/add/?definition=" in response["Location"]
