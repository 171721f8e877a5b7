"""A large batch posted to the API is processed by a real Celery worker over the real Redis broker.

How: the test runs the deployment as it is in production, three processes on the test
database: a web process (`manage.py runserver`), a Celery worker (as tests/runtime/
test_worker.py starts one, with its helpers), and this test, which is only an HTTP client.
Both subprocesses get the environment of a real deployment: AURUM_CELERY_EAGER=0,
CELERY_BROKER_URL = the test Redis, AURUM_CELERY_QUEUE = a unique queue (deleted
afterwards), and AURUM_INLINE_BATCH_BYTES=1000, so a ~200 kB body is "large": the web
process answers 202 and its `transaction.on_commit` dispatch publishes `compute.process_batch`
to Redis, where only our worker listens.

Why not in this process: tests/conftest.py makes Celery eager for the whole session, and
un-doing that here would mean changing the global Celery app (eager flag, broker URL,
default queue) and resetting the caches it builds from them on first use (the connection
and producer pools, the queue and router tables), then restoring all of it for the tests
that follow. A web process configured by its environment needs none of that, and is what
runs in production. The test process only reads the database to check the result.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest
import redis

from apps.compute import services as compute
from apps.compute.models import PipelineRun
from apps.storage.choices import FINAL_BATCH_STATUSES
from apps.storage.models import GoldenDataPoint, IngestionBatch, RawRecord
from tests.compute.conftest import FIELDS, activate_contract
from tests.conftest import REDIS_URL
from tests.factories import ApiTokenFactory
from tests.runtime.test_worker import PROJECT_ROOT, TIMEOUT_SECONDS, _cleanup_queue, _env

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.worker, pytest.mark.django_db(transaction=True)]

RECORDS = 2000
CHUNK = 500
PROCESS_TIMEOUT_SECONDS = 180


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Process:
    """A subprocess with its output in a file, for assertion messages."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], log_dir: Path) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self.log = self.log_path.open("w")
        self.popen = subprocess.Popen(args, cwd=PROJECT_ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT)

    def output(self) -> str:
        self.log.flush()
        return f"--- {self.name} output:\n{self.log_path.read_text(errors='replace')[-6000:]}"

    def assert_alive(self) -> None:
        assert self.popen.poll() is None, f"{self.name} exited with {self.popen.returncode}\n{self.output()}"

    def stop(self) -> None:
        self.popen.terminate()
        try:
            self.popen.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait()
        self.log.close()


def _request(url: str, token: str, *, body: bytes | None = None, headers: dict[str, str] | None = None) -> Any:
    request = urllib.request.Request(  # noqa: S310 (a loopback test server)
        url, data=body, method="POST" if body is not None else "GET",
        headers={"Authorization": f"Bearer {token}", "Accept": "application/json", **(headers or {})},
    )  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
            return response.status, dict(response.headers), json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.loads(error.read() or b"null")


@pytest.fixture
def source(tenant_a, people):
    """Store ids of four digits: 2,000 distinct primary keys."""
    fields = [{**f, "pattern": "^S[0-9]{4}$"} if f["name"] == "store_id" else f for f in FIELDS]
    contract = activate_contract(tenant_a, people, key="store-sales", fields=fields)
    return compute.source_create(actor=people["steward"], tenant=tenant_a, contract=contract, key="tills",
                                 name="Tills")  # fmt: skip


def _ndjson() -> bytes:
    lines = (
        json.dumps({"sale_date": f"2026-10-{1 + i % 28:02d}", "store_id": f"S{i:04d}",
                    "region": "north" if i % 2 else "south", "revenue": f"{i}.50", "units": str(i % 7)})
        for i in range(RECORDS)
    )  # fmt: skip
    return ("\n".join(lines) + "\n").encode()


def test_a_large_batch_is_queued_to_a_real_worker_and_completes(source, people, tmp_path):
    token = ApiTokenFactory(tenant=source.tenant, user=people["steward"], scopes=["read", "write"]).plain
    queue = f"aurum-test-{uuid.uuid4().hex}"
    env = _env(queue)
    env.update(AURUM_INLINE_BATCH_BYTES="1000", AURUM_INGEST_CHUNK_SIZE=str(CHUNK), AURUM_VAR_DIR=str(tmp_path),
               AURUM_OPENLINEAGE_FILE="", AURUM_OPENLINEAGE_URL="")  # fmt: skip
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    body = _ndjson()
    assert len(body) > 100 * 1000

    processes: list[Process] = []
    try:
        worker = Process("worker", [
            sys.executable, "-m", "celery", "-A", "config", "worker", "--pool", "solo", "--concurrency", "1",
            "-Q", queue, "-n", f"{queue}@%h", "--without-gossip", "--without-mingle", "--without-heartbeat",
            "--loglevel", "info",
        ], env, tmp_path)  # fmt: skip
        processes.append(worker)
        web = Process("web", [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"], env,
                      tmp_path)  # fmt: skip
        processes.append(web)

        def diagnostics() -> str:
            return "\n".join(p.output() for p in processes)

        deadline = time.monotonic() + TIMEOUT_SECONDS
        while True:
            web.assert_alive()
            try:
                with urllib.request.urlopen(f"{base}/health/live", timeout=2) as response:  # noqa: S310
                    if response.status == 200:
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, f"the web process did not start.\n{diagnostics()}"
            time.sleep(0.2)

        status, headers, batch = _request(
            f"{base}/api/v1/sources/{source.pk}/batches/", token, body=body,
            headers={"Content-Type": "application/x-ndjson", "Idempotency-Key": "export-2026-10"},
        )  # fmt: skip
        assert status == 202, f"{status} {batch}\n{diagnostics()}"
        assert batch["status"] == "received" and batch["finished_at"] is None
        assert headers["Location"] == f"{base}/api/v1/batches/{batch['id']}/"

        deadline = time.monotonic() + PROCESS_TIMEOUT_SECONDS
        polled = []
        while batch["status"] not in FINAL_BATCH_STATUSES:
            worker.assert_alive()
            assert time.monotonic() < deadline, f"still {batch['status']} after {PROCESS_TIMEOUT_SECONDS}s\n" + (
                diagnostics()
            )
            time.sleep(0.25)
            status, _, batch = _request(headers["Location"], token)
            assert status == 200, batch
            polled.append(batch["status"])

        assert batch["status"] == "completed", f"{batch}\n{diagnostics()}"
        assert (batch["received"], batch["accepted"], batch["rejected"]) == (RECORDS, RECORDS, 0)
        assert batch["gdps_created"] == 2 * RECORDS

        # A retry of the same delivery answers 200 with the same batch, and queues nothing.
        status, _, again = _request(f"{base}/api/v1/sources/{source.pk}/batches/", token, body=body,
                                    headers={"Content-Type": "application/x-ndjson",
                                             "Idempotency-Key": "export-2026-10"})  # fmt: skip
        assert (status, again["id"], again["status"]) == (200, batch["id"], "completed")
        _wait_until_drained(queue)
    finally:
        for process in reversed(processes):
            process.stop()
        leftover = redis.Redis.from_url(REDIS_URL).llen(queue)
        _cleanup_queue(queue)

    assert leftover == 0  # the worker consumed (and acknowledged) every message
    stored = IngestionBatch.objects.get(pk=batch["id"])
    assert (stored.processed_through, stored.size_bytes) == (RECORDS - 1, len(body))
    assert RawRecord.objects.filter(batch=stored).count() == RECORDS
    assert GoldenDataPoint.objects.current().filter(batch=stored).count() == 2 * RECORDS
    assert list(PipelineRun.objects.filter(batch=stored).values_list("status", flat=True)) == ["completed"]
    assert IngestionBatch.objects.count() == 1


def _wait_until_drained(queue: str, quiet_seconds: float = 2.0) -> None:
    """The batch's end sends `batch.completed`, whose dispatch on the worker queues its handlers: wait until
    the queue has stayed empty for a while, so that the worker is not stopped between one task and the next
    one it queued."""
    client = redis.Redis.from_url(REDIS_URL)
    deadline, quiet_since = time.monotonic() + PROCESS_TIMEOUT_SECONDS, None
    try:
        while time.monotonic() < deadline:
            if client.llen(queue):
                quiet_since = None
            elif quiet_since is None:
                quiet_since = time.monotonic()
            elif time.monotonic() - quiet_since >= quiet_seconds:
                return
            time.sleep(0.1)
    finally:
        client.close()
