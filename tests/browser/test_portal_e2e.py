"""The portal in a real browser: sign in, switch tenant, read the Modules page.

Uses Debian's chromium through Playwright; skipped (with the reason) where it is missing,
failed instead when AURUM_REQUIRE_SERVICES names "browser" (as CI does).
Screenshots land in var/screenshots/ for a person to look at.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from django.db import connections

from apps.kernel.roles import RoleChoices
from tests.conftest import CHROMIUM
from tests.factories import MembershipFactory, TenantFactory, UserFactory

SHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"
pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def page(live_server, monkeypatch):
    from playwright import sync_api as playwright_api

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # Playwright's sync API runs an event loop
    with playwright_api.sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        page = browser.new_page(base_url=live_server.url)
        yield page
        browser.close()
        # Inside sync_playwright() Django's connections (kept per contextvars context) are not the test's own: the
        # one the test's factories opened there is closed here, or it outlives the test database (whose teardown
        # then failed: "being accessed by other users").
        connections.close_all()


def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def test_a_steward_signs_in_switches_tenant_and_reads_the_modules_page(page):
    acme, globex = TenantFactory(slug="acme", name="Acme Retail"), TenantFactory(slug="globex", name="Globex Energy")
    dana = UserFactory(username="dana")
    MembershipFactory(tenant=acme, user=dana, role=RoleChoices.STEWARD)
    MembershipFactory(tenant=globex, user=dana, role=RoleChoices.ANALYST)
    MembershipFactory(tenant=globex, user=UserFactory(username="globex-only"), role=RoleChoices.AUDITOR)

    page.goto("/admin/")
    page.fill("#id_username", "dana")
    page.fill("#id_password", "secret-pass-123")
    page.click("input[type=submit]")
    page.wait_for_selector("#tenant-select")
    assert "Aurum" in page.title()
    shot(page, "portal-index")

    page.goto("/admin/host/membership/")
    assert "globex-only" not in page.content()  # acme is active: globex's members are invisible
    with page.expect_navigation():
        page.select_option("#tenant-select", label="Globex Energy (analyst)")
    assert "globex-only" in page.content()
    shot(page, "memberships-globex")

    page.click("a.aurum-nav:has-text('Modules')")
    page.wait_for_selector("#module-runtime")
    text = page.inner_text("#content-main")
    for category in ("Host", "Access", "Runtime", "Data Storage", "Compute", "Consumption"):
        assert category in text
    assert "degraded" not in text
    shot(page, "modules")


def test_a_consumer_is_turned_away_from_the_portal(page):
    tenant = TenantFactory(slug="acme")
    MembershipFactory(tenant=tenant, user=UserFactory(username="reader"), role=RoleChoices.CONSUMER)
    page.goto("/admin/login/")
    page.fill("#id_username", "reader")
    page.fill("#id_password", "secret-pass-123")
    page.click("input[type=submit]")
    page.wait_for_selector(".errornote")
    assert "no portal role" in page.inner_text(".errornote")
