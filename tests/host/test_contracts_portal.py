"""The steward portal for data contracts and policies, used the way people use it: through the
admin's forms (inline management data and all), the lifecycle buttons, the diff, the simulator."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse

from apps.host import services
from apps.host.choices import ContractStatusChoices as S
from apps.host.choices import PolicyStatusChoices as P
from apps.host.models import ContractTransition, ContractVersion, DataContract, Policy
from apps.kernel.roles import RoleChoices
from apps.runtime.models import DomainEvent

pytestmark = pytest.mark.django_db

CONTRACT_ADD = reverse("admin:host_datacontract_add")
VERSION_ADD = reverse("admin:host_contractversion_add")
POLICIES = reverse("admin:host_policy_changelist")
POLICY_ADD = reverse("admin:host_policy_add")
SIMULATE = reverse("admin:host_policy_simulate")
ODCS_UPLOAD = reverse("admin:host_datacontract_odcs_upload")

ORDER_FIELDS = [
    {"name": "order_id", "logical_type": "string", "required": True, "primary_key": True, "role": "entity_key"},
    {"name": "amount", "logical_type": "number", "required": True, "role": "measure", "unit": "EUR"},
]


# --- helpers ----------------------------------------------------------------------------------------
def signed_in(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def version_url(version: ContractVersion, view: str = "change") -> str:
    return reverse(f"admin:host_contractversion_{view}", args=[version.pk])


def lifecycle_url(version: ContractVersion, action: str) -> str:
    return reverse("admin:host_contractversion_lifecycle", args=[version.pk, action])


def policy_url(policy: Policy, view: str = "change") -> str:
    return reverse(f"admin:host_policy_{view}", args=[policy.pk])


def management(prefix: str, total: int, initial: int = 0) -> dict[str, str]:
    return {
        f"{prefix}-TOTAL_FORMS": str(total),
        f"{prefix}-INITIAL_FORMS": str(initial),
        f"{prefix}-MIN_NUM_FORMS": "0",
        f"{prefix}-MAX_NUM_FORMS": "1000",
    }


def rows(prefix: str, specs: list[dict[str, Any]]) -> dict[str, str]:
    """New inline rows as a browser posts them: checked boxes as "on", unchecked ones absent."""
    data = management(prefix, len(specs))
    for index, spec in enumerate(specs):
        for name, value in spec.items():
            if value is True:
                data[f"{prefix}-{index}-{name}"] = "on"
            elif value not in (False, None):
                data[f"{prefix}-{index}-{name}"] = str(value)
    return data


def form_data(response: Any) -> dict[str, Any]:
    """What the browser would post back unchanged: the change form and every inline, as rendered."""
    assert response.status_code == 200, response.status_code
    data: dict[str, Any] = {}
    forms = [response.context["adminform"].form]
    for inline in response.context["inline_admin_formsets"]:
        management_form = inline.formset.management_form
        data.update({management_form.add_prefix(n): management_form[n].value() for n in management_form.fields})
        forms += inline.formset.forms
    for form in forms:
        for name in form.fields:
            value = form[name].value()
            if value is True:
                data[form.add_prefix(name)] = "on"
            elif value not in (False, None):
                data[form.add_prefix(name)] = value
    return data


def page_messages(response: Any) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def form_errors(response: Any) -> dict[str, list[str]]:
    """The change form's errors, and each inline row's as "<prefix>-<index>-<field>"."""
    assert response.status_code == 200, f"expected the form again, got {response.status_code}"
    form = response.context["adminform"].form
    errors = {field: [str(e) for e in texts] for field, texts in form.errors.items()}
    for inline in response.context.get("inline_admin_formsets") or []:
        for row in inline.formset.forms:
            errors.update({row.add_prefix(field): [str(e) for e in texts] for field, texts in row.errors.items()})
        if inline.formset.non_form_errors():
            errors[inline.formset.prefix] = [str(e) for e in inline.formset.non_form_errors()]
    return errors


def status_of(version: ContractVersion) -> str:
    return ContractVersion.objects.get(pk=version.pk).status


@pytest.fixture
def people(tenant_a, member):
    return {
        "steward": member(tenant_a, RoleChoices.STEWARD, username="steward"),
        "admin": member(tenant_a, RoleChoices.ADMIN, username="tenant-admin"),
        "analyst": member(tenant_a, RoleChoices.ANALYST, username="analyst"),
    }


@pytest.fixture
def contract(tenant_a, people):
    return services.contract_create(actor=people["steward"], tenant=tenant_a, key="orders", name="Orders")


def draft(contract, people, version="1.0.0", fields=ORDER_FIELDS, **attrs):
    return services.contract_version_create(
        actor=people["steward"], contract=contract, version=version, fields=[dict(f) for f in fields], **attrs
    )


def active(contract, people, version="1.0.0", fields=ORDER_FIELDS):
    row = draft(contract, people, version, fields)
    services.contract_version_propose(actor=people["steward"], version=row)
    services.contract_version_approve(actor=people["admin"], version=row)
    return services.contract_version_activate(actor=people["admin"], version=row)


# --- the scenario of the issue --------------------------------------------------------------------------
def test_a_steward_writes_a_contract_a_second_user_approves_it_and_a_breaking_v2_needs_2_0_0(tenant_a, people):
    steward, admin = signed_in(people["steward"]), signed_in(people["admin"])

    # The steward creates the contract; the portal leads on to its first version.
    response = steward.post(
        CONTRACT_ADD,
        {
            "tenant": tenant_a.pk,
            "key": "orders",
            "name": "Orders",
            "domain": "sales",
            "owner": people["steward"].pk,
            "survivorship": "latest",
        },
    )
    assert response.status_code == 302, form_errors(response)
    contract = DataContract.objects.get(tenant=tenant_a, key="orders")
    assert response["Location"].startswith(VERSION_ADD)
    assert steward.get(response["Location"]).context["adminform"].form.initial["version"] == "1.0.0"

    # ... and a draft with two fields, posted with the inline management form.
    response = steward.post(
        VERSION_ADD,
        {
            "contract": contract.pk,
            "version": "1.0.0",
            "dataset": "orders",
            "notes": "First cut.",
            "support": "[]",
            **rows("fields", [{"classification": "internal", **spec} for spec in ORDER_FIELDS]),
            **management("quality_rules", 0),
            "_continue": "1",
        },
    )
    assert response.status_code == 302, form_errors(response)
    v1 = ContractVersion.objects.get(contract=contract, version="1.0.0")
    assert response["Location"] == version_url(v1)
    assert v1.status == S.DRAFT
    assert [(f.name, f.position) for f in v1.fields.all()] == [("order_id", 0), ("amount", 1)]
    assert ContractTransition.objects.filter(version=v1, to_status=S.DRAFT, actor=people["steward"]).exists()

    # The steward edits a field (unit, allowed values) and adds a quality rule on it.
    data = form_data(steward.get(version_url(v1)))
    assert data["fields-1-name"] == "amount"
    data.update({"fields-1-unit": "USD", "fields-0-allowed_values": "A1, B2"})
    data.update({"quality_rules-0-field_name": "amount", "quality_rules-0-kind": "range",
                 "quality_rules-0-severity": "error", "quality_rules-0-params": '{"min": 0}'})  # fmt: skip
    response = steward.post(version_url(v1), data)
    assert response.status_code == 302, form_errors(response)
    amount = v1.fields.get(name="amount")
    assert (amount.unit, v1.fields.get(name="order_id").allowed_values) == ("USD", ["A1", "B2"])
    assert [(r.field.name, r.kind, r.params) for r in v1.quality_rules.all()] == [("amount", "range", {"min": 0})]

    # The steward proposes it.
    response = steward.post(lifecycle_url(v1, "propose"), {"comment": "Ready for review."})
    assert response.status_code == 302
    assert status_of(v1) == S.PROPOSED
    assert any("draft → proposed" in m for m in page_messages(response))

    # From now on the content is frozen: the inlines are read-only and a forged save is refused.
    page = steward.get(version_url(v1))
    assert not any(inline.has_change_permission for inline in page.context["inline_admin_formsets"])
    assert 'name="fields-0-name"' not in page.content.decode()
    assert steward.post(version_url(v1), data).status_code == 403

    # The proposer does not see approve or reject, and a forged approve is refused by the service.
    body = page.content.decode()
    assert 'id="action-approve"' not in body and 'id="action-reject"' not in body
    assert "four eyes" in body
    response = steward.post(lifecycle_url(v1, "approve"), {"comment": "LGTM"}, follow=True)
    assert any("Four eyes" in m for m in page_messages(response)), page_messages(response)
    assert status_of(v1) == S.PROPOSED

    # A tenant admin sees what they approve, approves with a comment and activates.
    page = admin.get(version_url(v1))
    body = page.content.decode()
    assert 'id="action-approve"' in body and "What you are approving" in body
    response = admin.post(lifecycle_url(v1, "approve"), {"comment": "Matches the order feed."})
    assert response.status_code == 302
    v1.refresh_from_db()
    assert (v1.status, v1.decided_by, v1.decision_comment) == (S.APPROVED, people["admin"], "Matches the order feed.")
    admin.post(lifecycle_url(v1, "activate"), {"comment": ""})
    assert status_of(v1) == S.ACTIVE

    # v1.1.0: "New version" copies the active version into a draft; the steward removes a field.
    response = steward.post(reverse("admin:host_datacontract_new_version", args=[contract.pk]))
    v11 = ContractVersion.objects.get(contract=contract, version="1.1.0")
    assert response["Location"] == version_url(v11)
    assert list(v11.fields.values_list("name", flat=True)) == ["order_id", "amount"]
    assert v11.quality_rules.count() == 1
    data = form_data(steward.get(version_url(v11)))
    data["fields-1-DELETE"] = "on"
    data["quality_rules-0-DELETE"] = "on"
    response = steward.post(version_url(v11), data)
    assert response.status_code == 302, form_errors(response)
    assert list(v11.fields.values_list("name", flat=True)) == ["order_id"]

    # The diff panel says what changed.
    assert "field `amount` removed" in steward.get(version_url(v11)).content.decode()

    # Proposing a breaking minor version is refused, naming the incompatibility.
    response = steward.post(lifecycle_url(v11, "propose"), {"confirm_breaking": "1"}, follow=True)
    refusal = " ".join(page_messages(response))
    assert "breaks compatibility" in refusal and "amount" in refusal and "2.0.0" in refusal, refusal
    assert status_of(v11) == S.DRAFT

    # Renamed to 2.0.0, it still needs the confirmation; with it, it goes through.
    data = form_data(steward.get(version_url(v11)))
    data["version"] = "2.0.0"
    response = steward.post(version_url(v11), data)
    assert response.status_code == 302, form_errors(response)
    v11.refresh_from_db()
    assert v11.version == "2.0.0"
    response = steward.post(lifecycle_url(v11, "propose"), {}, follow=True)
    assert any("confirm the break" in m for m in page_messages(response))
    assert status_of(v11) == S.DRAFT
    page = steward.get(version_url(v11)).content.decode()
    assert 'name="confirm_breaking"' in page
    steward.post(lifecycle_url(v11, "propose"), {"confirm_breaking": "1", "comment": "Amount moves to invoices."})
    v11.refresh_from_db()
    assert (v11.status, v11.breaking_change_confirmed) == (S.PROPOSED, True)


# --- editing drafts -------------------------------------------------------------------------------------
def test_a_refused_field_or_rule_is_shown_on_its_row_and_nothing_is_saved(contract, people):
    v1 = draft(contract, people)
    steward = signed_in(people["steward"])
    data = form_data(steward.get(version_url(v1)))
    data.update({"quality_rules-0-field_name": "amout", "quality_rules-0-kind": "not_null",
                 "quality_rules-0-severity": "error", "fields-1-unit": "USD"})  # fmt: skip

    response = steward.post(version_url(v1), data)

    errors = form_errors(response)["__all__"]
    assert any("Quality rule 1" in e and "No field 'amout'" in e for e in errors), errors
    rules = response.context["inline_admin_formsets"][1].formset
    assert rules.forms[0].errors["field_name"] == ["No field 'amout' in this version."]
    assert v1.fields.get(name="amount").unit == "EUR"  # rolled back
    assert not v1.quality_rules.exists()


def test_a_bad_field_is_refused_on_its_row(contract, people):
    v1 = draft(contract, people)
    steward = signed_in(people["steward"])
    data = form_data(steward.get(version_url(v1)))
    data["fields-1-pattern"] = "("

    response = steward.post(version_url(v1), data)

    fields = response.context["inline_admin_formsets"][0].formset
    assert "Not a valid regular expression" in " ".join(fields.forms[1].errors["pattern"])
    assert v1.fields.get(name="amount").pattern == ""


def test_a_rule_follows_its_field_when_the_field_is_renamed_in_the_same_save(contract, people):
    v1 = draft(contract, people)
    services.contract_version_update(actor=people["steward"], version=v1,
                                     quality_rules=[{"field": "amount", "kind": "not_null"}])  # fmt: skip
    steward = signed_in(people["steward"])
    data = form_data(steward.get(version_url(v1)))
    assert data["quality_rules-0-field_name"] == "amount"
    data["fields-1-name"] = "amount_eur"

    response = steward.post(version_url(v1), data)

    assert response.status_code == 302, form_errors(response)
    assert v1.quality_rules.get().field.name == "amount_eur"


def test_renaming_a_draft_to_an_existing_version_is_a_form_error(contract, people):
    active(contract, people)
    v11 = draft(contract, people, "1.1.0")
    steward = signed_in(people["steward"])
    data = form_data(steward.get(version_url(v11)))
    data["version"] = "1.0.0"

    assert "already has a version 1.0.0" in " ".join(form_errors(steward.post(version_url(v11), data))["version"])


def test_an_analyst_reads_versions_but_gets_no_buttons_and_cannot_act(contract, people):
    v1 = draft(contract, people)
    analyst = signed_in(people["analyst"])
    page = analyst.get(version_url(v1))
    assert page.status_code == 200
    assert 'id="action-propose"' not in page.content.decode()
    assert "does not move them" in page.content.decode()

    analyst.post(lifecycle_url(v1, "propose"), {})
    assert status_of(v1) == S.DRAFT
    assert analyst.post(version_url(v1), form_data(page)).status_code == 403


def test_a_rejection_without_a_comment_is_an_error_message(contract, people):
    v1 = draft(contract, people)
    services.contract_version_propose(actor=people["steward"], version=v1)
    response = signed_in(people["admin"]).post(lifecycle_url(v1, "reject"), {"comment": " "}, follow=True)
    assert any("Say why" in m for m in page_messages(response))
    assert status_of(v1) == S.PROPOSED


def test_an_admin_of_another_tenant_cannot_reach_the_lifecycle_buttons(contract, people, tenant_b, member):
    v1 = draft(contract, people)
    services.contract_version_propose(actor=people["steward"], version=v1)
    stranger = signed_in(member(tenant_b, RoleChoices.ADMIN))
    response = stranger.post(lifecycle_url(v1, "approve"), {"comment": "mine now"})
    assert response.status_code == 302 and response["Location"] == reverse("admin:index")
    assert status_of(v1) == S.PROPOSED
    assert stranger.get(version_url(v1, "odcs")).status_code == 302


def test_the_diff_compares_with_the_active_version_or_any_other(contract, people):
    active(contract, people)
    v11 = draft(contract, people, "1.1.0", [*ORDER_FIELDS, {"name": "note", "logical_type": "string"}])
    v12 = draft(contract, people, "1.2.0", [ORDER_FIELDS[0]])
    steward = signed_in(people["steward"])

    # A draft is compared with the version it would replace: the active one.
    body = steward.get(version_url(v12)).content.decode()
    assert "changes from 1.0.0 (active) to 1.2.0" in body
    assert "field `amount` removed" in body and "field `note`" not in body
    assert "field `note` added" in steward.get(version_url(v11)).content.decode()

    body = steward.get(version_url(v12) + "?against=1.1.0").content.decode()
    assert "changes from 1.1.0 (draft) to 1.2.0" in body and "field `note` removed" in body

    assert "No version &#x27;9.9.9&#x27;" in steward.get(version_url(v12) + "?against=9.9.9").content.decode()


def test_the_diff_also_shows_service_level_and_rule_changes(contract, people):
    from datetime import timedelta

    v1 = draft(contract, people, sla_freshness=timedelta(hours=36),
               quality_rules=[{"field": "amount", "kind": "range", "params": {"min": 0}}])  # fmt: skip
    services.contract_version_propose(actor=people["steward"], version=v1)
    services.contract_version_approve(actor=people["admin"], version=v1)
    services.contract_version_activate(actor=people["admin"], version=v1)
    v11 = draft(contract, people, "1.1.0", quality_rules=[{"field": "amount", "kind": "not_null"}])

    changes = signed_in(people["steward"]).get(version_url(v11)).context["diff"]["other_changes"]

    assert changes == [
        "freshness SLA: 1 day, 12:00:00 → none",
        "quality rule added: not null on `amount` (error)",
        'quality rule removed: range on `amount` (error, {"min": 0})',
    ]


def test_the_first_version_has_nothing_to_compare_with(contract, people):
    v1 = draft(contract, people)
    body = signed_in(people["steward"]).get(version_url(v1)).content.decode()
    assert "the contract's first version" in body and "all its 2 fields are new" in body


def test_the_transition_log_and_history_links_are_on_the_page(contract, people):
    v1 = active(contract, people)
    body = signed_in(people["analyst"]).get(version_url(v1)).content.decode()
    assert 'id="transitions"' in body
    for step in ("draft", "proposed", "approved", "active"):
        assert f"aurum-status-{step}" in body
    assert version_url(v1, "auditlog") in body and version_url(v1, "history") in body


def test_the_contract_list_shows_the_active_version_and_the_number_of_versions(contract, people):
    active(contract, people)
    draft(contract, people, "1.1.0")
    response = signed_in(people["analyst"]).get(reverse("admin:host_datacontract_changelist"))
    [row] = response.context["cl"].result_list
    assert (row._active_version, row._version_count) == ("1.0.0", 2)
    page = signed_in(people["analyst"]).get(reverse("admin:host_datacontract_change", args=[contract.pk]))
    assert version_url(ContractVersion.objects.get(version="1.1.0")) in page.content.decode()


# --- ODCS -------------------------------------------------------------------------------------------------
def test_odcs_download_and_upload_round_trip(contract, people):
    v1 = active(contract, people)
    steward = signed_in(people["steward"])

    response = steward.get(version_url(v1, "odcs"))

    assert response.status_code == 200
    assert response["Content-Disposition"] == 'attachment; filename="orders-1.0.0.odcs.yaml"'
    document = yaml.safe_load(response.content)
    assert document["version"] == "1.0.0"

    document["version"] = "1.5.0"
    upload = _file("orders.odcs.yaml", yaml.safe_dump(document, sort_keys=False))
    response = steward.post(ODCS_UPLOAD, {"file": upload, "key": "orders"})

    imported = ContractVersion.objects.get(contract=contract, version="1.5.0")
    assert response.status_code == 302 and response["Location"] == version_url(imported)
    assert imported.status == S.DRAFT
    assert list(imported.fields.values_list("name", flat=True)) == ["order_id", "amount"]


BAD_ODCS = """\
apiVersion: v3.1.0
kind: DataContract
id: 7d6a1b2c-0000-4000-8000-000000000001
version: 1.0.0
status: draft
schema:
  - name: orders
    properties:
      - name: order_id
        logicalType: strng
"""


def test_a_bad_odcs_upload_lists_each_problem_with_its_line(tenant_a, people):
    steward = signed_in(people["steward"])
    response = steward.post(ODCS_UPLOAD, {"file": _file("bad.yaml", BAD_ODCS)})
    assert response.status_code == 200
    problems = [str(e) for e in response.context["form"].non_field_errors()]
    assert any(p.startswith("line 10") and "logicalType" in p for p in problems), problems
    assert "line 10, schema/0/properties/0/logicalType" in response.content.decode()
    assert not DataContract.objects.exists()


def _file(name: str, text: str) -> Any:
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile(name, text.encode(), content_type="application/yaml")


# --- policies --------------------------------------------------------------------------------------------
def gate(actor, minimum, **scope):
    policy = services.policy_create(actor=actor, kind="quality_gate", name=f"Gate {minimum}",
                                    parameters={"min_batch_pass_rate": minimum}, **scope)  # fmt: skip
    return services.policy_activate(actor=actor, policy=policy)


def test_simulate_shows_a_refusal_with_its_reason_and_changes_nothing(tenant_a, people):
    gate(people["admin"], 95, tenant=tenant_a)
    analyst = signed_in(people["analyst"])
    assert SIMULATE in analyst.get(POLICIES).content.decode()
    page = analyst.get(SIMULATE)
    assert page.status_code == 200 and '"pass_rate": 97' in page.context["form"]["facts"].value()
    events, policies = DomainEvent.objects.count(), list(Policy.objects.values())

    response = analyst.post(SIMULATE, {"action": "batch.accept", "facts": '{"pass_rate": 80}'})

    assert response.status_code == 200
    decision = response.context["decision"]
    assert decision.allowed is False
    body = response.content.decode()
    assert "Refused" in body and "Pass rate 80% is below the required 95%." in body
    assert "Gate 95" in body and "tenant tenant-a" in body
    assert (DomainEvent.objects.count(), list(Policy.objects.values())) == (events, policies)


def test_simulate_shows_treatments_for_an_export(tenant_a, people):
    services.policy_activate(actor=people["admin"], policy=services.policy_create(
        actor=people["admin"], tenant=tenant_a, kind="classification_handling", name="Sensitive",
        parameters={"confidential": "masked"}))  # fmt: skip
    response = signed_in(people["steward"]).post(
        SIMULATE,
        {"action": "export.create", "facts": '{"format": "csv", "rows": 10, "fields": {"email": "confidential"}}'},
    )
    assert response.context["decision"].treatments == {"fields": {"email": "masked"}}
    assert "email masked" in response.content.decode()


@pytest.mark.parametrize(
    ("facts", "message"),
    [
        ('{"pass_rate": 80', "Not valid JSON"),
        ("[1, 2]", "JSON object"),
        ('{"pass_rate": "lots"}', "do not fit"),
    ],
)
def test_simulate_refuses_bad_facts_as_a_form_error(tenant_a, people, facts, message):
    gate(people["admin"], 95, tenant=tenant_a)
    response = signed_in(people["steward"]).post(SIMULATE, {"action": "batch.accept", "facts": facts})
    assert response.status_code == 200
    assert message in " ".join(response.context["form"].errors["facts"])
    assert response.context["decision"] is None


def test_a_platform_policy_is_listed_but_read_only_for_a_tenant_admin(tenant_a, people, superuser):
    platform = gate(superuser, 50)
    ours = gate(people["admin"], 90, tenant=tenant_a)
    admin = signed_in(people["admin"])

    listed = {p.pk for p in admin.get(POLICIES).context["cl"].result_list}
    assert listed == {platform.pk, ours.pk}
    page = admin.get(policy_url(platform))
    assert page.status_code == 200
    assert page.context["has_change_permission"] is False
    assert "read-only for tenants" in page.content.decode()
    assert policy_url(platform, "retire") not in page.content.decode()

    before = Policy.objects.filter(pk=platform.pk).values().get()
    assert admin.post(policy_url(platform), {"name": "mine", "parameters": "{}"}).status_code == 403
    response = admin.post(policy_url(platform, "retire"), follow=True)
    assert any("read-only for tenants" in m for m in page_messages(response))
    admin.post(policy_url(platform, "revise"), {"parameters": '{"min_batch_pass_rate": 1}'})
    admin.post(POLICIES, {"action": "retire_selected", "_selected_action": [platform.pk]})
    assert Policy.objects.filter(pk=platform.pk).values().get() == before
    assert Policy.objects.filter(lineage=platform.lineage).count() == 1


def test_the_which_policy_decides_panel_shows_the_override(tenant_a, people, superuser):
    platform = gate(superuser, 50)
    ours = gate(people["admin"], 90, tenant=tenant_a)
    page = signed_in(people["steward"]).get(policy_url(platform))
    rows = page.context["deciding_rows"]
    assert rows[0]["this_kind"] and rows[0]["deciding"] == ours and list(rows[0]["overridden"]) == [platform]
    assert "overridden by “Gate 90 v1”" in page.content.decode()


def test_a_policy_is_added_with_parameters_checked_by_its_kind(tenant_a, people):
    steward = signed_in(people["steward"])
    page = steward.get(POLICY_ADD + "?kind=export_control")
    body = page.content.decode()
    assert "Which export formats are allowed" in body and "max_classification" in body
    assert page.context["adminform"].form.initial["parameters"]["max_rows"] == 1000000

    response = steward.post(POLICY_ADD, {"kind": "quality_gate", "name": "Strict",
                                         "parameters": '{"min_batch_pass_rate": 140}'})  # fmt: skip
    assert any("min_batch_pass_rate: 140 is greater than the maximum of 100" in e
               for e in form_errors(response)["parameters"])  # fmt: skip
    assert not Policy.objects.exists()

    response = steward.post(POLICY_ADD, {"kind": "quality_gate", "name": "Strict", "parameters": "{oops"})
    assert form_errors(response)["parameters"]

    response = steward.post(POLICY_ADD, {"kind": "quality_gate", "name": "Strict",
                                         "parameters": '{"min_batch_pass_rate": 99}'})  # fmt: skip
    assert response.status_code == 302, form_errors(response)
    policy = Policy.objects.get()
    assert (policy.tenant, policy.status, policy.created_by) == (tenant_a, P.DRAFT, people["steward"])


def test_a_tenant_admin_activates_revises_and_retires_a_policy(tenant_a, people):
    admin = signed_in(people["admin"])
    policy = services.policy_create(actor=people["admin"], tenant=tenant_a, kind="quality_gate", name="Gate",
                                    parameters={"min_batch_pass_rate": 90})  # fmt: skip

    admin.post(policy_url(policy, "activate"))
    policy.refresh_from_db()
    assert policy.status == P.ACTIVE

    response = admin.post(policy_url(policy, "revise"), {"parameters": '{"min_batch_pass_rate": 101}'})
    assert "greater than the maximum" in " ".join(response.context["form"].errors["parameters"])
    response = admin.post(policy_url(policy, "revise"), {"parameters": '{"min_batch_pass_rate": 97}'})
    revised = Policy.objects.get(lineage=policy.lineage, version=2)
    assert response["Location"] == policy_url(revised)
    assert (revised.status, revised.parameters) == (P.DRAFT, {"min_batch_pass_rate": 97})

    admin.post(policy_url(revised, "activate"))
    policy.refresh_from_db()
    assert policy.status == P.RETIRED and Policy.objects.get(pk=revised.pk).status == P.ACTIVE


def test_a_steward_drafts_policies_but_does_not_activate_them(tenant_a, people):
    policy = services.policy_create(actor=people["steward"], tenant=tenant_a, kind="quality_gate", name="Gate",
                                    parameters={"min_batch_pass_rate": 90})  # fmt: skip
    steward = signed_in(people["steward"])
    page = steward.get(policy_url(policy))
    assert page.context["has_change_permission"] is True
    assert policy_url(policy, "activate") not in page.content.decode()
    steward.post(policy_url(policy, "activate"))
    assert Policy.objects.get(pk=policy.pk).status == P.DRAFT


# --- odds and ends --------------------------------------------------------------------------------------
def test_adding_a_contract_from_the_version_forms_popup_closes_the_popup(tenant_a, people):
    response = signed_in(people["steward"]).post(
        CONTRACT_ADD + "?_popup=1",
        {"tenant": tenant_a.pk, "key": "stock", "name": "Stock", "survivorship": "latest", "_popup": "1"},
    )
    assert response.status_code == 200
    assert "admin/popup_response.html" in [t.name for t in response.templates]
    assert DataContract.objects.filter(key="stock").exists()


def test_nobody_deletes_contracts_versions_or_policies_not_even_a_superuser(contract, people, superuser):
    v1 = draft(contract, people)
    policy = gate(superuser, 50)
    operator = signed_in(superuser)
    for url in (
        reverse("admin:host_datacontract_delete", args=[contract.pk]),
        version_url(v1, "delete"),
        policy_url(policy, "delete"),
    ):
        assert operator.post(url, {"post": "yes"}).status_code == 403, url
    assert ContractVersion.objects.filter(pk=v1.pk).exists() and Policy.objects.filter(pk=policy.pk).exists()


def test_a_new_contract_key_in_an_odcs_upload_creates_the_contract(tenant_a, people, contract):
    v1 = active(contract, people)
    text = signed_in(people["steward"]).get(version_url(v1, "odcs")).content.decode()
    response = signed_in(people["steward"]).post(ODCS_UPLOAD, {"file": _file("o.yaml", text), "key": "orders-copy"})
    copy = DataContract.objects.get(tenant=tenant_a, key="orders-copy")
    assert response["Location"] == version_url(copy.versions.get())


def test_a_duplicate_odcs_version_is_refused_with_the_reason(tenant_a, people, contract):
    v1 = active(contract, people)
    text = signed_in(people["steward"]).get(version_url(v1, "odcs")).content.decode()
    response = signed_in(people["steward"]).post(ODCS_UPLOAD, {"file": _file("o.yaml", text), "key": "orders"})
    assert response.status_code == 200
    assert "already has version 1.0.0" in " ".join(response.context["form"].non_field_errors())
