"""Flags poll throughput: the 304 fast path beside a plain ASGI app and a bare Django view.

    .venv/bin/python bench/flags_api.py [--seconds 8] [--connections 64] [--keep]

All three run under the same uvicorn (uvloop + httptools, 2 workers, no access log) and are
loaded by `wrk` one after the other in this one run. Uses its own database (rp_bench_b on
BENCH_PG, default postgres://postgres@127.0.0.1:5432), dropped at the end unless --keep.
Prints requests/s of each and the ratio (goal: 304 path >= 35 % of the plain ASGI app).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import common
from common import ROOT, create_database, database_url, free_port, serve

DB = "rp_bench_b"
DB_URL = database_url(DB)
REDIS_URL = os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379/2")


async def hello_app(scope, receive, send):  # the plain ASGI baseline
    if scope["type"] != "http":
        return
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/plain"), (b"content-length", b"5")],
        }
    )
    await send({"type": "http.response.body", "body": b"hello"})


def bench_env(**extra: str) -> dict[str, str]:
    env = {
        **os.environ,
        "DATABASE_URL": DB_URL,
        "REDIS_URL": REDIS_URL,
        "DEBUG": "0",
        "SECRET_KEY": "bench-only-secret-key",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "LOG_LEVEL": "WARNING",
        # The benchmark hammers one key: lift the per-key poll limit out of the way.
        "ROUTEPLANE_FLAGS_RATE": "100000000",
        "PYTHONPATH": f"{ROOT}:{ROOT / 'bench'}",
    }
    env.pop("CELERY_BROKER_URL", None)
    env.update(extra)
    return env


def prepare_database() -> tuple[str, str, str]:
    """A fresh migrated database with one router; returns (slug, router key, operator key)."""
    env = bench_env()
    create_database(DB, env)
    code = (
        "from controlplane.actors import Actor\n"
        "from controlplane.services import create_router, create_api_key\n"
        "a = Actor('cli:bench')\n"
        "r = create_router(slug='bench', actor=a)\n"
        "print(create_api_key(router=r, role='router', actor=a)[1])\n"
        "print(create_api_key(router=r, role='operator', actor=a)[1])\n"
    )
    out = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    return "bench", out[-2], out[-1]


def drop_database() -> None:
    common.drop_database(DB)


@contextmanager
def uvicorn(app: str, *, workers: int = 2, env: dict[str, str] | None = None) -> Iterator[str]:
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        app,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--loop",
        "uvloop",
        "--http",
        "httptools",
        "--no-access-log",
        "--log-level",
        "warning",
    ]
    with serve(command, port, env or bench_env()):
        time.sleep(1.5)  # every worker up and (for the flags app) its cache loaded
        yield f"http://127.0.0.1:{port}"


def wrk(url: str, seconds: int, connections: int, headers: dict[str, str] | None = None) -> float:
    command = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency"]
    for name, value in (headers or {}).items():
        command += ["-H", f"{name}: {value}"]
    # Warm-up: let every worker open its connections and fill caches.
    subprocess.run([*command[:3], "-d1s", *command[5:], url], capture_output=True, check=True)
    out = subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non2xx:
        raise SystemExit(f"{url}: {non2xx.group(1)} error responses\n{out}")
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is not installed: apt-get install -y wrk")
    _slug, router_key, _operator_key = prepare_database()
    try:
        import httpx

        results: dict[str, float] = {}
        with uvicorn("flags_api:hello_app") as base:
            results["plain ASGI hello"] = wrk(f"{base}/", args.seconds, args.connections)
        with uvicorn("config.asgi:django_application") as base:
            results["bare Django view (/healthz)"] = wrk(
                f"{base}/healthz", args.seconds, args.connections
            )
        with uvicorn("config.asgi:application") as base:
            auth = {"Authorization": f"Bearer {router_key}"}
            first = httpx.get(f"{base}/api/v1/flags", headers=auth)
            etag = first.headers["etag"]
            check = httpx.get(f"{base}/api/v1/flags", headers={**auth, "If-None-Match": etag})
            assert check.status_code == 304, check.status_code
            assert check.headers.get("x-routeplane-flags") == "fast"
            results["flags 304 (fast path)"] = wrk(
                f"{base}/api/v1/flags",
                args.seconds,
                args.connections,
                {**auth, "If-None-Match": etag},
            )
            results["flags 200 (fast path)"] = wrk(
                f"{base}/api/v1/flags", args.seconds, args.connections, auth
            )
        plain = results["plain ASGI hello"]
        print(
            f"uvicorn, uvloop + httptools, 2 workers; wrk -t2 -c{args.connections} "
            f"-d{args.seconds}s on {os.cpu_count()} cores"
        )
        for name, rate in results.items():
            print(f"  {name:32s} {rate:10.0f} req/s  ({rate / plain:6.1%} of plain ASGI)")
        ratio = results["flags 304 (fast path)"] / plain
        verdict = "OK" if ratio >= 0.35 else "MISSED"
        print(f"304 path / plain ASGI = {ratio:.1%} (goal >= 35 %): {verdict}")
    finally:
        if not args.keep:
            drop_database()


if __name__ == "__main__":
    main()
