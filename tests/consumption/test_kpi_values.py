"""The KPI values API: latest and as-published reads, filters, pages, ETags, Cache-Control, query counts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.kernel.roles import RoleChoices
from tests.factories import (
    KpiDefinitionFactory,
    KpiValueFactory,
    KpiVersionFactory,
    PublishedOutputFactory,
)

pytestmark = pytest.mark.django_db
URL = "/api/v1/kpis/net-sales/values/"


@pytest.fixture
def client(tenant_a, token_client):
    return token_client(tenant_a, RoleChoices.CONSUMER, scopes=["read"])


def body(response, status=200):
    assert response.status_code == status, response.content[:500]
    return response.json()


def labels(response):
    return [(row["period"]["label"], row["dimensions"]["region"]) for row in body(response)["results"]]


class TestLatest:
    def test_the_current_values_of_the_active_version(self, client, kpi):
        data = body(client.get(URL))
        assert data["read"] == "latest" and data["kpi"] == "net-sales" and data["publications"] == []
        assert data["count"] == 8
        first = data["results"][0]
        assert first["period"]["label"] == "FY2026-P01" and first["period"]["level"] == "period"
        assert first["kpi_version"] == "1.0.0" and first["publication"] is None
        assert Decimal(first["actual"]) == Decimal(100)
        assert first["id"] == kpi["values"][("FY2026-P01", "EU")].pk

    def test_values_of_a_version_that_is_not_active_are_not_latest(self, client, kpi, tenant_a):
        draft = KpiVersionFactory(definition=kpi["version"].definition, version="2.0.0", status="draft",
                                  calendar=kpi["version"].calendar)  # fmt: skip
        KpiValueFactory(kpi_version=draft, period=kpi["months"][0], dimensions_key='["XX"]',
                        dimensions={"region": "XX"})  # fmt: skip
        assert ("FY2026-P01", "XX") not in labels(client.get(URL))

    def test_each_filter_selects_its_rows(self, client, kpi):
        cases = {
            "grain=quarter": [("FY2026-Q1", "EU"), ("FY2026-Q1", "US")],
            "grain=period&period_from=FY2026-P02": [("FY2026-P02", "EU"), ("FY2026-P02", "US"),
                                                    ("FY2026-P03", "EU"), ("FY2026-P03", "US")],
            "grain=period&period_to=FY2026-P01": [("FY2026-P01", "EU"), ("FY2026-P01", "US")],
            "period_from=2026-02-01&period_to=2026-02-28": [("FY2026-P02", "EU"), ("FY2026-P02", "US")],
            "period_from=FY2026-Q1&period_to=FY2026-Q1&dim.region=US": [
                ("FY2026-P01", "US"), ("FY2026-P02", "US"), ("FY2026-P03", "US"), ("FY2026-Q1", "US")],
            "dim.region=EU&grain=quarter": [("FY2026-Q1", "EU")],
            "dim.region=ASIA": [],
            "status=red&grain=quarter": [("FY2026-Q1", "US")],
        }  # fmt: skip
        for query, expected in cases.items():
            assert sorted(labels(client.get(f"{URL}?{query}"))) == sorted(expected), query

    def test_bad_parameters_are_problems_naming_them(self, client, kpi):
        for query, pointer in (("period_from=FY1999-P01", "#/period_from"), ("period_to=nope", "#/period_to"),
                               ("grain=decade", "#/grain"), ("dim.a__b=1", "#/dim.a__b"),
                               ("published=yesterday", "#/published"), ("as_published_on=soon", "#/as_published_on"),
                               ("publication=0", "#/publication"), ("publication=1&published=latest", "#/publication"),
                               ("status=blue", "#/status")):  # fmt: skip
            response = client.get(f"{URL}?{query}")
            assert response.status_code == 400, query
            assert response["Content-Type"] == "application/problem+json"
            assert pointer in [error["pointer"] for error in response.json()["errors"]], (query, response.json())

    def test_an_unknown_key_or_another_tenants_is_not_found(self, client, kpi, tenant_b):
        other = KpiValueFactory(kpi_version=KpiVersionFactory(definition=KpiDefinitionFactory(tenant=tenant_b),
                                                              status="active"))  # fmt: skip
        for key in ("nope", other.kpi_key):
            response = client.get(f"/api/v1/kpis/{key}/values/")
            assert response.status_code == 404 and response["Content-Type"] == "application/problem+json"

    def test_cursor_pages_walk_every_value_once(self, client, kpi):
        seen, url = [], f"{URL}?paginate=cursor&page_size=3"
        while url:
            data = body(client.get(url))
            seen += [row["id"] for row in data["results"]]
            url = data["next"]
        assert sorted(seen) == sorted(v.pk for v in kpi["values"].values())


class TestPublished:
    def test_published_latest_takes_per_period_the_newest_publication(self, client, kpi):
        data = body(client.get(f"{URL}?published=latest"))
        assert data["read"] == "published"
        got = {(r["period"]["label"], r["dimensions"]["region"]): (Decimal(r["actual"]), r["publication"])
               for r in data["results"]}  # fmt: skip
        assert got == {("FY2026-P01", "EU"): (Decimal(105), 2), ("FY2026-P01", "US"): (Decimal(105), 2),
                       ("FY2026-P02", "EU"): (Decimal(200), 1), ("FY2026-P02", "US"): (Decimal(200), 1)}  # fmt: skip
        assert [p["version"] for p in data["publications"]] == [2, 1]
        assert data["publications"][0]["content_hash"] == kpi["outputs"][1].content_hash

    def test_as_published_on_a_day_before_the_restatement_is_the_older_version(self, client, kpi):
        before = body(client.get(f"{URL}?as_published_on=2026-02-06&period_to=FY2026-P01"))
        assert {(r["publication"], Decimal(r["actual"])) for r in before["results"]} == {(1, Decimal(100))}
        after = body(client.get(f"{URL}?as_published_on=2026-02-07&period_to=FY2026-P01"))
        assert {(r["publication"], Decimal(r["actual"])) for r in after["results"]} == {(2, Decimal(105))}
        nothing = body(client.get(f"{URL}?as_published_on=2026-01-01"))
        assert nothing["results"] == [] and nothing["publications"] == []

    def test_one_publication_version(self, client, kpi):
        data = body(client.get(f"{URL}?publication=1&dim.region=US"))
        assert labels(client.get(f"{URL}?publication=1&dim.region=US")) == [("FY2026-P01", "US"), ("FY2026-P02", "US")]
        assert [p["version"] for p in data["publications"]] == [1]
        assert client.get(f"{URL}?publication=9").status_code == 404

    def test_filters_apply_to_published_rows(self, client, kpi):
        assert labels(client.get(f"{URL}?published=latest&period_from=FY2026-P02&grain=period")) == [
            ("FY2026-P02", "EU"), ("FY2026-P02", "US")]  # fmt: skip
        assert labels(client.get(f"{URL}?published=latest&grain=quarter")) == []
        assert client.get(f"{URL}?published=latest&period_from=FY1999-P01").status_code == 400

    def test_published_values_come_in_page_numbers(self, client, kpi):
        data = body(client.get(f"{URL}?published=latest&page_size=3"))
        assert data["count"] == 4 and len(data["results"]) == 3 and data["next"]
        assert client.get(f"{URL}?published=latest&paginate=cursor").status_code == 400

    def test_a_kpi_known_only_by_its_publications_is_found(self, client, tenant_a):
        output = PublishedOutputFactory(tenant=tenant_a)
        assert body(client.get(f"/api/v1/kpis/{output.kpi_key}/values/"))["results"] == []


class TestCaching:
    def test_etag_then_304_and_a_new_etag_when_values_change(self, client, kpi, settings):
        settings.AURUM_API_READ_CACHE_SECONDS = 0  # the value changes behind the app's back, with no event
        first = client.get(URL)
        etag = first["ETag"]
        assert etag.startswith('"') and first["Cache-Control"] == "private, no-cache"
        again = client.get(URL, HTTP_IF_NONE_MATCH=etag)
        assert again.status_code == 304 and again.content == b""
        value = kpi["values"][("FY2026-P01", "EU")]
        value.actual = Decimal("1")
        value.save()
        changed = client.get(URL, HTTP_IF_NONE_MATCH=etag)
        assert changed.status_code == 200 and changed["ETag"] != etag

    def test_a_publication_is_immutable_and_published_latest_is_not(self, client, kpi):
        for query in ("publication=1", "as_published_on=2026-02-06"):
            response = client.get(f"{URL}?{query}")
            assert response["Cache-Control"] == "private, max-age=86400, immutable", query
            assert client.get(f"{URL}?{query}", HTTP_IF_NONE_MATCH=response["ETag"]).status_code == 304
        assert client.get(f"{URL}?published=latest")["Cache-Control"] == "private, no-cache"
        tomorrow = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
        assert client.get(f"{URL}?as_published_on={tomorrow}")["Cache-Control"] == "private, no-cache"

    def test_a_cached_read_keeps_its_etag_and_cache_control(self, client, kpi):
        for query in ("", "?publication=1"):
            first = client.get(URL + query)
            again = client.get(URL + query, HTTP_IF_NONE_MATCH=first["ETag"])
            assert again.status_code == 304 and again["Cache-Control"] == first["Cache-Control"], query
            served = client.get(URL + query)
            assert served.has_header("Age") and served.content == first.content and served["ETag"] == first["ETag"]

    def test_a_kpi_computation_drops_the_cached_values(self, client, kpi, tenant_a,
                                                       django_capture_on_commit_callbacks):  # fmt: skip
        from apps.runtime.events import publish_event

        client.get(URL)
        value = kpi["values"][("FY2026-P01", "EU")]
        with django_capture_on_commit_callbacks(execute=True):
            value.actual = Decimal("1")
            value.save()
            publish_event("kpi.computed", {"kpi": "net-sales"}, tenant=tenant_a)
        fresh = client.get(URL)
        assert not fresh.has_header("Age")
        assert Decimal(body(fresh)["results"][0]["actual"]) == Decimal("1")

    def test_errors_carry_no_etag(self, client, kpi):
        assert "ETag" not in client.get(f"{URL}?grain=decade")


class TestQueryCount:
    @pytest.mark.parametrize("query", ["", "paginate=cursor&", "published=latest&", "publication=1&"])
    def test_queries_do_not_grow_with_the_page_size(self, client, kpi, query):
        def count(size):
            with CaptureQueriesContext(connection) as captured:
                assert client.get(f"{URL}?{query}page_size={size}&period_from=FY2026-P01").status_code == 200
            return len(captured)

        client.get(URL)  # the token's last-use stamp is written once a while: not part of the measure
        assert count(1) == count(8)
