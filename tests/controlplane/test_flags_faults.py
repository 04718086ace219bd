"""The flags fast path across a real PostgreSQL restart (a private server, never the shared one)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import pytest

from tests.servers import ROOT, PrivatePostgres, PrivateRedis, app_env, manage, uvicorn_server

pytestmark = pytest.mark.slow


def manage_output(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return result.stdout.strip()


def poll_until(predicate, timeout: float) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if predicate():
            return time.monotonic() - start
        time.sleep(0.05)
    raise AssertionError(f"not within {timeout} s")


def test_postgres_restart__fast_path_reconnects_and_serves_new_revisions(tmp_path):
    data_dir = Path(tempfile.mkdtemp(prefix="rp-flags-"))
    data_dir.chmod(0o755)  # pgserver runs postgres as another user when we are root
    postgres = PrivatePostgres(data_dir / "pg")
    redis = PrivateRedis()
    try:
        env = app_env(postgres.url, redis.url)
        manage(env, "migrate", "--noinput")
        manage(env, "create_router", "edge")
        key = manage_output(env, "create_api_key", "edge", "--role", "router").splitlines()[-1]
        headers = {"Authorization": f"Bearer {key}"}
        with uvicorn_server(env) as (base, _process):
            flags = f"{base}/api/v1/flags"

            def fast_200() -> bool:
                response = httpx.get(flags, headers=headers)
                return response.status_code == 200 and "x-routeplane-flags" in response.headers

            poll_until(fast_200, 10)
            first = httpx.get(flags, headers=headers)
            assert first.json()["revision"] == 1

            postgres.stop()
            time.sleep(1)
            postgres.start()

            # Once reconnected, a cached poll is answered by the fast path again...
            poll_until(fast_200, 15)
            # ...and a write made after the restart reaches a long-poll within a second or so.
            manage(env, "emergency_rollback", "edge", "--reason", "restart drill")
            started = time.monotonic()
            response = httpx.get(
                f"{flags}?wait=10",
                headers={**headers, "If-None-Match": first.headers["etag"]},
                timeout=15,
            )
            elapsed = time.monotonic() - started
            assert response.status_code == 200
            assert response.json()["revision"] == 2
            assert response.json()["kill_switch"] is True
            assert elapsed < 3, f"the new revision took {elapsed:.2f} s to arrive"
    finally:
        redis.stop()
        postgres.close()
        shutil.rmtree(data_dir, ignore_errors=True)
