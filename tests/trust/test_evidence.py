"""The evidence ledger: one hash chain per tenant, append-only, verified from entry 1, fed by
domain events, and readable by tenant admins and auditors only."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import itertools
import json
import threading
from decimal import Decimal
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from apps.host import services as host
from apps.kernel.roles import RoleChoices
from apps.runtime.models import DomainEvent
from apps.runtime.services import event_handle
from apps.trust import hashing
from apps.trust.handlers import evidence_subject
from apps.trust.models import AppendOnlyError, EvidenceRecord
from apps.trust.selectors import evidence_list, evidence_verify
from apps.trust.services import evidence_append
from tests.factories import EvidenceRecordFactory, TenantFactory

pytestmark = pytest.mark.django_db

ZEROS = "0" * 64
TABLE = "trust_evidencerecord"
TRIGGER = "trust_evidencerecord_append_only"
ORDER_FIELDS = [
    {"name": "order_id", "logical_type": "string", "required": True, "primary_key": True, "role": "entity_key"},
    {"name": "amount", "logical_type": "number", "required": True, "role": "measure", "unit": "EUR"},
]


def append(tenant: Any, n: int = 1, **overrides: Any) -> list[EvidenceRecord]:
    return [
        evidence_append(
            tenant=tenant,
            kind=overrides.get("kind", "contract.approved"),
            subject=overrides.get("subject", f"contract orders 1.{i}.0"),
            content=overrides.get("content", {"contract": "orders", "version": f"1.{i}.0"}),
            actor=overrides.get("actor"),
        )
        for i in range(n)
    ]


def chain_of(tenant: Any) -> list[EvidenceRecord]:
    return list(EvidenceRecord.objects.for_tenant(tenant).order_by("sequence"))


def tamper(sql: str, params: list[Any]) -> None:
    """What an attacker with database rights could do: SQL past the ORM, and on PostgreSQL past
    the append-only trigger, which replica mode skips (for this transaction only)."""
    postgres = connection.vendor == "postgresql"
    with connection.cursor() as cursor:
        if postgres:
            cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute(sql, params)
        if postgres:
            cursor.execute("SET LOCAL session_replication_role = DEFAULT")


def set_content(entry: EvidenceRecord, content: dict[str, Any]) -> None:
    value = "CAST(%s AS jsonb)" if connection.vendor == "postgresql" else "%s"
    tamper(f"UPDATE {TABLE} SET content = {value} WHERE id = %s", [json.dumps(content), entry.pk])  # noqa: S608


# --- appending -------------------------------------------------------------------------------------


class TestAppending:
    def test_the_first_entry_links_to_64_zeros_and_each_next_to_the_one_before(self, tenant_a):
        append(tenant_a, 4)

        chain = chain_of(tenant_a)

        assert [e.sequence for e in chain] == [1, 2, 3, 4]
        assert chain[0].previous_hash == ZEROS
        for before, after in itertools.pairwise(chain):
            assert after.previous_hash == before.entry_hash
        assert len({e.entry_hash for e in chain}) == 4

    def test_two_tenants_have_independent_chains(self, tenant_a, tenant_b):
        append(tenant_a, 2)
        append(tenant_b, 3)
        append(tenant_a, 1)

        assert [e.sequence for e in chain_of(tenant_a)] == [1, 2, 3]
        assert [e.sequence for e in chain_of(tenant_b)] == [1, 2, 3]
        assert chain_of(tenant_b)[0].previous_hash == ZEROS
        assert chain_of(tenant_a)[2].previous_hash == chain_of(tenant_a)[1].entry_hash

    def test_the_hashes_follow_the_documented_byte_layout(self, tenant_a, member):
        approver = member(tenant_a, RoleChoices.ADMIN)
        append(tenant_a, 1)
        entry = append(tenant_a, 1, subject="contract orders 1.1.0", content={"version": "1.1.0", "ä": 1},
                       actor=approver)[0]  # fmt: skip
        entry = EvidenceRecord.objects.get(pk=entry.pk)  # as stored

        # Recomputed without apps.trust.hashing, as someone outside Aurum would.
        canonical = '{"version":"1.1.0","ä":1}'
        assert entry.content_hash == hashlib.sha256(canonical.encode("utf-8")).hexdigest()
        recorded_at = entry.recorded_at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")
        layout = "\n".join(
            [entry.previous_hash, "2", "contract.approved", "contract orders 1.1.0", entry.content_hash, recorded_at,
             str(approver.pk)]
        )  # fmt: skip
        assert entry.entry_hash == hashlib.sha256(layout.encode("utf-8")).hexdigest()

    def test_an_entry_without_actor_hashes_an_empty_actor_field(self, tenant_a):
        entry = EvidenceRecord.objects.get(pk=append(tenant_a, 1)[0].pk)
        layout = "\n".join(
            [ZEROS, "1", entry.kind, entry.subject, entry.content_hash, hashing.recorded_at_text(entry.recorded_at), ""]
        )
        assert entry.actor_id is None
        assert entry.entry_hash == hashlib.sha256(layout.encode()).hexdigest()

    def test_it_stores_the_content_in_canonical_form(self, tenant_a):
        content = {"value": Decimal("12.50"), "day": dt.date(2026, 11, 25), "ratio": 1.0, "share": 0.25,
                   "tags": ("a", "b")}  # fmt: skip

        entry = EvidenceRecord.objects.get(pk=append(tenant_a, 1, content=content)[0].pk)

        assert entry.content == {"value": "12.50", "day": "2026-11-25", "ratio": 1, "share": 0.25, "tags": ["a", "b"]}
        assert entry.content_hash == hashing.content_hash(content) == hashing.content_hash(entry.content)

    @pytest.mark.parametrize(
        ("field", "overrides"),
        [
            ("kind", {"kind": "Contract Approved"}),
            ("kind", {"kind": ""}),
            ("subject", {"subject": "two\nlines"}),
            ("subject", {"subject": ""}),
            ("subject", {"subject": "x" * 301}),
            ("content", {"content": ["not", "an", "object"]}),
            ("content", {"content": {"when": object()}}),
            ("content", {"content": {"n": float("nan")}}),
        ],
    )
    def test_it_refuses_what_would_make_the_hash_layout_ambiguous_or_unhashable(self, tenant_a, field, overrides):
        with pytest.raises(ValidationError) as refused:
            append(tenant_a, 1, **overrides)
        assert field in refused.value.message_dict
        assert not EvidenceRecord.objects.exists()

    def test_it_refuses_an_entry_without_tenant(self):
        with pytest.raises(ValidationError) as refused:
            evidence_append(tenant=None, kind="contract.approved", subject="s", content={})
        assert "tenant" in refused.value.message_dict

    def test_an_entry_rolls_back_with_the_callers_transaction(self, tenant_a):
        def failing_change() -> None:
            with transaction.atomic():
                append(tenant_a, 1)
                raise RuntimeError("the caller's change failed")

        with pytest.raises(RuntimeError):
            failing_change()
        assert not EvidenceRecord.objects.exists()
        assert append(tenant_a, 1)[0].sequence == 1


class TestAppendOnly:
    def test_the_orm_refuses_to_change_or_delete_an_entry(self, tenant_a):
        entry = append(tenant_a, 1)[0]

        entry.subject = "rewritten"
        with pytest.raises(AppendOnlyError):
            entry.save()
        with pytest.raises(AppendOnlyError):
            entry.delete()
        with pytest.raises(AppendOnlyError):
            EvidenceRecord.objects.filter(pk=entry.pk).update(subject="rewritten")
        with pytest.raises(AppendOnlyError):
            EvidenceRecord.objects.filter(pk=entry.pk).delete()
        with pytest.raises(AppendOnlyError):
            EvidenceRecord.objects.bulk_update([entry], ["subject"])
        with pytest.raises(AppendOnlyError):
            EvidenceRecord.objects.bulk_create([EvidenceRecord(tenant=tenant_a, sequence=2)])

        assert EvidenceRecord.objects.get(pk=entry.pk).subject == "contract orders 1.0.0"

    @pytest.mark.postgres
    @pytest.mark.parametrize(
        "sql",
        [
            "UPDATE trust_evidencerecord SET subject = 'rewritten' WHERE id = %s",
            "DELETE FROM trust_evidencerecord WHERE id = %s",
        ],
    )
    def test_on_postgresql_the_database_refuses_update_and_delete_whoever_asks(self, tenant_a, sql):
        entry = append(tenant_a, 1)[0]

        with (
            pytest.raises(DatabaseError, match="trust_evidencerecord is append-only"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(sql, [entry.pk])

        assert EvidenceRecord.objects.get(pk=entry.pk).subject == "contract orders 1.0.0"


# --- verifying -------------------------------------------------------------------------------------


class TestVerifying:
    def test_an_intact_chain_is_ok_with_its_entry_count_and_head(self, tenant_a):
        entries = append(tenant_a, 5)

        result = evidence_verify(tenant=tenant_a, chunk_size=2)  # several chunks of the stream

        assert (result.ok, result.checked, result.first_broken) == (True, 5, None)
        assert result.head_hash == entries[-1].entry_hash

    def test_an_empty_chain_is_ok(self, tenant_a):
        assert evidence_verify(tenant=tenant_a).as_dict() == {
            "ok": True, "checked": 0, "first_broken": None, "head_hash": ZEROS,
        }  # fmt: skip

    def test_altered_content_names_the_entry(self, tenant_a, tenant_b):
        entries = append(tenant_a, 4)
        append(tenant_b, 2)

        set_content(entries[2], {"contract": "orders", "version": "9.9.9"})

        result = evidence_verify(tenant=tenant_a)
        assert not result.ok
        assert result.checked == 2
        assert result.first_broken["sequence"] == 3
        assert result.first_broken["reason"] == "content altered"
        assert evidence_verify(tenant=tenant_b).ok

    def test_content_altered_together_with_its_content_hash_is_an_entry_hash_mismatch(self, tenant_a):
        entries = append(tenant_a, 3)
        forged = {"contract": "orders", "version": "9.9.9"}
        set_content(entries[1], forged)
        tamper(f"UPDATE {TABLE} SET content_hash = %s WHERE id = %s", [hashing.content_hash(forged), entries[1].pk])  # noqa: S608

        assert evidence_verify(tenant=tenant_a).first_broken["sequence"] == 2
        assert evidence_verify(tenant=tenant_a).first_broken["reason"] == "entry hash mismatch"

    def test_an_altered_previous_hash_is_a_broken_link(self, tenant_a):
        entries = append(tenant_a, 3)
        tamper(f"UPDATE {TABLE} SET previous_hash = %s WHERE id = %s", ["f" * 64, entries[1].pk])  # noqa: S608

        result = evidence_verify(tenant=tenant_a)

        assert result.first_broken["sequence"] == 2
        assert result.first_broken["reason"] == "link broken"

    def test_a_deleted_middle_entry_is_a_sequence_gap(self, tenant_a):
        entries = append(tenant_a, 4)
        tamper(f"DELETE FROM {TABLE} WHERE id = %s", [entries[1].pk])  # noqa: S608

        result = evidence_verify(tenant=tenant_a)

        assert (result.checked, result.first_broken["sequence"]) == (1, 3)
        assert result.first_broken["reason"] == "sequence gap"
        assert result.first_broken["detail"] == "expected entry 2, found entry 3"

    @pytest.mark.parametrize(
        ("column", "value"),
        [("subject", "contract orders 6.6.6"), ("kind", "contract.rejected"), ("entry_hash", "e" * 64)],
    )
    def test_any_other_altered_field_is_an_entry_hash_mismatch(self, tenant_a, column, value):
        entries = append(tenant_a, 3)
        tamper(f"UPDATE {TABLE} SET {column} = %s WHERE id = %s", [value, entries[2].pk])  # noqa: S608

        result = evidence_verify(tenant=tenant_a)

        assert result.first_broken["sequence"] == 3
        assert result.first_broken["reason"] == "entry hash mismatch"


class TestTheCommand:
    def run(self, *args: str) -> str:
        out = io.StringIO()
        call_command("verify_evidence", *args, stdout=out)
        return out.getvalue()

    def test_it_reports_every_tenants_chain(self, tenant_a, tenant_b):
        append(tenant_a, 3)

        output = self.run()

        assert "tenant-a: ok: 3 entries" in output
        assert "tenant-b: ok: 0 entries" in output

    def test_it_exits_non_zero_and_prints_the_broken_entry(self, tenant_a, tenant_b):
        entries = append(tenant_a, 3)
        append(tenant_b, 1)
        set_content(entries[1], {"forged": True})
        out = io.StringIO()

        with pytest.raises(CommandError) as failed:
            call_command("verify_evidence", stdout=out)

        assert failed.value.returncode == 1
        assert "tenant-a: BROKEN at entry 2: content altered" in out.getvalue()
        assert "tenant-b: ok: 1 entries" in out.getvalue()

    def test_it_checks_only_the_named_tenant(self, tenant_a, tenant_b):
        entries = append(tenant_a, 2)
        set_content(entries[0], {"forged": True})
        append(tenant_b, 2)

        output = self.run("--tenant", "tenant-b")

        assert output.strip().splitlines() == [f"tenant-b: ok: 2 entries (head {chain_of(tenant_b)[-1].entry_hash})"]

    def test_an_unknown_tenant_is_an_error(self, tenant_a):
        with pytest.raises(CommandError, match="No tenant 'nope'"):
            self.run("--tenant", "nope")


# --- the event handlers ----------------------------------------------------------------------------


class TestRecordingEvents:
    def test_approving_a_contract_version_appends_a_contract_approved_entry(
        self, tenant_a, member, django_capture_on_commit_callbacks
    ):
        steward = member(tenant_a, RoleChoices.STEWARD, username="steward")
        approver = member(tenant_a, RoleChoices.ADMIN, username="approver")

        with django_capture_on_commit_callbacks(execute=True):
            contract = host.contract_create(actor=steward, tenant=tenant_a, key="orders", name="Orders")
            version = host.contract_version_create(actor=steward, contract=contract, version="1.1.0",
                                                   fields=[dict(f) for f in ORDER_FIELDS])  # fmt: skip
            host.contract_version_propose(actor=steward, version=version)
            host.contract_version_approve(actor=approver, version=version, comment="looks right")

        entry = EvidenceRecord.objects.get(tenant=tenant_a, kind="contract.approved")
        event = DomainEvent.objects.get(type="contract.approved")
        assert entry.subject == "contract orders 1.1.0"
        assert entry.content["payload"]["contract"] == "orders"
        assert entry.content["payload"]["version"] == "1.1.0"
        assert entry.content["payload"]["comment"] == "looks right"
        assert entry.content["event_id"] == str(event.pk)
        assert entry.actor == approver
        # Drafting and proposing are not governance facts the ledger keeps.
        assert list(EvidenceRecord.objects.values_list("kind", flat=True)) == ["contract.approved"]
        assert evidence_verify(tenant=tenant_a).ok

    def test_a_handled_event_never_appends_twice(self, tenant_a, member, django_capture_on_commit_callbacks):
        admin = member(tenant_a, RoleChoices.ADMIN)
        with django_capture_on_commit_callbacks(execute=True):
            policy = host.policy_create(actor=admin, tenant=tenant_a, kind="quality_gate", name="gate",
                                        parameters={"min_batch_pass_rate": 90})  # fmt: skip
            host.policy_activate(actor=admin, policy=policy)
        event = DomainEvent.objects.get(type="policy.activated")
        assert EvidenceRecord.objects.get(kind="policy.activated").subject == "policy gate v1"

        assert event_handle(event_id=event.pk, handler="trust.record_policy_activated") is False

        assert EvidenceRecord.objects.filter(kind="policy.activated").count() == 1

    def test_a_platform_wide_event_has_no_chain_to_append_to(self, superuser, django_capture_on_commit_callbacks):
        with django_capture_on_commit_callbacks(execute=True):
            policy = host.policy_create(actor=superuser, kind="quality_gate", name="platform gate",
                                        parameters={"min_batch_pass_rate": 90})  # fmt: skip
            host.policy_activate(actor=superuser, policy=policy)
        assert DomainEvent.objects.filter(type="policy.activated", tenant=None).exists()
        assert not EvidenceRecord.objects.exists()

    @pytest.mark.parametrize(
        ("event_type", "payload", "subject"),
        [
            ("contract.retired", {"contract": "orders", "version": "1.0.0"}, "contract orders 1.0.0"),
            ("policy.retired", {"policy": 7, "name": "gate", "version": 2}, "policy gate v2"),
            ("gdp.overridden", {"gdp": 5, "contract": 3, "measure": "revenue", "entity_key": "S001",
                                "observed_at": "2026-11-01T00:00:00+00:00"},
             "gdp revenue S001 2026-11-01T00:00:00+00:00"),
            ("period.closed", {"period": 17, "calendar": 3, "calendar_key": "retail-445", "label": "FY2026-P11",
                               "level": "period", "state": "closed"}, "period retail-445 FY2026-P11"),
            ("kpi.published", {"kpi": "net-sales", "version": 3, "period": "2026-11"}, "kpi net-sales 2026-11 3"),
            ("kpi.restated", {"kpi": "a\nb"}, "kpi a b"),
            ("kpi.published", {}, "kpi"),
        ],
    )  # fmt: skip
    def test_the_subject_names_what_the_event_is_about(self, event_type, payload, subject):
        assert evidence_subject(event_type, payload) == subject

    def test_an_event_type_nobody_publishes_yet_is_recorded_once_it_is(
        self, tenant_a, django_capture_on_commit_callbacks
    ):
        from apps.runtime.events import publish_event

        with django_capture_on_commit_callbacks(execute=True):
            publish_event("period.closed", {"calendar_key": "gregorian", "label": "2026-11"}, tenant=tenant_a)

        entry = EvidenceRecord.objects.get(kind="period.closed")
        assert entry.subject == "period gregorian 2026-11"
        assert entry.content["payload"] == {"calendar_key": "gregorian", "label": "2026-11"}


# --- concurrency -----------------------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_appends_for_one_tenant_never_fork_the_chain():
    tenant = TenantFactory(slug="busy")
    threads_count, per_thread = 4, 15
    start = threading.Barrier(threads_count)
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            start.wait()
            for i in range(per_thread):
                # Each append in its own transaction, as handlers do, racing the other writers for the head.
                evidence_append(tenant=tenant, kind="test.concurrent", subject=f"writer {n} entry {i}",
                                content={"writer": n, "i": i})  # fmt: skip
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    chain = chain_of(tenant)
    assert [e.sequence for e in chain] == list(range(1, threads_count * per_thread + 1))
    assert len({e.previous_hash for e in chain}) == len(chain), "two entries link to the same head: a fork"
    assert evidence_verify(tenant=tenant).ok


# --- the API ---------------------------------------------------------------------------------------


class TestTheApi:
    def test_an_auditor_reads_the_ledger_newest_first(self, tenant_a, token_client):
        append(tenant_a, 3)
        client = token_client(tenant_a, RoleChoices.AUDITOR, scopes=["read"])

        body = client.get("/api/v1/evidence/").json()

        assert [item["sequence"] for item in body["results"]] == [3, 2, 1]
        first = body["results"][-1]
        assert first["previous_hash"] == ZEROS
        assert set(first) == {"id", "sequence", "kind", "subject", "content", "content_hash", "previous_hash",
                              "entry_hash", "actor", "actor_id", "recorded_at"}  # fmt: skip

    def test_it_filters_by_kind_and_pages(self, tenant_a, token_client):
        append(tenant_a, 2)
        append(tenant_a, 3, kind="policy.activated", subject="policy gate v1", content={"policy": 1})
        client = token_client(tenant_a, RoleChoices.ADMIN)

        kinds = client.get("/api/v1/evidence/", {"kind": "policy.activated"}).json()["results"]
        page = client.get("/api/v1/evidence/", {"page_size": 2}).json()

        assert [item["sequence"] for item in kinds] == [5, 4, 3]
        assert page["count"] == 5 and len(page["results"]) == 2 and page["next"]

    def test_one_entry_is_readable_by_id(self, tenant_a, token_client):
        entry = append(tenant_a, 1)[0]
        client = token_client(tenant_a, RoleChoices.AUDITOR, scopes=["read"])

        body = client.get(f"/api/v1/evidence/{entry.pk}/").json()

        assert body["entry_hash"] == entry.entry_hash
        assert body["content"] == {"contract": "orders", "version": "1.0.0"}

    @pytest.mark.parametrize("role", [RoleChoices.ANALYST, RoleChoices.STEWARD, RoleChoices.CONSUMER])
    @pytest.mark.parametrize("path", ["/api/v1/evidence/", "/api/v1/evidence/verify/", "/api/v1/evidence/{id}/"])
    def test_other_roles_are_forbidden(self, tenant_a, token_client, role, path):
        entry = append(tenant_a, 1)[0]
        client = token_client(tenant_a, role)

        response = client.get(path.format(id=entry.pk))

        assert response.status_code == 403
        assert response["Content-Type"] == "application/problem+json"
        assert response.json()["type"] == "urn:aurum:problem:insufficient-scope"

    def test_anonymous_requests_are_refused(self, api_client):
        assert api_client.get("/api/v1/evidence/").status_code == 401
        assert api_client.get("/api/v1/evidence/verify/").status_code == 401

    def test_another_tenants_entry_is_not_found(self, tenant_a, tenant_b, token_client):
        theirs = append(tenant_b, 1)[0]
        append(tenant_a, 1)
        client = token_client(tenant_a, RoleChoices.AUDITOR, scopes=["read"])

        assert client.get(f"/api/v1/evidence/{theirs.pk}/").status_code == 404
        assert theirs.pk not in {item["id"] for item in client.get("/api/v1/evidence/").json()["results"]}

    def test_verify_reports_an_intact_chain(self, tenant_a, tenant_b, token_client):
        entries = append(tenant_a, 2)
        append(tenant_b, 5)
        client = token_client(tenant_a, RoleChoices.AUDITOR, scopes=["read"])

        body = client.get("/api/v1/evidence/verify/").json()

        assert body == {"ok": True, "checked": 2, "first_broken": None, "head_hash": entries[-1].entry_hash}

    def test_verify_reports_the_first_broken_entry(self, tenant_a, token_client):
        entries = append(tenant_a, 3)
        set_content(entries[1], {"forged": True})
        client = token_client(tenant_a, RoleChoices.ADMIN)

        body = client.get("/api/v1/evidence/verify/").json()

        assert body["ok"] is False and body["checked"] == 1
        assert body["first_broken"]["sequence"] == 2
        assert body["first_broken"]["reason"] == "content altered"
        assert body["head_hash"] == entries[0].entry_hash

    def test_nothing_can_be_written_through_the_api(self, tenant_a, token_client):
        entry = append(tenant_a, 1)[0]
        client = token_client(tenant_a, RoleChoices.ADMIN)

        assert client.post("/api/v1/evidence/", {"kind": "x"}).status_code == 405
        assert client.patch(f"/api/v1/evidence/{entry.pk}/", {"subject": "x"}).status_code == 405
        assert client.delete(f"/api/v1/evidence/{entry.pk}/").status_code == 405

    def test_the_list_costs_the_same_queries_for_1_and_for_30_entries(self, tenant_a, token_client, member):
        client = token_client(tenant_a, RoleChoices.AUDITOR, scopes=["read"])
        actor = member(tenant_a, RoleChoices.ADMIN)
        append(tenant_a, 1, actor=actor)
        client.get("/api/v1/evidence/")  # the token's first use writes its last-used time
        with CaptureQueriesContext(connection) as one:
            client.get("/api/v1/evidence/")
        append(tenant_a, 29, actor=actor)
        with CaptureQueriesContext(connection) as many:
            client.get("/api/v1/evidence/")
        assert len(many) == len(one)


# --- the portal ------------------------------------------------------------------------------------


class TestThePortal:
    CHANGELIST = "admin:trust_evidencerecord_changelist"
    VERIFY = "admin:trust_evidencerecord_verify"

    @staticmethod
    def signed_in(user: Any) -> Client:
        client = Client()
        client.force_login(user)
        return client

    @pytest.mark.parametrize("role", [RoleChoices.ADMIN, RoleChoices.AUDITOR])
    def test_admins_and_auditors_read_the_ledger_and_cannot_change_it(self, tenant_a, member, role):
        entry = append(tenant_a, 1)[0]
        client = self.signed_in(member(tenant_a, role))

        response = client.get(reverse(self.CHANGELIST))

        assert [row.pk for row in response.context["cl"].result_list] == [entry.pk]
        assert reverse(self.VERIFY) in response.content.decode()
        page = client.get(reverse("admin:trust_evidencerecord_change", args=[entry.pk]))
        assert page.status_code == 200
        assert entry.entry_hash in page.content.decode()
        assert client.get(reverse("admin:trust_evidencerecord_add")).status_code == 403
        client.post(reverse("admin:trust_evidencerecord_delete", args=[entry.pk]), {"post": "yes"})
        assert EvidenceRecord.objects.filter(pk=entry.pk).exists()

    @pytest.mark.parametrize("role", [RoleChoices.STEWARD, RoleChoices.ANALYST])
    def test_other_roles_do_not_see_it(self, tenant_a, member, role):
        client = self.signed_in(member(tenant_a, role))
        assert client.get(reverse(self.CHANGELIST)).status_code == 403
        assert client.get(reverse(self.VERIFY)).status_code == 403

    def test_not_even_a_superuser_adds_changes_or_deletes(self, tenant_a, superuser):
        entry = append(tenant_a, 1)[0]
        client = self.signed_in(superuser)
        assert client.get(reverse("admin:trust_evidencerecord_add")).status_code == 403
        page = client.get(reverse("admin:trust_evidencerecord_change", args=[entry.pk]))
        assert page.status_code == 200 and 'name="_save"' not in page.content.decode()
        client.post(reverse("admin:trust_evidencerecord_change", args=[entry.pk]), {"subject": "rewritten"})
        client.post(reverse("admin:trust_evidencerecord_delete", args=[entry.pk]), {"post": "yes"})
        assert EvidenceRecord.objects.get(pk=entry.pk).subject == entry.subject

    def test_verify_chain_shows_the_active_tenants_result(self, tenant_a, tenant_b, member):
        entries = append(tenant_a, 3)
        append(tenant_b, 1)
        set_content(entries[2], {"forged": True})
        client = self.signed_in(member(tenant_a, RoleChoices.AUDITOR))

        response = client.get(reverse(self.VERIFY))

        assert response.status_code == 200
        [(tenant, result)] = response.context["results"]
        assert tenant == tenant_a
        assert result.first_broken["sequence"] == 3
        page = response.content.decode()
        assert "BROKEN" in page and "content altered" in page and "tenant-b" not in page

    def test_a_superuser_without_a_tenant_verifies_every_chain(self, tenant_a, tenant_b, superuser):
        append(tenant_a, 2)
        response = self.signed_in(superuser).get(reverse(self.VERIFY))
        results = {tenant.slug: result for tenant, result in response.context["results"]}
        assert results["tenant-a"].checked == 2 and results["tenant-a"].ok
        assert results["tenant-b"].checked == 0


def test_the_factory_appends_through_the_service(tenant_a):
    first, second = EvidenceRecordFactory(tenant=tenant_a), EvidenceRecordFactory(tenant=tenant_a)
    assert (first.sequence, second.sequence) == (1, 2)
    assert evidence_verify(tenant=tenant_a).ok
    assert list(evidence_list(tenant=tenant_a)) == [second, first]
