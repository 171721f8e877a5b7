"""Demo data of the storage module (seed_demo runs `seed` after host's, which made the tenants)."""

from __future__ import annotations

from typing import Any

from apps.storage.calendars import demo as calendars_demo


def seed(context: dict[str, Any]) -> list[str]:
    return calendars_demo.seed(context)
