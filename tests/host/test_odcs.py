"""ODCS v3 import and export: the standard's examples import and round-trip, its negative
examples are refused with located problems, and an Aurum contract survives export → import.

The fixtures are copies of ../shared/fixtures/odcs/ (Bitol, Apache-2.0; LICENSE beside them).
"""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from apps.host import services
from apps.host.choices import ContractStatusChoices as S
from apps.host.models import ContractVersion, DataContract
from apps.host.odcs.importer import contract_import
from apps.host.odcs.mapping import contract_odcs_id, odcs_to_version_spec, version_to_odcs
from apps.host.odcs.parsing import OdcsError, dump, parse, validate
from apps.host.services.contracts import FIELD_ATTRS, RULE_ATTRS
from apps.kernel.errors import ConflictError
from apps.kernel.roles import RoleChoices

pytestmark = pytest.mark.django_db

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "odcs"
EXAMPLES = sorted((FIXTURES / "examples").glob("*.odcs.yaml"))
NEGATIVE = sorted((FIXTURES / "negative").glob("*.odcs.yaml"))
by_name = {"ids": lambda path: path.name.removesuffix(".odcs.yaml")}

# Each negative example: where its one defect is, and a word the message must say.
DEFECTS = {
    "additional-unknown-property": ("unknownRootField", "unknownRootField"),
    "invalid-api-version": ("apiVersion", "v4.0.0"),
    "invalid-kind": ("kind", "DataModel"),
    "invalid-quality-dimension": ("schema/0/properties/0/quality/0/dimension", "validity"),
    "invalid-quality-metric": ("schema/0/properties/0/quality/0/metric", "invalidMetric"),
    "invalid-quality-type": ("schema/0/properties/0/quality/0/type", "unknown"),
    "missing-required-fields": ("", "id"),
    "quality-custom-missing-implementation": ("schema/0/properties/0/quality/0", "implementation"),
    "quality-element-field": ("schema/0/properties/0/quality/0", "element"),
    "quality-library-missing-metric": ("schema/0/properties/0/quality/0", "metric"),
    "quality-multiple-operators": ("schema/0/properties/0/quality/0", "mustBe"),
    "quality-mustbebetween-wrong-size": ("schema/0/quality/0/mustBeBetween", "short"),
    "quality-sql-missing-query": ("schema/0/properties/0/quality/0", "query"),
    "relationship-property-level-with-from": ("schema/0/properties/0/relationships/0", "from"),
    "relationship-schema-level-missing-from-to": ("schema/0/relationships/0", "from"),
    "schema-property-invalid-logicaltype": ("schema/0/properties/0/logicalType", "binary"),
    "schema-property-missing-name": ("schema/0/properties/0", "name"),
    "server-invalid-type": ("servers/0/type", "mongodb"),
    "server-missing-conditional-fields": ("servers/0", "schema"),
    "server-missing-required-fields": ("servers/0", "server"),
    "sla-missing-required-value": ("slaProperties/0", "value"),
}


@pytest.fixture
def steward(tenant_a, member):
    return member(tenant_a, RoleChoices.STEWARD, username="steward")


@pytest.fixture
def people(tenant_a, member, steward):
    return {"steward": steward, "approver": member(tenant_a, RoleChoices.ADMIN, username="approver")}


def import_text(text, tenant, actor, key=None):
    return contract_import(actor=actor, tenant=tenant, text=text, key=key)


def content(version: ContractVersion) -> dict[str, Any]:
    """Everything Aurum models of a version, rules in a stable order."""
    version = ContractVersion.objects.get(pk=version.pk)
    rules = [
        {"field": r.field.name if r.field_id else None, **{n: getattr(r, n) for n in RULE_ATTRS}}
        for r in version.quality_rules.select_related("field")
    ]
    return {
        "dataset": version.dataset,
        "fields": [{n: getattr(f, n) for n in FIELD_ATTRS} for f in version.fields.all()],
        "rules": sorted(rules, key=lambda r: json.dumps(r, sort_keys=True, default=str)),
        "sla": (version.sla_freshness, version.sla_completeness, version.sla_availability),
        "support": version.support,
    }


def lost(original: Any, exported: Any, path: str = "") -> list[str]:
    """Paths of `original` whose value `exported` does not hold exactly (1 and 1.0 differ); additions are fine."""
    if isinstance(original, dict):
        if not isinstance(exported, dict):
            return [path]
        missing = []
        for key, value in original.items():
            where = f"{path}/{key}" if path else key
            missing += lost(value, exported[key], where) if key in exported else [where]
        return missing
    if isinstance(original, list):
        if not isinstance(exported, list) or len(original) != len(exported):
            return [path]
        return [p for i, (a, b) in enumerate(zip(original, exported, strict=True)) for p in lost(a, b, f"{path}/{i}")]
    same = json.dumps(original) == json.dumps(exported)
    return [] if same else [path]


class TestTheStandardsExamples:
    def test_all_of_them_are_here(self):
        assert (len(EXAMPLES), len(NEGATIVE)) == (18, 21)
        assert (FIXTURES / "LICENSE").exists()

    @pytest.mark.parametrize("path", EXAMPLES, **by_name)
    def test_every_example_imports_as_a_draft(self, path, tenant_a, steward):
        text = path.read_text()
        version = import_text(text, tenant_a, steward)
        document = parse(text)
        assert version.status == S.DRAFT
        assert version.odcs == document
        schema = document.get("schema") or []
        assert version.fields.count() == (len(schema[0].get("properties", [])) if schema else 0)
        assert version.dataset == (schema[0]["name"] if schema else "")
        assert DataContract.objects.filter(tenant=tenant_a, key=version.contract.key).count() == 1

    @pytest.mark.parametrize("path", EXAMPLES, **by_name)
    def test_the_export_validates_and_keeps_all_that_aurum_does_not_overwrite(self, path, tenant_a, steward):
        original = parse(path.read_text())
        exported = version_to_odcs(import_text(path.read_text(), tenant_a, steward))
        assert validate(exported) == []
        assert parse(dump(exported)) == exported  # the YAML text is valid ODCS too
        assert exported["status"] == "draft"  # the one documented change: the status is Aurum's
        assert lost(original, exported) == ([] if original["status"] == "draft" else ["status"])

    @pytest.mark.parametrize("path", EXAMPLES, **by_name)
    def test_the_export_imports_again_as_the_same_version(self, path, tenant_a, steward):
        version = import_text(path.read_text(), tenant_a, steward)
        again = import_text(dump(version_to_odcs(version)), tenant_a, steward, key="again")
        assert content(again) == content(version)

    @pytest.mark.parametrize("path", NEGATIVE, **by_name)
    def test_every_negative_example_is_refused_saying_where_and_why(self, path, tenant_a, steward):
        text = path.read_text()
        with pytest.raises(OdcsError) as refused:
            import_text(text, tenant_a, steward)
        problems = refused.value.problems
        assert problems and all(p.line for p in problems)
        where, word = DEFECTS[path.name.removesuffix(".odcs.yaml")]
        located = [p for p in problems if p.path == where and word in p.message]
        assert located, problems
        lines = text.splitlines()
        for problem in located:
            last = where.rsplit("/", 1)[-1]
            line = lines[problem.line - 1].strip()
            assert line.startswith(("- ", f"{last}:")) or not where, (problem, line)
        assert not DataContract.objects.exists()

    def test_dates_stay_strings(self, tenant_a, steward):
        path = FIXTURES / "examples" / "fundamentals_table-column-description.odcs.yaml"
        version = import_text(path.read_text(), tenant_a, steward)
        field = version.fields.get()
        assert field.extra["examples"] == ["2022-10-03", "2025-01-28"]
        exported = dump(version_to_odcs(version))
        assert "'2022-10-03'" in exported
        assert parse(exported)["schema"][0]["properties"][0]["examples"][0] == "2022-10-03"


class TestMapping:
    def test_the_key_comes_from_the_data_product_then_the_name_never_the_uuid(self):
        base = {"apiVersion": "v3.1.0", "kind": "DataContract", "version": "1.0.0", "status": "active",
                "id": "53581432-6c55-4ba2-a65f-72344a91553a"}  # fmt: skip
        assert odcs_to_version_spec({**base, "dataProduct": "My Quantum", "name": "t"}).key == "my-quantum"
        assert odcs_to_version_spec({**base, "name": "Orders Stream"}).key == "orders-stream"
        assert odcs_to_version_spec({**base, "schema": [{"name": "Air_Quality"}]}).key == "air_quality"
        assert odcs_to_version_spec({**base, "name": "x"}, key="chosen").key == "chosen"

    def test_it_reads_library_rules_operators_and_severity(self):
        text = (FIXTURES / "examples" / "quality_column-validity.odcs.yaml").read_text()
        (rule,) = odcs_to_version_spec(parse(text)).quality_rules
        assert rule["kind"] == "allowed_values" and rule["field"] == "air_quality_status"
        assert rule["threshold"] == 5
        assert rule["params"] == {"values": ["", None, "n/a"], "unit": "percent"}
        assert rule["extra"] == {"dimension": "conformity", "businessImpact": "operational"}

    def test_unknown_severity_reads_as_a_warning_and_the_original_is_kept(self, tenant_a, steward):
        text = MINIMAL.replace("severity: error", "severity: info")
        version = import_text(text, tenant_a, steward)
        rule = version.quality_rules.get()
        assert (rule.severity, rule.extra["severity"]) == ("warning", "info")
        assert version_to_odcs(version)["schema"][0]["properties"][0]["quality"][0]["severity"] == "info"

    def test_a_classification_aurum_does_not_know_reads_as_internal_and_is_kept(self, tenant_a, steward):
        version = import_text(MINIMAL.replace("classification: Restricted", "classification: PII"), tenant_a, steward)
        field = version.fields.get(name="id")
        assert (field.classification, field.extra["classification"]) == ("internal", "PII")
        field = ContractVersion.objects.get(pk=version.pk).fields.get(name="id")
        assert field.extra["classification"] == "PII"

    def test_sql_custom_and_text_rules_only_round_trip(self, tenant_a, steward):
        for name in ("quality_column-accuracy", "quality_column-custom"):
            text = (FIXTURES / "examples" / f"{name}.odcs.yaml").read_text()
            version = import_text(text, tenant_a, steward, key=name)
            assert not version.quality_rules.exists()
            assert version.fields.get().extra["quality"] == version.odcs["schema"][0]["properties"][0]["quality"]

    def test_sla_latency_becomes_the_freshness_and_other_entries_stay(self, tenant_a, steward):
        text = (FIXTURES / "examples" / "sla_database-table-sla.odcs.yaml").read_text()
        version = import_text(text, tenant_a, steward)
        assert version.sla_freshness == timedelta(days=4)
        services.contract_version_update(actor=steward, version=version, sla_freshness=timedelta(hours=6))
        sla = version_to_odcs(ContractVersion.objects.get(pk=version.pk))["slaProperties"]
        assert sla[0] == {"property": "latency", "value": 6, "unit": "h", "element": "tab1.txn_ref_dt"}
        assert [e["property"] for e in sla][1:] == [e["property"] for e in version.odcs["slaProperties"]][1:]

    def test_edits_made_in_aurum_win_over_the_stored_document(self, tenant_a, steward):
        text = (FIXTURES / "examples" / "all_full-example.odcs.yaml").read_text()
        version = import_text(text, tenant_a, steward)
        fields = [{n: getattr(f, n) for n in FIELD_ATTRS} for f in version.fields.all()]
        fields[1]["classification"] = "confidential"
        fields.append({"name": "amount", "logical_type": "number", "minimum": 0, "unit": "USD", "role": "measure"})
        services.contract_version_update(actor=steward, version=version, fields=fields, quality_rules=[])
        exported = version_to_odcs(ContractVersion.objects.get(pk=version.pk))
        assert validate(exported) == []
        table = exported["schema"][0]
        assert table["properties"][1]["classification"] == "confidential"
        assert table["properties"][1]["relationships"] == version.odcs["schema"][0]["properties"][1]["relationships"]
        assert table["properties"][3] == {
            "name": "amount",
            "logicalType": "number",
            "logicalTypeOptions": {"minimum": 0},
            "customProperties": [{"property": "aurum.role", "value": "measure"},
                                 {"property": "aurum.unit", "value": "USD"}],
        }  # fmt: skip
        assert "quality" not in table and "quality" not in table["properties"][2]
        assert exported["schema"][1] == version.odcs["schema"][1]


MINIMAL = """\
apiVersion: v3.1.0
kind: DataContract
id: orders-contract
version: 1.0.0
status: active
name: Orders
schema:
  - name: orders
    properties:
      - name: id
        logicalType: string
        classification: Restricted
        quality:
          - metric: nullValues
            mustBe: 0
            severity: error
      - name: code
        logicalType: string
        logicalTypeOptions:
          pattern: "^[0-9]{4}$"
      - name: region
        logicalType: string
        customProperties:
          - property: aurum.role
            value: dimension
"""


class TestImportRefusals:
    def test_bad_yaml_is_refused_with_its_line(self, tenant_a, steward):
        with pytest.raises(OdcsError) as tabs:
            import_text("version: 1.0.0\nkind: DataContract\nschema:\n\t- name: x\n", tenant_a, steward)
        assert tabs.value.problems[0].line == 4
        with pytest.raises(OdcsError) as quote:
            import_text('version: 1.0.0\nname: "unclosed\nstatus: active\n', tenant_a, steward)
        assert quote.value.problems[0].line is not None
        assert "YAML" in str(quote.value)

    def test_what_aurum_refuses_is_located_in_the_document(self, tenant_a, steward):
        text = MINIMAL.replace("value: dimension", "value: colour").replace("version: 1.0.0", "version: '1.0'")
        text = text.replace('"^[0-9]{4}$"', '"(?<year>[0-9]{4})"')  # ECMA-262 named group, not Python's
        with pytest.raises(OdcsError) as refused:
            import_text(text, tenant_a, steward)
        located = {p.path: p.line for p in refused.value.problems}
        assert located == {
            "version": 4,
            "schema/0/properties/1/logicalTypeOptions/pattern": 20,
            "schema/0/properties/2/customProperties/0/value": 25,
        }
        assert not DataContract.objects.exists()

    def test_a_version_that_exists_is_a_conflict(self, tenant_a, steward):
        text = MINIMAL
        first = import_text(text, tenant_a, steward)
        with pytest.raises(ConflictError, match=r"already has version 1\.0\.0"):
            import_text(text, tenant_a, steward)
        second = import_text(text.replace("version: 1.0.0", "version: 1.1.0"), tenant_a, steward)
        assert second.contract == first.contract
        assert list(first.contract.versions.values_list("version", flat=True)) == ["1.1.0", "1.0.0"]

    def test_a_key_that_is_not_a_slug_is_refused(self, tenant_a, steward):
        with pytest.raises(OdcsError, match="key: ") as refused:
            import_text(MINIMAL, tenant_a, steward, key="not a slug")
        assert refused.value.problems[0].line == 1

    def test_contracts_of_another_tenant_are_not_touched(self, tenant_a, tenant_b, steward):
        text = MINIMAL
        mine = import_text(text, tenant_a, steward)
        theirs = import_text(text, tenant_b, None)
        assert mine.contract != theirs.contract and theirs.contract.tenant == tenant_b


RICH_FIELDS = [
    {"name": "order_id", "logical_type": "string", "required": True, "unique": True, "primary_key": True,
     "primary_key_position": 1, "pattern": "^O-[0-9]+$", "max_length": 20, "description": "Order number",
     "role": "entity_key"},
    {"name": "ordered_at", "logical_type": "timestamp", "required": True, "role": "time"},
    {"name": "store_id", "logical_type": "string", "required": True, "role": "dimension", "classification": "public",
     "allowed_values": ["S1", "S2", "S3"]},
    {"name": "amount", "logical_type": "number", "required": True, "minimum": 0, "maximum": 10000.5, "unit": "EUR",
     "role": "measure", "classification": "confidential"},
    {"name": "quantity", "logical_type": "integer", "minimum": 1, "unit": "pieces", "role": "measure"},
    {"name": "customer_email", "logical_type": "string", "classification": "restricted", "description": "Contact"},
    {"name": "batch", "logical_type": "integer", "pattern": "^[0-9]+$", "max_length": 9},  # options an integer lacks
    {"name": "delivered_on", "logical_type": "date", "minimum": 0},
    {"name": "paid", "logical_type": "boolean"},
    {"name": "lines", "logical_type": "array"},
    {"name": "address", "logical_type": "object", "description": "Where it goes"},
]  # fmt: skip
RICH_RULES = [
    {"field": "store_id", "kind": "not_null", "threshold": 0},
    {"field": "order_id", "kind": "unique", "threshold": 0, "description": "One row per order"},
    {"field": "store_id", "kind": "allowed_values", "threshold": 0, "params": {"values": ["S1", "S2", "S3"]}},
    {"field": "amount", "kind": "range", "params": {"min": 0, "max": 10000}},
    {"field": "order_id", "kind": "pattern", "severity": "warning", "threshold": 1, "params": {"pattern": "^O-"}},
    {"field": None, "kind": "row_count", "params": {"min": 1, "max": 100000}},
    {"field": None, "kind": "row_count", "severity": "warning", "params": {"operator": "mustBeGreaterThan", "value": 10}},
    {"field": None, "kind": "duplicate_ratio", "threshold": 0.5, "params": {"properties": ["order_id", "store_id"]}},
    {"field": None, "kind": "freshness", "severity": "warning", "params": {"max_age_hours": 36}},
    {"field": "customer_email", "kind": "completeness", "threshold": 5},
    {"field": "quantity", "kind": "not_null", "threshold": 2, "params": {"unit": "percent"}},
]  # fmt: skip
SUPPORT = [
    {"channel": "#orders", "tool": "slack"},
    {"channel": "orders-data", "tool": "email", "url": "mailto:orders-data@example.com", "scope": "issues"},
]


class TestAnAurumContractRoundTrips:
    @pytest.fixture
    def rich(self, tenant_a, steward):
        contract = services.contract_create(actor=steward, tenant=tenant_a, key="orders", name="Orders",
                                            domain="sales", description="Every web shop order.")  # fmt: skip
        return services.contract_version_create(
            actor=steward, contract=contract, version="2.1.0", dataset="orders", fields=RICH_FIELDS,
            quality_rules=RICH_RULES, sla_freshness=timedelta(hours=36), sla_completeness=Decimal("99.5"),
            sla_availability=Decimal("99.95"), support=SUPPORT,
        )  # fmt: skip

    def test_export_then_import_gives_the_same_fields_rules_and_sla(self, rich, tenant_a, steward):
        exported = version_to_odcs(rich)
        assert validate(exported) == []
        again = import_text(dump(exported), tenant_a, steward, key="orders-copy")
        assert content(again) == content(rich)
        assert again.contract.name == "Orders" and again.contract.domain == "sales"
        assert again.contract.description == "Every web shop order."

    def test_the_export_speaks_plain_odcs_where_odcs_can_say_it(self, rich):
        document = version_to_odcs(rich)
        assert document["apiVersion"] == "v3.1.0" and document["kind"] == "DataContract"
        assert (document["id"], document["version"], document["status"]) == (contract_odcs_id(rich.contract),
                                                                             "2.1.0", "draft")  # fmt: skip
        assert document["description"] == {"purpose": "Every web shop order."}
        table = document["schema"][0]
        order_id = table["properties"][0]
        assert order_id["logicalTypeOptions"] == {"pattern": "^O-[0-9]+$", "maxLength": 20}
        keys = {"required": True, "unique": True, "primaryKey": True, "primaryKeyPosition": 1}
        assert keys.items() <= order_id.items()
        assert order_id["customProperties"] == [{"property": "aurum.role", "value": "entity_key"}]
        assert [q["metric"] for q in order_id["quality"]] == ["duplicateValues", "invalidValues"]
        amount = table["properties"][3]
        assert amount["logicalTypeOptions"] == {"minimum": 0, "maximum": 10000.5}
        assert amount["classification"] == "confidential"
        batch = table["properties"][6]
        assert "logicalTypeOptions" not in batch
        assert {"property": "aurum.pattern", "value": "^[0-9]+$"} in batch["customProperties"]
        range_rule = table["properties"][3]["quality"][0]
        assert range_rule == {"type": "custom", "engine": "aurum", "severity": "error",
                              "implementation": {"kind": "range", "params": {"min": 0, "max": 10000}}}  # fmt: skip
        assert [q.get("metric", q.get("type")) for q in table["quality"]] == [
            "rowCount", "rowCount", "duplicateValues", "custom"]  # fmt: skip
        assert table["quality"][0]["mustBeBetween"] == [1, 100000]
        assert table["quality"][2]["unit"] == "percent" and table["quality"][2]["mustBeLessOrEqualTo"] == 0.5
        assert document["slaProperties"] == [
            {"property": "latency", "value": 36, "unit": "h"},
            {"property": "availability", "value": 99.95, "unit": "percent"},
            {"property": "completeness", "value": 99.5, "unit": "percent"},
        ]
        assert document["support"] == SUPPORT

    def test_every_version_of_a_contract_has_the_same_id_and_its_own_status(self, rich, steward, people):
        services.contract_version_propose(actor=steward, version=rich)
        services.contract_version_approve(actor=people["approver"], version=rich)
        services.contract_version_activate(actor=people["approver"], version=rich)
        fields = [dict(f) for f in RICH_FIELDS]
        later = services.contract_version_create(actor=steward, contract=rich.contract, version="2.2.0", fields=fields)
        active = version_to_odcs(ContractVersion.objects.get(pk=rich.pk))
        assert active["status"] == "active"
        assert active["id"] == version_to_odcs(later)["id"]


class TestTheCommand:
    def write(self, tmp_path, name, text):
        path = tmp_path / name
        path.write_text(text)
        return str(path)

    def test_it_imports_files_one_line_each(self, tenant_a, tmp_path, capsys, steward):
        good = self.write(tmp_path, "orders.yaml", MINIMAL)
        example = str(FIXTURES / "examples" / "all_full-example.odcs.yaml")
        call_command("contracts", "import", "tenant-a", good, example, "--actor", "steward")
        out = capsys.readouterr().out.splitlines()
        assert out == [
            f"{good}: imported orders 1.0.0 as a draft (3 fields, 1 quality rule)",
            f"{example}: imported my-quantum 1.1.0 as a draft (3 fields, 2 quality rules)",
        ]
        assert DataContract.objects.get(key="orders").owner == steward

    def test_a_bad_file_fails_the_run_with_every_problem_and_the_good_ones_are_imported(
        self, tenant_a, tmp_path, capsys
    ):
        good = self.write(tmp_path, "good.yaml", MINIMAL)
        bad = str(FIXTURES / "negative" / "server-missing-required-fields.odcs.yaml")
        with pytest.raises(CommandError, match="1 of 2 files refused") as failed:
            call_command("contracts", "import", "tenant-a", bad, good)
        assert failed.value.returncode == 1  # manage.py exits with it
        captured = capsys.readouterr()
        assert captured.err.splitlines() == [
            f"{bad}:10: servers/0: 'server' is required",
            f"{bad}:10: servers/0: 'type' is required",
        ]
        assert captured.out.splitlines() == [f"{bad}: refused (2 problems)",
                                             f"{good}: imported orders 1.0.0 as a draft (3 fields, 1 quality rule)"]  # fmt: skip
        assert ContractVersion.objects.filter(contract__key="orders").exists()

    def test_a_version_that_exists_is_reported_for_its_file(self, tenant_a, tmp_path, capsys):
        good = self.write(tmp_path, "good.yaml", MINIMAL)
        call_command("contracts", "import", "tenant-a", good, "--key", "mine")
        with pytest.raises(CommandError):
            call_command("contracts", "import", "tenant-a", good, "--key", "mine")
        assert "already has version 1.0.0" in capsys.readouterr().err

    def test_key_names_the_contract_of_a_single_file(self, tenant_a, tmp_path):
        with pytest.raises(CommandError, match="single FILE"):
            call_command("contracts", "import", "tenant-a", "a.yaml", "b.yaml", "--key", "x")

    def test_it_exports_the_active_version_by_default_and_any_version_on_demand(self, tenant_a, people, capsys):
        example = (FIXTURES / "examples" / "schema_kafka-schema.odcs.yaml").read_text()
        first = import_text(example, tenant_a, people["steward"])
        import_text(example.replace("version: 0.0.1", "version: 0.1.0"), tenant_a, people["steward"])
        key = first.contract.key
        call_command("contracts", "export", "tenant-a", key)
        assert parse(capsys.readouterr().out)["version"] == "0.1.0"  # no active version: the newest
        services.contract_version_propose(actor=people["steward"], version=first)
        services.contract_version_approve(actor=people["approver"], version=first)
        services.contract_version_activate(actor=people["approver"], version=first)
        call_command("contracts", "export", "tenant-a", key)
        document = parse(capsys.readouterr().out)
        assert (document["version"], document["status"]) == ("0.0.1", "active")
        call_command("contracts", "export", "tenant-a", key, "--version", "0.1.0")
        document = parse(capsys.readouterr().out)
        assert (document["version"], document["status"]) == ("0.1.0", "draft")
        assert document["servers"] == parse(example)["servers"]

    def test_export_names_what_is_missing(self, tenant_a):
        with pytest.raises(CommandError, match="No contract 'nope'"):
            call_command("contracts", "export", "tenant-a", "nope")
        with pytest.raises(CommandError, match="No tenant"):
            call_command("contracts", "export", "nowhere", "nope")
