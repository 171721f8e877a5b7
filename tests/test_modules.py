"""Modules describe themselves, and the descriptions stay true to the code."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from django.urls import Resolver404, resolve
from django.utils.module_loading import import_string

from apps.kernel.modules import import_contracts, module_apps
from apps.kernel.roles import RoleChoices
from apps.runtime.events import subscriptions
from config.celery import app as celery_app

ROOT = Path(__file__).resolve().parent.parent
TEN_APPS = {
    "host",
    "compute",
    "storage",
    "consumption",
    "action",
    "security",
    "access",
    "trust",
    "runtime",
    "utilities",
}
DOC_SECTIONS = [
    "Overview",
    "Contracts",
    "Interfaces",
    "Lifecycle",
    "Operations",
    "Dependencies",
    "Storage",
    "Examples",
    "Changelog",
]


def descriptors():
    return {config.label: config.descriptor for config in module_apps()}


def test_the_ten_module_apps_are_installed():
    assert set(descriptors()) == TEN_APPS


def test_the_import_linter_contracts_match_the_declared_dependencies():
    configured = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    expected = import_contracts()
    assert configured == expected, "run `manage.py modules --import-contracts` and update pyproject.toml"


def test_declared_dependencies_exist_and_have_no_cycles():
    graph = {label: set(d.depends_on) for label, d in descriptors().items()}
    for label, deps in graph.items():
        assert deps <= TEN_APPS - {label}, f"{label} depends on unknown apps {deps - TEN_APPS}"
    done: set[str] = set()

    def visit(label: str, path: tuple[str, ...]) -> None:
        assert label not in path, f"dependency cycle: {' -> '.join((*path, label))}"
        if label not in done:
            for dep in graph[label]:
                visit(dep, (*path, label))
            done.add(label)

    for label in graph:
        visit(label, ())


def test_apps_are_installed_lowest_layer_first():
    order = [config.label for config in module_apps()]
    for label, descriptor in descriptors().items():
        for dep in descriptor.depends_on:
            assert order.index(dep) < order.index(label), f"{dep} must come before {label} in INSTALLED_APPS"


@pytest.mark.parametrize("label", sorted(TEN_APPS))
def test_declared_services_tasks_and_urls_exist(label):
    interfaces = descriptors()[label].interfaces
    celery_app.loader.import_default_modules()  # what a worker does at start: autodiscover tasks
    for service in interfaces.services:
        assert callable(import_string(service)), service
    for task in interfaces.tasks:
        assert task in celery_app.tasks, f"task {task} is not registered"
    for url in interfaces.urls:
        try:
            resolve(url)
        except Resolver404:
            pytest.fail(f"{label} declares {url}, which does not resolve")


def test_every_handler_is_declared_by_its_app():
    declared = {label: set(d.interfaces.events_consumed) for label, d in descriptors().items()}
    for event_type, handlers in subscriptions().items():
        for handler in handlers:
            app = handler.split(".", 1)[0]
            assert event_type in declared[app], f"{handler} handles {event_type}, not declared by {app}"


def test_every_published_event_is_declared():
    declared = {e for d in descriptors().values() for e in d.interfaces.events_published}
    sources = "\n".join(p.read_text() for p in (ROOT / "apps").rglob("*.py") if "migrations" not in p.parts)
    published = set(re.findall(r'publish_event\(\s*"([a-z_]+\.[a-z_]+)"', sources))
    published |= set(re.findall(r'"([a-z]+\.[a-z_]+)" if status', sources))
    assert published <= declared, f"published but not declared: {published - declared}"


@pytest.mark.parametrize("label", sorted(TEN_APPS))
def test_each_module_has_its_doc_with_the_nine_sections(label):
    doc = ROOT / "docs" / "modules" / f"{label}.md"
    assert doc.exists(), f"missing {doc}"
    headings = re.findall(r"^## (.+?)\s*$", doc.read_text(), flags=re.MULTILINE)
    assert headings == DOC_SECTIONS


@pytest.mark.django_db
class TestModulesPage:
    def test_it_lists_every_category_with_its_modules_and_health(self, client, tenant_a, member):
        client.force_login(member(tenant_a, RoleChoices.ANALYST))
        response = client.get("/portal/modules/")
        assert response.status_code == 200
        page = response.content.decode()
        for descriptor in descriptors().values():
            assert descriptor.category in page
            for module in descriptor.modules:
                assert module.name in page
        assert "degraded" not in page

    def test_it_shows_a_failing_check_as_degraded(self, client, tenant_a, member):
        from apps.runtime.models import DeadLetter
        from tests.factories import DeadLetterFactory

        DeadLetterFactory()
        assert DeadLetter.objects.count() == 1
        client.force_login(member(tenant_a, RoleChoices.ANALYST))
        page = client.get("/portal/modules/").content.decode()
        assert "health-degraded" in page
        assert "1 dead letter(s) waiting for replay" in page

    def test_it_sends_strangers_to_the_login(self, client, outsider):
        assert client.get("/portal/modules/").status_code == 302
        client.force_login(outsider)
        response = client.get("/portal/modules/")
        assert response.status_code == 302
        assert "/admin/login/" in response["Location"]

    def test_the_api_serves_the_registry(self, tenant_a, token_client):
        client = token_client(tenant_a, RoleChoices.CONSUMER, scopes=["read"])
        body = client.get("/api/v1/modules/").json()
        apps = {entry["app"]: entry for entry in body["results"]}
        assert set(apps) == TEN_APPS
        assert apps["access"]["depends_on"] == ["host", "runtime"]
        assert apps["access"]["handlers"] == ["access.revoke_tokens_of_removed_member"]
        assert apps["runtime"]["health"]["status"] == "ok"
        assert {m["name"]: m["built"] for m in apps["host"]["modules"]}["Tenants"] is True
