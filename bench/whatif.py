"""What-if and calibration latency over 10 million events: GET .../what-if and .../calibration.

    .venv/bin/python bench/whatif.py [--events 10000000] [--requests 200] [--keep] [--reuse]

Generates routed events server-side (generate_series) over the last 30 days in its own database
(BENCH_DB, default rp_bench_whatif, on BENCH_PG): five domains, a strong win rate per event
(a skewed distribution), routed at threshold 0.11593 (strong when the win rate is at or above
it), priced tokens. Rolls them up (which folds the win-rate histogram too), serves the API with
gunicorn (2 workers, as bench/report.py) and times, over HTTP with a viewer key, the what-if
replay at a sweep of thresholds and the calibration (whole router and one domain), 30-day and
7-day windows (repeated requests: the histogram comes from the cache after the first), then
right after rollup runs (today's rows read again, closed days cached), then cold (cache cleared
before each request; uses REDIS_URL's database). Checks that the replay at
the used threshold equals the observed figures. Goal: what-if p95 < 100 ms.
"""

from __future__ import annotations

import argparse
import http.client
import os

import orjson
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
)

DB = os.environ.get("BENCH_DB", "rp_bench_whatif")
USED = 0.11593
# w = u^2 from a hash of g: most calls have a low win rate, as RouteLLM's mf router gives.
GENERATE = """
INSERT INTO tracking_event (
    router_id, event_id, "timestamp", received_at, ingest_xid, revision, domains, domain,
    routing_method, selected_model, model_tier, strong_win_rate, threshold, prompt_tokens,
    completion_tokens, cost, baseline_cost, latency_ms, success, fallback_used, error,
    text_sha256, ab_group)
SELECT %(router)s, gen_random_uuid(),
       now() - (g * %(span)s::float8 / %(total)s) * interval '1 second', now(),
       pg_current_xact_id()::text::bigint, 1,
       ARRAY[d], d, 'routellm',
       CASE WHEN w >= 0.11593 THEN 'gpt-4-1106-preview' ELSE 'gpt-3.5-turbo' END,
       CASE WHEN w >= 0.11593 THEN 'strong' ELSE 'weak' END,
       w, 0.11593, p, c,
       CASE WHEN w >= 0.11593 THEN p * 1e-5 + c * 3e-5 ELSE p * 5e-7 + c * 1.5e-6 END,
       p * 1e-5 + c * 3e-5,
       20 + (g::bigint * 7919) %% 2000, true, false, '', '', ''
FROM generate_series(%(low)s::int, %(high)s::int) AS g,
     LATERAL (SELECT ((g::bigint * 2654435761) %% 1000003) / 1000003.0 AS u) AS h,
     LATERAL (SELECT h.u * h.u AS w,
                     (ARRAY['technical','legal','medical','creative','general'])[g %% 5 + 1] AS d,
                     100 + g %% 900 AS p, 50 + g %% 300 AS c) AS v
"""


def timed(conn, path: str, headers: dict[str, str], count: int) -> tuple[float, float, dict]:
    timings, body = get_timings(conn, path, headers, count, warmup=10)
    p50, p95 = p50_p95(timings)
    return p50, p95, orjson.loads(body)


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

    router, key = bench_router("viewer")
    if not args.reuse:
        generate_events(GENERATE, DB, router.pk, args.events)
        with psycopg.connect(database_url(DB), autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE tracking_winratebucket")
            rows = conn.execute("SELECT count(*) FROM tracking_winratebucket").fetchone()[0]
        print(f"win-rate histogram: {rows:,} rows")

    headers = {"Authorization": f"Bearer {key}"}
    base = "/api/v1/routers/bench"
    with gunicorn(DB, ROUTEPLANE_API_RATE="100000000/min", SECURE_SSL_REDIRECT="0") as port:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        for days in (30, 7):
            p50, p95, body = timed(conn, f"{base}/what-if?threshold={USED}&days={days}", headers,
                                   args.requests)  # fmt: skip
            same = body["predicted"] == body["observed"]
            print(
                f"what-if at the used threshold, days={days} ({body['observed']['requests']:,} "
                f"events): p50 {p50:.1f} ms, p95 {p95:.1f} ms over {args.requests} requests "
                f"(goal < 100 ms); prediction == observed: {same}"
            )
            p50, p95, body = timed(conn, f"{base}/what-if?threshold=0.25&days={days}", headers,
                                   args.requests)  # fmt: skip
            print(
                f"what-if at 0.25, days={days}: p50 {p50:.1f} ms, p95 {p95:.1f} ms; strong share "
                f"{body['observed']['strong_share']:.3f} -> {body['predicted']['strong_share']:.3f}"
            )
            for query in ("", "&domain=legal"):
                p50, p95, body = timed(
                    conn, f"{base}/calibration?days={days}&target_strong_share=0.3{query}",
                    headers, args.requests,
                )  # fmt: skip
                print(
                    f"calibration days={days}{query or ' (all calls)'}: p50 {p50:.1f} ms, "
                    f"p95 {p95:.1f} ms; sample {body['sample_size']:,}, proposed "
                    f"{body['proposed_threshold']} (strong share there "
                    f"{body['strong_share_at_proposed']})"
                )
        # After a rollup run: today's part of the histogram is read again (the watermark
        # moved), the closed days come from the cache. Each request follows a fold of 100 new
        # events of today.
        import uuid
        from datetime import UTC, datetime

        from tracking.ingest import record_events
        from tracking.rollups import rollup_events

        for name, path in (
            ("what-if", f"{base}/what-if?threshold=0.2&days=30"),
            ("calibration", f"{base}/calibration?days=30&target_strong_share=0.3"),
        ):
            timings = []
            for _ in range(30):
                now = datetime.now(UTC).isoformat()
                events = [
                    {"event_id": str(uuid.uuid4()), "timestamp": now, "domains": ["legal"],
                     "selected_model": "gpt-3.5-turbo", "model_tier": "weak",
                     "strong_win_rate": 0.05, "threshold": USED, "prompt_tokens": 300,
                     "completion_tokens": 120}
                    for _ in range(100)
                ]  # fmt: skip
                record_events(router_id=router.pk, payload={"events": events})
                rollup_events()
                step, _ = get_timings(conn, path, headers, 1, warmup=0)
                timings += step
            p50, p95 = p50_p95(timings)
            print(f"{name} after each rollup run (days=30): p50 {p50:.1f} ms, p95 {p95:.1f} ms")
        # Cold: the histogram read from PostgreSQL, not from the cache (cleared before each
        # request: the bench's own Redis database), windows of 1..30 days.
        from django.core.cache import cache

        for name, path in (
            ("what-if", f"{base}/what-if?threshold=0.2&days={{days}}"),
            ("calibration", f"{base}/calibration?days={{days}}&target_strong_share=0.3"),
        ):
            timings = []
            for days in range(1, 31):
                cache.clear()
                step, _ = get_timings(conn, path.format(days=days), headers, 1, warmup=0)
                timings += step
            p50, p95 = p50_p95(timings)
            print(f"{name} cold (cache cleared, days 1..30): p50 {p50:.1f} ms, p95 {p95:.1f} ms")
    if not args.keep:
        drop_database(DB)


if __name__ == "__main__":
    main()
