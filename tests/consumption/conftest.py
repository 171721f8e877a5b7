"""Fixtures shared by the consumption tests."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from tests.factories import (
    CalendarPeriodFactory,
    KpiDefinitionFactory,
    KpiValueFactory,
    KpiVersionFactory,
    PublishedOutputFactory,
)

DAY1 = datetime(2026, 2, 5, 12, tzinfo=UTC)
DAY3 = datetime(2026, 2, 7, 12, tzinfo=UTC)
REGIONS = ("EU", "US")


@pytest.fixture
def kpi(tenant_a):
    """net-sales: active version, months P01–P03 and quarter Q1, values per region; publication 1 holds
    P01 and P02, publication 2 restates P01 two days later."""
    version = KpiVersionFactory(definition=KpiDefinitionFactory(tenant=tenant_a, key="net-sales"), status="active")
    calendar = version.calendar
    months = [
        CalendarPeriodFactory(calendar=calendar, label=f"FY2026-P{n:02d}", start=date(2026, n, 1),
                              end=date(2026, n + 1, 1) - timedelta(days=1), number=n, index=2026 * 12 + n)
        for n in (1, 2, 3)
    ]  # fmt: skip
    quarter = CalendarPeriodFactory(calendar=calendar, level="quarter", label="FY2026-Q1", start=date(2026, 1, 1),
                                    end=date(2026, 3, 31), index=2026 * 4 + 1)  # fmt: skip
    values = {}
    for position, period in enumerate([*months, quarter]):
        for region in REGIONS:
            values[(period.label, region)] = KpiValueFactory(
                kpi_version=version, period=period, period_index=period.index, dimensions={"region": region},
                dimensions_key=f'["{region}"]', actual=Decimal(100 * (position + 1) + (region == "US")),
                status="green" if region == "EU" else "red",
            )  # fmt: skip

    def rows(periods, bump=0):
        return [
            {"period": p.label, "period_id": p.pk, "dimensions": {"region": r}, "dimensions_key": f'["{r}"]',
             "actual": str(100 * (i + 1) + bump), "target": None, "variance": None, "attainment": None,
             "status": "none", "streak": 0, "gdp_count": 3}
            for i, p in enumerate(periods) for r in REGIONS
        ]  # fmt: skip

    first = PublishedOutputFactory(tenant=tenant_a, kpi_version=version, kpi_key="net-sales", version=1,
                                   period_ids=[m.pk for m in months[:2]], period_labels=[m.label for m in months[:2]],
                                   values=rows(months[:2]), published_at=DAY1)  # fmt: skip
    second = PublishedOutputFactory(tenant=tenant_a, kpi_version=version, kpi_key="net-sales", version=2,
                                    kind="restatement", supersedes=first, period_ids=[months[0].pk],
                                    period_labels=[months[0].label], values=rows(months[:1], bump=5),
                                    published_at=DAY3)  # fmt: skip
    return {"version": version, "months": months, "quarter": quarter, "values": values, "outputs": (first, second)}
