"""Parsing throughput: records/s for 200,000 10-field records in each payload format (not a test).

    .venv/bin/python bench/parsers.py [--records N] [--repeat R]

Prints one line per format, then a JSON summary line:
{"bench": "parsers", "ndjson_records_per_s": ..., "csv_records_per_s": ..., "json_records_per_s": ...}
The payloads are built in memory first; only `iter_records` over a BytesIO is timed (best of R runs).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

from apps.compute.ingest.parsers import iter_records

COLUMNS = ["id", "name", "email", "country", "amount", "quantity", "active", "sku", "created_at", "note"]


def record(i: int) -> dict:
    return {
        "id": i,
        "name": f"Customer {i}",
        "email": f"customer{i}@example.com",
        "country": ("FR", "DE", "US", "JP")[i % 4],
        "amount": round(i * 1.37, 2),
        "quantity": i % 17,
        "active": i % 3 != 0,
        "sku": f"SKU-{i % 1000:04d}",
        "created_at": f"2024-{i % 12 + 1:02d}-{i % 28 + 1:02d}T10:{i % 60:02d}:00Z",
        "note": "" if i % 5 else "needs review, priority",
    }


def payloads(count: int) -> dict[str, bytes]:
    records = [record(i) for i in range(count)]
    ndjson = "".join(json.dumps(r) + "\n" for r in records).encode()
    array = ("[\n" + ",\n".join("  " + json.dumps(r) for r in records) + "\n]\n").encode()
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    writer.writerows([r[c] for c in COLUMNS] for r in records)
    return {"ndjson": ndjson, "csv": text.getvalue().encode(), "json": array}


def measure(data: bytes, fmt: str, expected: int, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        count = sum(1 for _ in iter_records(io.BytesIO(data), fmt))
        best = min(best, time.perf_counter() - start)
        assert count == expected, (fmt, count)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    summary: dict[str, object] = {"bench": "parsers", "records": args.records}
    for fmt, data in payloads(args.records).items():
        seconds = measure(data, fmt, args.records, args.repeat)
        rate = args.records / seconds
        print(
            f"{fmt:>6}: {args.records:,} records, {len(data) / 1e6:.1f} MB in {seconds:.3f} s = {rate:,.0f} records/s"
        )
        summary[f"{fmt}_records_per_s"] = round(rate)
        summary[f"{fmt}_mb_per_s"] = round(len(data) / 1e6 / seconds, 1)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
