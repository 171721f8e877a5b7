"""API tokens: shown once, stored hashed, scoped, expiring, revocable."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.utils import timezone
from rest_framework.test import APIClient

from apps.access import services
from apps.access.models import ApiToken
from apps.access.tokens import digest
from apps.kernel.roles import RoleChoices
from apps.runtime.models import DomainEvent

pytestmark = pytest.mark.django_db


def bearer(plain: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plain}")
    return client


def test_it_stores_only_a_digest_and_a_visible_prefix(tenant_a, member):
    user = member(tenant_a, RoleChoices.STEWARD)
    token, plain = services.api_token_create(actor=user, tenant=tenant_a, user=user, name="ci", scopes="read,write")
    stored = ApiToken.objects.get(pk=token.pk)
    secret = plain.split("_", 2)[2]
    assert plain.startswith(f"aur_{stored.prefix}_")
    assert stored.secret_hash == digest(secret)
    assert secret not in stored.secret_hash
    assert all(secret not in str(value) for value in ApiToken.objects.filter(pk=token.pk).values().first().values())
    assert stored.scopes == ["read", "write"]


def test_a_token_authenticates_and_records_last_use(tenant_a, member):
    user = member(tenant_a, RoleChoices.ANALYST)
    token, plain = services.api_token_create(actor=user, tenant=tenant_a, user=user, name="x", scopes=["read"])
    assert token.last_used_at is None
    response = bearer(plain).get("/api/v1/tenants/")
    assert response.status_code == 200
    assert [t["slug"] for t in response.json()["results"]] == ["tenant-a"]
    assert ApiToken.objects.get(pk=token.pk).last_used_at is not None


@pytest.mark.parametrize("mangle", [lambda p: p + "x", lambda p: p[:-1], lambda p: "aur_nope", lambda p: "garbage"])
def test_a_wrong_token_gets_401_problem(tenant_a, member, mangle):
    user = member(tenant_a)
    _, plain = services.api_token_create(actor=user, tenant=tenant_a, user=user, name="x", scopes=["read"])
    response = bearer(mangle(plain)).get("/api/v1/tenants/")
    assert response.status_code == 401
    assert response["Content-Type"] == "application/problem+json"
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_a_revoked_token_gets_401(tenant_a, member):
    user = member(tenant_a)
    token, plain = services.api_token_create(actor=user, tenant=tenant_a, user=user, name="x", scopes=["read"])
    services.api_token_revoke(actor=user, token=token)
    assert bearer(plain).get("/api/v1/tenants/").status_code == 401
    assert DomainEvent.objects.filter(type="token.revoked").exists()


def test_an_expired_token_gets_401(tenant_a, member):
    user = member(tenant_a)
    token, plain = services.api_token_create(
        actor=user,
        tenant=tenant_a,
        user=user,
        name="x",
        scopes=["read"],
        expires_at=timezone.now() + timedelta(hours=1),
    )
    ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert bearer(plain).get("/api/v1/tenants/").status_code == 401


def test_a_token_of_a_removed_member_gets_401_and_is_revoked(tenant_a, member, django_capture_on_commit_callbacks):
    from apps.host.models import Membership
    from apps.host.services import membership_remove

    user = member(tenant_a)
    token, plain = services.api_token_create(actor=user, tenant=tenant_a, user=user, name="x", scopes=["read"])
    with django_capture_on_commit_callbacks(execute=True):
        membership_remove(actor=None, membership=Membership.objects.get(user=user))
    assert bearer(plain).get("/api/v1/tenants/").status_code == 401
    assert ApiToken.objects.get(pk=token.pk).revoked_at is not None


def test_it_refuses_scopes_beyond_the_role(tenant_a, member):
    analyst = member(tenant_a, RoleChoices.ANALYST)
    with pytest.raises(ValidationError) as exc:
        services.api_token_create(actor=analyst, tenant=tenant_a, user=analyst, name="x", scopes=["read", "write"])
    assert "does not allow scope(s): write" in str(exc.value)


def test_it_refuses_a_token_for_a_non_member(tenant_a, tenant_b, member):
    user = member(tenant_b)
    with pytest.raises(ValidationError, match="not a member"):
        services.api_token_create(actor=user, tenant=tenant_a, user=user, name="x", scopes=["read"])


def test_it_refuses_unknown_scopes_and_past_expiry(tenant_a, member):
    user = member(tenant_a, RoleChoices.ADMIN)
    with pytest.raises(ValidationError, match="unknown scope"):
        services.api_token_create(actor=user, tenant=tenant_a, user=user, name="x", scopes=["read", "root"])
    with pytest.raises(ValidationError, match="future"):
        services.api_token_create(
            actor=user, tenant=tenant_a, user=user, name="x", scopes=["read"], expires_at=timezone.now()
        )


def test_the_role_caps_a_wider_token(tenant_a, member, token_client):
    """A steward demoted to analyst keeps a read-write token, but it can no longer write."""
    from apps.host.services import membership_set

    client = token_client(tenant_a, RoleChoices.STEWARD, scopes=["read", "write"])
    membership_set(actor=None, tenant=tenant_a, user=client.user, role=RoleChoices.ANALYST)
    response = client.post("/api/v1/tokens/", {"name": "n", "scopes": ["read"], "username": "someone-else"})
    assert response.status_code == 403


class TestTokenApi:
    def test_it_creates_a_token_and_shows_it_once(self, tenant_a, token_client):
        client = token_client(tenant_a, RoleChoices.STEWARD, scopes=["read", "write"])
        response = client.post("/api/v1/tokens/", {"name": "loader", "scopes": ["read"]})
        assert response.status_code == 201, response.json()
        plain = response.json()["token"]
        assert plain.startswith(response.json()["prefix"] + "_")
        listed = client.get("/api/v1/tokens/").json()["results"]
        assert all("token" not in row for row in listed)
        assert bearer(plain).get("/api/v1/tenants/").status_code == 200

    def test_a_token_cannot_mint_a_wider_or_longer_lived_token(self, tenant_a, token_client):
        client = token_client(tenant_a, RoleChoices.ADMIN, scopes=["read"])
        response = client.post("/api/v1/tokens/", {"name": "x", "scopes": ["read", "write"]})
        assert response.status_code == 400
        assert response.json()["errors"][0]["pointer"] == "#/scopes"
        client.token.expires_at = timezone.now() + timedelta(days=1)
        client.token.save(update_fields=["expires_at"])
        response = client.post("/api/v1/tokens/", {"name": "x", "scopes": ["read"]})
        assert response.status_code == 400
        assert response.json()["errors"][0]["pointer"] == "#/expires_at"

    def test_members_see_only_their_own_tokens_and_admins_see_all(self, tenant_a, token_client, member):
        steward = token_client(tenant_a, RoleChoices.STEWARD)
        admin = token_client(tenant_a, RoleChoices.ADMIN)
        assert {t["username"] for t in steward.get("/api/v1/tokens/").json()["results"]} == {steward.user.username}
        assert {t["username"] for t in admin.get("/api/v1/tokens/").json()["results"]} == {
            steward.user.username,
            admin.user.username,
        }

    def test_only_the_admin_scope_mints_tokens_for_others(self, tenant_a, token_client, member):
        colleague = member(tenant_a, RoleChoices.ANALYST, username="colleague")
        steward = token_client(tenant_a, RoleChoices.STEWARD)
        body = {"name": "x", "scopes": ["read"], "username": colleague.username}
        assert steward.post("/api/v1/tokens/", body).status_code == 403
        admin = token_client(tenant_a, RoleChoices.ADMIN)
        response = admin.post("/api/v1/tokens/", body)
        assert response.status_code == 201
        assert response.json()["username"] == "colleague"

    def test_delete_revokes_and_keeps_the_row(self, tenant_a, token_client):
        client = token_client(tenant_a, RoleChoices.STEWARD)
        created = client.post("/api/v1/tokens/", {"name": "x", "scopes": ["read"]}).json()
        assert client.delete(f"/api/v1/tokens/{created['id']}/").status_code == 204
        assert ApiToken.objects.get(pk=created["id"]).revoked_at is not None
        assert bearer(created["token"]).get("/api/v1/tenants/").status_code == 401


class TestCreateApiTokenCommand:
    def test_it_prints_the_token_once(self, tenant_a, member, capsys):
        member(tenant_a, RoleChoices.STEWARD, username="loader")
        call_command(
            "create_api_token",
            "--tenant",
            "tenant-a",
            "--user",
            "loader",
            "--scopes",
            "read,write",
            "--expires-days",
            "30",
        )
        plain = capsys.readouterr().out.strip()
        token = ApiToken.objects.get()
        assert plain.startswith(token.display_prefix)
        assert token.scopes == ["read", "write"]
        assert token.expires_at > timezone.now() + timedelta(days=29)
        assert bearer(plain).get("/api/v1/tenants/").status_code == 200

    @pytest.mark.parametrize(
        ("args", "message"),
        [
            (["--tenant", "nope", "--user", "loader"], "No tenant"),
            (["--tenant", "tenant-a", "--user", "nobody"], "No user"),
            (["--tenant", "tenant-a", "--user", "loader", "--scopes", "read,admin"], "does not allow"),
            (["--tenant", "tenant-a", "--user", "loader", "--expires-days", "0"], "positive"),
        ],
    )
    def test_it_refuses_bad_arguments(self, tenant_a, member, args, message):
        member(tenant_a, RoleChoices.STEWARD, username="loader")
        with pytest.raises(CommandError, match=message):
            call_command("create_api_token", *args)
        assert not ApiToken.objects.exists()


class TestTokenCache:
    """A token's context is reused between requests, and every change it depends on is seen at once."""

    URL = "/api/v1/tenants/"

    @pytest.fixture(autouse=True)
    def _on(self, settings):
        settings.AURUM_TOKEN_CACHE_SECONDS = 30  # the default with a shared (Redis) cache

    @pytest.fixture
    def used(self, tenant_a, member):
        user = member(tenant_a, RoleChoices.STEWARD)
        token, plain = services.api_token_create(actor=user, tenant=tenant_a, user=user, name="x", scopes=["read"],
                                                 expires_at=timezone.now() + timedelta(hours=1))  # fmt: skip
        client = bearer(plain)
        assert client.get(self.URL).status_code == 200  # now cached
        return {"user": user, "token": token, "client": client, "plain": plain}

    def test_a_cached_token_costs_no_query_of_its_own(self, used):
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        with CaptureQueriesContext(connection) as queries:
            assert used["client"].get(self.URL).status_code == 200
        assert not [q for q in queries.captured_queries if "access_apitoken" in q["sql"]]
        assert not [q for q in queries.captured_queries if "host_membership" in q["sql"]]

    def test_each_request_gets_its_own_user_and_token_objects(self, used):
        from apps.access import tokencache

        def build():
            raise AssertionError("the context was cached by the first request")

        first = tokencache.cached_context(used["plain"], build)
        second = tokencache.cached_context(used["plain"], build)
        assert first.user.pk == second.user.pk == used["user"].pk and first.token.pk == second.token.pk
        assert first.user is not second.user and first.token is not second.token and first.tenant is not second.tenant

    def test_revocation(self, used):
        services.api_token_revoke(actor=used["user"], token=used["token"])
        assert used["client"].get(self.URL).status_code == 401

    def test_the_end_of_the_membership(self, used):
        from apps.host.models import Membership

        Membership.objects.get(user=used["user"]).delete()
        assert used["client"].get(self.URL).status_code == 401

    def test_a_deactivated_user(self, used):
        used["user"].is_active = False
        used["user"].save()
        assert used["client"].get(self.URL).status_code == 401

    def test_a_suspended_tenant(self, used, tenant_a):
        from apps.host.services import tenant_set_status

        tenant_set_status(actor=None, tenant=tenant_a, status="suspended")
        assert used["client"].get(self.URL).status_code == 403

    def test_expiry(self, used, monkeypatch):
        later = timezone.now() + timedelta(hours=2)
        monkeypatch.setattr("apps.access.tokencache.timezone.now", lambda: later)
        assert used["client"].get(self.URL).status_code == 401

    def test_an_unreachable_cache_checks_the_token_in_the_database(self, used, monkeypatch):
        from apps.kernel import generations

        class Down:
            def __getattr__(self, name):
                raise ConnectionError("the cache is down")

        monkeypatch.setattr(generations, "cache", Down())
        assert used["client"].get(self.URL).status_code == 200
        services.api_token_revoke(actor=used["user"], token=used["token"])
        assert used["client"].get(self.URL).status_code == 401

    def test_it_can_be_turned_off(self, used, settings):
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        settings.AURUM_TOKEN_CACHE_SECONDS = 0
        with CaptureQueriesContext(connection) as queries:
            assert used["client"].get(self.URL).status_code == 200
        assert [q for q in queries.captured_queries if "access_apitoken" in q["sql"]]
