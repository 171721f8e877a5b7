"""The data product catalog: API, visibility, computed health, sample, Markdown, admin, search."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from apps.consumption.catalog import services
from apps.consumption.catalog.markdown import render_markdown
from apps.consumption.catalog.models import DataProduct
from apps.host.models import ContractField
from apps.kernel.roles import RoleChoices
from apps.runtime.models import DomainEvent
from apps.utilities.search.models import SearchDocument
from tests.factories import (
    ContractVersionFactory,
    DataContractFactory,
    DataProductFactory,
    GoldenDataPointFactory,
    IngestionBatchFactory,
    SourceFactory,
)

pytestmark = pytest.mark.django_db
PROBLEM = "application/problem+json"


@pytest.fixture
def contract(tenant_a):
    contract = DataContractFactory(tenant=tenant_a, key="store-sales", name="Store sales", domain="sales")
    version = ContractVersionFactory(contract=contract, status="active", sla_freshness=timedelta(hours=1))
    for position, (name, role, classification) in enumerate(
        [
            ("store_id", "entity_key", "internal"),
            ("region", "dimension", "public"),
            ("cashier", "dimension", "restricted"),
            ("revenue", "measure", "internal"),
            ("margin", "measure", "confidential"),
        ]
    ):
        ContractField.objects.create(version=version, position=position, name=name, logical_type="string", role=role,
                                     classification=classification)  # fmt: skip
    return contract


@pytest.fixture
def steward(tenant_a, token_client):
    return token_client(tenant_a, RoleChoices.STEWARD, scopes=["read", "write"])


@pytest.fixture
def consumer(tenant_a, token_client):
    return token_client(tenant_a, RoleChoices.CONSUMER, scopes=["read"])


def make(tenant, actor=None, **attrs):
    attrs.setdefault("kind", "gdp_dataset")
    slug = attrs.pop("slug")
    return services.product_create(actor=actor, tenant=tenant, slug=slug, name=attrs.pop("name", slug.title()),
                                   **attrs)  # fmt: skip


def gdp(batch, **attrs):
    """A current GDP of the batch's contract under its active version."""
    version = batch.source.contract.versions.filter(status="active").first() or ContractVersionFactory(
        contract=batch.source.contract, version="9.9.9"
    )
    return GoldenDataPointFactory(batch=batch, contract_version=version, **attrs)


def data_at(contract, when, *, accepted=10, received=10, status="completed"):
    source = SourceFactory(contract=contract)
    batch = IngestionBatchFactory(source=source, status=status, accepted=accepted, received=received,
                                  finished_at=when)  # fmt: skip
    return batch


# --- writes ----------------------------------------------------------------------------------------------
def test_a_steward_creates_a_product_and_publishes_it(steward, contract):
    response = steward.post(
        "/api/v1/products/",
        {"slug": "store-sales", "name": "Store sales", "contract": "store-sales", "domain": "sales",
         "tags": ["retail", "daily", "retail"], "description": "Daily **revenue** per store.", "visibility": "listed"},
    )  # fmt: skip

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "draft" and body["owner"] == steward.user.username
    assert body["tags"] == ["retail", "daily"]
    assert body["description_html"] == "<p>Daily <strong>revenue</strong> per store.</p>\n"
    assert body["contract"] == {"contract": "store-sales", "version": "1.0.0", "sla_freshness_seconds": 3600}

    response = steward.post("/api/v1/products/store-sales/publish/")

    assert response.status_code == 200 and response.json()["status"] == "published"
    types = set(DomainEvent.objects.filter(tenant=contract.tenant).values_list("type", flat=True))
    assert {"product.created", "product.published"} <= types


def test_a_steward_updates_and_deprecates_a_product(steward, contract):
    make(contract.tenant, slug="store-sales", contract=contract)

    response = steward.patch("/api/v1/products/store-sales/", {"domain": "retail", "classification": "public"})
    assert response.status_code == 200 and response.json()["domain"] == "retail"

    assert steward.post("/api/v1/products/store-sales/deprecate/").json()["status"] == "deprecated"
    response = steward.patch("/api/v1/products/store-sales/", {"domain": "x"})
    assert response.status_code == 409 and response.json()["type"] == "urn:aurum:problem:product-deprecated"


def test_an_illegal_transition_is_a_409_naming_the_allowed_next_states(steward, contract):
    make(contract.tenant, slug="p", contract=contract)
    steward.post("/api/v1/products/p/deprecate/")

    response = steward.post("/api/v1/products/p/publish/")

    assert response.status_code == 409
    assert response["Content-Type"] == PROBLEM
    assert response.json()["type"] == "urn:aurum:problem:illegal-transition"
    assert response.json()["allowed_next"] == []


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"slug": "p", "name": "P"}, "contract"),  # a GDP dataset needs its contract
        ({"slug": "p", "name": "P", "contract": "nope"}, "contract"),
        ({"slug": "bad slug!", "name": "P", "contract": "store-sales"}, "slug"),
        ({"slug": "p", "name": "P", "contract": "store-sales", "classification": "secret"}, "classification"),
        ({"slug": "p", "name": "P", "contract": "store-sales", "tags": "retail"}, "tags"),
        ({"slug": "p", "name": "P", "contract": "store-sales", "tags": ["x" * 51]}, "tags"),
        ({"slug": "p", "name": "P", "contract": "store-sales", "owner": "stranger"}, "owner"),
        ({"slug": "p", "name": "P", "contract": "store-sales", "kind": "cube"}, "kind"),
    ],
)
def test_bad_input_is_a_validation_problem(steward, contract, payload, field):
    response = steward.post("/api/v1/products/", payload)

    assert response.status_code == 400, response.content
    assert response["Content-Type"] == PROBLEM
    body = response.json()
    assert body["type"] == "urn:aurum:problem:validation"
    assert any(error["pointer"].startswith(f"#/{field}") for error in body["errors"]), body
    assert not DataProduct.objects.exists()


def test_a_duplicate_slug_is_refused(steward, contract):
    make(contract.tenant, slug="p", contract=contract)

    response = steward.post("/api/v1/products/", {"slug": "p", "name": "P", "contract": "store-sales"})

    assert response.status_code == 400
    assert response["Content-Type"] == PROBLEM


def test_the_same_slug_may_exist_in_another_tenant(tenant_b, steward, contract):
    DataProductFactory(contract=DataContractFactory(tenant=tenant_b), slug="p")

    assert steward.post("/api/v1/products/", {"slug": "p", "name": "P", "contract": "store-sales"}).status_code == 201


def test_a_contract_of_another_tenant_cannot_be_named(tenant_b, steward, contract):
    DataContractFactory(tenant=tenant_b, key="theirs")

    response = steward.post("/api/v1/products/", {"slug": "p", "name": "P", "contract": "theirs"})

    assert response.status_code == 400


def test_a_kpi_set_needs_no_contract_and_has_unknown_health(steward, tenant_a):
    response = steward.post("/api/v1/products/", {"slug": "kpis", "name": "KPIs", "kind": "kpi_set"})

    assert response.status_code == 201
    assert response.json()["contract"] is None
    assert response.json()["health"]["freshness"] == "unknown"
    assert response.json()["sample"] == []


@pytest.mark.parametrize("role", [RoleChoices.ANALYST, RoleChoices.CONSUMER, RoleChoices.AUDITOR])
def test_readers_cannot_write(tenant_a, token_client, contract, role):
    make(tenant_a, slug="p", contract=contract)
    client = token_client(tenant_a, role, scopes=["read"])

    assert client.post("/api/v1/products/", {"slug": "q", "name": "Q", "contract": "store-sales"}).status_code == 403
    assert client.post("/api/v1/products/p/deprecate/").status_code in (403, 404)
    assert DataProduct.objects.get(slug="p").status == "draft"


# --- visibility -------------------------------------------------------------------------------------------
def test_consumers_see_only_listed_products_that_are_not_drafts(tenant_a, consumer, token_client, contract):
    make(tenant_a, slug="listed-draft", contract=contract, visibility="listed")
    for slug, visibility in (("listed", "listed"), ("members", "members")):
        services.product_publish(actor=None, product=make(tenant_a, slug=slug, contract=contract,
                                                          visibility=visibility))  # fmt: skip
    analyst = token_client(tenant_a, RoleChoices.ANALYST, scopes=["read"])

    assert [p["slug"] for p in consumer.get("/api/v1/products/").json()["results"]] == ["listed"]
    assert consumer.get("/api/v1/products/members/").status_code == 404
    assert consumer.get("/api/v1/products/listed-draft/").status_code == 404
    assert consumer.get("/api/v1/products/listed/").status_code == 200
    listed = {p["slug"] for p in analyst.get("/api/v1/products/").json()["results"]}
    assert listed == {"listed", "members", "listed-draft"}


def test_another_tenants_product_is_not_found(tenant_b, steward):
    DataProductFactory(contract=DataContractFactory(tenant=tenant_b), slug="theirs")

    response = steward.get("/api/v1/products/theirs/")

    assert response.status_code == 404 and response["Content-Type"] == PROBLEM
    assert steward.get("/api/v1/products/").json()["results"] == []


# --- filters ------------------------------------------------------------------------------------------------
@pytest.fixture
def catalog(tenant_a, contract, member):
    alice = member(tenant_a, RoleChoices.STEWARD, username="alice")
    other = DataContractFactory(tenant=tenant_a, key="meters", domain="energy")
    return {
        "a": make(tenant_a, slug="a", contract=contract, domain="sales", tags=["retail", "daily"], owner=alice,
                  classification="public"),
        "b": make(tenant_a, slug="b", contract=other, domain="energy", tags=["daily"], classification="restricted"),
        "c": make(tenant_a, slug="c", kind="kpi_set", domain="Sales", tags=["Retail"]),
    }  # fmt: skip


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("domain=sales", ["a", "c"]),
        ("owner=alice", ["a"]),
        ("tag=retail", ["a", "c"]),
        ("tag=daily", ["a", "b"]),
        ("tag=nothing,daily", ["a", "b"]),
        ("classification=public&classification=restricted", ["a", "b"]),
        ("kind=kpi_set", ["c"]),
        ("contract=meters", ["b"]),
        ("status=draft", ["a", "b", "c"]),
        ("freshness=unknown", ["b", "c"]),
        ("freshness=fresh", ["a"]),
    ],
)
def test_each_filter_narrows_the_list(steward, catalog, contract, query, expected):
    data_at(contract, datetime.now(UTC) - timedelta(minutes=5))

    response = steward.get(f"/api/v1/products/?{query}")

    assert response.status_code == 200
    assert [p["slug"] for p in response.json()["results"]] == expected


def test_a_bad_filter_value_is_a_validation_problem(steward, catalog):
    response = steward.get("/api/v1/products/?freshness=rotten")

    assert response.status_code == 400 and response["Content-Type"] == PROBLEM


def test_the_list_costs_the_same_queries_for_one_and_many_products(steward, tenant_a, contract, settings):
    settings.AURUM_API_READ_CACHE_SECONDS = 0  # what building the list costs
    make(tenant_a, slug="p0", contract=contract)
    steward.get("/api/v1/products/")  # the token's first use records itself
    with CaptureQueriesContext(connection) as one:
        assert steward.get("/api/v1/products/").status_code == 200
    for n in range(1, 8):
        make(tenant_a, slug=f"p{n}", contract=DataContractFactory(tenant=tenant_a))
    with CaptureQueriesContext(connection) as many:
        assert len(steward.get("/api/v1/products/").json()["results"]) == 8

    assert len(many) == len(one)


# --- health ----------------------------------------------------------------------------------------------------
def test_freshness_compares_the_newest_data_with_the_sla(steward, tenant_a, contract):
    make(tenant_a, slug="p", contract=contract)
    data_at(contract, datetime.now(UTC) - timedelta(hours=3))
    assert steward.get("/api/v1/products/p/").json()["health"]["freshness"] == "stale"
    assert steward.get("/api/v1/products/p/").json()["health"]["sla_status"] == "breached"

    gdp(data_at(contract, None, status="processing"), recorded_from=datetime.now(UTC) - timedelta(minutes=10))
    health = steward.get("/api/v1/products/p/").json()["health"]

    assert health["freshness"] == "fresh" and health["sla_status"] == "met"
    assert 590 <= health["age_seconds"] <= 700
    assert health["freshness_target_seconds"] == 3600


def test_freshness_is_unknown_without_an_sla_or_without_data(steward, tenant_a):
    no_sla = DataContractFactory(tenant=tenant_a)
    ContractVersionFactory(contract=no_sla, status="active")
    data_at(no_sla, datetime.now(UTC))
    make(tenant_a, slug="no-sla", contract=no_sla)
    no_data = DataContractFactory(tenant=tenant_a)
    ContractVersionFactory(contract=no_data, status="active", sla_freshness=timedelta(hours=1))
    make(tenant_a, slug="no-data", contract=no_data)

    for slug in ("no-sla", "no-data"):
        health = steward.get(f"/api/v1/products/{slug}/").json()["health"]
        assert (health["freshness"], health["sla_status"]) == ("unknown", "unknown")


def test_the_quality_score_is_the_pass_rate_of_recent_finished_batches(steward, tenant_a, contract):
    make(tenant_a, slug="p", contract=contract)
    now = datetime.now(UTC)
    data_at(contract, now, accepted=90, received=100)
    data_at(contract, now, accepted=0, received=50, status="refused")
    data_at(contract, now, accepted=10, received=50, status="completed_with_rejections")
    data_at(contract, None, accepted=0, received=1000, status="failed")  # a technical failure: left out

    health = steward.get("/api/v1/products/p/").json()["health"]

    assert Decimal(str(health["quality_score"])) == Decimal("50.00")
    assert health["batches_considered"] == 3


def test_the_quality_score_reads_only_the_last_batches(steward, tenant_a, contract, monkeypatch):
    from apps.consumption.catalog import selectors

    monkeypatch.setattr(selectors, "QUALITY_WINDOW", 2)
    make(tenant_a, slug="p", contract=contract)
    data_at(contract, None, accepted=0, received=100)  # oldest: outside the window
    data_at(contract, None, accepted=100, received=100)
    data_at(contract, None, accepted=50, received=100)

    assert steward.get("/api/v1/products/p/").json()["health"]["quality_score"] == 75.0


def test_the_sample_leaves_out_confidential_and_restricted_fields(steward, tenant_a, contract):
    make(tenant_a, slug="p", contract=contract)
    batch = data_at(contract, datetime.now(UTC))
    dims = {"region": "EU", "cashier": "Jane Doe", "undeclared": "x"}
    gdp(batch, measure="revenue", entity_key="S001", dimensions=dims, value=Decimal("12.5"))
    gdp(batch, measure="margin", entity_key="S001", dimensions=dims, value=Decimal("3"))

    sample = steward.get("/api/v1/products/p/").json()["sample"]

    assert len(sample) == 1
    assert sample[0]["measure"] == "revenue" and sample[0]["entity_key"] == "S001"
    assert sample[0]["dimensions"] == {"region": "EU"}
    assert "Jane Doe" not in str(sample)


def test_the_sample_hides_the_entity_key_when_a_key_field_is_confidential(steward, tenant_a, contract):
    ContractField.objects.filter(name="store_id").update(classification="confidential")
    make(tenant_a, slug="p", contract=contract)
    gdp(data_at(contract, datetime.now(UTC)), measure="revenue", entity_key="S001")

    assert steward.get("/api/v1/products/p/").json()["sample"][0]["entity_key"] is None


# --- Markdown -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "markdown",
    [
        "<script>alert(1)</script>",
        "[click](javascript:alert(1))",
        "[click](JaVaScRiPt:alert(1))",
        "[click](java&#115;cript:alert(1))",
        "<a href='javascript:alert(1)'>x</a>",
        "<img src=x onerror=alert(1)>",
        "![x](data:text/html;base64,PHNjcmlwdD4=)",
        "<javascript:alert(1)>",
        "[rel](/admin/)",
    ],
)
def test_markdown_is_rendered_inert(markdown):
    html = render_markdown(markdown)

    assert "<script" not in html and "<img" not in html
    assert "<a " not in html  # raw HTML is escaped text, unsafe links stay plain text


def test_markdown_keeps_safe_links_and_formatting():
    html = render_markdown("# Title\n\n[docs](https://example.com/x) or [mail](mailto:data@example.com) *now*")

    assert '<a href="https://example.com/x" rel="nofollow noopener noreferrer">docs</a>' in html
    assert 'href="mailto:data@example.com"' in html
    assert "<h1>Title</h1>" in html and "<em>now</em>" in html


def test_the_api_serves_the_description_rendered_safely(steward, tenant_a, contract):
    make(tenant_a, slug="p", contract=contract, description="<script>x</script> [a](javascript:x)")

    html = steward.get("/api/v1/products/p/").json()["description_html"]

    assert "<script>" not in html and "href" not in html


# --- discovery ----------------------------------------------------------------------------------------------------
def test_a_consumer_finds_a_published_listed_product_by_a_typod_word(tenant_a, consumer, contract):
    product = make(tenant_a, slug="store-sales", name="Store revenue", contract=contract, visibility="listed",
                   description="Daily revenue per store.", tags=["retail"])  # fmt: skip
    make(tenant_a, slug="hidden", name="Revenue forecast", contract=contract, visibility="members")
    assert consumer.get("/api/v1/search/", {"q": "revnue"}).json()["results"] == []  # still a draft

    services.product_publish(actor=None, product=product)
    body = consumer.get("/api/v1/search/", {"q": "revnue", "kind": "product"}).json()

    assert [hit["key"] for hit in body["results"]] == ["store-sales"]
    assert body["results"][0]["url"] == "/api/v1/products/store-sales/"
    assert body["facets"]["tag"] == [{"value": "retail", "count": 1}]
    assert consumer.get(body["results"][0]["url"]).status_code == 200


def test_search_filters_products_by_their_live_freshness(tenant_a, steward, contract):
    make(tenant_a, slug="fresh", name="Revenue fresh", contract=contract)
    make(tenant_a, slug="unknown", name="Revenue unknown", kind="kpi_set")
    data_at(contract, datetime.now(UTC))

    body = steward.get("/api/v1/search/", {"q": "revenue", "freshness": "fresh"}).json()

    assert [hit["key"] for hit in body["results"]] == ["fresh"]
    assert body["facets"]["freshness"] == [{"value": "fresh", "count": 1}]


def test_the_product_document_follows_the_product(tenant_a, contract):
    product = make(tenant_a, slug="p", name="Revenue", contract=contract, visibility="listed")
    document = SearchDocument.objects.get(kind="product", object_key="p")
    assert document.audience == "members"  # a draft

    services.product_publish(actor=None, product=product)
    services.product_update(actor=None, product=product, name="Turnover", tags=["kpi"])
    document.refresh_from_db()

    assert document.audience == "listed"
    assert document.title == "Turnover"
    assert document.facets["tag"] == ["kpi"]


def test_contract_events_index_the_contract_and_its_fields(tenant_a, django_capture_on_commit_callbacks):
    from apps.host import services as host

    with django_capture_on_commit_callbacks(execute=True):
        contract = host.contract_create(actor=None, tenant=tenant_a, key="store-sales", name="Store sales",
                                        domain="sales", description="Till receipts per store")  # fmt: skip
        host.contract_version_create(
            actor=None, contract=contract, version="1.0.0",
            fields=[{"name": "revenue", "logical_type": "number", "description": "Gross takings", "role": "measure"}],
        )  # fmt: skip

    documents = dict(
        SearchDocument.objects.for_tenant(tenant_a).values_list("object_key", "kind").order_by("object_key")
    )
    assert documents == {"store-sales": "contract", "store-sales.revenue": "contract_field"}
    from apps.utilities.search.selectors import search

    hits = search(tenant=tenant_a, query="takings").hits
    assert [(hit.kind, hit.object_key) for hit in hits] == [("contract_field", "store-sales.revenue")]


# --- the portal ----------------------------------------------------------------------------------------------------
@pytest.fixture
def portal(tenant_a, member):
    def login(role):
        client = Client()
        client.force_login(member(tenant_a, role))
        return client

    return login


def test_a_steward_adds_a_product_in_the_portal(portal, tenant_a, contract):
    client = portal(RoleChoices.STEWARD)
    response = client.post(
        reverse("admin:consumption_dataproduct_add"),
        {"tenant": tenant_a.pk, "slug": "p", "name": "P", "kind": "gdp_dataset", "contract": contract.pk,
         "classification": "internal", "visibility": "members", "tags": "retail, daily", "description": "x"},
    )  # fmt: skip

    assert response.status_code == 302, response.content.decode()[:2000]
    product = DataProduct.objects.get(slug="p")
    assert product.tags == ["retail", "daily"]
    assert SearchDocument.objects.filter(kind="product", object_key="p").exists()


def test_the_portal_form_refuses_a_gdp_dataset_without_a_contract(portal, tenant_a):
    client = portal(RoleChoices.STEWARD)
    response = client.post(
        reverse("admin:consumption_dataproduct_add"),
        {"tenant": tenant_a.pk, "slug": "p", "name": "P", "kind": "gdp_dataset", "classification": "internal",
         "visibility": "members", "tags": ""},
    )  # fmt: skip

    assert response.status_code == 200
    assert "contract" in response.context["adminform"].form.errors
    assert not DataProduct.objects.exists()


def test_an_analyst_reads_but_cannot_add_in_the_portal(portal, tenant_a, contract):
    make(tenant_a, slug="p", contract=contract, description="<script>x</script>")
    client = portal(RoleChoices.ANALYST)

    assert client.get(reverse("admin:consumption_dataproduct_changelist")).status_code == 200
    assert client.get(reverse("admin:consumption_dataproduct_add")).status_code == 403
    page = client.get(reverse("admin:consumption_dataproduct_change", args=[DataProduct.objects.get().pk]))
    assert page.status_code == 200 and "<script>x" not in page.content.decode()


def test_the_portal_search_page_finds_by_typo(portal, tenant_a, tenant_b, contract):
    make(tenant_a, slug="ours", name="Store revenue", contract=contract)
    make(tenant_b, slug="theirs", name="Store revenue B", contract=DataContractFactory(tenant=tenant_b))
    client = portal(RoleChoices.ANALYST)

    response = client.get(reverse("admin:consumption_dataproduct_search"), {"q": "revnue"})

    assert response.status_code == 200
    assert [hit.object_key for hit in response.context["results"].hits] == ["ours"]


# --- KPI sets name their KPIs ------------------------------------------------------------------------------
def test_a_kpi_set_names_its_kpis_and_shows_their_publication_and_freshness(steward, tenant_a, tenant_b):
    from tests.factories import KpiDefinitionFactory, KpiValueFactory, KpiVersionFactory, PublishedOutputFactory

    version = KpiVersionFactory(definition=KpiDefinitionFactory(tenant=tenant_a, key="net-sales"), status="active")
    computed = datetime.now(UTC) - timedelta(minutes=30)
    KpiValueFactory(kpi_version=version, computed_at=computed)
    PublishedOutputFactory(tenant=tenant_a, kpi_version=version, kpi_key="net-sales", version=1, content_hash="a" * 64)
    newest = PublishedOutputFactory(tenant=tenant_a, kpi_version=version, kpi_key="net-sales", version=2,
                                    kind="period_close", content_hash="b" * 64)  # fmt: skip
    only_published = PublishedOutputFactory(tenant=tenant_a)
    theirs = PublishedOutputFactory(tenant=tenant_b)

    refused = steward.post("/api/v1/products/", {"slug": "kpis", "name": "KPIs", "kind": "kpi_set",
                                                 "kpis": ["net-sales", theirs.kpi_key]}, format="json")  # fmt: skip
    assert refused.status_code == 400 and refused.json()["errors"][0]["pointer"] == "#/kpis"
    assert theirs.kpi_key in refused.json()["errors"][0]["detail"]
    not_a_set = steward.post("/api/v1/products/", {"slug": "gdps", "name": "GDPs", "kind": "gdp_dataset",
                                                   "kpis": ["net-sales"]}, format="json")  # fmt: skip
    assert not_a_set.status_code == 400

    response = steward.post("/api/v1/products/", {"slug": "kpis", "name": "KPIs", "kind": "kpi_set",
                                                  "kpis": ["net-sales", only_published.kpi_key]}, format="json")  # fmt: skip
    assert response.status_code == 201, response.content
    detail = steward.get("/api/v1/products/kpis/").json()
    assert detail["kpis"] == ["net-sales", only_published.kpi_key]
    first, second = detail["kpi_details"]
    assert first["key"] == "net-sales" and first["values_url"] == "/api/v1/kpis/net-sales/values/"
    assert first["latest_publication"]["version"] == 2
    assert first["latest_publication"]["content_hash"] == newest.content_hash
    assert first["latest_publication"]["kind"] == "period_close"
    assert 1790 <= first["age_seconds"] <= 1900
    assert second["latest_publication"]["version"] == only_published.version
    assert second["last_computed_at"] is None and second["age_seconds"] is None
    assert steward.get("/api/v1/products/").json()["results"][0]["kpis"] == ["net-sales", only_published.kpi_key]
    assert "net-sales" in SearchDocument.objects.get(object_key="kpis").body


# --- the read cache ---------------------------------------------------------------------------------------------
class TestReadCache:
    """The products list is served again from the cache until the tenant changes or it expires."""

    URL = "/api/v1/products/"

    @staticmethod
    def slugs(response):
        assert response.status_code == 200, response.content[:300]
        return [row["slug"] for row in response.json()["results"]]

    def test_a_repeated_read_is_served_from_the_cache_with_its_age(self, steward, tenant_a, contract):
        make(tenant_a, slug="p0", contract=contract)
        first = steward.get(self.URL)
        with CaptureQueriesContext(connection) as served:
            again = steward.get(self.URL)
        assert again.content == first.content and again["Age"] == "0" and not first.has_header("Age")
        assert not any("consumption_dataproduct" in query["sql"] for query in served.captured_queries)

    def test_a_change_in_the_tenant_drops_its_cached_reads(self, steward, tenant_a, contract,
                                                           django_capture_on_commit_callbacks):  # fmt: skip
        make(tenant_a, slug="p0", contract=contract)
        assert self.slugs(steward.get(self.URL)) == ["p0"]
        with django_capture_on_commit_callbacks(execute=True):  # product.created commits
            make(tenant_a, slug="p1", contract=contract)
        assert self.slugs(steward.get(self.URL)) == ["p0", "p1"]

    def test_tenants_never_share_an_entry_nor_drop_each_others(self, steward, tenant_a, tenant_b, token_client,
                                                                contract, django_capture_on_commit_callbacks):  # fmt: skip
        theirs = token_client(tenant_b, RoleChoices.STEWARD, scopes=["read"])
        make(tenant_a, slug="ours", contract=contract)
        make(tenant_b, slug="theirs", contract=DataContractFactory(tenant=tenant_b))
        assert self.slugs(steward.get(self.URL)) == ["ours"]
        assert self.slugs(theirs.get(self.URL)) == ["theirs"]
        with django_capture_on_commit_callbacks(execute=True):
            make(tenant_b, slug="more", contract=DataContractFactory(tenant=tenant_b))
        assert steward.get(self.URL).has_header("Age")  # still ours, from the cache
        assert self.slugs(theirs.get(self.URL)) == ["more", "theirs"]

    def test_members_and_consumers_have_entries_of_their_own(self, steward, consumer, tenant_a, contract):
        make(tenant_a, slug="draft", contract=contract)  # a draft: members only
        assert self.slugs(steward.get(self.URL)) == ["draft"]
        assert self.slugs(consumer.get(self.URL)) == []

    def test_an_entry_expires(self, steward, tenant_a, contract, settings, monkeypatch):
        from apps.kernel import generations

        settings.AURUM_API_READ_CACHE_SECONDS = 5
        make(tenant_a, slug="p0", contract=contract)
        steward.get(self.URL)
        later = generations.time.time() + 6
        monkeypatch.setattr(generations.time, "time", lambda: later)
        assert not steward.get(self.URL).has_header("Age")

    def test_it_can_be_turned_off(self, steward, tenant_a, contract, settings):
        settings.AURUM_API_READ_CACHE_SECONDS = 0
        make(tenant_a, slug="p0", contract=contract)
        steward.get(self.URL)
        assert not steward.get(self.URL).has_header("Age")

    def test_an_unreachable_cache_neither_fails_reads_nor_writes(self, steward, tenant_a, contract, monkeypatch,
                                                                 django_capture_on_commit_callbacks):  # fmt: skip
        class Down:
            def __getattr__(self, name):
                raise ConnectionError("the cache is down")

        from apps.kernel import generations

        monkeypatch.setattr(generations, "cache", Down())
        with django_capture_on_commit_callbacks(execute=True):
            make(tenant_a, slug="p0", contract=contract)
        for _ in range(2):
            response = steward.get(self.URL)
            assert self.slugs(response) == ["p0"] and not response.has_header("Age")
