"""Demo data of the compute module: Acme's pipeline from a push source to a published KPI.

`seed_demo` runs this after host's demo (tenants, accounts, the store-sales contract, the
policies) and storage's (the calendars). Everything goes through the services, so the audit
trail, the domain events and, once the seed commits, the evidence ledger get their entries:

- a `cast` step for `sale_date` on the store-sales contract versions (the demo contract has
  none, and a date never validates from JSON without one);
- the push source `tills` and one NDJSON batch of 48 sales (4 stores, one per region, 2
  channels, 3 days in each of the fiscal periods FY2026-P08 and FY2026-P09 of `retail-445`);
- the KPI `store-revenue` (sum of revenue by fiscal period and region), version 1.0.0
  proposed by acme-steward, approved and activated by acme-admin, and computed;
- an approved target of 10,000 EUR per region and period (green within 5 %, amber within 15 %),
  so the values show all three statuses;
- one publication of both periods: requested by acme-steward, approved by acme-admin (the
  platform's four-eyes publication policy).

Idempotent: each step looks for what it would create and skips what exists.
"""

from __future__ import annotations

import io
import json
from decimal import Decimal
from typing import Any

from apps.compute import services
from apps.compute.choices import NormalizationKindChoices
from apps.compute.kpis import services as kpi_services
from apps.compute.kpis.models import KpiDefinition, KpiStatusChoices, KpiVersion
from apps.compute.models import NormalizationRule, Source
from apps.compute.publication import services as publication_services
from apps.host import services as host_services
from apps.host.models import ContractVersion, DataContract
from apps.storage.models import Calendar, CalendarPeriod, IngestionBatch
from apps.storage.published import PublishedOutput

SOURCE_KEY = "tills"
BATCH_KEY = "demo-tills-fy2026-p08-p09"
KPI_KEY = "store-revenue"
PERIODS = ("FY2026-P08", "FY2026-P09")
# store, region, daily revenue in the store and online (EUR), per period: a multiplier per period
STORES = (("S001", "north", 2300, 1250), ("S002", "south", 2100, 900), ("S003", "east", 1700, 800),
          ("S004", "west", 2400, 1000))  # fmt: skip
PERIOD_DAYS = {"FY2026-P08": ("2026-09-05", "2026-09-12", "2026-09-19"),
               "FY2026-P09": ("2026-10-03", "2026-10-10", "2026-10-17")}  # fmt: skip
PERIOD_TREND = {"FY2026-P08": {"north": Decimal("1.00"), "south": Decimal("1.00"), "east": Decimal("1.00"),
                               "west": Decimal("1.00")},
                "FY2026-P09": {"north": Decimal("0.97"), "south": Decimal("0.92"), "east": Decimal("1.25"),
                               "west": Decimal("1.00")}}  # fmt: skip
DAY_SHAPE = (Decimal("0.95"), Decimal("1.00"), Decimal("1.05"))  # the three days sum to one period's 3 days


def sales_records() -> list[dict[str, Any]]:
    """The demo batch: per region and period, revenue = 3 × (store + online) × the period's trend."""
    records = []
    for period, days in PERIOD_DAYS.items():
        for day, shape in zip(days, DAY_SHAPE, strict=True):
            for store, region, in_store, online in STORES:
                for channel, base in (("store", in_store), ("online", online)):
                    revenue = (base * shape * PERIOD_TREND[period][region]).quantize(Decimal("0.01"))
                    units = int(revenue / 25)
                    records.append({"sale_date": day, "store_id": store, "region": region, "channel": channel,
                                    "revenue": float(revenue), "units": units, "returns": units // 40,
                                    "manager_email": f"manager.{store.lower()}@acme.example.com"})  # fmt: skip
    return records


def seed(context: dict[str, Any]) -> list[str]:
    acme = context["tenants"]["acme"]
    steward = host_services.user_get_or_create(username="acme-steward")
    admin = host_services.user_get_or_create(username="acme-admin")
    contract = DataContract.objects.filter(tenant=acme, key="store-sales").first()
    calendar = Calendar.objects.filter(tenant=acme, key="retail-445").first()
    if contract is None or calendar is None:
        return ["no store-sales contract or retail-445 calendar: no pipeline demo"]
    lines = [_cast_sale_date(contract)]
    source = Source.objects.filter(tenant=acme, key=SOURCE_KEY).first()
    if source is None:
        source = services.source_create(actor=steward, tenant=acme, contract=contract, key=SOURCE_KEY,
                                        name="Store tills", description="The tills of Acme's four demo stores "
                                        "push their daily sales (NDJSON).")  # fmt: skip
    lines.append(_deliver(source, steward))
    definition, version = _kpi(acme, contract, calendar, steward, admin)
    lines.append(f"KPI {KPI_KEY} {version.version} ({version.get_status_display().lower()}): sum of revenue by "
                 "fiscal period of retail-445 and region")  # fmt: skip
    lines.append(_target(definition, calendar, steward, admin))
    if version.computed_as_of is None:
        kpi_services.kpi_compute(actor=steward, definitions=[definition], trigger="manual")
        version.refresh_from_db()
    lines.append(_publish(acme, version, steward, admin))
    return lines


def _cast_sale_date(contract: DataContract) -> str:
    """The demo contract's versions get the step their dates need. The portal edits only drafts' rules;
    these versions were made by host's demo (which cannot know compute's rules), so the step is added here."""
    added = []
    for version in ContractVersion.objects.filter(contract=contract).order_by("major", "minor", "patch"):
        rules = NormalizationRule.objects.filter(contract_version=version)
        if not rules.filter(kind=NormalizationKindChoices.CAST, field="sale_date").exists():
            NormalizationRule.objects.create(contract_version=version, position=0, kind=NormalizationKindChoices.CAST,
                                             field="sale_date", params={"to": "date"},
                                             description="JSON and CSV carry the date as text.")  # fmt: skip
            added.append(version.version)
    if added:
        return f"store-sales {', '.join(added)}: normalization step 'cast sale_date to date' added"
    return "store-sales: normalization steps exist"


def _deliver(source: Source, steward: Any) -> str:
    batch = IngestionBatch.objects.filter(source=source, idempotency_key=BATCH_KEY).first()
    if batch is None:
        body = "".join(json.dumps(r) + "\n" for r in sales_records()).encode()
        batch, _ = services.batch_receive(actor=steward, source=source, stream=io.BytesIO(body),
                                          content_type="application/x-ndjson", idempotency_key=BATCH_KEY)  # fmt: skip
        batch = services.batch_dispatch(batch)
    return (f"source {source.key} (push): batch {batch.pk} {batch.status}, {batch.accepted}/{batch.received} records "
            "accepted")  # fmt: skip


def _kpi(acme: Any, contract: Any, calendar: Calendar, steward: Any, admin: Any) -> tuple[KpiDefinition, KpiVersion]:
    definition = KpiDefinition.objects.filter(tenant=acme, key=KPI_KEY).first()
    if definition is None:
        definition = kpi_services.kpi_definition_create(
            actor=steward, tenant=acme, key=KPI_KEY, name="Store revenue", domain="retail", owner=steward,
            description="Revenue of the stores and their online channel, per fiscal period and region.",
        )  # fmt: skip
    version = definition.versions.order_by("-major", "-minor", "-patch").first()
    if version is None:
        version = kpi_services.kpi_version_create(
            actor=steward, definition=definition, version="1.0.0", kind="simple", contract=contract,
            measure="revenue", aggregation="sum", calendar=calendar, level="period", dimensions=["region"],
            unit="EUR", display_format="currency", decimals=0, direction="higher",
            notes="First version: gross revenue, returns not deducted.",
        )  # fmt: skip
    if version.status == KpiStatusChoices.DRAFT:
        version = kpi_services.kpi_version_propose(actor=steward, version=version, comment="Ready for review.")
    if version.status == KpiStatusChoices.PROPOSED:
        version = kpi_services.kpi_version_approve(actor=admin, version=version, comment="Matches finance's report.")
    if version.status == KpiStatusChoices.APPROVED:
        version = kpi_services.kpi_version_activate(actor=admin, version=version)
    return definition, version


def _target(definition: KpiDefinition, calendar: Calendar, steward: Any, admin: Any) -> str:
    target = definition.targets.order_by("pk").first()
    if target is None:
        first, last = (CalendarPeriod.objects.get(calendar=calendar, level="period", label=label) for label in
                       ("FY2026-P01", "FY2026-P12"))  # fmt: skip
        target = kpi_services.kpi_target_create(
            actor=steward, definition=definition, period_from=first, period_to=last, dimensions={},
            value=Decimal("10000"), tolerance_kind="percent", green_within=Decimal("5"), amber_within=Decimal("15"),
            owner=steward, notes="FY2026 plan: 10,000 EUR per region and fiscal period.",
        )  # fmt: skip
    if target.status == "draft":
        target = kpi_services.kpi_target_propose(actor=steward, target=target)
    if target.status == "proposed":
        target = kpi_services.kpi_target_approve(actor=admin, target=target, comment="As planned.")
    return "target: 10,000 EUR per region and period of FY2026, green within 5 %, amber within 15 % (approved)"


def _publish(acme: Any, version: KpiVersion, steward: Any, admin: Any) -> str:
    output = PublishedOutput.objects.filter(tenant=acme, kpi_key=KPI_KEY).order_by("version").first()
    if output is None:
        request = publication_services.publication_request_create(
            actor=steward, tenant=acme, version=version, periods=list(PERIODS), comment="Fiscal months P08 and P09 are closed in finance.",
        )  # fmt: skip
        output = publication_services.publication_request_approve(actor=admin, request=request,
                                                                   comment="Checked the values.").output  # fmt: skip
    return (f"published {KPI_KEY} v{output.version} ({', '.join(output.period_labels)}): requested by acme-steward, "
            "approved by acme-admin (four eyes)")  # fmt: skip
