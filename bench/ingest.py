"""Ingestion throughput: POST /api/v1/events vs a raw COPY of the same rows, in one run.

    .venv/bin/python bench/ingest.py [--events 100000] [--clients 4] [--server uvicorn|gunicorn]
                                     [--keep]

The server is by default the README's run command (uvicorn, 2 workers, uvloop + httptools,
config.asgi:application: batches are answered by the ingestion fast path); `--server
gunicorn` runs config.wsgi under gunicorn (2 sync workers) and `--server uvicorn-django`
the same uvicorn with Django alone (config.asgi:django_application, no fast paths), for
comparison. Clients are
processes, each on one keep-alive connection, posting batches of 1000 events. Uses its own
database (rp_bench_c_ingest on the PostgreSQL of BENCH_PG, default
postgres://postgres@127.0.0.1:5432), dropped at the end unless --keep. Prints events/s of each,
the ratio (goal: API >= 35 % of raw COPY) and how many batches the fast path answered.
"""

from __future__ import annotations

import argparse
import http.client
import multiprocessing
import time
import uuid
from datetime import UTC, datetime, timedelta

import orjson
import psycopg
from common import create_database, database_url, drop_database, gunicorn, setup_django, uvicorn

DB = "rp_bench_c_ingest"
DB_URL = database_url(DB)
MODELS = ["gpt-3.5-turbo", "gpt-4-1106-preview", "claude-3-5-sonnet-20241022", "mystery"]


def make_batches(total: int, size: int = 1000) -> list[list[dict]]:
    now = datetime.now(UTC)
    events = [
        {
            "event_id": str(uuid.uuid4()),
            "timestamp": (now - timedelta(seconds=i % 86400)).isoformat(),
            "selected_model": MODELS[i % len(MODELS)],
            "revision": 1,
            "domains": [["technical"], ["legal"], []][i % 3],
            "routing_method": "routellm",
            "model_tier": ["weak", "strong", "other", "other"][i % 4],
            "strong_win_rate": 0.3,
            "threshold": 0.11593,
            "prompt_tokens": 100 + i % 900,
            "completion_tokens": 50 + i % 300,
            "estimated_cost": 0.001,
            "latency_ms": 20.0 + i % 500,
            "success": i % 50 != 0,
            "fallback_used": i % 100 == 0,
            "text_sha256": "ab" * 32,
            "text_length": 120,
            "ab_group": "a" if i % 2 else "b",
        }
        for i in range(total)
    ]
    return [events[i : i + size] for i in range(0, total, size)]


def post_worker(url: str, key: str, bodies: list[bytes], out: multiprocessing.Queue) -> None:
    target = url.split("//", 1)[1]
    conn = http.client.HTTPConnection(target, timeout=60)
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    accepted = fast = 0
    for body in bodies:
        conn.request("POST", "/api/v1/events", body=body, headers=headers)
        response = conn.getresponse()
        data = response.read()
        if response.status != 200:
            raise SystemExit(f"HTTP {response.status}: {data[:200]!r}")
        accepted += orjson.loads(data)["accepted"]
        fast += response.getheader("x-routeplane-ingest") == "fast"
    out.put((accepted, fast))


def run_clients(url: str, key: str, bodies: list[bytes], clients: int) -> tuple[int, int]:
    """Post `bodies` from `clients` processes at once; (events accepted, fast-path answers)."""
    queue: multiprocessing.Queue = multiprocessing.Queue()
    procs = [
        multiprocessing.Process(target=post_worker, args=(url, key, bodies[i::clients], queue))
        for i in range(clients)
    ]
    for proc in procs:
        proc.start()
    for proc in procs:  # the results are a few bytes each: joining first cannot block
        proc.join()
        if proc.exitcode:
            raise SystemExit(f"a client failed (exit {proc.exitcode})")
    results = [queue.get(timeout=10) for _ in procs]
    return sum(a for a, _ in results), sum(f for _, f in results)


def database_sessions() -> int:
    """Sessions (connections) opened on the bench database so far (PostgreSQL >= 14): a new
    connection per batch is what made Django alone slow under ASGI."""
    with psycopg.connect(DB_URL, autocommit=True) as conn:
        return conn.execute(
            "SELECT sessions FROM pg_stat_database WHERE datname = current_database()"
        ).fetchone()[0]


def setup_database() -> tuple[int, str]:
    create_database(DB)
    setup_django(DB)
    from controlplane.actors import Actor
    from controlplane.services import create_api_key, create_router

    router = create_router(slug="bench", actor=Actor.system("bench"))
    _, raw = create_api_key(router=router, role="router", actor=Actor.system("bench"))
    return router.pk, raw


def raw_copy(router_id: int, batches: list[list[dict]]) -> float:
    """COPY the same rows straight into tracking_event (a second router, so no conflicts)."""
    from tracking.events import validate_event
    from tracking.ingest import EVENT_COLUMNS, event_row
    from tracking.selectors import price_book

    book = price_book()
    now = datetime.now(UTC)
    models = ("gpt-4-1106-preview", "gpt-3.5-turbo")
    columns = ", ".join(f'"{c}"' for c in (*EVENT_COLUMNS, "received_at", "ingest_xid"))
    prepared = [
        [(*event_row(router_id, validate_event(e, now)[0], models, book), now, 1) for e in batch]
        for batch in batches
    ]  # built before the clock starts: only the COPY itself is timed
    started = time.perf_counter()
    with psycopg.connect(DB_URL) as conn:
        for rows in prepared:
            with conn.cursor() as cur:
                with cur.copy(f"COPY tracking_event ({columns}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
            conn.commit()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument(
        "--server", choices=["uvicorn", "gunicorn", "uvicorn-django"], default="uvicorn"
    )
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()

    router_id, key = setup_database()
    batches = make_batches(args.events)
    bodies = [orjson.dumps({"events": batch}) for batch in batches]
    servers = {
        "uvicorn": uvicorn(DB, ROUTEPLANE_API_RATE="100000000/min"),
        "uvicorn-django": uvicorn(
            DB, "config.asgi:django_application", ROUTEPLANE_API_RATE="100000000/min"
        ),
        "gunicorn": gunicorn(DB, ROUTEPLANE_API_RATE="100000000/min"),
    }
    with servers[args.server] as port:
        url = f"http://127.0.0.1:{port}"
        # Warm-up, as many connections as clients: every worker imports, connects and creates
        # its stage table(s); the fast path has loaded the key.
        warm = [orjson.dumps({"events": b}) for b in make_batches(2000 * args.clients)]
        run_clients(url, key, warm, args.clients)
        sessions_before = database_sessions()
        started = time.perf_counter()
        accepted, fast = run_clients(url, key, bodies, args.clients)
        api_seconds = time.perf_counter() - started
        sessions = database_sessions() - sessions_before
        if accepted != args.events:
            raise SystemExit(f"accepted {accepted} of {args.events}")

    from controlplane.actors import Actor
    from controlplane.services import create_router

    other = create_router(slug="bench-raw", actor=Actor.system("bench"))
    copy_seconds = raw_copy(other.pk, batches)
    api_rate = args.events / api_seconds
    copy_rate = args.events / copy_seconds
    where = {
        "uvicorn": "uvicorn, 2 workers, uvloop + httptools, config.asgi:application",
        "uvicorn-django": "uvicorn, 2 workers, uvloop + httptools, Django alone "
        "(config.asgi:django_application)",
        "gunicorn": "gunicorn controlplane.wsgi, 2 sync workers",
    }[args.server]
    print(f"server: {where}")
    print(f"events: {args.events} in batches of 1000, {args.clients} clients")
    print(f"batches answered by the ingestion fast path: {fast} of {len(bodies)}")
    print(f"database connections opened by the server during the API run: {sessions - 1}")
    print(f"API ingest: {api_rate:,.0f} events/s ({api_seconds:.2f} s)")
    print(f"raw COPY:   {copy_rate:,.0f} events/s ({copy_seconds:.2f} s)")
    print(f"API / raw COPY = {100 * api_rate / copy_rate:.1f} %  (goal >= 35 %)")
    if not args.keep:
        drop_database(DB)


if __name__ == "__main__":
    main()
