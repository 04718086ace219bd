"""Before/after per revision over 10 million events: GET /api/v1/reports/savings?group_by=revision.

    .venv/bin/python bench/revision_report.py [--events 10000000] [--requests 200] [--keep]

bench/report.py's generator (generate_series, last 30 days) with the events spread over 5
revisions in time order, rolled up (which also fills tracking_revisionrollup), plus a
not-yet-rolled-up tail of 20,000 events. Serves the README's run command (uvicorn ASGI,
2 workers) and times, over HTTP, the savings report with and without group_by=revision
(the difference is the by-revision part), then the `revision_breakdown` selector in-process.
Prints the rollup table sizes. Own database (BENCH_DB, default rp_bench_revisions); dropped at
the end unless --keep.
"""

from __future__ import annotations

import argparse
import http.client
import os
import sys
import uuid
from datetime import UTC, datetime

import psycopg
from common import (
    SECRET_KEY,
    create_database,
    database_url,
    drop_database,
    generate_events,
    get_timings,
    p50_p95,
    serve,
    setup_django,
    timed_ms,
)
from report import GENERATE

from config.embedded import free_port

DB = os.environ.get("BENCH_DB", "rp_bench_revisions")
REVISIONS = 5
# Same rows as bench/report.py, but revision 1..5 by time (oldest events: the first revision).
GENERATE_REVISIONS = GENERATE.replace(
    "pg_current_xact_id()::text::bigint, 1,",
    f"pg_current_xact_id()::text::bigint, {REVISIONS} - (g::bigint * {REVISIONS} - 1) / %(total)s,",
)
assert GENERATE_REVISIONS != GENERATE


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()

    create_database(DB)
    setup_django(DB)
    from controlplane.actors import Actor
    from controlplane.services import create_api_key, create_router, set_flag
    from tracking.ingest import record_events
    from tracking.revision_report import revision_breakdown

    actor = Actor.system("bench")
    router = create_router(slug="bench", actor=actor)
    for percent in range(1, REVISIONS):  # revisions 2..5
        set_flag(router=router, name="routellm_enabled", enabled=True, rollout_percent=percent * 20,
                 actor=actor)  # fmt: skip
    _, key = create_api_key(router=router, role="viewer", actor=actor)
    generate_events(GENERATE_REVISIONS, DB, router.pk, args.events)
    with psycopg.connect(database_url(DB), autocommit=True) as conn:
        for table in ("event", "eventrollup", "eventdailyrollup", "revisionrollup"):
            conn.execute(f"VACUUM ANALYZE tracking_{table}")
        sizes = {
            table: conn.execute(f"SELECT count(*) FROM tracking_{table}").fetchone()[0]
            for table in ("eventrollup", "eventdailyrollup", "revisionrollup")
        }
    print("rollup rows: " + ", ".join(f"{t} {n:,}" for t, n in sizes.items()))
    now = datetime.now(UTC).isoformat()
    for _ in range(20):  # a tail the rollup job has not folded: read raw
        record_events(
            router_id=router.pk,
            payload={"events": [
                {"event_id": str(uuid.uuid4()), "timestamp": now, "revision": REVISIONS,
                 "selected_model": "gpt-3.5-turbo", "prompt_tokens": 300,
                 "completion_tokens": 120, "latency_ms": 80}
                for _ in range(1000)
            ]},
        )  # fmt: skip

    port = free_port()
    env = dict(
        os.environ,
        DATABASE_URL=database_url(DB),
        DEBUG="0",
        SECRET_KEY=SECRET_KEY,
        ALLOWED_HOSTS="127.0.0.1,localhost",
        ROUTEPLANE_API_RATE="100000000/min",
        SECURE_SSL_REDIRECT="0",  # plain HTTP on loopback
    )
    command = [
        sys.executable, "-m", "uvicorn", "config.asgi:application", "--workers", "2",
        "--host", "127.0.0.1", "--port", str(port), "--no-access-log", "--log-level", "warning",
    ]  # fmt: skip
    with serve(command, port, env):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        headers = {"Authorization": f"Bearer {key}"}
        for suffix in ("", "&group_by=revision"):
            path = f"/api/v1/reports/savings?period_days=30{suffix}"
            timings, body = get_timings(conn, path, headers, args.requests, warmup=10)
            p50, p95 = p50_p95(timings)
            rows = len(__import__("orjson").loads(body).get("by_revision", []))
            print(
                f"GET {path}: p50 {p50:.1f} ms, p95 {p95:.1f} ms over {len(timings)} requests"
                f" ({rows} revision rows)"
            )
    for period in (7, 30):
        p50, p95 = p50_p95(
            timed_ms(lambda p=period: revision_breakdown(router=router, period_days=p), 200)
        )
        print(
            f"selector revision_breakdown(period_days={period}): p50 {p50:.1f} ms, p95 {p95:.1f} ms"
        )
    if not args.keep:
        drop_database(DB)


if __name__ == "__main__":
    main()
