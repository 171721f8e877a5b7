"""The publication API and portal pages: publish, refusals as problems, as-published-on reads, decisions."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from apps.access.context import SESSION_TENANT_KEY
from apps.compute.publication import services
from apps.compute.publication.models import PublicationRequest, Restatement
from apps.host import services as host
from apps.kernel.roles import RoleChoices
from apps.storage.models import CalendarPeriod
from apps.storage.published import PublishedOutput
from tests.compute.test_kpi_fixtures import *  # noqa: F403
from tests.compute.test_kpi_fixtures import compute, d, load, make_kpi

PROBLEM = "application/problem+json"
ROWS = [
    {"day": d(2026, 1, 5), "store": "S1", "region": "north", "revenue": 100},
    {"day": d(2026, 2, 3), "store": "S1", "region": "north", "revenue": 80},
]


@pytest.fixture
def sales(world: Any) -> Any:
    load(world, ROWS)
    world.kpi = make_kpi(world, "revenue", measure="revenue", aggregation="sum", dimensions=["region"])
    compute(world, world.kpi)
    world.kpi.refresh_from_db()
    return world


@pytest.fixture
def api(sales: Any, token_client: Any) -> Any:
    return token_client(sales.tenant, RoleChoices.STEWARD, scopes=["read", "write"])


def four_eyes(world: Any) -> None:
    row = host.policy_create(actor=world.admin, tenant=world.tenant, kind="publication_approval", name="4e",
                             parameters={"four_eyes": True})  # fmt: skip
    host.policy_activate(actor=world.admin, policy=row)


class TestApi:
    URL = "/api/v1/kpi-publications/"

    def test_post_publishes_and_get_reads_it_back(self, sales, api):
        response = api.post(self.URL, {"kpi": "revenue", "periods": ["2026-01", "2026-02"], "reason": "monthly"},
                            format="json")  # fmt: skip
        assert response.status_code == 201, response.content
        body = response.json()
        output = PublishedOutput.objects.get()
        assert (body["id"], body["version"], body["kind"], body["content_hash"]) == (
            output.pk,
            1,
            "publication",
            output.content_hash,
        )
        assert [row["actual"] for row in body["values"]] == ["100", "80"]
        assert body["evidence"] == "/api/v1/evidence/?kind=kpi.published"
        detail = api.get(f"{self.URL}{output.pk}/").json()
        assert detail["periods"] == ["2026-01", "2026-02"] and detail["superseded_by"] == []

    def test_bad_input_is_a_validation_problem(self, sales, api):
        response = api.post(self.URL, {"kpi": "revenue", "periods": ["2026-13"]}, format="json")
        assert response.status_code == 400 and response["Content-Type"] == PROBLEM
        assert response.json()["errors"][0]["pointer"] == "#/periods"
        response = api.post(self.URL, {"kpi": "nope", "periods": ["2026-01"]}, format="json")
        assert response.status_code == 400 and response.json()["errors"][0]["pointer"] == "#/kpi"
        response = api.post(self.URL, {"kpi": "revenue"}, format="json")
        assert response.status_code == 400 and response.json()["errors"][0]["pointer"] == "#/periods"
        assert api.get(self.URL, {"as_published_on": "yesterday"}).status_code == 400

    def test_a_refusal_is_a_409_problem_listing_every_unmet_condition(self, sales, api):
        four_eyes(sales)
        response = api.post(self.URL, {"kpi": "revenue", "periods": ["2026-01"]}, format="json")
        assert response.status_code == 409 and response["Content-Type"] == PROBLEM
        body = response.json()
        assert body["type"] == "urn:aurum:problem:publication-refused"
        assert [u["message"] for u in body["unmet"]] == ["Four eyes: a second person must approve the publication."]

    def test_an_analyst_token_cannot_publish(self, sales, token_client):
        client = token_client(sales.tenant, RoleChoices.ANALYST, scopes=["read"])
        response = client.post(self.URL, {"kpi": "revenue", "periods": ["2026-01"]}, format="json")
        assert response.status_code == 403

    def test_as_published_on_returns_the_output_in_force_that_day(self, sales, api, monkeypatch):
        first = services.kpi_publish(actor=sales.steward, tenant=sales.tenant, version=sales.kpi, periods=["2026-01"])
        today = timezone.localdate()
        later = timezone.now() + timedelta(days=3)
        monkeypatch.setattr(timezone, "now", lambda: later)
        second = services.kpi_publish(actor=sales.steward, tenant=sales.tenant, version=sales.kpi,
                                      periods=["2026-02"])  # fmt: skip
        monkeypatch.undo()

        def ids(**params: Any) -> list[int]:
            return [row["id"] for row in api.get(self.URL, {"kpi": "revenue", **params}).json()["results"]]

        assert ids() == [second.pk, first.pk]
        assert ids(as_published_on=today.isoformat()) == [first.pk]
        assert ids(as_published_on=(today + timedelta(days=3)).isoformat()) == [second.pk]
        assert ids(as_published_on=(today - timedelta(days=1)).isoformat()) == []
        january = CalendarPeriod.objects.get(calendar=sales.calendar, level="period", label="2026-01").pk
        assert ids(as_published_on=(today + timedelta(days=3)).isoformat(), period=january) == [first.pk]
        assert ids(latest="true") == [second.pk]
        assert ids(period=january) == [first.pk]

    def test_a_publication_request_is_approved_by_a_second_steward(self, sales, api, token_client):
        four_eyes(sales)
        response = api.post("/api/v1/publication-requests/", {"kpi": "revenue", "periods": ["2026-01"]}, format="json")
        assert response.status_code == 201, response.content
        url = f"/api/v1/publication-requests/{response.json()['id']}/approve/"
        assert api.post(url, {}, format="json").status_code == 403  # the requester
        other = token_client(sales.tenant, RoleChoices.ADMIN, scopes=["read", "write"])
        response = other.post(url, {"comment": "fine"}, format="json")
        assert response.status_code == 200, response.content
        assert response.json()["status"] == "published"
        assert PublishedOutput.objects.get().pk == response.json()["output"]

    def test_restatements_are_decided_with_a_reason(self, sales, api):
        output = services.kpi_publish(actor=sales.steward, tenant=sales.tenant, version=sales.kpi, periods=["2026-01"])
        from apps.storage.models import KpiValue

        KpiValue.objects.filter(kpi_version=sales.kpi, period_id=output.period_ids[0]).update(actual=150)
        [restatement] = services.restatements_detect(tenant=sales.tenant, version=sales.kpi, trigger="test")
        url = f"/api/v1/restatements/{restatement.pk}/"
        body = api.get(url).json()
        assert [(r["old"], r["new"], r["delta"]) for r in body["diff"]] == [("100", "150", "50")]
        missing = api.post(url + "approve/", {}, format="json")
        assert missing.status_code == 400 and missing.json()["errors"][0]["pointer"] == "#/reason"
        response = api.post(url + "approve/", {"reason": "corrected GDP"}, format="json")
        assert response.status_code == 200 and response.json()["status"] == "approved"
        new = response.json()["output"]
        assert api.get(f"{TestApi.URL}{new}/").json()["supersedes"] == output.pk
        assert api.get(f"{TestApi.URL}{output.pk}/").json()["superseded_by"] == [new]
        conflict = api.post(url + "reject/", {"reason": "too late"}, format="json")
        assert conflict.status_code == 409 and conflict["Content-Type"] == PROBLEM


class TestPortal:
    def client_of(self, user: Any, tenant: Any) -> Client:
        client = Client()
        client.force_login(user)
        session = client.session
        session[SESSION_TENANT_KEY] = tenant.pk
        session.save()
        return client

    def test_the_publish_page_shows_the_policy_check_before_publishing(self, sales):
        client = self.client_of(sales.steward, sales.tenant)
        url = reverse("admin:storage_publishedoutput_publish")
        assert client.get(reverse("admin:storage_publishedoutput_changelist")).status_code == 200
        periods = list(CalendarPeriod.objects.filter(calendar=sales.calendar, level="period",
                                                     label__in=["2026-01", "2026-02"]).values_list("pk", flat=True))  # fmt: skip
        response = client.post(url, {"kpi_version": sales.kpi.pk, "periods": periods, "step": "check"})
        assert response.status_code == 200
        assert b"may be published" in response.content and b"publish-button" in response.content
        assert not PublishedOutput.objects.exists()
        response = client.post(url, {"kpi_version": sales.kpi.pk, "periods": periods, "step": "publish"})
        output = PublishedOutput.objects.get()
        assert response.status_code == 302 and response["Location"].endswith(f"/{output.pk}/change/")
        page = client.get(response["Location"])
        assert page.status_code == 200 and output.content_hash.encode() in page.content
        assert b"The stored values hash to the content hash." in page.content

    def test_under_four_eyes_the_page_offers_a_request_instead(self, sales):
        four_eyes(sales)
        client = self.client_of(sales.steward, sales.tenant)
        url = reverse("admin:storage_publishedoutput_publish")
        january = CalendarPeriod.objects.get(calendar=sales.calendar, level="period", label="2026-01").pk
        response = client.post(url, {"kpi_version": sales.kpi.pk, "periods": [january], "step": "check"})
        assert b"needs a second person" in response.content and b"request-button" in response.content
        response = client.post(url, {"kpi_version": sales.kpi.pk, "periods": [january], "step": "publish"})
        assert response.status_code == 200 and b"Four eyes: a second person must approve" in response.content
        response = client.post(url, {"kpi_version": sales.kpi.pk, "periods": [january], "step": "request"})
        request = PublicationRequest.objects.get()
        assert response.status_code == 302 and not PublishedOutput.objects.exists()
        page = client.get(reverse("admin:compute_publicationrequest_change", args=[request.pk]))
        assert page.status_code == 200 and b"decide-link" not in page.content  # the requester: four eyes
        assert b"You requested this publication" in page.content
        other = self.client_of(sales.admin, sales.tenant)
        assert (
            b"decide-link" in other.get(reverse("admin:compute_publicationrequest_change", args=[request.pk])).content
        )
        assert client.get(reverse("admin:compute_publicationrequest_changelist")).status_code == 200
        decide = reverse("admin:compute_publicationrequest_decide", args=[request.pk])
        assert client.post(decide, {"decision": "approve"}).status_code == 200  # the requester: refused on the form
        assert not PublishedOutput.objects.exists()
        admin = self.client_of(sales.admin, sales.tenant)
        assert admin.post(decide, {"decision": "approve"}).status_code == 302
        assert PublishedOutput.objects.get().approved_by == sales.admin

    def test_a_restatement_is_rejected_in_the_portal_only_with_a_reason(self, sales):
        output = services.kpi_publish(actor=sales.steward, tenant=sales.tenant, version=sales.kpi, periods=["2026-01"])
        from apps.storage.models import KpiValue

        KpiValue.objects.filter(kpi_version=sales.kpi, period_id=output.period_ids[0]).update(actual=150)
        [restatement] = services.restatements_detect(tenant=sales.tenant, version=sales.kpi)
        client = self.client_of(sales.steward, sales.tenant)
        page = client.get(reverse("admin:compute_restatement_change", args=[restatement.pk]))
        assert page.status_code == 200 and b"decide-link" in page.content and b"150" in page.content
        decide = reverse("admin:compute_restatement_decide", args=[restatement.pk])
        response = client.post(decide, {"decision": "reject", "reason": ""})
        assert response.status_code == 200 and b"Give a reason." in response.content
        assert Restatement.objects.get().status == "proposed"
        assert client.post(decide, {"decision": "reject", "reason": "wrong feed"}).status_code == 302
        assert Restatement.objects.get().status == "rejected"
        assert client.get(reverse("admin:compute_restatement_changelist")).status_code == 200
        page = client.get(reverse("admin:storage_publishedoutput_change", args=[output.pk]))
        # a steward does not read the ledger (admins and auditors do): a note instead of a link answering 403
        assert b"evidencerecord" not in page.content and b"(in force)" in page.content
        assert b"tenant admins and auditors read" in page.content
        page = self.client_of(sales.admin, sales.tenant).get(reverse("admin:storage_publishedoutput_change",
                                                                     args=[output.pk]))  # fmt: skip
        assert b"evidencerecord" in page.content

    def test_an_analyst_sees_outputs_but_cannot_publish(self, sales, member):
        client = self.client_of(member(sales.tenant, RoleChoices.ANALYST), sales.tenant)
        assert client.get(reverse("admin:storage_publishedoutput_changelist")).status_code == 200
        assert client.get(reverse("admin:storage_publishedoutput_publish")).status_code == 403
