"""A KPI run pins its as-of only once no merge of its contract is in flight (PostgreSQL)."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from django.db import connection

from apps.compute.ingest.merger import MERGE_LOCK
from tests.compute.conftest import other_session
from tests.compute.test_kpi_compute import ROWS
from tests.compute.test_kpi_fixtures import *  # noqa: F403
from tests.compute.test_kpi_fixtures import compute, load, make_kpi

pytestmark = pytest.mark.postgres


@pytest.mark.django_db(transaction=True)
def test_a_kpi_run_waits_for_a_merge_in_flight_and_pins_its_as_of_after_it(world):
    load(world, ROWS)
    kpi = make_kpi(world, "revenue", measure="revenue", dimensions=["region"])
    merging = other_session(autocommit=False)
    merging.execute("SELECT pg_advisory_xact_lock(%s, %s)", [MERGE_LOCK, world.contract.pk])
    runs: list[Any] = []
    worker = threading.Thread(target=lambda: (runs.extend(compute(world, kpi)), connection.close()))
    worker.start()
    time.sleep(0.5)
    assert worker.is_alive(), "the KPI run must wait while a merge of its contract holds the lock"
    merging.commit()  # the merge commits: its lock goes with its transaction
    released_at = time.time()
    worker.join(timeout=30)
    merging.close()
    [run] = runs
    assert run.status == "completed"
    assert run.counts["as_of"] >= _iso(released_at)


def _iso(epoch: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(epoch - 0.05, tz=UTC).isoformat()
