"""The contracts and policies API, used as a steward, an approver and an analyst would."""

from __future__ import annotations

from pathlib import Path

import pytest

from apps.kernel.roles import RoleChoices

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]

FIELDS = [
    {"name": "order_id", "logical_type": "string", "required": True, "role": "entity_key"},
    {"name": "store_id", "logical_type": "string", "required": True, "role": "dimension"},
    {"name": "amount", "logical_type": "number", "required": True, "role": "measure", "unit": "EUR"},
]


@pytest.fixture
def steward(tenant_a, token_client):
    return token_client(tenant_a, RoleChoices.STEWARD, scopes=["read", "write"])


@pytest.fixture
def approver(tenant_a, token_client):
    return token_client(tenant_a, RoleChoices.ADMIN)


def new_version(client, version="1.0.0", fields=FIELDS, **extra):
    response = client.post("/api/v1/contract-versions/", {"contract": "orders", "version": version, "fields": fields,
                                                          **extra}, format="json")  # fmt: skip
    assert response.status_code == 201, response.json()
    return response.json()


def act(client, version, action, **body):
    return client.post(f"/api/v1/contract-versions/{version['id']}/{action}/", body, format="json")


@pytest.fixture
def contract(steward):
    response = steward.post("/api/v1/contracts/", {"key": "orders", "name": "Orders", "domain": "sales"})
    assert response.status_code == 201, response.json()
    return response.json()


def test_a_steward_writes_a_contract_and_an_approver_activates_it(contract, steward, approver):
    draft = new_version(steward, quality_rules=[{"field": "amount", "kind": "range", "params": {"min": 0}}])
    assert draft["allowed_actions"] == ["propose", "retire"]
    assert act(steward, draft, "propose").json()["status"] == "proposed"

    refused = act(steward, draft, "approve")
    assert refused.status_code == 403  # a steward without the approver right (and the proposer, too)

    approved = act(approver, draft, "approve", comment="looks right")
    assert approved.json()["status"] == "approved"
    active = act(approver, draft, "activate").json()
    assert active["status"] == "active"
    assert active["schema_version"] == 1
    assert [t["to_status"] for t in active["transitions"]] == ["draft", "proposed", "approved", "active"]
    assert steward.get("/api/v1/contracts/orders/").json()["active_version"] == "1.0.0"


def test_the_proposer_cannot_approve_even_as_admin(contract, approver):
    draft = new_version(approver)
    act(approver, draft, "propose")
    response = act(approver, draft, "approve")
    assert response.status_code == 403
    assert response.json()["type"] == "urn:aurum:problem:four-eyes"


def test_an_illegal_transition_is_a_409_naming_the_allowed_next_states(contract, steward):
    draft = new_version(steward)
    response = act(steward, draft, "activate")
    assert response.status_code == 409
    body = response.json()
    assert body["type"] == "urn:aurum:problem:illegal-transition"
    assert body["allowed_next"] == ["proposed", "retired"]


def test_a_breaking_v2_is_refused_until_it_is_2_0_0_and_confirmed(contract, steward, approver):
    v1 = new_version(steward)
    for client, action in ((steward, "propose"), (approver, "approve"), (approver, "activate")):
        assert act(client, v1, action).status_code == 200

    breaking = new_version(steward, "1.1.0", FIELDS[:2])
    response = act(steward, breaking, "propose")
    assert response.status_code == 409
    body = response.json()
    assert body["type"] == "urn:aurum:problem:breaking-change"
    assert "2.0.0" in body["detail"]
    assert body["incompatibilities"][0]["path"] == "#/properties/amount"

    steward.patch(f"/api/v1/contract-versions/{breaking['id']}/", {"version": "2.0.0"}, format="json")
    assert act(steward, breaking, "propose").json()["type"] == "urn:aurum:problem:breaking-change-unconfirmed"
    assert act(steward, breaking, "propose", confirm_breaking=True).json()["status"] == "proposed"

    diff = steward.get(f"/api/v1/contract-versions/{breaking['id']}/diff/").json()
    assert any(change["message"] == "field `amount` removed" for change in diff), diff


def test_bad_fields_are_answered_with_pointers(contract, steward):
    response = steward.post("/api/v1/contract-versions/", {"contract": "orders", "version": "1.0", "fields": [
        {"name": "a", "logical_type": "text"}]}, format="json")  # fmt: skip
    assert response.status_code == 400
    pointers = {error["pointer"] for error in response.json()["errors"]}
    assert pointers == {"#/version", "#/fields/0/logical_type"}


def test_frozen_versions_refuse_edits(contract, steward):
    draft = new_version(steward)
    act(steward, draft, "propose")
    response = steward.patch(f"/api/v1/contract-versions/{draft['id']}/", {"notes": "x"}, format="json")
    assert response.status_code == 409
    assert response.json()["type"] == "urn:aurum:problem:version-frozen"


def test_an_analyst_reads_but_cannot_write(contract, steward, tenant_a, token_client):
    new_version(steward)
    analyst = token_client(tenant_a, RoleChoices.ANALYST, scopes=["read"])
    assert analyst.get("/api/v1/contract-versions/?contract__key=orders").json()["count"] == 1
    assert analyst.post("/api/v1/contracts/", {"key": "x", "name": "X"}).status_code == 403


class TestPoliciesApi:
    def test_drafts_by_stewards_activation_by_admins(self, steward, approver):
        created = steward.post("/api/v1/policies/", {"kind": "quality_gate", "name": "gate",
                                                     "parameters": {"min_batch_pass_rate": 95}}, format="json")  # fmt: skip
        assert created.status_code == 201, created.json()
        policy = created.json()
        assert steward.post(f"/api/v1/policies/{policy['id']}/activate/").status_code == 403
        assert approver.post(f"/api/v1/policies/{policy['id']}/activate/").json()["status"] == "active"

    def test_bad_parameters_are_located(self, steward):
        response = steward.post("/api/v1/policies/", {"kind": "export_control", "name": "x",
                                                      "parameters": {"max_rows": 0}}, format="json")  # fmt: skip
        assert response.status_code == 400
        assert response.json()["errors"] == [
            {"pointer": "#/parameters", "detail": "max_rows: 0 is less than the minimum of 1", "code": "invalid"}
        ]

    def test_evaluate_simulates_a_decision_without_changing_anything(self, approver):
        policy = approver.post("/api/v1/policies/", {"kind": "quality_gate", "name": "g",
                                                     "parameters": {"min_batch_pass_rate": 95}}, format="json").json()  # fmt: skip
        approver.post(f"/api/v1/policies/{policy['id']}/activate/")
        decision = approver.post("/api/v1/policies/evaluate/", {"action": "batch.accept", "facts": {"pass_rate": 90}},
                                 format="json").json()  # fmt: skip
        assert decision["allowed"] is False
        assert decision["reasons"][0]["message"] == "Pass rate 90% is below the required 95%."
        assert decision["reasons"][0]["policy_name"] == "g"

    def test_platform_policies_are_visible_but_not_editable_by_tenants(self, approver, superuser):
        from apps.host import services

        platform = services.policy_create(actor=superuser, kind="publication_approval", name="4e",
                                          parameters={"four_eyes": True})  # fmt: skip
        listed = approver.get("/api/v1/policies/").json()["results"]
        assert [p["scope"] for p in listed] == ["platform"]
        response = approver.patch(f"/api/v1/policies/{platform.pk}/", {"name": "mine"}, format="json")
        assert response.status_code == 403
        assert response.json()["type"] == "urn:aurum:problem:platform-policy"


class TestOdcsOverTheApi:
    def test_import_creates_a_draft_and_export_gives_valid_odcs(self, steward, approver):
        from apps.host.odcs.parsing import parse

        text = (ROOT / "tests/fixtures/odcs/examples/all_full-example.odcs.yaml").read_text()
        response = steward.generic(
            "POST", "/api/v1/contracts/import/?key=seller", text, content_type="application/yaml"
        )
        assert response.status_code == 201, response.json()
        draft = response.json()
        assert (draft["contract"], draft["version"], draft["status"]) == ("seller", "1.1.0", "draft")

        exported = steward.get(f"/api/v1/contract-versions/{draft['id']}/odcs/")
        assert exported.status_code == 200
        assert exported["Content-Type"].startswith("application/yaml")
        document = parse(exported.content.decode())
        assert document["version"] == "1.1.0"
        assert document["id"] == "53581432-6c55-4ba2-a65f-72344a91553a"

    def test_a_bad_document_lists_every_problem_with_its_line(self, steward):
        text = (ROOT / "tests/fixtures/odcs/negative/missing-required-fields.odcs.yaml").read_text()
        response = steward.generic("POST", "/api/v1/contracts/import/", text, content_type="application/yaml")
        assert response.status_code == 400
        body = response.json()
        assert response["Content-Type"] == "application/problem+json"
        assert body["type"] == "urn:aurum:problem:invalid-odcs"
        assert {(e["pointer"], e["detail"]) for e in body["errors"]} >= {("#", "'id' is required")}
        assert all(isinstance(e["line"], int) for e in body["errors"])
        assert all(e["code"] == "invalid" for e in body["errors"])  # every field problem has a code

    def test_broken_yaml_is_a_located_400(self, steward):
        response = steward.generic(
            "POST", "/api/v1/contracts/import/", "a: [1, 2\nb: 3\n", content_type="application/yaml"
        )
        assert response.status_code == 400
        assert "not valid YAML" in response.json()["errors"][0]["detail"]

    def test_another_tenants_version_cannot_be_exported(self, tenant_b, steward):
        from tests.factories import ContractVersionFactory, DataContractFactory

        theirs = ContractVersionFactory(contract=DataContractFactory(tenant=tenant_b))
        response = steward.get(f"/api/v1/contract-versions/{theirs.pk}/odcs/")
        assert response.status_code == 404
        assert response["Content-Type"] == "application/problem+json"


def test_the_diff_of_a_first_version_lists_just_its_fields(contract, steward):
    draft = new_version(steward)
    diff = steward.get(f"/api/v1/contract-versions/{draft['id']}/diff/").json()
    assert [change["message"] for change in diff] == [
        "field `amount` added (required)",
        "field `order_id` added (required)",
        "field `store_id` added (required)",
    ]
