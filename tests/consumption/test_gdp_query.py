"""The Golden Data Point query API: filters, latest/as-of, pagination, field selection, ETags, query counts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.host.models import ContractVersion
from apps.kernel.roles import RoleChoices
from tests.factories import (
    ContractVersionFactory,
    DataContractFactory,
    GoldenDataPointFactory,
    IngestionBatchFactory,
    SourceFactory,
)

pytestmark = pytest.mark.django_db
URL = "/api/v1/golden-data-points/"
DAY = datetime(2026, 11, 1, tzinfo=UTC)


@pytest.fixture
def batch(tenant_a):
    return IngestionBatchFactory(source=SourceFactory(contract=DataContractFactory(tenant=tenant_a, key="sales")))


@pytest.fixture
def client(tenant_a, token_client):
    return token_client(tenant_a, RoleChoices.CONSUMER, scopes=["read"])


def gdp(batch, **fields):
    contract = batch.source.contract
    version = ContractVersion.objects.filter(contract=contract).first() or ContractVersionFactory(contract=contract)
    return GoldenDataPointFactory(batch=batch, contract_version=version, **fields)


def ids(response):
    assert response.status_code == 200, response.content[:400]
    return [row["id"] for row in response.json()["results"]]


class TestFilters:
    def test_each_filter_selects_its_rows(self, client, batch, tenant_a):
        other = IngestionBatchFactory(source=SourceFactory(contract=DataContractFactory(tenant=tenant_a, key="stock")))
        a = gdp(batch, measure="revenue", entity_key="S1", dimensions={"region": "EU"}, observed_at=DAY)
        b = gdp(batch, measure="units", entity_key="S2", dimensions={"region": "US"}, observed_at=DAY + timedelta(1))
        c = gdp(other, measure="revenue", entity_key="S1", dimensions={"region": "EU", "channel": "web"},
                observed_at=DAY + timedelta(2))  # fmt: skip
        cases = {
            "contract=sales": [a.pk, b.pk],
            "contract__key=stock": [c.pk],
            "measure=revenue": [a.pk, c.pk],
            "measure__in=units,revenue": [a.pk, b.pk, c.pk],
            "entity_key=S2": [b.pk],
            f"batch={other.pk}": [c.pk],
            "dim.region=EU": [a.pk, c.pk],
            "dim.region=EU&dim.channel=web": [c.pk],
            "dim.region=ASIA": [],
            "observed_at__gte=2026-11-02T00:00:00Z": [b.pk, c.pk],
            "observed_at__lt=2026-11-02T00:00:00Z": [a.pk],
            "observed_at__gt=2026-11-02T00:00:00Z": [c.pk],
            "observed_at__lte=2026-11-02T00:00:00Z": [a.pk, b.pk],
            "is_override=true": [],
        }
        for query, expected in cases.items():
            assert sorted(ids(client.get(f"{URL}?{query}"))) == sorted(expected), query

    def test_bad_filter_values_are_problems(self, client, batch):
        for query, pointer in (("batch=abc", "#/batch"), ("observed_at__gte=soon", "#/observed_at__gte"),
                               ("as_of=yesterday", "#/as_of"), ("dim.a__b=1", "#/dim.a__b"),
                               ("fields=id,nope", "#/fields")):  # fmt: skip
            response = client.get(f"{URL}?{query}")
            assert response.status_code == 400, query
            assert response["Content-Type"] == "application/problem+json"
            assert response.json()["errors"][0]["pointer"] == pointer, query

    def test_a_moment_with_no_utc_equivalent_is_a_problem_not_a_server_error(self, client, batch):
        # 0001-01-01T00:20+08:00 is in year 0 in UTC: the database adapters cannot convert it.
        for name in ("observed_at__gt", "observed_at__gte", "observed_at__lt", "observed_at__lte", "as_of"):
            response = client.get(URL, {name: "0001-01-01T00:20:05+08:00"})
            assert response.status_code == 400, (name, response.content[:300])
            assert response.json()["errors"][0]["pointer"] == f"#/{name}"
        assert client.get(URL, {"as_of": "9999-12-31T23:00:00-08:00"}).status_code == 400
        # Well formed but impossible (month 13): Django's parse_datetime raises instead of answering None.
        assert client.get(URL, {"as_of": "2026-13-01T00:00:00Z"}).json()["errors"][0]["pointer"] == "#/as_of"

    def test_latest_as_of_and_history(self, client, batch):
        before = timezone.now() - timedelta(hours=2)
        old = gdp(batch, entity_key="S1", value=Decimal("1"), recorded_from=before - timedelta(hours=1),
                  recorded_to=before + timedelta(hours=1))  # fmt: skip
        new = gdp(batch, entity_key="S1", value=Decimal("2"), recorded_from=before + timedelta(hours=1))
        assert ids(client.get(URL)) == [new.pk]
        assert ids(client.get(URL, {"as_of": before.isoformat()})) == [old.pk]
        assert sorted(ids(client.get(URL, {"history": "true"}))) == sorted([old.pk, new.pk])
        assert client.get(URL, {"as_of": before.isoformat(), "history": "true"}).status_code == 400


class TestFieldSelection:
    def test_only_the_asked_fields(self, client, batch):
        point = gdp(batch)
        rows = client.get(URL, {"fields": "id,value,measure"}).json()["results"]
        assert rows == [{"id": point.pk, "measure": "revenue", "value": "1.0000000000"}]
        one = client.get(f"{URL}{point.pk}/", {"fields": "entity_key"}).json()
        assert one == {"entity_key": point.entity_key}


class TestConditionalGet:
    def test_etag_then_304_and_a_changed_body_gets_a_new_one(self, client, batch):
        gdp(batch)
        first = client.get(URL)
        etag = first["ETag"]
        assert etag.startswith('"') and first["Cache-Control"] == "private, no-cache"
        again = client.get(URL, HTTP_IF_NONE_MATCH=etag)
        assert again.status_code == 304 and again.content == b"" and again["ETag"] == etag
        gdp(batch)
        changed = client.get(URL, HTTP_IF_NONE_MATCH=etag)
        assert changed.status_code == 200 and changed["ETag"] != etag

    def test_a_past_as_of_is_cacheable(self, client, batch):
        gdp(batch)
        response = client.get(URL, {"as_of": (timezone.now() - timedelta(days=1)).isoformat()})
        assert response["Cache-Control"] == "private, max-age=3600"
        detail = client.get(f"{URL}{gdp(batch).pk}/")
        assert client.get(f"{URL}{detail.json()['id']}/", HTTP_IF_NONE_MATCH=detail["ETag"]).status_code == 304


class TestCursorPagination:
    def walk(self, client, params, between=None):
        seen, url, pages = [], URL, 0
        response = client.get(url, {**params, "paginate": "cursor"})
        while True:
            body = response.json()
            assert response.status_code == 200, body
            assert "count" not in body
            seen += [row["id"] for row in body["results"]]
            pages += 1
            if between is not None:
                between(pages)
            if not body["next"]:
                return seen
            response = client.get(body["next"])

    def test_no_duplicates_and_no_skips_while_the_table_changes(self, client, batch):
        first = [gdp(batch, entity_key=f"S{i:02d}") for i in range(10)]
        added, superseded = [], []

        def change(page):
            if page == 1:  # a new point, and a point of the first page and one of a later page superseded
                added.append(gdp(batch, entity_key="NEW"))
                for victim in (first[0], first[7]):
                    type(victim).objects.filter(pk=victim.pk).update(recorded_to=timezone.now())
                    superseded.append(gdp(batch, entity_key=victim.entity_key, value=Decimal("9")))

        seen = self.walk(client, {"page_size": 3}, between=change)
        assert len(seen) == len(set(seen))
        # The walk reads the belief of its first page's moment: exactly the ten points then current.
        assert seen == [row.pk for row in first]
        # A fresh walk sees the new state.
        fresh = self.walk(client, {"page_size": 4})
        expected = sorted({r.pk for r in first} - {first[0].pk, first[7].pk} | {r.pk for r in added + superseded})
        assert fresh == expected

    def test_history_walks_every_version_in_id_order(self, client, batch):
        rows = [gdp(batch, entity_key=f"S{i}") for i in range(5)]
        assert self.walk(client, {"history": "true", "page_size": 2}) == [r.pk for r in rows]

    def test_a_bad_cursor_is_a_problem(self, client, batch):
        response = client.get(URL, {"cursor": "garbage"})
        assert response.status_code == 404 and response["Content-Type"] == "application/problem+json"

    def test_page_numbers_stay_the_default(self, client, batch):
        for i in range(3):
            gdp(batch, entity_key=f"S{i}")
        body = client.get(URL, {"page_size": 2}).json()
        assert body["count"] == 3 and len(body["results"]) == 2 and "page=2" in body["next"]


class TestQueryCount:
    @pytest.mark.parametrize("paginate", ["page", "cursor"])
    def test_queries_do_not_grow_with_the_page_size(self, client, batch, paginate):
        contracts = [DataContractFactory(tenant=batch.tenant) for _ in range(3)]
        for i in range(60):
            source = SourceFactory(contract=contracts[i % 3])
            gdp(IngestionBatchFactory(source=source), entity_key=f"S{i}", overridden_by=client.user)
        client.get(URL)  # the token's last-use stamp is written once a while: not part of the measure
        counts = []
        for size in (5, 50):
            with CaptureQueriesContext(connection) as queries:
                response = client.get(URL, {"page_size": size, "paginate": paginate})
            assert len(response.json()["results"]) == size
            counts.append(len(queries))
        assert counts[0] == counts[1], counts
