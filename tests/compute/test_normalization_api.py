"""A draft contract version's normalization steps through the API: listed in order, created, changed, deleted;
frozen once the version is proposed; a step that cannot be compiled is a 400 naming what is wrong."""

from __future__ import annotations

import io
import json

import pytest

from apps.compute import services as compute
from apps.compute.models import NormalizationRule
from apps.host import services as host
from apps.kernel.roles import RoleChoices
from apps.storage.models import GoldenDataPoint
from tests.compute.conftest import FIELDS

pytestmark = pytest.mark.django_db

URL = "/api/v1/normalization-rules/"
PROBLEM_JSON = "application/problem+json"


@pytest.fixture
def client(tenant_a, token_client):
    return token_client(tenant_a, RoleChoices.STEWARD, scopes=["read", "write"])


@pytest.fixture
def draft(tenant_a, people):
    contract = host.contract_create(actor=people["steward"], tenant=tenant_a, key="store-sales", name="Sales")
    return host.contract_version_create(actor=people["steward"], contract=contract, version="1.0.0", fields=FIELDS)


def create(client, draft, **body):
    return client.post(URL, {"contract_version": draft.pk, **body}, format="json")


def test_steps_are_created_in_order_and_listed_as_they_run(client, draft):
    first = create(client, draft, kind="cast", field="sale_date", params={"to": "date"})
    second = create(client, draft, kind="trim", field="store_id", description="Spaces from the tills")
    early = create(client, draft, kind="rename", field="revenue", params={"from": "amount"}, position=0)
    assert [r.status_code for r in (first, second, early)] == [201, 201, 201], early.json()
    assert second.json() == {
        "id": second.json()["id"], "contract": "store-sales", "contract_version": draft.pk, "version": "1.0.0",
        "version_status": "draft", "position": 1, "kind": "trim", "field": "store_id", "params": {},
        "description": "Spaces from the tills",
    }  # fmt: skip
    listed = client.get(URL, {"contract_version": draft.pk}).json()["results"]
    assert [(r["position"], r["kind"], r["field"]) for r in listed] == [
        (0, "cast", "sale_date"), (0, "rename", "revenue"), (1, "trim", "store_id")
    ]  # fmt: skip
    by_contract = client.get(URL, {"contract_version__contract__key": "store-sales", "kind": "cast"}).json()
    assert [r["field"] for r in by_contract["results"]] == ["sale_date"]
    assert client.get(URL, {"contract_version__contract__key": "other"}).json()["count"] == 0


def test_a_step_is_changed_and_deleted(client, draft):
    rule = create(client, draft, kind="cast", field="revenue", params={"to": "number"}).json()
    changed = client.patch(f"{URL}{rule['id']}/", {"params": {"to": "number", "locale": "de"}}, format="json")
    assert (changed.status_code, changed.json()["params"]) == (200, {"to": "number", "locale": "de"})
    assert client.delete(f"{URL}{rule['id']}/").status_code == 204
    assert not NormalizationRule.objects.exists()


@pytest.mark.parametrize(
    ("body", "pointer", "says"),
    [
        ({"kind": "cast", "field": "sale_date", "params": {"to": "day"}}, "#/params", "unknown type 'day'"),
        ({"kind": "cast", "field": "sale_date", "params": {"to": "date", "locale": "de"}}, "#/params",
         "unknown param 'locale'"),
        ({"kind": "derive", "field": "margin", "params": {"expression": "__import__('os')"}}, "#/params", ""),
        ({"kind": "rename", "field": "revenue", "params": ["from", "amount"]}, "#/params", "A JSON object"),
        ({"kind": "explode", "field": "revenue"}, "#/kind", ""),
        ({"kind": "trim", "field": "x" * 201}, "#/field", ""),
        ({"kind": "trim"}, "#/field", "required"),
    ],
)  # fmt: skip
def test_a_step_that_cannot_run_is_a_400_naming_what_is_wrong(client, draft, body, pointer, says):
    create(client, draft, kind="trim", field="store_id")
    response = create(client, draft, **body)
    assert response.status_code == 400
    assert response["Content-Type"] == PROBLEM_JSON
    errors = response.json()["errors"]
    assert [e["pointer"] for e in errors] == [pointer], errors
    assert says in errors[0]["detail"]
    assert NormalizationRule.objects.count() == 1  # the accepted step is kept, nothing else


def test_a_bad_change_keeps_the_step_as_it_was(client, draft):
    rule = create(client, draft, kind="cast", field="revenue", params={"to": "number"}).json()
    response = client.patch(f"{URL}{rule['id']}/", {"kind": "map_codes"}, format="json")  # its params do not fit
    assert response.status_code == 400
    assert NormalizationRule.objects.get().kind == "cast"
    moved = client.patch(f"{URL}{rule['id']}/", {"contract_version": draft.pk}, format="json")
    assert moved.status_code == 400


def test_past_draft_the_steps_are_frozen(client, draft, people):
    rule = create(client, draft, kind="cast", field="revenue", params={"to": "number"}).json()
    host.contract_version_propose(actor=people["steward"], version=draft)
    for response in (
        create(client, draft, kind="trim", field="store_id"),
        client.patch(f"{URL}{rule['id']}/", {"position": 3}, format="json"),
        client.delete(f"{URL}{rule['id']}/"),
    ):
        assert response.status_code == 409
        assert response.json()["type"] == "urn:aurum:problem:version-frozen"
        assert response.json()["current_status"] == "proposed"
    assert NormalizationRule.objects.get().position == 0


def test_reading_needs_no_write_scope_but_writing_does(tenant_a, token_client, draft):
    reader = token_client(tenant_a, RoleChoices.ANALYST, scopes=["read"])
    assert reader.get(URL).status_code == 200
    assert create(reader, draft, kind="trim", field="store_id").status_code == 403


def test_another_tenants_version_takes_no_step(tenant_b, token_client, draft):
    stranger = token_client(tenant_b, RoleChoices.STEWARD, scopes=["read", "write"])
    response = create(stranger, draft, kind="trim", field="store_id")
    assert response.status_code == 400
    assert response.json()["errors"][0]["pointer"] == "#/contract_version"
    assert not NormalizationRule.objects.exists()


def test_steps_made_through_the_api_normalize_the_records_of_the_version(client, draft, people, tenant_a):
    steps = [
        {"kind": "rename", "field": "revenue", "params": {"from": "amount"}},
        *({"kind": "cast", "field": name, "params": {"to": to}} for name, to in
          (("sale_date", "date"), ("revenue", "number"), ("units", "integer"))),
        {"kind": "cast", "field": "revenue", "params": {"to": "number", "locale": "de"}},
    ]  # fmt: skip
    made = [create(client, draft, **step).json() for step in steps]
    assert client.delete(f"{URL}{made[2]['id']}/").status_code == 204  # the German cast replaces the plain one
    host.contract_version_propose(actor=people["steward"], version=draft)
    host.contract_version_approve(actor=people["admin"], version=draft)
    host.contract_version_activate(actor=people["admin"], version=draft)
    source = compute.source_create(actor=people["steward"], tenant=tenant_a, contract=draft.contract, key="t", name="T")
    body = json.dumps([{"sale_date": "2026-11-02", "store_id": "S001", "region": "north", "amount": "1.234,5",
                        "units": "3"}]).encode()  # fmt: skip
    batch, _ = compute.batch_receive(actor=people["steward"], source=source, stream=io.BytesIO(body),
                                     content_type="application/json")  # fmt: skip
    assert compute.batch_dispatch(batch).status == "completed"
    assert GoldenDataPoint.objects.current().get(measure="revenue").value == 1234.5
