"""Benchmark: kpi — computing three KPIs over N Golden Data Points, against hand-written GROUP BYs.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres .venv/bin/python bench/kpi.py [--scale N]

Needs PostgreSQL: without a postgres:// DATABASE_URL it says so and exits 0. It creates its own
database (aurum_bench_kpi_<random>) on that server, runs Django's migrations into it, and drops it at
the end, also on failure or Ctrl-C.

Setup: a tenant, a store-sales contract (entity store_id; dimensions region, channel; measures
revenue, visits), an active version, a Gregorian calendar (fiscal months), and N current GDPs
written server-side by one INSERT … SELECT generate_series (one finished batch): N/2 records of
10,000 stores × N/20,000 days from 2025-01-01, each with a revenue and a visits GDP; the region
and channel follow the store. Three active KPIs by fiscal month × region × channel:

    simple      SUM(revenue)
    ratio       SUM(revenue) / SUM(visits)
    cumulative  SUM(revenue) year to date

Measured, alternately (A B A B …) after a warm-up, `--rounds` times each:
  A  baseline (the floor): three hand-written queries over the same current rows, each one
     GROUP BY over the GDPs joined to the day rows (the cumulative one adds a window SUM over
     the fiscal year), their results fetched;
  B  Aurum: `kpi_compute(full=True)` of the three KPIs (as-of predicate, INSERT … SELECT into
     KPI values, targets and streak stamping, status-change detection, pipeline runs).
Then, `--rounds` times: 1 % more GDPs (new stores) in one fiscal month, the most recent one, in
a new finished batch, and `kpi_compute` incremental (C) right after a full one; then that batch's
GDPs are deleted again (and the table vacuumed), so that every round repeats the same step from
the same N GDPs instead of adding to a month that grows round by round. Medians are
reported; the last line is one JSON object:

    {"bench": "kpi", "gdps": N, "full_s": B, "ratio_vs_sql": B / A, "incremental_ratio": C / B, …}
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import sys
import time
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

from bench._common import key_hash_sql, peak_rss_mb, postgres_url, throwaway_database  # noqa: E402

STORES = 10_000
FIELDS = [
    {"name": "sale_date", "logical_type": "date", "required": True, "role": "time"},
    {"name": "store_id", "logical_type": "string", "required": True, "role": "entity_key", "primary_key": True,
     "primary_key_position": 1},
    {"name": "region", "logical_type": "string", "required": True, "role": "dimension"},
    {"name": "channel", "logical_type": "string", "required": True, "role": "dimension"},
    {"name": "revenue", "logical_type": "number", "required": True, "role": "measure", "unit": "EUR"},
    {"name": "visits", "logical_type": "integer", "required": True, "role": "measure"},
]  # fmt: skip

# The floor: what a person would write by hand for each KPI (current rows, no as-of, no write).
BASELINE = {
    "simple": """
        SELECT d.period_index, g.dimensions ->> 'region', g.dimensions ->> 'channel', SUM(g.value)
        FROM storage_goldendatapoint g
        JOIN storage_calendarperiod d ON d.calendar_id = %(calendar)s AND d.level = 'day'
         AND d.start = (g.observed_at AT TIME ZONE 'UTC')::date
        WHERE g.contract_id = %(contract)s AND g.measure = 'revenue' AND g.recorded_to IS NULL
        GROUP BY 1, 2, 3""",
    "ratio": """
        SELECT d.period_index, g.dimensions ->> 'region', g.dimensions ->> 'channel',
               SUM(g.value) FILTER (WHERE g.measure = 'revenue') / NULLIF(SUM(g.value) FILTER (WHERE g.measure = 'visits'), 0)
        FROM storage_goldendatapoint g
        JOIN storage_calendarperiod d ON d.calendar_id = %(calendar)s AND d.level = 'day'
         AND d.start = (g.observed_at AT TIME ZONE 'UTC')::date
        WHERE g.contract_id = %(contract)s AND g.measure IN ('revenue', 'visits') AND g.recorded_to IS NULL
        GROUP BY 1, 2, 3""",
    "cumulative": """
        SELECT period_index, region, channel,
               SUM(total) OVER (PARTITION BY fiscal_year, region, channel ORDER BY period_index)
        FROM (
            SELECT d.period_index, d.fiscal_year, g.dimensions ->> 'region' AS region,
                   g.dimensions ->> 'channel' AS channel, SUM(g.value) AS total
            FROM storage_goldendatapoint g
            JOIN storage_calendarperiod d ON d.calendar_id = %(calendar)s AND d.level = 'day'
             AND d.start = (g.observed_at AT TIME ZONE 'UTC')::date
            WHERE g.contract_id = %(contract)s AND g.measure = 'revenue' AND g.recorded_to IS NULL
            GROUP BY 1, 2, 3, 4
        ) monthly""",
}  # fmt: skip

GDP_INSERT = """
    INSERT INTO storage_goldendatapoint (tenant_id, contract_id, contract_version_id, measure, entity_key, dimensions,
        observed_at, value, unit, quality_flags, source_id, source_priority, batch_id, recorded_from,
        is_override, override_reason, key_hash)
    SELECT x.*, {key_hash} FROM (
    SELECT %(tenant)s::bigint AS tenant_id, %(contract)s::bigint AS contract_id, %(version)s, m.measure AS measure,
           %(prefix)s || (r.i %% %(stores)s) AS entity_key,
           jsonb_build_object('region', (ARRAY['north','south','east','west'])[1 + (r.i %% %(stores)s) %% 4],
                              'channel', (ARRAY['store','online'])[1 + (r.i %% %(stores)s) / 4 %% 2])
               AS dimensions,
           %(first_day)s::timestamptz + make_interval(days => r.day) AS observed_at,
           CASE WHEN m.measure = 'revenue' THEN round((10 + (r.i %% 997))::numeric / 7, 2) ELSE 1 + r.i %% 13 END,
           CASE WHEN m.measure = 'revenue' THEN 'EUR' ELSE '' END, '[]'::jsonb, %(source)s, 100, %(batch)s,
           %(recorded)s, FALSE, ''
    FROM (SELECT i, %(day0)s + (i / %(stores)s) %% %(days)s AS day FROM generate_series(0, %(records)s - 1) AS i) r
    CROSS JOIN (VALUES ('revenue'), ('visits')) AS m(measure)) x"""


def setup(years: tuple[int, int]) -> dict:
    """Tenant, people, contract (active), source, calendar, three active KPIs."""
    from apps.compute import services as compute
    from apps.compute.kpis import services as kpis
    from apps.host import services as host
    from apps.host.choices import RoleChoices
    from apps.storage.calendars import services as calendars

    operator = host.user_get_or_create(username="bench-operator", is_staff=True, is_superuser=True)
    tenant = host.tenant_create(actor=operator, slug="bench", name="Bench Retail")
    steward = host.user_get_or_create(username="bench-steward")
    admin = host.user_get_or_create(username="bench-admin")
    host.membership_set(actor=operator, tenant=tenant, user=steward, role=RoleChoices.STEWARD)
    host.membership_set(actor=operator, tenant=tenant, user=admin, role=RoleChoices.ADMIN)
    contract = host.contract_create(actor=steward, tenant=tenant, key="store-sales", name="Store sales")
    version = host.contract_version_create(actor=steward, contract=contract, version="1.0.0", fields=FIELDS)
    host.contract_version_propose(actor=steward, version=version)
    host.contract_version_approve(actor=admin, version=version)
    host.contract_version_activate(actor=admin, version=version)
    source = compute.source_create(actor=steward, tenant=tenant, contract=contract, key="tills", name="Tills")
    calendar = calendars.calendar_create(actor=admin, tenant=tenant, key="months", name="Months", kind="gregorian")
    calendars.calendar_generate(actor=admin, calendar=calendar, from_year=years[0], to_year=years[1])
    common = {"contract": contract, "calendar": calendar, "level": "period", "dimensions": ["region", "channel"]}
    specs = {
        "simple": {"measure": "revenue", "aggregation": "sum"},
        "ratio": {"kind": "ratio", "measure": "revenue", "aggregation": "sum", "denominator_measure": "visits",
                  "denominator_aggregation": "sum"},
        "cumulative": {"kind": "cumulative", "measure": "revenue", "aggregation": "sum",
                       "cumulative_mode": "year_to_date"},
    }  # fmt: skip
    definitions = []
    for key, spec in specs.items():
        definition = kpis.kpi_definition_create(actor=steward, tenant=tenant, key=key, name=key.title())
        row = kpis.kpi_version_create(actor=steward, definition=definition, version="1.0.0", **common, **spec)
        kpis.kpi_version_propose(actor=steward, version=row)
        kpis.kpi_version_approve(actor=admin, version=row)
        kpis.kpi_version_activate(actor=admin, version=row)
        definitions.append(definition)
    return {"tenant": tenant, "contract": contract, "version": version, "source": source, "calendar": calendar,
            "definitions": definitions, "admin": admin}  # fmt: skip


def add_gdps(world: dict, *, records: int, prefix: str, day0: int, days: int) -> int:
    """`records` records (× 2 measures) in one new finished batch, recorded now: the batch's id."""
    from django.db import connection
    from django.utils import timezone

    from apps.storage.models import IngestionBatch

    now = timezone.now()
    batch = IngestionBatch.objects.create(
        tenant=world["tenant"], source=world["source"], contract_version=world["version"], format="json",
        checksum=secrets.token_hex(32), status="completed", started_at=now, finished_at=now,
        received=records, accepted=records, gdps_created=records * 2,
    )  # fmt: skip

    with connection.cursor() as cursor:
        cursor.execute(GDP_INSERT.replace("{key_hash}", key_hash_sql("x")), {
            "tenant": world["tenant"].pk, "contract": world["contract"].pk, "version": world["version"].pk,
            "source": world["source"].pk, "batch": batch.pk, "recorded": now, "prefix": prefix, "stores": STORES,
            "first_day": "2025-01-01T00:00:00Z", "day0": day0, "days": days, "records": records,
        })  # fmt: skip
        cursor.execute("ANALYZE storage_goldendatapoint")
        cursor.execute("ANALYZE storage_calendarperiod")
    return batch.pk


def remove_gdps(batch_id: int) -> None:
    """Take a batch's GDPs out again and VACUUM, so that the next round starts from the same table."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM storage_goldendatapoint WHERE batch_id = %s", [batch_id])
        cursor.execute("DELETE FROM storage_ingestionbatch WHERE id = %s", [batch_id])
        cursor.execute("VACUUM ANALYZE storage_goldendatapoint")


def baseline(world: dict) -> float:
    from django.db import connection

    started = time.perf_counter()
    with connection.cursor() as cursor:
        for sql in BASELINE.values():
            cursor.execute(sql, {"calendar": world["calendar"].pk, "contract": world["contract"].pk})
            cursor.fetchall()
    return time.perf_counter() - started


def aurum(world: dict, *, full: bool) -> tuple[float, list]:
    from apps.compute.kpis import services as kpis

    started = time.perf_counter()
    runs = kpis.kpi_compute(actor=world["admin"], definitions=world["definitions"], full=full, trigger="bench")
    return time.perf_counter() - started, runs


def run(args: argparse.Namespace, bench_url: str) -> dict:
    import django

    os.environ.update({"DATABASE_URL": bench_url, "AURUM_DEBUG": "0", "AURUM_CELERY_EAGER": "1"})
    django.setup()
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0)
    n = args.scale
    records = max(n // 2, 1)
    days = max(records // STORES, 1)
    last_year = 2025 + (days - 1) // 365
    world = setup((2025, last_year + 1))
    started = time.perf_counter()
    add_gdps(world, records=records, prefix="S", day0=0, days=days)
    with connection.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM storage_goldendatapoint")
        gdps = cursor.fetchone()[0]
        cursor.execute("SELECT current_setting('server_version'), current_setting('shared_buffers'), "
                       "current_setting('work_mem')")  # fmt: skip
        server = cursor.fetchone()
    print(f"{gdps:,} GDPs ({records:,} records × revenue, visits; {STORES:,} stores × {days} days) "
          f"written in {time.perf_counter() - started:.1f} s")  # fmt: skip
    print(f"PostgreSQL {server[0]}, shared_buffers {server[1]}, work_mem {server[2]}; {os.cpu_count()} cores, "
          "Python and PostgreSQL share them (not pinned)")  # fmt: skip

    baseline(world)  # warm-up: the same pages, plans and caches for both
    aurum(world, full=True)
    floor, full, values = [], [], 0
    for round_ in range(args.rounds):
        floor.append(baseline(world))
        seconds, runs = aurum(world, full=True)
        full.append(seconds)
        values = sum(r.counts.get("values", 0) for r in runs)
        per_kpi = ", ".join(
            f"{r.job} {r.counts.get('seconds')} s (aggregate {r.counts.get('aggregate_s')} s)" for r in runs
        )
        print(f"round {round_ + 1}: GROUP BY {floor[-1]:.2f} s, Aurum full {seconds:.2f} s ({per_kpi})")

    # Incremental: 1 % more GDPs in one fiscal month, the most recent (the calendar's months are
    # Gregorian: it starts on the 1st of the month holding the last day), then an incremental run.
    extra = max(records // 100, 1)
    last_day = date(2025, 1, 1) + timedelta(days=days - 1)
    month_start = (last_day.replace(day=1) - date(2025, 1, 1)).days
    month_days = days - month_start
    incremental, touched = [], 0
    for round_ in range(args.rounds):
        aurum(world, full=True)
        batch_id = add_gdps(world, records=extra, prefix=f"N{round_}-", day0=month_start, days=month_days)
        seconds, runs = aurum(world, full=False)
        remove_gdps(batch_id)
        incremental.append(seconds)
        touched = max(r.counts.get("periods", 0) for r in runs)
        per_kpi = ", ".join(
            f"{r.job} {r.counts.get('mode')} {r.counts.get('periods')} periods "
            f"(detect {r.counts.get('detect_s')} s, aggregate {r.counts.get('aggregate_s')} s, "
            f"run {r.counts.get('seconds')} s)"
            for r in runs
        )
        print(f"incremental {round_ + 1}: +{extra * 2:,} GDPs, {seconds:.3f} s ({per_kpi})")

    full_s, floor_s, incremental_s = (statistics.median(x) for x in (full, floor, incremental))
    return {"bench": "kpi", "gdps": gdps, "full_s": round(full_s, 3), "sql_s": round(floor_s, 3),
            "ratio_vs_sql": round(full_s / floor_s, 2), "incremental_s": round(incremental_s, 3),
            "incremental_ratio": round(incremental_s / full_s, 3), "values": values,
            "incremental_periods": touched, "rounds": args.rounds, "peak_rss_mb": peak_rss_mb()}  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=int, default=1_000_000, help="GDP rows (default 1,000,000)")
    parser.add_argument("--rounds", type=int, default=3, help="measured rounds (A B each), default 3")
    args = parser.parse_args()
    url = postgres_url("bench/kpi.py")
    if url is None:
        return 0
    with throwaway_database(url, "aurum_bench_kpi") as bench_url:
        summary = run(args, bench_url)
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
