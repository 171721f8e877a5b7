"""Benchmark: export — N Golden Data Points streamed as CSV and Parquet, against COPY … TO STDOUT.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres .venv/bin/python bench/export.py [--scale N]

Needs PostgreSQL: without a postgres:// DATABASE_URL it says so and exits 0. It creates its own
database (aurum_bench_<random>) on that server, runs Django's migrations into it, and drops it at
the end, also on failure or Ctrl-C.

Setup: a tenant, a contract whose active version has the store-sales fields, a source and a batch,
and N current GDP rows written by one INSERT … SELECT over generate_series (10,000 stores × days ×
three measures, two dimensions), then ANALYZE.

Measured, alternately (A B A B …) after a warm-up, `--rounds` times each, each run its own process:
  A  baseline: psycopg `COPY (SELECT <the same columns, joins and order>) TO STDOUT (FORMAT csv,
     HEADER)`, the bytes read and dropped: the floor an export of these rows cannot beat.
  B  Aurum's export path, as the view runs it: `services.export_prepare` (filters, count, the
     export policies) and `services.export_stream` (the ExportJob record, the server-side cursor
     read in chunks, the writer, SHA-256 while streaming, the record completed at the end), the
     bytes dropped; once as CSV and once as Parquet.
With AURUM_BENCH_PROFILE=1 each Aurum run prints its cProfile top (by own time) too.
Peak RSS (ru_maxrss) is each process's own, Django included. Medians are reported; the last line
is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

from bench._common import key_hash_sql, peak_rss_mb, postgres_url, throwaway_database  # noqa: E402

FIELDS = [
    ("sale_date", "time", "date", "internal"),
    ("store_id", "entity_key", "string", "internal"),
    ("region", "dimension", "string", "internal"),
    ("channel", "dimension", "string", "internal"),
    ("revenue", "measure", "number", "internal"),
    ("units", "measure", "integer", "internal"),
    ("returns", "measure", "integer", "internal"),
]
BASELINE_SQL = """
COPY (SELECT g.id, c.key, v.version, g.measure, g.entity_key, g.dimensions::text,
             g.observed_at, g.value, g.unit, g.quality_flags::text, s.key, g.batch_id,
             g.recorded_from, g.recorded_to, g.is_override
      FROM storage_goldendatapoint g
      JOIN host_datacontract c ON c.id = g.contract_id
      JOIN host_contractversion v ON v.id = g.contract_version_id
      LEFT JOIN compute_source s ON s.id = g.source_id
      WHERE g.tenant_id = %s AND g.recorded_to IS NULL ORDER BY g.id) TO STDOUT (FORMAT csv, HEADER)
"""


# --------------------------------------------------------------------------------------------------
# Workers (each run is its own process)


def worker_copy(args: argparse.Namespace) -> dict:
    import psycopg

    started = time.perf_counter()
    size = 0
    with psycopg.connect(args.database_url) as conn, conn.cursor() as cursor:
        cursor.execute("SET TIME ZONE 'UTC'")
        with cursor.copy(BASELINE_SQL.replace("%s", str(int(args.tenant)))) as copy:
            for data in copy:
                size += len(data)
    return {"seconds": time.perf_counter() - started, "bytes": size, "peak_rss_mb": peak_rss_mb()}


def worker_aurum(args: argparse.Namespace) -> dict:
    import django

    django.setup()
    from apps.consumption.exports import services
    from apps.consumption.exports.models import ExportJob
    from apps.host.models import Tenant

    tenant = Tenant.objects.get(pk=args.tenant)
    started = time.perf_counter()
    prepared = services.export_prepare(tenant=tenant, dataset="gdps", format=args.format, params={})
    prepared_s = time.perf_counter() - started
    job, chunks = services.export_stream(actor=None, prepared=prepared)
    size = 0
    profiler = None
    if os.environ.get("AURUM_BENCH_PROFILE"):
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    for chunk in chunks:
        size += len(chunk)
    if profiler is not None:
        import pstats

        profiler.disable()
        pstats.Stats(profiler, stream=sys.stderr).sort_stats("tottime").print_stats(15)
    seconds = time.perf_counter() - started
    job = ExportJob.objects.get(pk=job.pk)
    return {"seconds": seconds, "prepare_s": prepared_s, "bytes": size, "rows": job.row_count,
            "status": job.status, "checksum": job.checksum, "peak_rss_mb": peak_rss_mb()}  # fmt: skip


# --------------------------------------------------------------------------------------------------
# The driver


def setup_fixtures(n: int) -> int:
    """Tenant, contract (active version with fields), source, batch and N GDP rows: the tenant's id."""
    from django.db import connection
    from django.utils import timezone

    from apps.compute.models import Source
    from apps.host.models import ContractField, ContractVersion, DataContract, Tenant
    from apps.storage.models import IngestionBatch

    tenant = Tenant.objects.create(slug="bench", name="Bench Retail")
    contract = DataContract.objects.create(tenant=tenant, key="store-sales", name="Store sales")
    version = ContractVersion.objects.create(tenant=tenant, contract=contract, version="1.0.0", status="active",
                                             activated_at=timezone.now())  # fmt: skip
    for position, (name, role, logical_type, classification) in enumerate(FIELDS):
        ContractField.objects.create(version=version, position=position, name=name, role=role,
                                     logical_type=logical_type, classification=classification)  # fmt: skip
    source = Source.objects.create(tenant=tenant, contract=contract, key="tills", name="Tills")
    batch = IngestionBatch.objects.create(tenant=tenant, source=source, contract_version=version, format="csv",
                                          checksum="0" * 64, status="completed")  # fmt: skip

    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO storage_goldendatapoint
              (tenant_id, contract_id, contract_version_id, measure, entity_key, dimensions, observed_at,
               value, unit, quality_flags, source_id, source_priority, batch_id, recorded_from,
               is_override, override_reason, key_hash)
            SELECT x.*, {key_hash} FROM (
            SELECT %(tenant)s::bigint AS tenant_id, %(contract)s::bigint AS contract_id, %(version)s,
                   (ARRAY['revenue','units','returns'])[i %% 3 + 1] AS measure,
                   'S' || lpad(((i / 3) %% 10000)::text, 5, '0') AS entity_key,
                   jsonb_build_object('region', (ARRAY['north','south','east','west'])[(i / 3) %% 4 + 1],
                                      'channel', (ARRAY['store','online'])[(i / 12) %% 2 + 1])
                       AS dimensions,
                   timestamptz '2024-01-01 00:00:00+00' + ((i / 30000) || ' days')::interval AS observed_at,
                   round((i %% 100000) / 4.0 + 0.25, 2), (ARRAY['EUR','items','items'])[i %% 3 + 1],
                   CASE WHEN i %% 50 = 0 THEN '["late"]'::jsonb ELSE '[]'::jsonb END,
                   %(source)s, 0, %(batch)s, now() - interval '1 hour', false, ''
            FROM generate_series(0, %(n)s - 1) AS i) x
            """.replace("{key_hash}", key_hash_sql("x")),
            {"tenant": tenant.pk, "contract": contract.pk, "version": version.pk, "source": source.pk,
             "batch": batch.pk, "n": n},
        )  # fmt: skip
        cursor.execute("ANALYZE storage_goldendatapoint")
    print(f"{n:,} GDP rows generated in {time.perf_counter() - started:.1f} s")
    return tenant.pk


def spawn(kind: str, env: dict[str, str], **extra: object) -> dict:
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", kind, "--database-url", env["DATABASE_URL"]]
    for name, value in extra.items():
        command += [f"--{name.replace('_', '-')}", str(value)]
    # In the checkout's directory: Celery's Django fixup puts the working directory first on sys.path.
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False, cwd=ROOT)  # noqa: S603
    if os.environ.get("AURUM_BENCH_PROFILE"):
        print(done.stderr[-6000:])
    if done.returncode != 0:
        raise RuntimeError(f"{kind} run failed ({done.returncode}):\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def run(args: argparse.Namespace, bench_url: str) -> dict:
    import django

    env = {**os.environ, "DATABASE_URL": bench_url, "AURUM_DEBUG": "0", "AURUM_LOG_LEVEL": "WARNING"}
    os.environ.update(env)
    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    n = args.scale
    tenant = setup_fixtures(n)
    print(f"{os.cpu_count()} cores, shared with PostgreSQL and with other users of this machine (not pinned): "
          "both the baseline and Aurum's figures include that contention.")  # fmt: skip
    spawn("copy", env, tenant=tenant)
    spawn("aurum", env, tenant=tenant, format="csv")
    print("warm-up done")
    copies, csvs, parquets = [], [], []
    for round_ in range(1, args.rounds + 1):
        copies.append(spawn("copy", env, tenant=tenant))
        csvs.append(spawn("aurum", env, tenant=tenant, format="csv"))
        parquets.append(spawn("aurum", env, tenant=tenant, format="parquet"))
        c, a, p = copies[-1], csvs[-1], parquets[-1]
        for result in (a, p):
            if result["status"] != "completed" or result["rows"] != n:
                raise RuntimeError(f"the export ended {result['status']} with {result['rows']} rows")
        print(f"round {round_}: COPY {c['seconds']:.2f} s ({n / c['seconds']:,.0f} rows/s, {c['bytes'] / 1e6:.0f} MB)"
              f" | CSV {a['seconds']:.2f} s ({n / a['seconds']:,.0f} rows/s, {a['bytes'] / 1e6:.0f} MB, "
              f"{a['peak_rss_mb']} MB RSS) | Parquet {p['seconds']:.2f} s ({n / p['seconds']:,.0f} rows/s, "
              f"{p['bytes'] / 1e6:.0f} MB, {p['peak_rss_mb']} MB RSS)", flush=True)  # fmt: skip

    def med(runs: list[dict], key: str = "seconds") -> float:
        return statistics.median(r[key] for r in runs)

    copy_s, csv_s, parquet_s = med(copies), med(csvs), med(parquets)
    peak = max(r["peak_rss_mb"] for r in csvs + parquets)
    print(f"medians of {args.rounds}: COPY {copy_s:.2f} s, CSV {csv_s:.2f} s (×{csv_s / copy_s:.2f} of COPY), "
          f"Parquet {parquet_s:.2f} s (×{parquet_s / copy_s:.2f}); goal ≥ 200,000 rows/s CSV and < 200 MB")  # fmt: skip
    return {
        "bench": "export",
        "rows": n,
        "csv_rows_per_s": round(n / csv_s),
        "parquet_rows_per_s": round(n / parquet_s),
        "peak_rss_mb": peak,
        "baseline_rows_per_s": round(n / copy_s),
        "csv_ratio_vs_copy": round(csv_s / copy_s, 2),
        "parquet_ratio_vs_copy": round(parquet_s / copy_s, 2),
        "csv_prepare_s": round(med(csvs, "prepare_s"), 2),
        "csv_mb": round(csvs[-1]["bytes"] / 1e6, 1),
        "parquet_mb": round(parquets[-1]["bytes"] / 1e6, 1),
        "baseline_peak_rss_mb": max(r["peak_rss_mb"] for r in copies),
        "rounds": args.rounds,
        "cores": os.cpu_count(),
        "shared_cores": True,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=int, default=1_000_000, help="GDP rows (default 1,000,000)")
    parser.add_argument("--rounds", type=int, default=3, help="measured rounds (A B each), default 3")
    parser.add_argument("--worker", choices=("copy", "aurum"), help=argparse.SUPPRESS)
    parser.add_argument("--database-url", help=argparse.SUPPRESS)
    parser.add_argument("--tenant", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--format", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker_copy(args) if args.worker == "copy" else worker_aurum(args)))
        return 0

    url = postgres_url("bench/export.py")
    if url is None:
        return 0
    with throwaway_database(url) as bench_url:
        summary = run(args, bench_url)
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
