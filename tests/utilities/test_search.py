"""Discovery: the generic search index, its ranking, typo tolerance, facets, audiences and tenants.

Every test runs on the database of the run: SQLite exercises the portable fallback, PostgreSQL
(DATABASE_URL=postgres://…) the tsvector + pg_trgm path. The `postgres` tests check what only
PostgreSQL has.
"""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.db import connection

from apps.kernel.roles import RoleChoices
from apps.utilities.search import selectors, services
from apps.utilities.search.models import SearchDocument

pytestmark = pytest.mark.django_db


def index(tenant, key, title, body="", kind="product", audience="listed", **facets):
    return services.search_index_upsert(
        tenant=tenant, kind=kind, object_key=key, title=title, body=body, facets=facets,
        url=f"/api/v1/products/{key}/", audience=audience,
    )  # fmt: skip


def keys(results):
    return [hit.object_key for hit in results.hits]


def test_a_title_hit_ranks_above_a_body_hit(tenant_a):
    index(tenant_a, "body", "Store footfall", "Visitors per store; used to explain revenue swings.")
    index(tenant_a, "title", "Revenue per store", "Daily totals per store.")
    index(tenant_a, "none", "Energy meters", "Kilowatt hours per site.")

    results = selectors.search(tenant=tenant_a, query="revenue")

    assert keys(results) == ["title", "body"]
    assert results.hits[0].score > results.hits[1].score


def test_a_typod_word_finds_the_document(tenant_a):
    index(tenant_a, "sales", "Store revenue", "Daily revenue per store.")
    index(tenant_a, "energy", "Energy meters", "Kilowatt hours per site.")

    assert keys(selectors.search(tenant=tenant_a, query="revnue")) == ["sales"]
    assert keys(selectors.search(tenant=tenant_a, query="stroe revenu")) == ["sales"]


def test_a_word_prefix_matches(tenant_a):
    index(tenant_a, "sales", "Store revenue")

    assert keys(selectors.search(tenant=tenant_a, query="rev")) == ["sales"]


def test_short_words_are_not_typo_tolerant(tenant_a):
    index(tenant_a, "cars", "Car fleet")

    assert keys(selectors.search(tenant=tenant_a, query="cat")) == []


def test_every_word_of_the_query_must_match(tenant_a):
    index(tenant_a, "sales", "Store revenue")
    index(tenant_a, "energy", "Energy revenue")

    assert keys(selectors.search(tenant=tenant_a, query="energy revenue")) == ["energy"]


def test_identifiers_are_split_into_words(tenant_a):
    index(tenant_a, "sales", "store_sales", "See store-sales.v2")

    assert keys(selectors.search(tenant=tenant_a, query="Store Sales")) == ["sales"]
    assert keys(selectors.search(tenant=tenant_a, query="v2")) == ["sales"]


def test_facet_counts_describe_the_hits(tenant_a):
    index(tenant_a, "a", "Revenue A", domain="sales", tag=["retail", "daily"], classification="internal")
    index(tenant_a, "b", "Revenue B", domain="sales", tag=["retail"], classification="public")
    index(tenant_a, "c", "Revenue C", domain="finance", tag=[], classification="internal")
    index(tenant_a, "d", "Energy", domain="energy")

    results = selectors.search(tenant=tenant_a, query="revenue")

    assert results.total == 3
    assert results.facets["domain"] == [("sales", 2), ("finance", 1)]
    assert results.facets["tag"] == [("retail", 2), ("daily", 1)]
    assert results.facets["classification"] == [("internal", 2), ("public", 1)]
    assert results.facets["kind"] == [("product", 3)]


def test_facet_filters_or_within_a_facet_and_across_facets(tenant_a):
    index(tenant_a, "a", "Revenue A", domain="sales", classification="internal")
    index(tenant_a, "b", "Revenue B", domain="finance", classification="public")
    index(tenant_a, "c", "Revenue C", domain="energy", classification="internal")

    either = selectors.search(tenant=tenant_a, query="revenue", facets={"domain": ["sales", "finance"]})
    both = selectors.search(
        tenant=tenant_a, query="revenue", facets={"domain": ["sales", "finance"], "classification": ["internal"]}
    )

    assert sorted(keys(either)) == ["a", "b"]
    assert keys(both) == ["a"]
    assert both.facets["domain"] == [("sales", 1)]


def test_kinds_narrow_the_search(tenant_a):
    index(tenant_a, "p", "Revenue product")
    index(tenant_a, "c", "Revenue contract", kind="contract")

    assert keys(selectors.search(tenant=tenant_a, query="revenue", kinds=["contract"])) == ["c"]


def test_consumers_never_find_documents_meant_for_members(tenant_a):
    index(tenant_a, "open", "Revenue open")
    index(tenant_a, "closed", "Revenue closed", audience="members")

    assert sorted(keys(selectors.search(tenant=tenant_a, query="revenue"))) == ["closed", "open"]
    assert keys(selectors.search(tenant=tenant_a, query="revenue", members=False)) == ["open"]


def test_another_tenants_documents_are_never_found(tenant_a, tenant_b):
    index(tenant_b, "theirs", "Revenue of B")
    index(tenant_a, "ours", "Revenue of A")

    results = selectors.search(tenant=tenant_a, query="revenue")

    assert keys(results) == ["ours"]
    assert selectors.search(tenant=tenant_a, query="").total == 1


def test_an_empty_query_lists_everything_by_title(tenant_a):
    index(tenant_a, "b", "Beta")
    index(tenant_a, "a", "Alpha")

    assert keys(selectors.search(tenant=tenant_a, query="  ")) == ["a", "b"]


def test_upsert_replaces_and_remove_deletes(tenant_a):
    index(tenant_a, "x", "Revenue")
    index(tenant_a, "x", "Energy")

    assert SearchDocument.objects.for_tenant(tenant_a).count() == 1
    assert keys(selectors.search(tenant=tenant_a, query="revenue")) == []
    assert keys(selectors.search(tenant=tenant_a, query="energy")) == ["x"]
    assert services.search_index_remove(tenant=tenant_a, kind="product", object_key="x") == 1
    assert selectors.search(tenant=tenant_a, query="energy").total == 0


def test_upsert_refuses_bad_documents(tenant_a):
    with pytest.raises(ValidationError) as error:
        services.search_index_upsert(tenant=tenant_a, kind="", object_key="", title=" ", audience="everyone")
    assert set(error.value.message_dict) == {"kind", "object_key", "title", "audience"}
    with pytest.raises(ValidationError):
        services.search_index_upsert(tenant=tenant_a, kind="product", object_key="x", title="X", facets=["no"])


def test_the_limit_caps_hits_but_not_the_total(tenant_a):
    for n in range(5):
        index(tenant_a, f"p{n}", f"Revenue {n}")

    results = selectors.search(tenant=tenant_a, query="revenue", limit=2)

    assert len(results.hits) == 2
    assert results.total == 5


@pytest.mark.postgres
def test_on_postgresql_the_vector_and_the_trigram_index_exist(tenant_a):
    document = index(tenant_a, "x", "Store revenue", "Daily totals")
    with connection.cursor() as cursor:
        cursor.execute("SELECT search_vector::text FROM utilities_searchdocument WHERE id = %s", [document.pk])
        vector = cursor.fetchone()[0]
        cursor.execute(
            "SELECT indexname FROM pg_indexes WHERE tablename = 'utilities_searchdocument' ORDER BY indexname"
        )
        indexes = {row[0] for row in cursor.fetchall()}
    assert "'revenue':2A" in vector and "'daily':3B" in vector
    assert {"utilities_searchdoc_vector", "utilities_searchdoc_terms_trgm"} <= indexes


# --- the API -----------------------------------------------------------------------------------------
def test_the_search_api_answers_ranked_hits_and_facets(tenant_a, token_client):
    index(tenant_a, "sales", "Store revenue", "Daily revenue.", domain="sales")
    index(tenant_a, "members", "Revenue forecast", audience="members", domain="finance")
    client = token_client(tenant_a, RoleChoices.ANALYST, scopes=["read"])

    body = client.get("/api/v1/search/", {"q": "revnue"}).json()

    assert sorted(hit["key"] for hit in body["results"]) == ["members", "sales"]
    assert body["count"] == 2
    assert {"value": "sales", "count": 1} in body["facets"]["domain"]
    assert all(hit["url"] == f"/api/v1/products/{hit['key']}/" for hit in body["results"])


def test_the_search_api_hides_members_documents_from_consumers(tenant_a, tenant_b, token_client):
    index(tenant_a, "sales", "Store revenue")
    index(tenant_a, "members", "Revenue forecast", audience="members")
    index(tenant_b, "theirs", "Revenue of B")
    client = token_client(tenant_a, RoleChoices.CONSUMER, scopes=["read"])

    body = client.get("/api/v1/search/", {"q": "revenue", "domain": ""}).json()

    assert [hit["key"] for hit in body["results"]] == ["sales"]


def test_the_search_api_filters_by_kind_and_facet(tenant_a, token_client):
    index(tenant_a, "p", "Revenue product", domain="sales")
    index(tenant_a, "q", "Revenue other", domain="finance")
    index(tenant_a, "c", "Revenue contract", kind="contract", domain="sales")
    client = token_client(tenant_a, RoleChoices.ANALYST, scopes=["read"])

    body = client.get("/api/v1/search/?q=revenue&kind=product&domain=sales").json()

    assert [hit["key"] for hit in body["results"]] == ["p"]


@pytest.mark.parametrize(
    "params", [{"limit": "0"}, {"limit": "many"}, {"limit": "101"}, {"q": "x" * 201}, {"kind": "k" * 40}]
)
def test_bad_search_parameters_are_a_validation_problem(tenant_a, token_client, params):
    client = token_client(tenant_a, RoleChoices.ANALYST, scopes=["read"])

    response = client.get("/api/v1/search/", params)

    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["type"] == "urn:aurum:problem:validation"


def test_the_search_api_needs_a_principal(api_client):
    response = api_client.get("/api/v1/search/", {"q": "x"})

    assert response.status_code == 401
    assert response["Content-Type"] == "application/problem+json"


# --- the reindex command -------------------------------------------------------------------------------
def test_search_reindex_rebuilds_contracts_and_drops_stale_documents(tenant_a, tenant_b, capsys):
    from tests.factories import ContractVersionFactory, DataContractFactory

    contract = DataContractFactory(tenant=tenant_a, key="store-sales", name="Store sales", domain="sales")
    ContractVersionFactory(contract=contract, status="active")
    DataContractFactory(tenant=tenant_b, key="meters", name="Meters")
    index(tenant_a, "ghost", "Ghost contract", kind="contract")
    index(tenant_b, "ghost", "Ghost contract", kind="contract")

    call_command("search_reindex", "--tenant", tenant_a.slug)

    assert keys(selectors.search(tenant=tenant_a, query="", kinds=["contract"])) == ["store-sales"]
    assert keys(selectors.search(tenant=tenant_b, query="", kinds=["contract"])) == ["ghost"]
    call_command("search_reindex")
    assert keys(selectors.search(tenant=tenant_b, query="", kinds=["contract"])) == ["meters"]
    assert "Search index rebuilt" in capsys.readouterr().out


def test_search_reindex_refuses_an_unknown_tenant(db):
    with pytest.raises(CommandError, match="No tenant 'nope'"):
        call_command("search_reindex", "--tenant", "nope")
