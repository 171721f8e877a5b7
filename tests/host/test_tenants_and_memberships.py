"""Host services: every change is validated, audited and announced as a domain event."""

from __future__ import annotations

import pytest
from auditlog.models import LogEntry
from django.core.exceptions import ValidationError
from django.core.management import call_command

from apps.host import services
from apps.host.models import Membership, Tenant
from apps.kernel.roles import RoleChoices
from apps.runtime.models import DomainEvent
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def events(event_type: str) -> list[DomainEvent]:
    return list(DomainEvent.objects.filter(type=event_type))


def test_it_creates_a_tenant_with_an_event_and_an_audit_entry(superuser):
    tenant = services.tenant_create(actor=superuser, slug="acme", name="Acme", timezone="Europe/Berlin")
    assert tenant.is_active
    [event] = events("tenant.created")
    assert event.tenant == tenant and event.actor == superuser and event.payload["tenant"] == "acme"
    entry = LogEntry.objects.get_for_object(tenant).get()
    assert entry.actor == superuser


@pytest.mark.parametrize(
    ("fields", "bad_field"),
    [
        ({"slug": "Not A Slug", "name": "x"}, "slug"),
        ({"slug": "ok", "name": "x", "timezone": "Mars/Olympus"}, "timezone"),
        ({"slug": "ok", "name": ""}, "name"),
    ],
)
def test_it_refuses_a_bad_tenant_and_keeps_nothing(superuser, fields, bad_field):
    with pytest.raises(ValidationError) as exc:
        services.tenant_create(actor=superuser, **fields)
    assert bad_field in exc.value.message_dict
    assert not Tenant.objects.exists()
    assert not DomainEvent.objects.exists()


def test_it_refuses_a_duplicate_slug(superuser):
    services.tenant_create(actor=superuser, slug="acme", name="Acme")
    with pytest.raises(ValidationError, match="already exists"):
        services.tenant_create(actor=superuser, slug="acme", name="Acme again")
    assert Tenant.objects.get().name == "Acme"


def test_suspending_announces_it_once(tenant_a, superuser):
    services.tenant_set_status(actor=superuser, tenant=tenant_a, status="suspended")
    services.tenant_set_status(actor=superuser, tenant=tenant_a, status="suspended")
    assert len(events("tenant.suspended")) == 1
    services.tenant_set_status(actor=superuser, tenant=tenant_a, status="active")
    assert len(events("tenant.activated")) == 1
    with pytest.raises(ValidationError):
        services.tenant_set_status(actor=superuser, tenant=tenant_a, status="deleted")


def test_membership_set_creates_then_changes_the_role(tenant_a, superuser):
    user = UserFactory()
    services.membership_set(actor=superuser, tenant=tenant_a, user=user, role=RoleChoices.ANALYST)
    services.membership_set(actor=superuser, tenant=tenant_a, user=user, role=RoleChoices.STEWARD)
    services.membership_set(actor=superuser, tenant=tenant_a, user=user, role=RoleChoices.STEWARD)
    assert Membership.objects.get(tenant=tenant_a, user=user).role == RoleChoices.STEWARD
    changes = [e.payload for e in DomainEvent.objects.filter(type="membership.changed").order_by("occurred_at")]
    assert [(c["previous_role"], c["role"]) for c in changes] == [(None, "analyst"), ("analyst", "steward")]


def test_membership_set_refuses_an_unknown_role(tenant_a, superuser):
    with pytest.raises(ValidationError, match="Unknown role"):
        services.membership_set(actor=superuser, tenant=tenant_a, user=UserFactory(), role="overlord")
    assert not Membership.objects.exists()


def test_a_user_can_belong_to_several_tenants_once_each(tenant_a, tenant_b, superuser):
    user = UserFactory()
    services.membership_set(actor=superuser, tenant=tenant_a, user=user, role=RoleChoices.STEWARD)
    services.membership_set(actor=superuser, tenant=tenant_b, user=user, role=RoleChoices.ANALYST)
    assert Membership.objects.filter(user=user).count() == 2
    assert set(Membership.objects.for_tenant(tenant_a).values_list("user", flat=True)) == {user.pk}


class TestMembershipApi:
    def test_a_tenant_admin_adds_changes_and_removes_members(self, tenant_a, token_client):
        UserFactory(username="newbie")
        client = token_client(tenant_a, RoleChoices.ADMIN)
        created = client.post("/api/v1/memberships/", {"username": "newbie", "role": "analyst"})
        assert created.status_code == 201, created.json()
        url = f"/api/v1/memberships/{created.json()['id']}/"
        assert client.patch(url, {"role": "steward"}).json()["role"] == "steward"
        assert client.delete(url).status_code == 204
        assert not Membership.objects.filter(user__username="newbie").exists()
        assert [e.type for e in DomainEvent.objects.order_by("occurred_at")][-3:] == [
            "membership.changed",
            "membership.changed",
            "membership.removed",
        ]

    def test_an_unknown_username_is_a_field_error(self, tenant_a, token_client):
        client = token_client(tenant_a, RoleChoices.ADMIN)
        response = client.post("/api/v1/memberships/", {"username": "ghost", "role": "analyst"})
        assert response.status_code == 400
        assert response.json()["errors"] == [
            {"pointer": "#/username", "detail": "No active account is called 'ghost'.", "code": "invalid"}
        ]

    def test_members_see_who_belongs_but_only_admins_manage_members(self, tenant_a, token_client):
        UserFactory(username="newbie")
        client = token_client(tenant_a, RoleChoices.STEWARD)
        assert client.get("/api/v1/memberships/").json()["count"] == 1
        assert client.post("/api/v1/memberships/", {"username": "newbie", "role": "analyst"}).status_code == 403


def test_the_tenants_endpoint_shows_the_tokens_tenant_only(tenant_a, tenant_b, token_client):
    client = token_client(tenant_a, RoleChoices.CONSUMER, scopes=["read"])
    assert [t["slug"] for t in client.get("/api/v1/tenants/").json()["results"]] == ["tenant-a"]
    assert client.get("/api/v1/tenants/tenant-a/").json()["name"] == "Tenant A"
    assert client.get("/api/v1/tenants/tenant-b/").status_code == 404


def test_seed_demo_is_idempotent(capsys):
    call_command("seed_demo")
    counts = (Tenant.objects.count(), Membership.objects.count(), DomainEvent.objects.count())
    call_command("seed_demo")
    assert (Tenant.objects.count(), Membership.objects.count(), DomainEvent.objects.count()) == counts
    assert counts[0] == 2
    roles = set(Membership.objects.filter(tenant__slug="acme").values_list("role", flat=True))
    assert roles == set(RoleChoices.values)
    assert "aurum-demo" in capsys.readouterr().out
