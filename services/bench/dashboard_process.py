"""Runs the analytics benchmark hook in a process of its own; prints its report as JSON.

`python -m services.bench.dashboard_process EVENTS` with the bench's environment (REDIS_URL,
REDIS_NAMESPACE): loads EVENTS demo events into the aggregates and times every dashboard call.
"""

from __future__ import annotations

import json
import sys

import redis

from services.profiles.analytics import bench
from shared.settings import load_settings


def main() -> None:
    settings = load_settings()
    client = redis.Redis.from_url(settings.redis_url)
    try:
        report = bench.run_bench(settings, client, n_events=int(sys.argv[1]), repeats=3,
                                 show_progress=False)
    finally:
        client.close()
    print(json.dumps({"events": report.events, "decisions": report.decisions,
                      "generate_s": round(report.generate_s, 2),
                      "load_s": round(report.load_s, 2),
                      "calls": {name: {k: round(v, 4) for k, v in call.items()}
                                for name, call in report.calls.items()}}), flush=True)


if __name__ == "__main__":
    main()
