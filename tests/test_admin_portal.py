"""The steward portal (Django admin) as its users use it: sign-in, roles, tenant switcher,
API tokens and the audit history."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from apps.access.context import SESSION_TENANT_KEY
from apps.access.models import ApiToken
from apps.host.models import Membership
from apps.kernel.roles import RoleChoices
from apps.runtime.models import DomainEvent
from tests.factories import ApiTokenFactory, TenantFactory, UserFactory

pytestmark = pytest.mark.django_db

PASSWORD = "secret-pass-123"  # what UserFactory sets
PORTAL_ROLES = [RoleChoices.ADMIN, RoleChoices.STEWARD, RoleChoices.ANALYST, RoleChoices.AUDITOR]

MEMBERSHIPS = reverse("admin:host_membership_changelist")
MEMBERSHIP_ADD = reverse("admin:host_membership_add")
TENANTS = reverse("admin:host_tenant_changelist")
TENANT_ADD = reverse("admin:host_tenant_add")
TOKENS = reverse("admin:access_apitoken_changelist")
TOKEN_ADD = reverse("admin:access_apitoken_add")
SWITCH = reverse("portal-switch-tenant")


def signed_in(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def shown(response: Any) -> list[Any]:
    """The rows of a changelist page."""
    assert response.status_code == 200, response.status_code
    return list(response.context["cl"].result_list)


def form_errors(response: Any) -> dict[str, list[str]]:
    assert response.status_code == 200, f"expected the form again, got {response.status_code}"
    form = response.context["adminform"].form
    return {field: [str(e) for e in errors] for field, errors in form.errors.items()}


def log_in_through_the_form(username: str, password: str = PASSWORD) -> tuple[Client, Any]:
    """The real login form, CSRF token and all."""
    client = Client(enforce_csrf_checks=True)
    page = client.get(reverse("admin:login"))
    assert page.status_code == 200
    response = client.post(
        reverse("admin:login"),
        {
            "username": username,
            "password": password,
            "next": reverse("admin:index"),
            "csrfmiddlewaretoken": client.cookies["csrftoken"].value,
        },
    )
    return client, response


# --- branding --------------------------------------------------------------------------------------


def test_the_login_page_is_branded_aurum():
    response = Client().get(reverse("admin:login"))
    assert response.status_code == 200
    page = response.content.decode()
    assert "Aurum" in page
    assert "Django administration" not in page


def test_the_index_offers_a_steward_the_modules_page(tenant_a, member):
    response = signed_in(member(tenant_a, RoleChoices.STEWARD)).get(reverse("admin:index"))
    assert response.status_code == 200
    page = response.content.decode()
    assert f'href="{reverse("portal-modules")}">Modules</a>' in page
    assert "Governance portal" in page


# --- signing in ------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", PORTAL_ROLES)
def test_a_member_with_a_portal_role_signs_in_without_is_staff(tenant_a, member, role):
    user = member(tenant_a, role)
    assert not user.is_staff and not user.is_superuser

    client, response = log_in_through_the_form(user.username)

    assert response.status_code == 302, form_errors_of_login(response)
    assert response["Location"] == reverse("admin:index")
    assert client.get(reverse("admin:index")).status_code == 200


def form_errors_of_login(response: Any) -> Any:
    return response.context["form"].errors if response.context else response.status_code


@pytest.mark.parametrize("who", ["consumer", "outsider"])
def test_consumers_and_outsiders_are_refused_with_the_form_error(tenant_a, member, outsider, who):
    user = member(tenant_a, RoleChoices.CONSUMER) if who == "consumer" else outsider

    client, response = log_in_through_the_form(user.username)

    assert response.status_code == 200
    assert "no portal role in any tenant" in " ".join(response.context["form"].non_field_errors())
    assert "no portal role in any tenant" in response.content.decode()
    assert "_auth_user_id" not in client.session
    assert client.get(reverse("admin:index")).status_code == 302  # back to the login page


def test_a_wrong_password_is_refused(tenant_a, member):
    user = member(tenant_a, RoleChoices.ADMIN)
    client, response = log_in_through_the_form(user.username, "not-the-password")
    assert response.status_code == 200
    assert response.context["form"].non_field_errors()
    assert "_auth_user_id" not in client.session


def test_a_signed_in_consumer_does_not_reach_the_portal(tenant_a, member):
    client = signed_in(member(tenant_a, RoleChoices.CONSUMER))
    response = client.get(reverse("admin:index"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))


# --- roles -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", [RoleChoices.ANALYST, RoleChoices.AUDITOR])
def test_analysts_and_auditors_read_but_do_not_add(tenant_a, member, role):
    client = signed_in(member(tenant_a, role))
    assert len(shown(client.get(MEMBERSHIPS))) == 1
    assert [t.slug for t in shown(client.get(TENANTS))] == ["tenant-a"]
    assert client.get(MEMBERSHIP_ADD).status_code == 403
    assert client.get(TENANT_ADD).status_code == 403


def test_a_steward_cannot_add_members(tenant_a, member):
    client = signed_in(member(tenant_a, RoleChoices.STEWARD))
    newcomer = UserFactory(username="newcomer")
    assert client.get(MEMBERSHIP_ADD).status_code == 403
    response = client.post(MEMBERSHIP_ADD, {"tenant": tenant_a.pk, "username": "newcomer", "role": "analyst"})
    assert response.status_code == 403
    assert not Membership.objects.filter(user=newcomer).exists()


class TestTenantAdminAddsMembers:
    @pytest.fixture
    def client(self, tenant_a, member) -> Client:
        return signed_in(member(tenant_a, RoleChoices.ADMIN, username="boss"))

    def test_by_username(self, client, tenant_a):
        newcomer = UserFactory(username="newcomer")
        form = client.get(MEMBERSHIP_ADD)
        assert form.status_code == 200
        assert "username" in form.context["adminform"].form.fields

        response = client.post(MEMBERSHIP_ADD, {"tenant": tenant_a.pk, "username": "newcomer", "role": "analyst"})

        assert response.status_code == 302, form_errors(response)
        membership = Membership.objects.get(user=newcomer)
        assert (membership.tenant, membership.role) == (tenant_a, RoleChoices.ANALYST)
        event = DomainEvent.objects.get(type="membership.changed", payload__user="newcomer")
        assert event.tenant == tenant_a
        assert event.actor.username == "boss"
        assert event.payload["role"] == "analyst" and event.payload["previous_role"] is None

    def test_an_unknown_username_is_a_form_error(self, client, tenant_a):
        response = client.post(MEMBERSHIP_ADD, {"tenant": tenant_a.pk, "username": "nobody", "role": "analyst"})
        assert "No active account is called 'nobody'." in form_errors(response)["username"]
        assert not DomainEvent.objects.filter(type="membership.changed", payload__user="nobody").exists()

    def test_an_existing_member_is_a_form_error(self, client, tenant_a, member):
        existing = member(tenant_a, RoleChoices.ANALYST, username="already")
        response = client.post(MEMBERSHIP_ADD, {"tenant": tenant_a.pk, "username": "already", "role": "steward"})
        assert any("already a member" in e for e in form_errors(response)["username"])
        assert Membership.objects.get(user=existing).role == RoleChoices.ANALYST

    def test_not_into_another_tenant(self, client, tenant_b):
        UserFactory(username="newcomer")
        response = client.post(MEMBERSHIP_ADD, {"tenant": tenant_b.pk, "username": "newcomer", "role": "analyst"})
        assert "tenant" in form_errors(response)
        assert not Membership.objects.filter(tenant=tenant_b).exists()


# --- the tenant switcher ---------------------------------------------------------------------------


class TestTenantSwitcher:
    @pytest.fixture
    def dana(self, tenant_a, tenant_b, member) -> Any:
        """Steward in A, analyst in B; A and B have a member of their own each."""
        dana = member(tenant_a, RoleChoices.STEWARD, username="dana")
        Membership.objects.create(tenant=tenant_b, user=dana, role=RoleChoices.ANALYST)
        member(tenant_a, RoleChoices.ANALYST, username="a-only")
        member(tenant_b, RoleChoices.AUDITOR, username="b-only")
        return dana

    @staticmethod
    def tenants_listed(client: Client) -> set[str]:
        return {m.tenant.slug for m in shown(client.get(MEMBERSHIPS))}

    def test_it_lists_both_memberships(self, dana, tenant_a, tenant_b):
        response = signed_in(dana).get(reverse("admin:index"))
        switcher = response.context["tenant_switcher"]
        assert {(tid, role) for tid, _, role in switcher["choices"]} == {
            (tenant_a.pk, "steward"),
            (tenant_b.pk, "analyst"),
        }
        assert switcher["active_id"] == tenant_a.pk  # the first membership until one is chosen
        page = response.content.decode()
        assert f'<option value="{tenant_b.pk}"' in page and "Tenant B (analyst)" in page
        assert 'value="">All tenants' not in page

    def test_switching_changes_what_the_changelist_shows(self, dana, tenant_b):
        client = signed_in(dana)
        assert self.tenants_listed(client) == {"tenant-a"}

        response = client.post(SWITCH, {"tenant": tenant_b.pk, "next": MEMBERSHIPS})

        assert response.status_code == 302 and response["Location"] == MEMBERSHIPS
        assert self.tenants_listed(client) == {"tenant-b"}
        assert "b-only" in {m.user.username for m in shown(client.get(MEMBERSHIPS))}
        # In B dana is an analyst: reading is fine, changing is not.
        assert client.get(reverse("admin:index")).context["tenant_switcher"]["role"] == "analyst"

    @pytest.mark.parametrize("choice", ["other-tenant", "", "not-a-number"])
    def test_a_tenant_one_does_not_belong_to_is_refused(self, dana, choice):
        other = TenantFactory(slug="tenant-c")
        client = signed_in(dana)
        raw = {"other-tenant": other.pk, "": "", "not-a-number": "abc"}[choice]

        response = client.post(SWITCH, {"tenant": raw})

        assert response.status_code == 400
        assert SESSION_TENANT_KEY not in client.session
        assert self.tenants_listed(client) == {"tenant-a"}

    def test_it_does_not_redirect_off_site(self, dana, tenant_b):
        response = signed_in(dana).post(SWITCH, {"tenant": tenant_b.pk, "next": "https://evil.example/"})
        assert response.status_code == 302 and response["Location"] == reverse("admin:index")

    def test_it_takes_only_post(self, dana, tenant_b):
        assert signed_in(dana).get(SWITCH, {"tenant": tenant_b.pk}).status_code == 405

    def test_a_superuser_may_pick_any_tenant_or_all(self, dana, superuser, tenant_a, tenant_b):
        client = signed_in(superuser)
        switcher = client.get(reverse("admin:index")).context["tenant_switcher"]
        assert switcher["allow_all"] and switcher["active_id"] is None
        assert {tid for tid, _, _ in switcher["choices"]} == {tenant_a.pk, tenant_b.pk}

        assert client.post(SWITCH, {"tenant": tenant_b.pk}).status_code == 302
        assert client.session[SESSION_TENANT_KEY] == tenant_b.pk
        switcher = client.get(reverse("admin:index")).context["tenant_switcher"]
        assert (switcher["active_id"], switcher["role"]) == (tenant_b.pk, RoleChoices.ADMIN)

        assert client.post(SWITCH, {"tenant": ""}).status_code == 302
        assert SESSION_TENANT_KEY not in client.session
        assert client.get(reverse("admin:index")).context["tenant_switcher"]["active_name"] == "All tenants"


def test_a_superuser_sees_every_tenants_memberships(superuser, tenant_a, tenant_b, member):
    member(tenant_a, RoleChoices.STEWARD, username="in-a")
    member(tenant_b, RoleChoices.STEWARD, username="in-b")
    client = signed_in(superuser)
    rows = shown(client.get(MEMBERSHIPS))
    assert {(m.user.username, m.tenant.slug) for m in rows} == {("in-a", "tenant-a"), ("in-b", "tenant-b")}
    client.post(SWITCH, {"tenant": tenant_b.pk})
    assert {m.user.username for m in shown(client.get(MEMBERSHIPS))} == {"in-b"}  # the pick narrows the view


# --- API tokens in the portal ----------------------------------------------------------------------


class TestApiTokensInThePortal:
    @pytest.fixture
    def steward(self, tenant_a, member) -> Any:
        return member(tenant_a, RoleChoices.STEWARD, username="stew")

    @staticmethod
    def add(client: Client, tenant: Any, user: Any, scopes: list[str], **extra: str) -> Any:
        data = {"tenant": tenant.pk, "user": user.pk, "name": "loader", "scopes": scopes}
        data |= {"expires_at_0": "", "expires_at_1": "", **extra}
        return client.post(TOKEN_ADD, data)

    def test_the_add_form_has_the_documented_fields(self, steward):
        form = signed_in(steward).get(TOKEN_ADD).context["adminform"].form
        assert list(form.fields) == ["tenant", "user", "name", "scopes", "expires_at"]
        assert 'type="checkbox" name="scopes" value="write"' in str(form["scopes"])
        assert [u.username for u in form.fields["user"].queryset] == ["stew"]  # only themselves

    def test_a_steward_creates_a_token_shown_once(self, steward, tenant_a):
        client = signed_in(steward)

        response = self.add(
            client, tenant_a, steward, ["read", "write"], expires_at_0="2999-01-01", expires_at_1="12:00:00"
        )

        assert response.status_code == 200, form_errors(response)
        assert "access/token_created.html" in [t.name for t in response.templates]
        plain = response.context["plain_token"]
        assert plain.startswith("aur_") and plain in response.content.decode()
        token = ApiToken.objects.get()
        assert (token.user, token.tenant, token.scopes) == (steward, tenant_a, ["read", "write"])
        assert plain.startswith(token.display_prefix)
        assert token.expires_at.year == 2999

        secret = plain.split("_", 2)[2]  # "aur_<prefix>_<secret>": the secret itself may contain "_"
        for url in (TOKENS, reverse("admin:access_apitoken_change", args=[token.pk])):
            page = client.get(url)
            assert page.status_code == 200
            assert secret not in page.content.decode(), f"{url} shows the secret again"
        assert token.display_prefix in client.get(TOKENS).content.decode()

        api = APIClient()
        api.credentials(HTTP_AUTHORIZATION=f"Bearer {plain}")
        assert api.get("/api/v1/tenants/").status_code == 200

    def test_the_role_caps_the_scopes(self, steward, tenant_a):
        response = self.add(signed_in(steward), tenant_a, steward, ["read", "admin"])
        assert any("does not allow scope(s): admin" in e for e in form_errors(response)["scopes"])
        assert not ApiToken.objects.exists()

    def test_a_steward_cannot_mint_for_a_colleague(self, steward, tenant_a, member):
        colleague = member(tenant_a, RoleChoices.ANALYST)
        response = self.add(signed_in(steward), tenant_a, colleague, ["read"])
        assert "user" in form_errors(response)
        assert not ApiToken.objects.exists()

    def test_the_revoke_action_revokes(self, steward, tenant_a):
        token = ApiTokenFactory(tenant=tenant_a, user=steward, scopes=["read"])
        client = signed_in(steward)

        response = client.post(TOKENS, {"action": "revoke", "_selected_action": [token.pk], "index": 0})

        assert response.status_code == 302
        token.refresh_from_db()
        assert token.revoked_at is not None
        assert DomainEvent.objects.filter(type="token.revoked", tenant=tenant_a).count() == 1
        api = APIClient()
        api.credentials(HTTP_AUTHORIZATION=f"Bearer {token.plain}")
        assert api.get("/api/v1/tenants/").status_code == 401

    def test_a_steward_sees_and_revokes_only_their_own(self, steward, tenant_a, member):
        theirs = ApiTokenFactory(tenant=tenant_a, user=member(tenant_a, RoleChoices.STEWARD), scopes=["read"])
        mine = ApiTokenFactory(tenant=tenant_a, user=steward, scopes=["read"])
        client = signed_in(steward)
        assert [t.pk for t in shown(client.get(TOKENS))] == [mine.pk]
        client.post(TOKENS, {"action": "revoke", "_selected_action": [theirs.pk], "index": 0})
        theirs.refresh_from_db()
        assert theirs.revoked_at is None


# --- audit history ---------------------------------------------------------------------------------


def test_a_tenant_change_in_the_portal_appears_in_its_audit_history(tenant_a, member):
    client = signed_in(member(tenant_a, RoleChoices.ADMIN, username="boss"))
    change_url = reverse("admin:host_tenant_change", args=[tenant_a.pk])
    history_url = reverse("admin:host_tenant_auditlog", args=[tenant_a.pk])
    assert client.get(change_url).status_code == 200

    response = client.post(change_url, {"name": "Tenant A Renamed", "timezone": "Europe/Berlin"})

    assert response.status_code == 302, form_errors(response)
    tenant_a.refresh_from_db()
    assert (tenant_a.name, tenant_a.timezone) == ("Tenant A Renamed", "Europe/Berlin")
    assert history_url in client.get(TENANTS).content.decode()  # the changelist links to it
    history = client.get(history_url)
    assert history.status_code == 200
    entries = list(history.context["log_entries"])
    latest = entries[0]
    assert latest.actor.username == "boss"
    assert latest.changes_dict["name"] == ["Tenant A", "Tenant A Renamed"]
    page = history.content.decode()
    assert "Tenant A Renamed" in page and "boss" in page


def test_a_suspended_tenants_members_may_look_but_not_change(tenant_a, member):
    from apps.host.services import tenant_set_status

    admin_user = member(tenant_a, RoleChoices.ADMIN, username="boss")
    tenant_set_status(actor=None, tenant=tenant_a, status="suspended")
    client = signed_in(admin_user)
    assert client.get(MEMBERSHIPS).status_code == 200
    assert client.get(MEMBERSHIP_ADD).status_code == 403
