"""The KPI API: definitions, versions and their lifecycle, targets, values with filters, lineage."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from apps.kernel.roles import RoleChoices
from apps.storage.models import KpiValue
from tests.compute.test_kpi_compute import ROWS
from tests.compute.test_kpi_fixtures import *  # noqa: F403
from tests.compute.test_kpi_fixtures import compute, d, load, make_kpi

API = "/api/v1"


@pytest.fixture
def shop(world: Any) -> Any:
    load(world, ROWS)
    return world


@pytest.fixture
def steward(world: Any, token_client: Any) -> Any:
    return token_client(world.tenant, user=world.steward)


@pytest.fixture
def admin(world: Any, token_client: Any) -> Any:
    return token_client(world.tenant, user=world.admin)


def pointers(response: Any) -> set[str]:
    return {error["pointer"] for error in response.json().get("errors", [])}


class TestDefinitionsAndVersions:
    def test_a_steward_defines_a_kpi_and_an_admin_approves_it(self, shop, steward, admin):
        created = steward.post(f"{API}/kpi-definitions/", {"key": "net-sales", "name": "Net sales"}, format="json")
        assert created.status_code == 201, created.json()
        assert created.json()["owner"] == shop.steward.username
        version = steward.post(f"{API}/kpi-definitions/net-sales/versions/", {
            "version": "1.0.0", "contract": "shop", "measure": "revenue", "calendar": "months",
            "dimensions": ["region"], "unit": "EUR",
        }, format="json")  # fmt: skip
        assert version.status_code == 201, version.json()
        body = version.json()
        assert (body["status"], body["allowed_actions"]) == ("draft", ["propose", "retire"])
        vid = body["id"]
        assert steward.post(f"{API}/kpi-versions/{vid}/propose/", {}, format="json").status_code == 200
        own = steward.post(f"{API}/kpi-versions/{vid}/approve/", {}, format="json")
        assert own.status_code == 403 and own.json()["type"] == "urn:aurum:problem:four-eyes"
        assert admin.post(f"{API}/kpi-versions/{vid}/approve/", {"comment": "ok"}, format="json").status_code == 200
        active = admin.post(f"{API}/kpi-versions/{vid}/activate/", {}, format="json")
        assert active.json()["status"] == "active"
        assert [t["to_status"] for t in active.json()["transitions"]] == ["draft", "proposed", "approved", "active"]
        listed = steward.get(f"{API}/kpi-definitions/net-sales/").json()
        assert listed["active_version"] == "1.0.0"

    def test_an_illegal_transition_is_a_409_with_the_allowed_next_states(self, shop, admin):
        version = make_kpi(shop, "revenue", measure="revenue")
        response = admin.post(f"{API}/kpi-versions/{version.pk}/approve/", {}, format="json")
        assert response.status_code == 409
        problem = response.json()
        assert problem["type"] == "urn:aurum:problem:illegal-transition"
        assert (problem["current_status"], problem["allowed_next"]) == ("active", ["deprecated"])
        assert response["Content-Type"].startswith("application/problem+json")

    def test_a_version_that_does_not_fit_its_contract_is_a_400_naming_each_field(self, shop, steward):
        steward.post(f"{API}/kpi-definitions/", {"key": "bad", "name": "Bad"}, format="json")
        response = steward.post(f"{API}/kpi-definitions/bad/versions/", {
            "version": "1.0.0", "contract": "shop", "measure": "profit", "calendar": "months",
            "dimensions": ["colour"], "kind": "ratio",
        }, format="json")  # fmt: skip
        assert response.status_code == 400
        assert {"#/measure", "#/dimensions", "#/denominator_measure"} <= pointers(response)

    def test_unknown_contract_or_calendar_keys_are_400(self, shop, steward):
        steward.post(f"{API}/kpi-definitions/", {"key": "k", "name": "K"}, format="json")
        response = steward.post(f"{API}/kpi-definitions/k/versions/", {"version": "1.0.0", "contract": "nope",
                                                                       "calendar": "months"}, format="json")  # fmt: skip
        assert response.status_code == 400 and pointers(response) == {"#/contract"}

    def test_a_draft_is_edited_with_patch_and_frozen_afterwards(self, shop, steward):
        version = make_kpi(shop, "revenue", measure="revenue", activate=False)
        ok = steward.patch(f"{API}/kpi-versions/{version.pk}/", {"unit": "EUR", "version": "1.0.1"}, format="json")
        assert ok.status_code == 200 and (ok.json()["unit"], ok.json()["version"]) == ("EUR", "1.0.1")
        steward.post(f"{API}/kpi-versions/{version.pk}/propose/", {}, format="json")
        frozen = steward.patch(f"{API}/kpi-versions/{version.pk}/", {"unit": "USD"}, format="json")
        assert frozen.status_code == 409 and frozen.json()["type"] == "urn:aurum:problem:version-frozen"

    def test_an_analyst_reads_but_cannot_define(self, shop, token_client):
        analyst = token_client(shop.tenant, RoleChoices.ANALYST)
        make_kpi(shop, "revenue", measure="revenue")
        assert analyst.get(f"{API}/kpi-definitions/").status_code == 200
        refused = analyst.post(f"{API}/kpi-definitions/", {"key": "x", "name": "X"}, format="json")
        assert refused.status_code == 403

    def test_another_tenant_does_not_see_the_kpi(self, shop, token_client, tenant_b):
        make_kpi(shop, "revenue", measure="revenue")
        other = token_client(tenant_b, RoleChoices.ADMIN)
        assert other.get(f"{API}/kpi-definitions/revenue/").status_code == 404
        assert other.post(f"{API}/kpi-definitions/revenue/compute/", {}, format="json").status_code == 404
        assert other.get(f"{API}/kpi-definitions/").json()["count"] == 0

    def test_a_draft_only_kpi_is_deleted_and_a_used_one_is_409(self, shop, admin):
        make_kpi(shop, "scratch", measure="revenue", activate=False)
        make_kpi(shop, "revenue", measure="revenue")
        assert admin.delete(f"{API}/kpi-definitions/scratch/").status_code == 204
        used = admin.delete(f"{API}/kpi-definitions/revenue/")
        assert used.status_code == 409 and used.json()["type"] == "urn:aurum:problem:kpi-in-use"


class TestComputeAndValues:
    def test_compute_now_records_a_run_and_the_values_are_listed_with_filters(self, shop, steward):
        make_kpi(shop, "revenue", measure="revenue", dimensions=["region"])
        runs = steward.post(f"{API}/kpi-definitions/revenue/compute/", {"full": True}, format="json")
        assert runs.status_code == 200
        [run] = runs.json()
        assert (run["job"], run["status"], run["counts"]["values"]) == ("kpi:revenue", "completed", 5)
        listed = steward.get(f"{API}/kpi-values/", {"kpi": "revenue", "dimension": "region:north",
                                                    "period_from": "2026-02-01", "period_to": "2026-03-31"})  # fmt: skip
        assert listed.status_code == 200
        rows = listed.json()["results"]
        assert [(r["period"]["label"], r["actual"]) for r in rows] == [("2026-02", "80.0000000000"),
                                                                      ("2026-03", "10.0000000000")]  # fmt: skip
        assert rows[0]["dimensions"] == {"region": "north"} and rows[0]["status"] == "none"

    def test_a_numeric_dimension_value_is_found_from_the_query_string(self, world, steward):
        load(world, [{"day": d(2026, 1, 3), "store": "S1", "region": 7, "revenue": 5},
                     {"day": d(2026, 1, 3), "store": "S2", "region": "8", "revenue": 6}])  # fmt: skip
        make_kpi(world, "by-region", measure="revenue", dimensions=["region"])
        steward.post(f"{API}/kpi-definitions/by-region/compute/", {}, format="json")
        rows = steward.get(f"{API}/kpi-values/", {"kpi": "by-region", "dimension": "region:7"}).json()["results"]
        assert [(r["dimensions"], r["actual"]) for r in rows] == [({"region": 7}, "5.0000000000")]
        rows = steward.get(f"{API}/kpi-values/", {"kpi": "by-region", "dimension": "region:8"}).json()["results"]
        assert [r["dimensions"] for r in rows] == [{"region": "8"}]

    def test_bad_filters_are_400_problems(self, shop, steward):
        assert steward.get(f"{API}/kpi-values/", {"dimension": "region"}).status_code == 400
        assert steward.get(f"{API}/kpi-values/", {"period_from": "soon"}).status_code == 400
        assert steward.get(f"{API}/kpi-values/", {"dimension": "a__b:1"}).status_code == 400

    def test_compute_without_an_active_version_is_409(self, shop, steward):
        make_kpi(shop, "draft-only", measure="revenue", activate=False)
        response = steward.post(f"{API}/kpi-definitions/draft-only/compute/", {}, format="json")
        assert response.status_code == 409

    def test_lineage_lists_the_gdp_versions_with_batch_and_source(self, shop, steward):
        kpi = make_kpi(shop, "revenue", measure="revenue", dimensions=["region"])
        compute(shop, kpi)
        value = KpiValue.objects.get(kpi_version=kpi, period__label="2026-01", dimensions__region="north")
        response = steward.get(f"{API}/kpi-values/{value.pk}/lineage/")
        assert response.status_code == 200
        body = response.json()
        assert body["count"] == 3 == value.gdp_count
        assert body["sources"][0]["kpi"] == "revenue" and body["sources"][0]["gdps"] == 3
        assert sorted(Decimal(r["value"]) for r in body["results"]) == [Decimal("30"), Decimal("50"), Decimal("100")]
        assert {r["source"] for r in body["results"]} == {"tills"} and all(r["batch"] for r in body["results"])

    def test_a_derived_values_lineage_reaches_through_its_references(self, shop, steward):
        make_kpi(shop, "revenue", measure="revenue")
        make_kpi(shop, "visits", measure="visits")
        derived = make_kpi(shop, "rpv", kind="derived", expression="revenue / visits")
        compute(shop, derived)
        value = KpiValue.objects.get(kpi_version=derived, period__label="2026-02")
        body = steward.get(f"{API}/kpi-values/{value.pk}/lineage/").json()
        assert [s["kpi"] for s in body["sources"]] == ["revenue", "visits"]
        assert body["count"] == 4  # two February records, revenue and visits each

    def test_a_cumulative_values_lineage_spans_its_window(self, shop, steward):
        kpi = make_kpi(shop, "ytd", kind="cumulative", measure="revenue", cumulative_mode="year_to_date")
        compute(shop, kpi)
        value = KpiValue.objects.get(kpi_version=kpi, period__label="2026-02")
        body = steward.get(f"{API}/kpi-values/{value.pk}/lineage/").json()
        assert (body["sources"][0]["first_day"], body["sources"][0]["last_day"]) == ("2026-01-01", "2026-02-28")
        assert body["count"] == 6 == value.gdp_count


class TestTargets:
    def test_a_target_is_proposed_approved_by_another_and_stamps_the_values(self, shop, steward, admin):
        kpi = make_kpi(shop, "revenue", measure="revenue", dimensions=["region"])
        compute(shop, kpi)
        created = steward.post(f"{API}/kpi-targets/", {
            "kpi": "revenue", "period_from": shop.period(2026, 1).pk, "period_to": shop.period(2026, 3).pk,
            "value": "100", "tolerance_kind": "percent", "green_within": "0", "amber_within": "10",
        }, format="json")  # fmt: skip
        assert created.status_code == 201, created.json()
        tid = created.json()["id"]
        assert steward.post(f"{API}/kpi-targets/{tid}/propose/", {}, format="json").status_code == 200
        assert steward.post(f"{API}/kpi-targets/{tid}/approve/", {}, format="json").status_code == 403
        approved = admin.post(f"{API}/kpi-targets/{tid}/approve/", {}, format="json")
        assert approved.json()["status"] == "approved"
        red = steward.get(f"{API}/kpi-values/", {"kpi": "revenue", "status": "red"}).json()["results"]
        assert {(r["period"]["label"], r["dimensions"]["region"]) for r in red} == {
            ("2026-02", "north"), ("2026-02", "south"), ("2026-03", "north")}  # fmt: skip
        assert {r["streak"] for r in red if r["period"]["label"] == "2026-03"} == {2}

    def test_bad_bands_are_a_400_on_the_field(self, shop, steward):
        make_kpi(shop, "revenue", measure="revenue")
        response = steward.post(f"{API}/kpi-targets/", {
            "kpi": "revenue", "period_from": shop.period(2026, 1).pk, "period_to": shop.period(2026, 1).pk,
            "value": "100", "green_within": "10", "amber_within": "5",
        }, format="json")  # fmt: skip
        assert response.status_code == 400 and "#/amber_within" in pointers(response)

    def test_another_tenants_period_is_refused(self, shop, steward, tenant_b):
        from tests.factories import CalendarPeriodFactory

        make_kpi(shop, "revenue", measure="revenue")
        foreign = CalendarPeriodFactory(calendar__tenant=tenant_b)
        response = steward.post(f"{API}/kpi-targets/", {"kpi": "revenue", "period_from": foreign.pk,
                                                        "period_to": foreign.pk, "value": "1",
                                                        "amber_within": "1"}, format="json")  # fmt: skip
        assert response.status_code == 400 and pointers(response) == {"#/period_from"}
