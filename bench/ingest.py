"""Benchmark: ingest — N records end to end through Aurum's pipeline, against a plain COPY of the same rows.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres .venv/bin/python bench/ingest.py [--scale N]

Needs PostgreSQL: without a postgres:// DATABASE_URL it says so and exits 0. It creates its own
database (aurum_bench_<random>) on that server, runs Django's migrations into it, and drops it at
the end, also on failure or Ctrl-C. Payload files and spooled copies live in a temporary directory
that is removed too.

Setup: a tenant, a quality-gate policy (accept the valid records if ≥ 95 % pass), a 10-field
store-sales contract (time sale_date; entity key store_id; dimensions region, channel; measures
revenue EUR, units, returns; attributes manager_email, updated_at, promotion; primary key
store_id + sale_date), the cast steps a CSV-shaped feed needs (every value arrives as a string),
five quality rules, an active version and a push source. N records are written as NDJSON to a
file (never held in memory): 10,000 stores × N/10,000 days; 0.5 % break a rule (store pattern,
negative revenue, unknown region). A second file has the same N records with changed values.

Measured, alternately (A B A B …) after a warm-up, `--rounds` times each:
  A  baseline: a separate process reads the same file and COPYs, in one transaction, the raw
     rows (id, batch, position, payload as the original JSON text, SHA-256 of the line) and
     three GDP rows per valid record (measure, entity_key, dimensions, observed_at, value,
     unit, raw_id) into two bare tables with only a primary key. It builds the COPY text
     from the parsed records itself (that is work Aurum does too) but validates nothing:
     it is told which records the generator made invalid.
  B  Aurum: a separate process runs services.batch_receive on the file (spool, checksum,
     Idempotency-Key, the batch) and pipeline.batch_process (syntax pass, parse, normalize,
     validate, raw records by COPY, rejections, staging, quality gate, survivorship merge,
     counts), into empty raw and GDP tables ("first load"); then, in another process, the
     update file: the same keys with new values, so every current GDP is superseded
     ("update load").
With `--against OTHER_CHECKOUT`, each round also has a first load by the other checkout's code (its bench's
worker, in its directory, on this database: the two must share migrations), before this one's in even rounds and
after it in odd ones, and the difference per round is printed: a change smaller than the drift between runs (often
±1.5 s at 1,000,000 records) shows in the paired differences before it shows in two separate runs' medians.
Each run starts on a quiet server (`quiesce`): what the runs before it wrote emptied, or vacuumed where it
builds on it, a checkpoint taken, no autovacuum worker busy; autovacuum is off for the written tables, so
that it runs between the measured runs, never during one. Each Aurum run is its own process, so its peak RSS (ru_maxrss) is the pipeline's alone,
including Django itself. Medians are reported; the last line is one JSON object.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import resource
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from itertools import islice
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

from bench._common import peak_rss_mb, postgres_url, throwaway_database  # noqa: E402

STORES = 10_000
REGIONS = ("north", "south", "east", "west")
CHANNELS = ("store", "online")
PROMOTIONS = ("", "spring", "summer", "black-friday")
MEASURES = (("revenue", "EUR"), ("units", "items"), ("returns", "items"))
FIRST_DAY = date(2024, 1, 1)
INVALID_EVERY = 200  # 0.5 % of the records break a rule

FIELDS = [
    {"name": "sale_date", "logical_type": "date", "required": True, "role": "time", "primary_key": True,
     "primary_key_position": 2},
    {"name": "store_id", "logical_type": "string", "required": True, "role": "entity_key", "primary_key": True,
     "primary_key_position": 1, "pattern": "^S[0-9]{5}$"},
    {"name": "region", "logical_type": "string", "required": True, "role": "dimension",
     "allowed_values": list(REGIONS)},
    {"name": "channel", "logical_type": "string", "required": True, "role": "dimension",
     "allowed_values": list(CHANNELS)},
    {"name": "revenue", "logical_type": "number", "required": True, "role": "measure", "unit": "EUR", "minimum": 0},
    {"name": "units", "logical_type": "integer", "required": True, "role": "measure", "unit": "items", "minimum": 0},
    {"name": "returns", "logical_type": "integer", "required": False, "role": "measure", "unit": "items",
     "minimum": 0},
    {"name": "manager_email", "logical_type": "string", "role": "attribute", "max_length": 200},
    {"name": "updated_at", "logical_type": "timestamp", "required": True, "role": "attribute"},
    {"name": "promotion", "logical_type": "string", "role": "attribute", "max_length": 40},
]  # fmt: skip
RULES = [
    {"field": "revenue", "kind": "range", "severity": "error", "params": {"min": 0, "max": 1000000}},
    {"field": "store_id", "kind": "not_null", "severity": "error"},
    {"field": "returns", "kind": "completeness", "severity": "warning", "threshold": 5},
    {"field": None, "kind": "freshness", "severity": "warning", "params": {"max_age_hours": 36}},
    {"field": None, "kind": "row_count", "severity": "error", "params": {"min": 1, "max": 100000000}},
]
CAST_STEPS = [
    {"kind": "cast", "field": "sale_date", "params": {"to": "date"}},
    {"kind": "cast", "field": "revenue", "params": {"to": "number"}},
    {"kind": "cast", "field": "units", "params": {"to": "integer"}},
    {"kind": "cast", "field": "returns", "params": {"to": "integer"}},
    {"kind": "cast", "field": "updated_at", "params": {"to": "timestamp"}},
]
AURUM_TABLES = ("storage_goldendatapoint", "storage_rejection", "storage_uniquevalue",
                "storage_rawrecord")  # fmt: skip
BASELINE_TABLES = """
CREATE TABLE bench_raw (id bigint PRIMARY KEY, batch int, position int, payload jsonb, hash text);
CREATE TABLE bench_gdp (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, measure text, entity_key text,
                        dimensions jsonb, observed_at timestamptz, value numeric, unit text, raw_id bigint);
"""
BASELINE_CHUNK = 10_000


# --------------------------------------------------------------------------------------------------
# The records


def write_payload(path: Path, n: int, *, update: bool) -> int:
    """N records as NDJSON, every value a string as a CSV would carry it; returns the size in bytes."""
    bump = 1 if update else 0
    with open(path, "w", encoding="utf-8") as out:
        for i in range(n):
            store, day = i % STORES, i // STORES
            region, channel = REGIONS[store % 4], CHANNELS[(store // 4) % 2]
            store_id = f"S{store:05d}"
            revenue = f"{(i * 37) % 100000 / 4 + bump * 1.25:.2f}"
            if i % INVALID_EVERY == 7:
                kind = (i // INVALID_EVERY) % 3
                if kind == 0:
                    store_id = f"X{store}"
                elif kind == 1:
                    revenue = "-5.00"
                else:
                    region = "middle"
            returns = "" if i % 50 == 3 else str((i % 5 + bump) % 7)
            record = {
                "sale_date": (FIRST_DAY + timedelta(days=day)).isoformat(),
                "store_id": store_id,
                "region": region,
                "channel": channel,
                "revenue": revenue,
                "units": str(i % 23 + bump),
                "returns": returns,
                "manager_email": f"manager{store % 997}@example.com",
                "updated_at": f"2024-06-0{1 + bump}T06:{i % 60:02d}:00+00:00",
                "promotion": PROMOTIONS[i % 4],
            }
            out.write(json.dumps(record, separators=(",", ":")) + "\n")
        return out.tell()


def invalid(position: int) -> bool:
    return position % INVALID_EVERY == 7


# --------------------------------------------------------------------------------------------------
# Workers (each run is its own process)


def worker_copy(args: argparse.Namespace) -> dict:
    """The baseline: COPY the raw rows and the GDP rows of the same file into the bare tables."""
    import psycopg

    started = time.perf_counter()
    sha256, loads = hashlib.sha256, json.loads
    dims_text: dict[tuple, str] = {}
    raw_id = 0
    gdp_rows = 0
    with psycopg.connect(args.database_url) as conn, conn.cursor() as cursor, open(args.file, "rb") as payload:
        cursor.execute("SET TIME ZONE 'UTC'")
        position = 0
        while lines := list(islice(payload, BASELINE_CHUNK)):
            raw_text, gdp_text = [], []
            for line in lines:
                raw_id += 1
                record = loads(line)
                text = line.decode().rstrip("\n")
                if "\\" in text or "\t" in text or "\r" in text:
                    text = text.replace("\\", "\\\\").replace("\t", "\\t").replace("\r", "\\r")
                raw_text.append(f"{raw_id}\t1\t{position}\t{text}\t{sha256(line).hexdigest()}\n")
                if not invalid(position):
                    key = (record["region"], record["channel"])
                    dims = dims_text.get(key)
                    if dims is None:
                        dims = dims_text[key] = json.dumps({"channel": key[1], "region": key[0]})
                    entity, observed = record["store_id"], record["sale_date"]
                    for measure, unit in MEASURES:
                        value = record[measure] or "\\N"
                        gdp_text.append(f"{measure}\t{entity}\t{dims}\t{observed}\t{value}\t{unit}\t{raw_id}\n")
                        gdp_rows += 1
                position += 1
            with cursor.copy("COPY bench_raw (id, batch, position, payload, hash) FROM STDIN") as copy:
                copy.write("".join(raw_text))
            with cursor.copy(
                "COPY bench_gdp (measure, entity_key, dimensions, observed_at, value, unit, raw_id) FROM STDIN"
            ) as copy:
                copy.write("".join(gdp_text))
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "raw_rows": raw_id, "gdp_rows": gdp_rows, "peak_rss_mb": peak_rss_mb()}


def worker_aurum(args: argparse.Namespace) -> dict:
    """Aurum's path: batch_receive from the file, then batch_process, as a worker would."""
    import django

    django.setup()
    from apps.compute import pipeline, services
    from apps.compute.models import Source

    phases: dict[str, float] = {}
    for name in ("_check_syntax", "_ingest_chunks", "_decide_and_merge"):
        setattr(pipeline, name, _timed(getattr(pipeline, name), phases, name.strip("_")))
    source = Source.objects.select_related("tenant", "contract").get(pk=args.source)
    profiler = None
    if args.profile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    started = time.perf_counter()
    with open(args.file, "rb") as stream:
        batch, _ = services.batch_receive(
            actor=None, source=source, stream=stream, content_type="application/x-ndjson",
            filename=Path(args.file).name, idempotency_key=f"bench-{secrets.token_hex(8)}",
        )  # fmt: skip
    received = time.perf_counter()
    batch = pipeline.batch_process(batch.pk)
    seconds = time.perf_counter() - started
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(args.profile)
    return {
        "seconds": seconds,
        "receive_s": received - started,
        **{f"{name}_s": value for name, value in phases.items()},
        "status": batch.status,
        "counts": {
            name: getattr(batch, name)
            for name in ("received", "accepted", "rejected", "duplicates", "gdps_created", "superseded")
        },
        "error": batch.error,
        "peak_rss_mb": peak_rss_mb(),
    }


def _timed(func, phases: dict[str, float], name: str):
    def timed(*args, **kwargs):
        started = time.perf_counter()
        try:
            return func(*args, **kwargs)
        finally:
            phases[name] = phases.get(name, 0.0) + time.perf_counter() - started

    return timed


# --------------------------------------------------------------------------------------------------
# The driver


def setup_fixtures() -> int:
    """Tenant, people, quality gate, contract with cast steps and rules (active), push source: its id."""
    from apps.compute import services as compute
    from apps.compute.models import NormalizationRule
    from apps.host import services as host
    from apps.host.choices import RoleChoices

    operator = host.user_get_or_create(username="bench-operator", is_staff=True, is_superuser=True)
    tenant = host.tenant_create(actor=operator, slug="bench", name="Bench Retail")
    steward = host.user_get_or_create(username="bench-steward")
    admin = host.user_get_or_create(username="bench-admin")
    host.membership_set(actor=operator, tenant=tenant, user=steward, role=RoleChoices.STEWARD)
    host.membership_set(actor=operator, tenant=tenant, user=admin, role=RoleChoices.ADMIN)
    gate = host.policy_create(actor=admin, tenant=tenant, kind="quality_gate", name="Bench gate",
                              parameters={"min_batch_pass_rate": 95, "on_failure": "accept_valid_records"})  # fmt: skip
    host.policy_activate(actor=admin, policy=gate)
    contract = host.contract_create(actor=steward, tenant=tenant, key="store-sales", name="Store sales")
    version = host.contract_version_create(actor=steward, contract=contract, version="1.0.0", fields=FIELDS,
                                           quality_rules=RULES)  # fmt: skip
    for position, step in enumerate(CAST_STEPS):
        NormalizationRule.objects.create(contract_version=version, position=position, **step)
    host.contract_version_propose(actor=steward, version=version)
    host.contract_version_approve(actor=admin, version=version)
    host.contract_version_activate(actor=admin, version=version)
    source = compute.source_create(actor=steward, tenant=tenant, contract=contract, key="tills", name="Tills")
    return source.pk


BASELINE_OWN = ("bench_raw", "bench_gdp")
QUIET_WAIT_S = 120


def quiesce(*, empty: tuple[str, ...], vacuum: tuple[str, ...] = ()) -> None:
    """A quiet server for the next run: the tables of runs done emptied (`empty`), or vacuumed and analyzed where
    the next run builds on them (`vacuum`), and the catalogs the runs change; a checkpoint; no autovacuum worker
    of this database still busy (at most QUIET_WAIT_S). Otherwise one run pays for the dirty pages of the one
    before, and for the maintenance its millions of rows call for."""
    from django.db import connection

    with connection.cursor() as cursor:
        if empty:
            cursor.execute(f"TRUNCATE {', '.join(empty)} CASCADE")
        for table in (*vacuum, *empty):  # an emptied table too: its statistics still count the rows of the last run
            cursor.execute(f"VACUUM (ANALYZE) {table}")
        with contextlib.suppress(Exception):
            cursor.execute("CHECKPOINT")
        deadline = time.monotonic() + QUIET_WAIT_S
        while time.monotonic() < deadline:
            cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'autovacuum worker' "
                           "AND datname = current_database()")  # fmt: skip
            if cursor.fetchone()[0] == 0:
                return
            time.sleep(0.5)


def spawn(
    kind: str, args: argparse.Namespace, env: dict[str, str], file: Path, root: Path = ROOT, **extra: object
) -> dict:
    """A run of `kind` by the bench of the checkout at `root` (this one, or --against's), in a process of its own."""
    command = [sys.executable, str(root / "bench" / "ingest.py"), "--worker", kind, "--file", str(file),
               "--database-url", env["DATABASE_URL"]]  # fmt: skip
    for name, value in extra.items():
        if value is not None:
            command += [f"--{name.replace('_', '-')}", str(value)]
    children, server, wal = _cpu_seconds(resource.RUSAGE_CHILDREN), postgres_cpu_seconds(), wal_written()
    # In the checkout's directory: Celery's Django fixup puts the working directory first on sys.path, so a worker
    # started elsewhere would import the apps found there (another checkout's, say) instead of its own.
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False, cwd=root)  # noqa: S603
    if done.returncode != 0:
        raise RuntimeError(f"{kind} run failed ({done.returncode}):\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["cpu_worker_s"] = round(_cpu_seconds(resource.RUSAGE_CHILDREN) - children, 2)
    if server is not None:
        result["cpu_postgres_s"] = round(postgres_cpu_seconds() - server, 2)
    result["wal_mb"], result["wal_full_pages"] = (
        after - before for after, before in zip(wal_written(), wal, strict=True)
    )
    return result


def wal_written() -> tuple[float, int]:
    """(MB of WAL, full-page images) the server has written so far (pg_stat_wal): a run's share is the difference,
    as nothing else writes meanwhile. Full-page images are what a page costs the first time it changes after a
    checkpoint; they show when a run's writes are spread over more pages than they need."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT wal_bytes / 1e6, wal_fpi FROM pg_stat_wal")
        mb, pages = cursor.fetchone()
    return float(mb), pages


def _cpu_seconds(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def postgres_cpu_seconds() -> float | None:
    """CPU time of the server's ended backends (the postmaster's reaped children), where the server runs on this
    machine and its postmaster.pid is readable: a run's own backends have ended when its worker has. None
    otherwise."""
    import glob

    for pid_file in glob.glob("/var/lib/postgresql/*/main/postmaster.pid"):
        try:
            pid = open(pid_file).readline().strip()  # noqa: SIM115
            fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()  # noqa: SIM115
        except OSError:
            continue
        return (int(fields[13]) + int(fields[14])) / os.sysconf("SC_CLK_TCK")  # cutime, cstime
    return None


def server_facts() -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('server_version'), current_setting('shared_buffers'), "
                       "current_setting('synchronous_commit'), current_setting('max_wal_size')")  # fmt: skip
        version, buffers, sync, wal = cursor.fetchone()
    return f"PostgreSQL {version}, shared_buffers {buffers}, synchronous_commit {sync}, max_wal_size {wal}"


def run(args: argparse.Namespace, bench_url: str, workdir: Path) -> dict:
    import django

    env = {**os.environ, "DATABASE_URL": bench_url, "AURUM_VAR_DIR": str(workdir / "var"), "AURUM_DEBUG": "0"}
    if args.chunk_size:
        env["AURUM_INGEST_CHUNK_SIZE"] = str(args.chunk_size)
    os.environ.update(env)
    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0)
    source_id = setup_fixtures()
    with connection.cursor() as cursor:
        cursor.execute(BASELINE_TABLES)
        # A run's tables are vacuumed between runs (quiesce), never during one: autovacuum wakes once a minute, so
        # it would fall on the longer runs more often, and on some rounds and not others (one 1,000,000-record
        # first load took PostgreSQL 41.8 s of CPU instead of 27.6 s).
        for table in AURUM_TABLES + BASELINE_OWN:
            cursor.execute(f"ALTER TABLE {table} SET (autovacuum_enabled = false, toast.autovacuum_enabled = false)")
    n = args.scale
    first, update, warm = workdir / "first.ndjson", workdir / "update.ndjson", workdir / "warm.ndjson"
    started = time.perf_counter()
    size = write_payload(first, n, update=False)
    write_payload(update, n, update=True)
    write_payload(warm, min(n, args.warmup), update=False)
    print(f"{n:,} records, {size / 1e6:.0f} MB of NDJSON per load, written in {time.perf_counter() - started:.1f} s")
    print(server_facts())
    print(f"AURUM_INGEST_CHUNK_SIZE={settings.AURUM_INGEST_CHUNK_SIZE}; {os.cpu_count()} cores: the pipeline or "
          "COPY process and PostgreSQL share them (not pinned), so both figures include that contention.")  # fmt: skip
    media = workdir / "var" / "media"

    def aurum(file: Path, *, fresh: bool, profile: str | None = None, root: Path = ROOT) -> dict:
        if fresh:
            quiesce(empty=AURUM_TABLES + BASELINE_OWN)
        else:
            quiesce(empty=BASELINE_OWN, vacuum=AURUM_TABLES)
        result = spawn("aurum", args, env, file, root, source=source_id, profile=profile)
        shutil.rmtree(media, ignore_errors=True)  # the spooled copies
        if result["status"] not in ("completed", "completed_with_rejections"):
            raise RuntimeError(f"the batch ended {result['status']}: {result['error']}")
        return result

    def baseline(file: Path) -> dict:
        quiesce(empty=BASELINE_OWN + AURUM_TABLES)
        return spawn("copy", args, env, file)

    baseline(warm)
    aurum(warm, fresh=True)
    if args.against:
        aurum(warm, fresh=True, root=args.against)
    print(f"warm-up done ({min(n, args.warmup):,} records each)")
    copies, firsts, updates, others = [], [], [], []
    for round_ in range(1, args.rounds + 1):
        copies.append(baseline(first))
        if args.against and round_ % 2 == 0:  # the other checkout first in even rounds: no order favours either
            others.append(aurum(first, fresh=True, root=args.against))
        firsts.append(aurum(first, fresh=True))
        if args.against and round_ % 2 == 1:
            others.append(aurum(first, fresh=True, root=args.against))
        c, a = copies[-1], firsts[-1]
        print(f"round {round_}: COPY {c['seconds']:.2f} s ({n / c['seconds']:,.0f}/s) | Aurum first load "
              f"{a['seconds']:.2f} s ({n / a['seconds']:,.0f}/s, {a['peak_rss_mb']} MB)", flush=True)  # fmt: skip
        print(f"  COPY:   {phase_line(c)}", flush=True)
        print(f"  first:  {phase_line(a)}", flush=True)
        if args.against:
            o = others[-1]
            print(f"  against ({'before' if round_ % 2 == 0 else 'after'}): {o['seconds']:.2f} s, this checkout "
                  f"{a['seconds'] - o['seconds']:+.2f} s: {phase_line(o)}", flush=True)  # fmt: skip
        if not args.first_only:
            u = aurum(update, fresh=False)
            updates.append(u)
            print(f"  update load {u['seconds']:.2f} s ({n / u['seconds']:,.0f}/s, {u['peak_rss_mb']} MB): "
                  f"{phase_line(u)}", flush=True)  # fmt: skip
    if args.profile:
        aurum(first, fresh=True, profile=args.profile)
        print_profile(args.profile)

    def med(runs: list[dict], key: str = "seconds") -> float:
        return statistics.median(r[key] for r in runs)

    copy_s, first_s = med(copies), med(firsts)
    print(f"first load counts: {firsts[-1]['counts']}")
    print(f"medians of {args.rounds}: COPY {copy_s:.2f} s, Aurum first load {first_s:.2f} s "
          f"(×{first_s / copy_s:.2f}); goal: ≤ 2× COPY and < 500 MB")  # fmt: skip
    summary = {
        "bench": "ingest",
        "records": n,
        "records_per_s": round(n / first_s),
        "ratio_vs_copy": round(first_s / copy_s, 2),
        "peak_rss_mb": max(r["peak_rss_mb"] for r in firsts + updates),
        "baseline_records_per_s": round(n / copy_s),
        "first_load_s": round(first_s, 2),
        "baseline_s": round(copy_s, 2),
        "baseline_peak_rss_mb": max(r["peak_rss_mb"] for r in copies),
        "phases_first_s": {k: round(med(firsts, k), 2) for k in phase_keys(firsts[0])},
        "chunk_size": settings.AURUM_INGEST_CHUNK_SIZE,
        "rounds": args.rounds,
        "cores": os.cpu_count(),
        "shared_cores": True,
    }
    if others:
        paired = statistics.median(a["seconds"] - o["seconds"] for a, o in zip(firsts, others, strict=True))
        print(f"against {args.against}: first load median {med(others):.2f} s; this checkout's median difference "
              f"per round {paired:+.2f} s")  # fmt: skip
        summary |= {"against_first_load_s": round(med(others), 2), "paired_difference_s": round(paired, 2)}
    if updates:
        update_s = med(updates)
        print(f"update load counts: {updates[-1]['counts']}; median update load {update_s:.2f} s "
              f"(×{update_s / copy_s:.2f})")  # fmt: skip
        summary |= {"update_records_per_s": round(n / update_s), "update_ratio_vs_copy": round(update_s / copy_s, 2),
                    "update_load_s": round(update_s, 2),
                    "phases_update_s": {k: round(med(updates, k), 2) for k in phase_keys(updates[0])}}  # fmt: skip
    return summary


def phase_keys(result: dict) -> list[str]:
    return [k for k in result if k.endswith("_s")]


def phase_line(result: dict) -> str:
    phases = ", ".join(f"{k[:-2]} {result[k]:.2f} s" for k in phase_keys(result))
    return f"{phases}, WAL {result['wal_mb']:,.0f} MB ({result['wal_full_pages']:,} full pages)"


def print_profile(path: str, top: int = 30) -> None:
    import pstats

    print(f"profile of one first load ({path}), by own time:")
    pstats.Stats(path, stream=sys.stdout).strip_dirs().sort_stats("tottime").print_stats(top)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=int, default=100_000, help="records per load (default 100,000)")
    parser.add_argument("--rounds", type=int, default=3, help="measured rounds (A B each), default 3")
    parser.add_argument("--warmup", type=int, default=20_000, help="records of the warm-up runs")
    parser.add_argument("--chunk-size", type=int, default=0, help="AURUM_INGEST_CHUNK_SIZE for the Aurum runs")
    parser.add_argument("--first-only", action="store_true", help="skip the update loads (quicker rounds)")
    parser.add_argument("--profile", help="also cProfile one first load into this file and print its top")
    parser.add_argument("--against", type=lambda path: Path(path).resolve(),
                        help="also a first load per round by another checkout (same migrations, its own venv not "
                             "used), alternately before and after this one's, with the difference per round")  # fmt: skip
    parser.add_argument("--worker", choices=("copy", "aurum"), help=argparse.SUPPRESS)
    parser.add_argument("--file", help=argparse.SUPPRESS)
    parser.add_argument("--database-url", help=argparse.SUPPRESS)
    parser.add_argument("--source", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        result = worker_copy(args) if args.worker == "copy" else worker_aurum(args)
        print(json.dumps(result))
        return 0

    url = postgres_url("bench/ingest.py")
    if url is None:
        return 0
    workdir = Path(tempfile.mkdtemp(prefix="aurum-bench-ingest-"))
    try:
        with throwaway_database(url) as bench_url:
            summary = run(args, bench_url, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
