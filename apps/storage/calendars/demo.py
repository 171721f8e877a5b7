"""Demo calendars: a platform-wide Gregorian calendar (the platform default) and Acme's retail 4-4-5
calendar (its default), with their period tables. Idempotent: an existing calendar is left as it is and
only the missing years are generated."""

from __future__ import annotations

from typing import Any

from apps.storage.calendars import services
from apps.storage.calendars.models import Calendar

FIRST_YEAR, LAST_YEAR = 2024, 2028
DEMO_CALENDARS: tuple[dict[str, Any], ...] = (
    {"tenant": None, "key": "gregorian", "name": "Gregorian calendar", "kind": "gregorian", "is_default": True,
     "description": "Calendar months, quarters and years (January to December), for every tenant."},
    {"tenant": "acme", "key": "retail-445", "name": "Acme retail 4-4-5", "kind": "retail_445", "is_default": True,
     "year_end_month": 1, "year_end_weekday": 5, "year_end_rule": "nearest", "year_naming": "start",
     "description": "52/53-week years ending on the Saturday nearest 31 January, named after the year they "
                    "start in (as NRF's); fiscal months of 4, 4 and 5 weeks; a 53rd week goes to P12."},
)  # fmt: skip


def seed(context: dict[str, Any]) -> list[str]:
    operator = context["operator"]
    lines = []
    for spec in DEMO_CALENDARS:
        spec = dict(spec)
        tenant = context["tenants"][spec.pop("tenant")] if spec["tenant"] else spec.pop("tenant")
        calendar = Calendar.objects.filter(tenant=tenant, key=spec["key"]).first()
        if calendar is None:
            calendar = services.calendar_create(actor=operator, tenant=tenant, **spec)
        for first, last in _missing_years(calendar):  # never the generated years: they may hold closed periods
            calendar = services.calendar_generate(actor=operator, calendar=calendar, from_year=first,
                                                  to_year=last).calendar  # fmt: skip
        owner = "platform" if tenant is None else tenant.slug
        lines.append(f"calendar {calendar.key} ({owner}, {calendar.kind}): FY{calendar.generated_from}.."
                     f"FY{calendar.generated_to} generated")  # fmt: skip
    return lines


def _missing_years(calendar: Calendar) -> list[tuple[int, int]]:
    if calendar.generated_from is None:
        return [(FIRST_YEAR, LAST_YEAR)]
    ranges = []
    if calendar.generated_from > FIRST_YEAR:
        ranges.append((FIRST_YEAR, calendar.generated_from - 1))
    if calendar.generated_to < LAST_YEAR:
        ranges.append((calendar.generated_to + 1, LAST_YEAR))
    return ranges
