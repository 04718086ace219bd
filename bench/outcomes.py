"""Outcome throughput: POST /api/v1/events/outcomes (uvicorn ASGI, 2 workers) on rolled-up events.

    .venv/bin/python bench/outcomes.py [--events 100000] [--clients 4] [--keep]

Uses its own database (rp_bench_c_outcomes on the PostgreSQL of BENCH_PG, default
postgres://postgres@127.0.0.1:5432), dropped at the end unless --keep. Ingests `--events`
decisions without tokens (as DomainRouter sends them) and rolls them up, so every outcome takes
the heavier path (out of the rollups, back into the tail); then `--clients` processes post one
outcome per event in batches of 1000, then post them all again (all duplicates, a retry storm).
Prints outcomes/s of each pass and checks the savings report against a raw recount.
"""

from __future__ import annotations

import argparse
import http.client
import multiprocessing
import os
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import orjson
from common import (
    SECRET_KEY,
    create_database,
    database_url,
    drop_database,
    free_port,
    serve,
    setup_django,
)

DB = "rp_bench_c_outcomes"
BATCH = 1000


@contextmanager
def uvicorn_server() -> Iterator[int]:
    """The README's server: config.asgi under uvicorn, 2 workers, uvloop + httptools."""
    port = free_port()
    env = dict(
        os.environ,
        DATABASE_URL=database_url(DB),
        DEBUG="0",
        SECRET_KEY=SECRET_KEY,
        ALLOWED_HOSTS="127.0.0.1,localhost",
        LOG_LEVEL="WARNING",
        ROUTEPLANE_API_RATE="100000000/min",
    )
    command = [
        sys.executable, "-m", "uvicorn", "config.asgi:application", "--host", "127.0.0.1",
        "--port", str(port), "--workers", "2", "--loop", "uvloop", "--http", "httptools",
        "--no-access-log", "--log-level", "warning",
    ]  # fmt: skip
    with serve(command, port, env):
        yield port


def post_worker(port: int, key: str, bodies: list[bytes], out: multiprocessing.Queue) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    totals = [0, 0]
    for body in bodies:
        conn.request("POST", "/api/v1/events/outcomes", body=body, headers=headers)
        response = conn.getresponse()
        data = response.read()
        if response.status != 200:
            raise SystemExit(f"HTTP {response.status}: {data[:200]!r}")
        result = orjson.loads(data)
        if result["rejected"]:
            raise SystemExit(f"rejected: {result['rejected'][:3]}")
        totals[0] += result["accepted"]
        totals[1] += result["duplicates"]
    out.put(totals)


def post_all(port: int, key: str, bodies: list[bytes], clients: int) -> tuple[float, int, int]:
    queue: multiprocessing.Queue = multiprocessing.Queue()
    shares = [bodies[i::clients] for i in range(clients)]
    procs = [
        multiprocessing.Process(target=post_worker, args=(port, key, share, queue))
        for share in shares
    ]
    started = time.perf_counter()
    for proc in procs:
        proc.start()
    totals = [queue.get() for _ in procs]
    for proc in procs:
        proc.join()
    seconds = time.perf_counter() - started
    return seconds, sum(t[0] for t in totals), sum(t[1] for t in totals)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()

    create_database(DB)
    setup_django(DB)
    from django.db import connection

    from controlplane.actors import Actor
    from controlplane.services import create_api_key, create_router
    from tracking.ingest import record_events
    from tracking.reports import savings_report
    from tracking.rollups import rollup_events

    router = create_router(slug="bench", actor=Actor.system("bench"))
    _, key = create_api_key(router=router, role="router", actor=Actor.system("bench"))
    now = datetime.now(UTC)
    ids = [str(uuid.uuid4()) for _ in range(args.events)]
    for low in range(0, args.events, BATCH):
        events = [
            {
                "event_id": ids[i],
                "timestamp": (now - timedelta(seconds=(i * 7) % 86400)).isoformat(),
                "selected_model": ("gpt-3.5-turbo", "gpt-4-1106-preview")[i % 2],
                "routing_method": "routellm",
                "domains": [["technical"], ["legal"], []][i % 3],
                "latency_ms": 3.0,
            }
            for i in range(low, min(args.events, low + BATCH))
        ]
        record_events(router_id=router.pk, payload={"events": events}, now=now)
    print(f"ingested and rolled up {rollup_events():,} events (no tokens: unpriced)")
    outcomes = [
        {
            "event_id": ids[i],
            "prompt_tokens": 200 + i % 900,
            "completion_tokens": 50 + i % 400,
            "latency_ms": 300.0 + i % 700,
            "success": i % 40 != 0,
            "quality": None if i % 5 == 0 else (i % 11) / 10,
        }
        for i in range(args.events)
    ]
    bodies = [
        orjson.dumps({"outcomes": outcomes[i : i + BATCH]}) for i in range(0, args.events, BATCH)
    ]
    connection.close()
    with uvicorn_server() as port:
        warm = orjson.dumps({"outcomes": [{"event_id": str(uuid.uuid4()), "success": True}]})
        for _ in range(4):  # every worker imports and connects (unknown ids: nothing stored)
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            conn.request(
                "POST",
                "/api/v1/events/outcomes",
                body=warm,
                headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
            )
            conn.getresponse().read()
        first = post_all(port, key, bodies, args.clients)
        again = post_all(port, key, bodies, args.clients)
    if first[1:] != (args.events, 0) or again[1:] != (0, args.events):
        raise SystemExit(f"counts: first {first[1:]}, again {again[1:]}")

    report = savings_report(router=router, period_days=2)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*), coalesce(sum(cost), 0), count(quality) FROM tracking_event "
            "WHERE router_id = %s",
            [router.pk],
        )
        raw_count, raw_cost, raw_quality = cursor.fetchone()
    exact = (
        report["total_requests"] == raw_count
        and report["quality_samples"] == raw_quality
        and abs(report["actual_cost"] - raw_cost) <= 1e-9 * max(1.0, raw_cost)
    )
    print(
        f"outcomes: {args.events:,} in batches of {BATCH}, {args.clients} clients, "
        "uvicorn config.asgi:application -w 2 (uvloop, httptools), events already rolled up"
    )
    print(f"first post: {args.events / first[0]:,.0f} outcomes/s ({first[0]:.2f} s), all accepted")
    print(
        f"same again: {args.events / again[0]:,.0f} outcomes/s ({again[0]:.2f} s), all duplicates"
    )
    print(
        f"report vs raw recount: {report['total_requests']:,} / {raw_count:,} events, cost "
        f"{report['actual_cost']:.6f} / {raw_cost:.6f}, quality samples "
        f"{report['quality_samples']:,} / {raw_quality:,}: {'exact' if exact else 'MISMATCH'}"
    )
    folded = rollup_events()
    after = savings_report(router=router, period_days=2)
    same = after["total_requests"] == raw_count and abs(
        after["actual_cost"] - raw_cost
    ) <= 1e-9 * max(1.0, raw_cost)
    print(f"after the next rollup run ({folded:,} rows folded): {'exact' if same else 'MISMATCH'}")
    if not args.keep:
        drop_database(DB)
    if not (exact and same):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
