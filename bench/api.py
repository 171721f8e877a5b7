"""Benchmark: api — the products list and KPI values endpoints under load, against a bare Django view.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres .venv/bin/python bench/api.py [--scale SECONDS]

Needs PostgreSQL: without a postgres:// DATABASE_URL it says so and exits 0. It creates its own
database (aurum_bench_<random>) on that server, runs Django's migrations into it, and drops it at
the end, also on failure or Ctrl-C; the gunicorn server it starts is stopped then too.

Setup: `manage.py seed_demo` (tenant acme, the store-sales contract, the computed and published KPI
`store-revenue`), 50 more published, listed data products for acme through the catalog services (so
the list has a full page of 50), and a read token from `manage.py create_api_token`.

Server: gunicorn on `bench.api:wsgi_app()`, which is config.settings with ROOT_URLCONF set to
bench.api_urls (config.urls plus `/bench/bare/?bytes=N`, a JsonResponse of exactly N bytes: no
authentication, no database). DEBUG off, persistent database connections, API throttling set so
high it never answers 429. Two worker models are tried briefly on the products list (2 sync
workers; 2 gthread workers × 4 threads); the faster one is kept for the measurement.

Load: a separate process whose threads each hold one keep-alive http.client connection (16 by
default) and send GETs back to back: a warm-up (2 s) and then `--scale` seconds measured, recording
every latency. For each endpoint its response size is measured first, and the baseline is the bare
view returning that many bytes. Runs alternate, bare then real (A B A B …), `--rounds` times per
endpoint; medians of the rounds are reported. The load generator, gunicorn and PostgreSQL share the
machine's cores (not pinned), so the figures include that contention: the client's own Python time
counts in the latencies of both the baseline and the endpoints.
`queries_per_request` is counted in-process with Django's test client (CaptureQueriesContext) on
the same database, for a warm request as the load sends it (token and read caches hit), and
`queries_when_built` with both caches off. With --profile it also lists those queries and prints a
cProfile top of 30 in-process requests to each endpoint. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import io
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

from bench._common import postgres_url, throwaway_database  # noqa: E402

PRODUCTS = 50
ENDPOINTS = {
    "products": "/api/v1/products/",
    "kpi_values": "/api/v1/kpis/store-revenue/values/",
}
WORKER_MODELS = {
    "sync": ["--workers", "2"],
    "gthread": ["--workers", "2", "--worker-class", "gthread", "--threads", "4"],
}
HOST = "127.0.0.1"


# --------------------------------------------------------------------------------------------------
# The server's WSGI callable (gunicorn imports this module and calls it)


def wsgi_app():
    """config.settings with bench/api_urls.py as the URL map: the API plus the bare baseline view."""
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
    from django.conf import settings

    settings.ROOT_URLCONF = "bench.api_urls"
    from django.core.wsgi import get_wsgi_application

    return get_wsgi_application()


# --------------------------------------------------------------------------------------------------
# The load generator (its own process)


def worker_load(args: argparse.Namespace) -> dict:
    """`--connections` threads, each one keep-alive connection, GETs back to back; latencies of the measured part."""
    headers = {"Host": HOST, "Accept": "application/json"}
    if args.token:
        headers["Authorization"] = f"Bearer {args.token}"
    start_at = time.perf_counter() + args.warmup
    stop_at = start_at + args.seconds
    latencies: list[list[float]] = [[] for _ in range(args.connections)]
    errors = [0] * args.connections
    sizes = [0] * args.connections
    barrier = threading.Barrier(args.connections)

    def client(index: int) -> None:
        own, perf = latencies[index], time.perf_counter
        conn = http.client.HTTPConnection(HOST, args.port, timeout=30)
        barrier.wait()
        while True:
            began = perf()
            if began >= stop_at:
                break
            try:
                conn.request("GET", args.path, headers=headers)
                response = conn.getresponse()
                body = response.read()
            except (OSError, http.client.HTTPException):
                errors[index] += 1
                conn.close()
                conn = http.client.HTTPConnection(HOST, args.port, timeout=30)
                continue
            ended = perf()
            if response.status != 200:
                errors[index] += 1
            if began >= start_at:
                own.append(ended - began)
                sizes[index] = len(body)
        conn.close()

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(args.connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    merged = sorted(value for own in latencies for value in own)
    if not merged:
        return {"requests": 0, "errors": sum(errors), "rps": 0.0, "p50_ms": None, "p99_ms": None}
    return {
        "requests": len(merged),
        "errors": sum(errors),
        "rps": len(merged) / args.seconds,
        "p50_ms": percentile(merged, 50) * 1000,
        "p99_ms": percentile(merged, 99) * 1000,
        "mean_ms": statistics.fmean(merged) * 1000,
        "bytes": max(sizes),
    }


def percentile(ordered: list[float], p: float) -> float:
    index = min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))  # nearest rank
    return ordered[index]


# --------------------------------------------------------------------------------------------------
# The driver


def setup_fixtures() -> str:
    """seed_demo, 50 published listed products for acme, a read token: the token."""
    from django.core.management import call_command

    from apps.consumption.catalog import services as catalog
    from apps.consumption.catalog.choices import ProductKindChoices, ProductVisibilityChoices
    from apps.host import services as host
    from apps.host.models import DataContract
    from apps.host.selectors import tenant_get

    call_command("seed_demo", stdout=io.StringIO(), stderr=io.StringIO())
    acme = tenant_get(slug="acme")
    admin = host.user_get_or_create(username="acme-admin")
    contract = DataContract.objects.filter(tenant=acme).order_by("pk").first()
    for i in range(PRODUCTS):
        product = catalog.product_create(
            actor=admin, tenant=acme, slug=f"bench-product-{i:02d}", name=f"Bench product {i:02d}",
            description=f"Store sales, **cut {i}**: revenue, units and returns by store and day.\n\n"
                        "- daily\n- by region and channel\n",
            owner=admin, domain="sales", tags=["bench", "retail", f"cut-{i % 5}"], classification="internal",
            kind=ProductKindChoices.GDP_DATASET, contract=contract, visibility=ProductVisibilityChoices.LISTED,
        )  # fmt: skip
        catalog.product_publish(actor=admin, product=product)
    out = io.StringIO()
    call_command("create_api_token", tenant="acme", user="acme-admin", scopes="read", stdout=out,
                 stderr=io.StringIO())  # fmt: skip
    return out.getvalue().strip()


def queries_per_request(token: str, *, show: bool = False, cached: bool = True) -> dict[str, int]:
    """SQL queries of one (second, warm) request to each endpoint, through Django's test client; with
    `cached=False` the read and token caches are off: what building the response costs."""
    from django.core.cache import cache
    from django.db import connection
    from django.test import Client, override_settings
    from django.test.utils import CaptureQueriesContext

    client = Client(HTTP_AUTHORIZATION=f"Bearer {token}", HTTP_HOST=HOST)
    counts = {}
    seconds = {} if cached else {"AURUM_API_READ_CACHE_SECONDS": 0, "AURUM_TOKEN_CACHE_SECONDS": 0}
    for name, path in ENDPOINTS.items():
        cache.clear()
        first = client.get(path)
        if first.status_code != 200:
            raise RuntimeError(f"{path} answered {first.status_code}: {first.content[:500]!r}")
        with override_settings(**seconds), CaptureQueriesContext(connection) as captured:
            client.get(path)
        counts[name] = len(captured)
        if show:
            print(f"queries of one request to {name}:")
            for query in captured.captured_queries:
                print(f"  {query['time']} s  {query['sql'][:300]}")
    return counts


def print_profile(token: str, requests: int = 30, top: int = 25) -> None:
    """cProfile `requests` warm requests to each endpoint through the test client; the top by own time."""
    import cProfile
    import pstats

    from django.test import Client

    client = Client(HTTP_AUTHORIZATION=f"Bearer {token}", HTTP_HOST=HOST)
    for name, path in ENDPOINTS.items():
        client.get(path)
        started = time.perf_counter()
        for _ in range(requests):
            client.get(path)
        plain = (time.perf_counter() - started) / requests * 1000
        profiler = cProfile.Profile()
        started = time.perf_counter()
        profiler.enable()
        for _ in range(requests):
            client.get(path)
        profiler.disable()
        per = (time.perf_counter() - started) / requests * 1000
        print(
            f"profile of {requests} requests to {name} in-process ({plain:.1f} ms each, {per:.1f} ms under the profiler), by own time:"
        )
        pstats.Stats(profiler, stream=sys.stdout).strip_dirs().sort_stats("tottime").print_stats(top)
        pstats.Stats(profiler, stream=sys.stdout).strip_dirs().sort_stats("cumulative").print_stats(top)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


class Server:
    """gunicorn on bench.api:wsgi_app() with one worker model; started and stopped by pid."""

    def __init__(self, model: str, env: dict[str, str], log: Path) -> None:
        self.model, self.port, self.log = model, free_port(), log
        gunicorn = Path(sys.executable).with_name("gunicorn")
        command = [str(gunicorn), "--chdir", str(ROOT), "--bind", f"{HOST}:{self.port}", *WORKER_MODELS[model],
                   "--keep-alive", "30", "--log-level", "warning", "bench.api:wsgi_app()"]  # fmt: skip
        self.output = open(log, "ab")  # noqa: SIM115
        self.process = subprocess.Popen(command, env=env, stdout=self.output, stderr=subprocess.STDOUT)  # noqa: S603
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited ({self.process.returncode}):\n{self.tail()}")
            with contextlib.suppress(OSError, http.client.HTTPException):
                if self.get("/bench/bare/?bytes=100")[0] == 200:
                    return
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"gunicorn did not answer within 60 s:\n{self.tail()}")

    def get(self, path: str, token: str | None = None) -> tuple[int, bytes]:
        conn = http.client.HTTPConnection(HOST, self.port, timeout=10)
        try:
            headers = {"Host": HOST, "Accept": "application/json"}
            if token:
                headers["Authorization"] = f"Bearer {token}"
            conn.request("GET", path, headers=headers)
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()

    def tail(self) -> str:
        with contextlib.suppress(OSError):
            return self.log.read_text(errors="replace")[-4000:]
        return ""

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.output.close()


def load(server: Server, path: str, *, seconds: float, warmup: float, connections: int, token: str | None) -> dict:
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", "load", "--port", str(server.port),
               "--path", path, "--seconds", str(seconds), "--warmup", str(warmup),
               "--connections", str(connections)]  # fmt: skip
    if token:
        command += ["--token", token]
    done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=seconds + warmup + 120)  # noqa: S603
    if done.returncode != 0:
        raise RuntimeError(f"load run failed ({done.returncode}):\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if result["errors"] or not result["requests"]:
        raise RuntimeError(f"load on {path}: {result['errors']} errors, {result['requests']} requests\n"
                           f"{server.tail()}")  # fmt: skip
    return result


def shared_cache() -> dict[str, str]:
    """Several gunicorn workers share one cache in production (Redis, `AURUM_CACHE_URL`): its own
    database on the local Redis when it answers, `AURUM_BENCH_CACHE_URL` to choose another."""
    url = os.environ.get("AURUM_BENCH_CACHE_URL", "redis://127.0.0.1:6379/14")
    try:
        import redis

        client = redis.Redis.from_url(url, socket_connect_timeout=1)
        client.ping()
        client.flushdb()
    except Exception as exc:
        print(f"no Redis at {url} ({exc}): each worker keeps its own local-memory cache, token cache off")
        return {}
    print(f"cache: Redis at {url} (read and token caches shared by the workers)")
    return {"AURUM_CACHE_URL": url}


def line(result: dict) -> str:
    return f"{result['rps']:,.0f} req/s, p50 {result['p50_ms']:.1f} ms, p99 {result['p99_ms']:.1f} ms"


def run(args: argparse.Namespace, bench_url: str, workdir: Path, servers: list[Server]) -> dict:
    import django

    env = {**os.environ, "DATABASE_URL": bench_url, "AURUM_DEBUG": "0", "AURUM_LOG_LEVEL": "WARNING",
           "AURUM_API_RATE": "100000000/min", "AURUM_ALLOWED_HOSTS": HOST, "AURUM_VAR_DIR": str(workdir / "var"),
           "DJANGO_SETTINGS_MODULE": "config.settings", **shared_cache()}  # fmt: skip
    os.environ.update(env)
    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    started = time.perf_counter()
    token = setup_fixtures()
    print(f"seed_demo, {PRODUCTS} more products and a read token in {time.perf_counter() - started:.1f} s")
    queries = queries_per_request(token, show=args.profile)
    built = queries_per_request(token, cached=False)
    print(f"SQL queries per request: {queries} served from the read and token caches (what the load "
          f"measures), {built} when built")  # fmt: skip
    if args.profile:
        print_profile(token)
    print(f"CONN_MAX_AGE={settings.DATABASES['default'].get('CONN_MAX_AGE')}, DEBUG off, "
          f"API rate {env['AURUM_API_RATE']} (no throttling)")  # fmt: skip
    print(f"{os.cpu_count()} cores, shared by the load generator ({args.connections} threads in one process), "
          "gunicorn and PostgreSQL (not pinned): both the baseline and the endpoints' figures include that "
          "contention, and the client's own Python time counts in every latency.")  # fmt: skip
    log = workdir / "gunicorn.log"

    # Pick the worker model: a short run of the products list on each.
    trial = {}
    for model in WORKER_MODELS:
        server = Server(model, env, log)
        servers.append(server)
        try:
            trial[model] = load(server, ENDPOINTS["products"], seconds=args.trial, warmup=1.0,
                                connections=args.connections, token=token)  # fmt: skip
        finally:
            server.stop()
            servers.remove(server)
        print(f"trial {model} ({' '.join(WORKER_MODELS[model])}): products {line(trial[model])}", flush=True)
    model = max(trial, key=lambda m: trial[m]["rps"])
    print(
        f"kept: {model}"
        + (
            " (sync workers close the connection after each response: the client reconnects "
            "for every request, for the bare view and the endpoints alike)"
            if model == "sync"
            else ""
        )
    )

    server = Server(model, env, log)
    servers.append(server)
    sizes = {}
    for name, path in ENDPOINTS.items():
        status, body = server.get(path, token)
        if status != 200:
            raise RuntimeError(f"{path} answered {status}: {body[:500]!r}")
        sizes[name] = len(body)
        bare_status, bare_body = server.get(f"/bench/bare/?bytes={sizes[name]}")
        if bare_status != 200 or len(bare_body) != sizes[name]:
            raise RuntimeError(f"the bare view answered {bare_status} with {len(bare_body)} bytes, not {sizes[name]}")
    if json.loads(server.get(ENDPOINTS["products"], token)[1]).get("count", 0) < PRODUCTS:
        raise RuntimeError("the products list has less than a full page")
    print(f"response bodies: {', '.join(f'{n} {s:,} bytes' for n, s in sizes.items())}")

    results: dict[str, dict[str, list[dict]]] = {name: {"bare": [], "real": []} for name in ENDPOINTS}
    for round_ in range(1, args.rounds + 1):
        for name, path in ENDPOINTS.items():
            bare = load(server, f"/bench/bare/?bytes={sizes[name]}", seconds=args.scale, warmup=args.warmup,
                        connections=args.connections, token=None)  # fmt: skip
            real = load(server, path, seconds=args.scale, warmup=args.warmup, connections=args.connections,
                        token=token)  # fmt: skip
            results[name]["bare"].append(bare)
            results[name]["real"].append(real)
            print(f"round {round_} {name}: bare {line(bare)} | Aurum {line(real)} "
                  f"(×{real['rps'] / bare['rps']:.2f} of bare)", flush=True)  # fmt: skip
    server.stop()
    servers.remove(server)

    def med(runs: list[dict], key: str) -> float:
        return statistics.median(r[key] for r in runs)

    endpoints = {}
    for name in ENDPOINTS:
        bare, real = results[name]["bare"], results[name]["real"]
        endpoints[name] = {
            "rps": round(med(real, "rps")),
            "p50_ms": round(med(real, "p50_ms"), 1),
            "p99_ms": round(med(real, "p99_ms"), 1),
            "ratio_vs_bare": round(med(real, "rps") / med(bare, "rps"), 2),
            "bare_rps": round(med(bare, "rps")),
            "bare_p50_ms": round(med(bare, "p50_ms"), 1),
            "bare_p99_ms": round(med(bare, "p99_ms"), 1),
            "bytes": sizes[name],
            "queries_per_request": queries[name],
            "queries_when_built": built[name],
        }
        e = endpoints[name]
        print(f"medians of {args.rounds} for {name} ({e['bytes']:,} bytes, {e['queries_per_request']} queries): "
              f"{e['rps']:,} req/s, p50 {e['p50_ms']} ms, p99 {e['p99_ms']} ms; bare {e['bare_rps']:,} req/s, "
              f"p99 {e['bare_p99_ms']} ms; ratio {e['ratio_vs_bare']} (goal ≥ 0.5, p99 < 100 ms)")  # fmt: skip
    worst = min(endpoints.values(), key=lambda e: e["ratio_vs_bare"])
    return {
        "bench": "api",
        "seconds": args.scale,
        "rps": min(e["rps"] for e in endpoints.values()),
        "ratio_vs_bare": worst["ratio_vs_bare"],
        "p99_ms": max(e["p99_ms"] for e in endpoints.values()),
        "queries_per_request": max(queries.values()),
        "queries_when_built": max(built.values()),
        "endpoints": endpoints,
        "server": f"gunicorn {model} ({' '.join(WORKER_MODELS[model])})",
        "trial_rps": {m: round(r["rps"]) for m, r in trial.items()},
        "connections": args.connections,
        "rounds": args.rounds,
        "cores": os.cpu_count(),
        "shared_cores": True,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=10.0, help="seconds of measured load per run (default 10)")
    parser.add_argument("--rounds", type=int, default=2, help="measured rounds (bare, Aurum) per endpoint, default 2")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of warm-up load before each run")
    parser.add_argument("--trial", type=float, default=3.0, help="seconds of each worker model's trial")
    parser.add_argument("--connections", type=int, default=16, help="concurrent keep-alive connections")
    parser.add_argument(
        "--profile", action="store_true", help="also cProfile the endpoints in-process and print the top"
    )
    parser.add_argument("--worker", choices=("load",), help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--path", help=argparse.SUPPRESS)
    parser.add_argument("--seconds", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--token", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker_load(args)))
        return 0

    url = postgres_url("bench/api.py")
    if url is None:
        return 0
    workdir = Path(tempfile.mkdtemp(prefix="aurum-bench-api-"))
    servers: list[Server] = []
    try:
        with throwaway_database(url) as bench_url:
            try:
                summary = run(args, bench_url, workdir, servers)
            finally:  # gunicorn's connections go before the database does
                for server in servers:
                    with contextlib.suppress(Exception):
                        server.stop()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
