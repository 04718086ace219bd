"""What the benchmark scripts share: a fresh database, Django in-process, an app server, timings.

Each script builds its own database on the PostgreSQL of BENCH_PG (default
postgres://postgres@127.0.0.1:5432) and drops it at the end unless --keep.
"""

from __future__ import annotations

import http.client
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# The scripts import the project (controlplane, tracking) in-process.
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
from config.embedded import free_port  # noqa: E402  (needs ROOT on sys.path)

PG = os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432")
# The servers run with DEBUG off, which needs a key; bench/dashboard.py signs its session with it.
SECRET_KEY = "bench-only-secret-key-0123456789abcdefghijklmnopqrstuvwxyz"


def database_url(name: str) -> str:
    return f"{PG}/{name}"


def create_database(name: str, env: dict[str, str] | None = None) -> None:
    """Drop `name` if it exists, create it empty and migrate it (env: for manage.py migrate)."""
    # psycopg is imported here: uvicorn workers import flags_api (and so this module) too.
    import psycopg

    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {name}")
    if env is None:
        env = dict(os.environ, DATABASE_URL=database_url(name), DEBUG="1")
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=env, check=True
    )


def drop_database(name: str) -> None:
    import psycopg

    if "django.db" in sys.modules:  # this process's own connections would hold it open
        from django.db import connections

        connections.close_all()
    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def setup_django(name: str, **env: str) -> None:
    """Django in this process on database `name` (extra environment variables in `env`)."""
    os.environ["DATABASE_URL"] = database_url(name)
    os.environ.update(env)
    os.environ.setdefault("DEBUG", "1")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()


def generate_events(sql: str, name: str, router_id: int, total: int) -> None:
    """Insert `total` events spread over the last 30 days with bench/report.py's generate_series
    INSERT (`sql`), a million per transaction, then roll them up; prints how long each took.
    Needs Django set up (setup_django) for the rollup."""
    import psycopg

    from tracking.rollups import rollup_events

    started = time.perf_counter()
    chunk = 1_000_000
    with psycopg.connect(database_url(name)) as conn:
        for low in range(1, total + 1, chunk):
            high = min(total, low + chunk - 1)
            conn.execute(
                sql,
                {"router": router_id, "span": 30 * 86400, "total": total, "low": low, "high": high},
            )
            conn.commit()
    print(f"generated {total:,} events in {time.perf_counter() - started:.1f} s")
    started = time.perf_counter()
    folded = rollup_events()
    print(f"rolled up {folded:,} events in {time.perf_counter() - started:.1f} s")


@contextmanager
def serve(
    command: Sequence[str], port: int, env: dict[str, str], timeout: float = 60
) -> Iterator[subprocess.Popen]:
    """Run a server (in its own process group) until it listens on `port`; stop it on exit."""
    process = subprocess.Popen(list(command), cwd=ROOT, env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + timeout
        while True:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{' '.join(command[2:4])} did not start")
            time.sleep(0.1)
        yield process
    finally:
        try:
            os.killpg(process.pid, signal.SIGTERM)  # the master and every worker
            process.wait(15)
        except ProcessLookupError:  # it had exited already
            pass
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)


def server_env(name: str, **env: str) -> dict[str, str]:
    """The environment of an app server on database `name` (DEBUG off, quiet logs, plain HTTP
    on loopback as the run command serves it: no HTTPS redirect or secure-only cookies)."""
    plain_http = {
        "SECURE_SSL_REDIRECT": "0",
        "SECURE_HSTS_SECONDS": "0",
        "SESSION_COOKIE_SECURE": "0",
        "CSRF_COOKIE_SECURE": "0",
    }
    return dict(
        os.environ,
        DATABASE_URL=database_url(name),
        DEBUG="0",
        SECRET_KEY=SECRET_KEY,
        ALLOWED_HOSTS="127.0.0.1,localhost",
        LOG_LEVEL="WARNING",
        **{**plain_http, **env},
    )


@contextmanager
def uvicorn(name: str, app: str = "config.asgi:application", **env: str) -> Iterator[int]:
    """The README's run command for the web server: config.asgi:application under uvicorn,
    2 workers, uvloop + httptools, no access log (as controlplane/run.py starts it, DEBUG off),
    on database `name`; yields the port once it listens. `app`: another ASGI app to compare."""
    port = free_port()
    command = [
        sys.executable, "-m", "uvicorn", app,
        "--host", "127.0.0.1", "--port", str(port), "--workers", "2",
        "--loop", "uvloop", "--http", "httptools",
        "--no-access-log", "--timeout-graceful-shutdown", "5", "--log-level", "warning",
    ]  # fmt: skip
    with serve(command, port, server_env(name, **env)):
        yield port


@contextmanager
def gunicorn(name: str, **env: str) -> Iterator[int]:
    """config.wsgi under gunicorn (2 workers, DEBUG off) on database `name`; yields the
    port. `env`: extra environment variables for the server."""
    port = free_port()
    command = [
        sys.executable, "-m", "gunicorn", "config.wsgi", "-w", "2",
        "-b", f"127.0.0.1:{port}", "--log-level", "warning",
    ]  # fmt: skip
    with serve(command, port, server_env(name, **env)):
        yield port


def p50_p95(timings: list[float]) -> tuple[float, float]:
    timings = sorted(timings)
    return statistics.median(timings), timings[int(0.95 * (len(timings) - 1))]


def timed_ms(run: Callable[[], object], count: int, warmup: int = 5) -> list[float]:
    """Milliseconds per call of `run`, `count` calls after `warmup` untimed ones."""
    timings = []
    for index in range(count + warmup):
        started = time.perf_counter()
        run()
        if index >= warmup:
            timings.append((time.perf_counter() - started) * 1000)
    return timings


def get_timings(
    conn: http.client.HTTPConnection, path: str, headers: dict[str, str], count: int, warmup: int
) -> tuple[list[float], bytes]:
    """GET `path` `count` times after `warmup` (the first few warm every worker); exits on any
    answer but 200. Returns the milliseconds of each request and the last body."""
    body = b""

    def get() -> None:
        nonlocal body
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        body = response.read()
        if response.status != 200:
            raise SystemExit(f"{path}: HTTP {response.status}: {body[:300]!r}")

    return timed_ms(get, count, warmup), body


def bench_router(role: str) -> tuple[Any, str]:
    """The `bench` router (created on first use) and a new API key of `role` for it; earlier
    keys are deleted. Call after setup_django."""
    from controlplane.actors import Actor
    from controlplane.models import ApiKey, Router
    from controlplane.services import create_api_key, create_router

    actor = Actor.system("bench")
    router = Router.objects.filter(slug="bench").first() or create_router(slug="bench", actor=actor)
    ApiKey.objects.filter(router=router).delete()
    _, key = create_api_key(router=router, role=role, actor=actor)
    return router, key
