"""Throughput of a compiled 10-step normalization pipeline (apps/compute/normalize.py), one core.

    .venv/bin/python bench/normalize.py [--records 200000]

Records look like a CSV upload (all strings) with varied values; the steps are a rename, three casts (a
German-formatted number, an integer, a date in a custom format), trim, case, map_codes, default, derive and
convert_unit. The last line is JSON: {"bench": "normalize", "records_per_s": ...}.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from datetime import date, timedelta

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from apps.compute.normalize import Step, compile_steps

STEPS = [
    Step("rename", "revenue", {"from": "Umsatz"}),
    Step("cast", "revenue", {"to": "number", "locale": "de"}),
    Step("cast", "quantity", {"to": "integer"}),
    Step("cast", "day", {"to": "date", "formats": ["%d.%m.%Y"]}),
    Step("trim", "region", {}),
    Step("case", "country", {"to": "upper"}),
    Step("map_codes", "region", {"mapping": {"N": "north", "S": "south", "E": "east", "W": "west"}, "strict": True}),
    Step("default", "channel", {"value": "direct"}),
    Step("derive", "unit_price", {"expression": "round(revenue / quantity, 2) if quantity else None"}),
    Step("convert_unit", "weight", {"from": "g", "to": "kg"}),
]


def make_records(count: int, seed: int = 7) -> list[dict[str, str]]:
    rng = random.Random(seed)  # noqa: S311 - reproducible test data, not secrets
    start = date(2023, 1, 1)
    records = []
    for _ in range(count):
        euros = rng.randint(0, 2_000_000)
        revenue = f"{euros // 100:,}".replace(",", ".") + f",{euros % 100:02d}"
        records.append(
            {
                "Umsatz": revenue,
                "quantity": str(rng.randint(0, 500)),
                "day": (start + timedelta(days=rng.randint(0, 729))).strftime("%d.%m.%Y"),
                "region": rng.choice(["N", " S", "E ", "W"]),
                "country": rng.choice(["de", "at", "ch", "fr"]),
                "channel": rng.choice(["web", "shop", None, ""]),
                "weight": rng.randint(1, 50_000),
            }
        )
    return records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=200_000)
    args = parser.parse_args()

    normalize = compile_steps(STEPS)
    records = make_records(args.records)
    for record in records[:1000]:  # warm up (and check the pipeline really is clean on this data)
        _, problems = normalize(record)
        assert not problems, problems

    started = time.perf_counter()
    rejected = 0
    for record in records:
        _, problems = normalize(record)
        if problems:
            rejected += 1
    elapsed = time.perf_counter() - started

    rate = len(records) / elapsed
    print(f"{len(records):,} records, {len(STEPS)} steps: {elapsed:.3f} s, {rate:,.0f} records/s, "
          f"{elapsed / len(records) * 1e6:.2f} µs/record, {rejected} rejected")  # fmt: skip
    print(json.dumps({"bench": "normalize", "records_per_s": round(rate)}))


if __name__ == "__main__":
    main()
