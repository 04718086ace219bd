"""kill -9 of the Celery worker in the middle of a rollup: after a restart and the next run (as
beat sends one every minute) the rollups equal a recount of the raw events."""

from __future__ import annotations

import pytest

from tests.faults.stack import kill9, wait_for

pytestmark = pytest.mark.slow

EVENTS = 150_000
# Events spread over the last 3 days, inserted as ingestion does (ingest_xid = the inserting
# transaction, which the rollup's watermark reads).
GENERATE = """
INSERT INTO tracking_event (
    router_id, event_id, "timestamp", received_at, ingest_xid, revision, domains, domain,
    routing_method, selected_model, model_tier, prompt_tokens, completion_tokens,
    estimated_cost, cost, baseline_cost, latency_ms, success, fallback_used, error,
    text_sha256, text_length, ab_group)
SELECT %(router)s, gen_random_uuid(), now() - g * interval '1 second', now(),
       pg_current_xact_id()::text::bigint, 1,
       ARRAY[(ARRAY['technical','legal','general'])[g %% 3 + 1]],
       (ARRAY['technical','legal','general'])[g %% 3 + 1],
       CASE WHEN g %% 3 = 0 THEN 'domain' ELSE 'routellm' END,
       (ARRAY['gpt-3.5-turbo','gpt-4-1106-preview','mystery'])[g %% 3 + 1],
       (ARRAY['weak','strong','other'])[g %% 3 + 1],
       100 + g %% 900, 50 + g %% 300, NULL,
       CASE WHEN g %% 3 = 2 THEN NULL ELSE (100 + g %% 900) * 5e-7 END,
       CASE WHEN g %% 3 = 2 THEN NULL ELSE (100 + g %% 900) * 1e-5 END,
       20 + g %% 2000, g %% 50 <> 0, g %% 100 = 0, '', '', 120, 'a'
FROM generate_series(1, %(total)s) AS g
"""
RAW = """
SELECT count(*), count(*) FILTER (WHERE routing_method = 'routellm'), count(cost),
       count(*) FILTER (WHERE success), coalesce(sum(prompt_tokens), 0)::bigint,
       coalesce(sum(cost), 0)::float8
FROM tracking_event WHERE router_id = %s
"""
ROLLED = """
SELECT coalesce(sum(requests), 0)::bigint, coalesce(sum(routellm), 0)::bigint,
       coalesce(sum(priced), 0)::bigint, coalesce(sum(successes), 0)::bigint,
       coalesce(sum(prompt_tokens), 0)::bigint, coalesce(sum(cost), 0)::float8
FROM {table} WHERE router_id = %s
"""
# The rollup's statements (the fold into the hourly/daily rows, the latency histograms), seen
# from another connection while they run.
ROLLUP_RUNNING = """
SELECT pid FROM pg_stat_activity
WHERE state = 'active' AND pid <> pg_backend_pid()
  AND query ILIKE '%%INSERT INTO tracking_%%rollup%%'
"""


def test_celery_worker_killed_mid_rollup__rerun_matches_a_raw_recount(stack, tmp_path):
    router = stack.routers["celerykill"]
    stack.query(GENERATE, {"router": router.id, "total": EVENTS})
    raw = stack.query(RAW, (router.id,))[0]

    log = tmp_path / "worker.log"
    worker = stack.start_celery(log)
    try:
        stack.send_task("tracking.tasks.rollup_events")
        # Killed while its rollup statement runs, inside the rollup's transaction.
        wait_for(lambda: bool(stack.query(ROLLUP_RUNNING)), 60, worker)
        kill9(worker.pid)
        worker.wait(10)
    finally:
        if worker.poll() is None:
            kill9(worker.pid)
            worker.wait(10)
    # The half-done rollup rolled back with the worker's connection: nothing folded yet.
    wait_for(lambda: not stack.query(ROLLUP_RUNNING), 30)
    assert stack.query(ROLLED.format(table="tracking_eventrollup"), (router.id,))[0][0] == 0

    worker = stack.start_celery(log)
    try:
        stack.send_task("tracking.tasks.rollup_events")  # beat's next tick
        wait_for(
            lambda: stack.query(ROLLED.format(table="tracking_eventrollup"), (router.id,))[0][0],
            120,
            worker,
        )
        stack.send_task("tracking.tasks.rollup_events")  # twice: at-least-once must not double
        wait_for(lambda: log.read_text(errors="replace").count("succeeded") >= 2, 60, worker)
    finally:
        kill9(worker.pid)
        worker.wait(10)

    for table in ("tracking_eventrollup", "tracking_eventdailyrollup"):
        *counts, cost = stack.query(ROLLED.format(table=table), (router.id,))[0]
        assert counts == list(raw[:-1]), table
        assert cost == pytest.approx(raw[-1], rel=1e-9), table
