"""Savings report latency over 10 million events: GET /api/v1/reports/savings p50 / p95.

    .venv/bin/python bench/report.py [--events 10000000] [--requests 200] [--keep] [--reuse]

Generates the events server-side (generate_series) over the last 30 days in its own database
(BENCH_DB, default rp_bench_report, on BENCH_PG, default postgres://postgres@127.0.0.1:5432),
rolls them up (hourly and daily rollups), adds a not-yet-rolled-up tail of 20,000 fresh events,
serves the API with gunicorn (2 workers) and times the report over HTTP. Then times the
selectors the dashboard calls (savings_report for its periods, overview_stats) in-process and
checks the 30-day report against a raw recount. Dropped at the end unless --keep; --reuse folds
the previous run's tail first, so every run reads the same 20,000-event tail.
Goals: API p95 < 100 ms; dashboard selectors p95 < 200 ms.
"""

from __future__ import annotations

import argparse
import http.client
import os

import psycopg
from common import (
    bench_router,
    create_database,
    database_url,
    drop_database,
    generate_events,
    get_timings,
    gunicorn,
    p50_p95,
    setup_django,
    timed_ms,
)

DB = os.environ.get("BENCH_DB", "rp_bench_report")
DB_URL = database_url(DB)

GENERATE = """
INSERT INTO tracking_event (
    router_id, event_id, "timestamp", received_at, ingest_xid, revision, domains, domain,
    routing_method, selected_model, model_tier, prompt_tokens, completion_tokens,
    estimated_cost, cost, baseline_cost, latency_ms, success, fallback_used, error,
    text_sha256, text_length, ab_group)
SELECT %(router)s, gen_random_uuid(),
       now() - (g * %(span)s::float8 / %(total)s) * interval '1 second', now(),
       pg_current_xact_id()::text::bigint, 1,
       ARRAY[(ARRAY['technical','legal','medical','creative','general'])[g %% 5 + 1]],
       (ARRAY['technical','legal','medical','creative','general'])[g %% 5 + 1],
       CASE WHEN g %% 3 = 0 THEN 'domain' ELSE 'routellm' END,
       (ARRAY['gpt-3.5-turbo','gpt-4-1106-preview','gpt-4o-mini','mystery'])[g %% 4 + 1],
       (ARRAY['weak','strong','other','other'])[g %% 4 + 1],
       100 + g %% 900, 50 + g %% 300, NULL,
       CASE WHEN g %% 4 = 3 THEN NULL ELSE (100 + g %% 900) * 5e-7 + (50 + g %% 300) * 1.5e-6 END,
       CASE WHEN g %% 4 = 3 THEN NULL ELSE (100 + g %% 900) * 1e-5 + (50 + g %% 300) * 3e-5 END,
       20 + (g::bigint * 7919) %% 2000, g %% 50 <> 0, g %% 100 = 0, '', '', 120,
       CASE WHEN g %% 2 = 0 THEN 'a' ELSE 'b' END
FROM generate_series(%(low)s::int, %(high)s::int) AS g  -- small values arrive as int2: ambiguous
"""


def percentiles(run, count: int) -> tuple[float, float]:
    return p50_p95(timed_ms(run, count, warmup=5))


def dashboard_selectors(router, count: int) -> None:
    """The selectors behind the dashboard pages, in-process, and one exactness check."""
    from datetime import UTC, datetime

    from django.db import connection

    from tracking.reports import overview_stats, savings_report

    for period in (1, 7, 30, 90):
        p50, p95 = percentiles(lambda p=period: savings_report(router=router, period_days=p), count)
        print(
            f"selector savings_report(period_days={period}): p50 {p50:.1f} ms, "
            f"p95 {p95:.1f} ms (goal < 200 ms)"
        )
    p50, p95 = percentiles(lambda: overview_stats(routers=[router]), count)
    print(f"selector overview_stats (today): p50 {p50:.1f} ms, p95 {p95:.1f} ms (goal < 200 ms)")
    now = datetime.now(UTC)
    report = savings_report(router=router, period_days=30, now=now)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*), coalesce(sum(cost), 0) FROM tracking_event WHERE router_id = %s "
            'AND "timestamp" >= %s',
            [router.pk, datetime.fromisoformat(report["start"])],
        )
        raw_count, raw_cost = cursor.fetchone()
    exact = report["total_requests"] == raw_count and abs(report["actual_cost"] - raw_cost) <= (
        1e-9 * max(1.0, raw_cost)
    )
    print(
        f"30-day report vs raw recount: {report['total_requests']:,} / {raw_count:,} events, "
        f"cost {report['actual_cost']:.6f} / {raw_cost:.6f}: {'exact' if exact else 'MISMATCH'}"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument("--reuse", action="store_true", help="reuse a kept database")
    args = parser.parse_args()

    if not args.reuse:
        create_database(DB)
    setup_django(DB)
    from tracking.ingest import record_events
    from tracking.rollups import rollup_events

    router, key = bench_router("router")

    if not args.reuse:
        generate_events(GENERATE, DB, router.pk, args.events)
        with psycopg.connect(DB_URL, autocommit=True) as conn:
            for table in ("event", "eventrollup", "eventdailyrollup", "latencydailyrollup"):
                conn.execute(f"VACUUM ANALYZE tracking_{table}")
    if args.reuse:
        rollup_events()  # the previous run's tail, so this run's tail is 20,000 events again
    # A fresh tail that the rollup job has not seen yet: reports must read it raw.
    import uuid
    from datetime import UTC, datetime

    now = datetime.now(UTC).isoformat()
    for _ in range(20):
        record_events(
            router_id=router.pk,
            payload={
                "events": [
                    {"event_id": str(uuid.uuid4()), "timestamp": now,
                     "selected_model": "gpt-3.5-turbo", "prompt_tokens": 300,
                     "completion_tokens": 120, "latency_ms": 80}
                    for _ in range(1000)
                ]
            },
        )  # fmt: skip

    with gunicorn(DB, ROUTEPLANE_API_RATE="100000000/min") as port:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        headers = {"Authorization": f"Bearer {key}"}
        for period in (7, 30):
            path = f"/api/v1/reports/savings?period_days={period}"
            # The first few warm both workers up.
            timings, body = get_timings(conn, path, headers, args.requests, warmup=10)
            p50, p95 = p50_p95(timings)
            total = __import__("orjson").loads(body)["total_requests"]
            print(
                f"savings report, period_days={period} ({total:,} events): "
                f"p50 {p50:.1f} ms, p95 {p95:.1f} ms over {len(timings)} requests (goal < 100 ms)"
            )
    dashboard_selectors(router, args.requests)
    if not args.keep:
        drop_database(DB)


if __name__ == "__main__":
    main()
