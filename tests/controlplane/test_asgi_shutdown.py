"""Ctrl-C of the README's web server while routers hold long-polls: a clean, quiet exit."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest

from tests import flags_live
from tests.flags_live import live_env, wait_healthy, wait_until
from tests.servers import ROOT, free_port

committed = flags_live.committed
flags_database_url = flags_live.flags_database_url
live_router = flags_live.live_router

pytestmark = [pytest.mark.slow]

POLLS = 6


def readme_web_server(env: dict[str, str], port: int, log: Path) -> subprocess.Popen:
    """What `python -m controlplane.run` starts as its web child (controlplane/run.py)."""
    with log.open("wb") as out:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "controlplane.asgi:application",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                "2",
                "--loop",
                "uvloop",
                "--http",
                "httptools",
                "--no-access-log",
                "--timeout-graceful-shutdown",
                "5",
            ],  # fmt: skip
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


@pytest.mark.parametrize(
    "stop",
    [
        pytest.param(lambda pid: os.killpg(pid, signal.SIGINT), id="ctrl-c-to-the-group"),
        # What controlplane.run does: SIGTERM to uvicorn's master, which stops its workers.
        pytest.param(lambda pid: os.kill(pid, signal.SIGTERM), id="sigterm-to-the-master"),
    ],
)
def test_shutdown__long_polls_held__answered_and_no_error_logged(
    flags_database_url, live_router, tmp_path, stop
):
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "web.log"
    process = readme_web_server(live_env(flags_database_url), port, log)
    clients: list[httpx.Client] = []
    answers: list[httpx.Response | Exception] = []
    try:
        wait_healthy(base, process)
        auth = {"Authorization": f"Bearer {live_router.router_key}"}
        etag = ""
        for _ in range(POLLS):  # each on a connection whose worker's fast path knows the key
            client = httpx.Client(base_url=base, timeout=70, headers=auth)
            clients.append(client)

            def served_fast(client: httpx.Client = client) -> bool:
                nonlocal etag
                response = client.get("/api/v1/flags")
                etag = response.headers["etag"]
                return response.headers.get("x-routeplane-flags") == "fast"

            wait_until(served_fast, 10, interval=0.05)

        def hold(client: httpx.Client) -> None:
            try:
                answers.append(client.get("/api/v1/flags?wait=60", headers={"If-None-Match": etag}))
            except Exception as exc:  # noqa: BLE001  (recorded, asserted below)
                answers.append(exc)

        threads = [threading.Thread(target=hold, args=(c,)) for c in clients]
        for thread in threads:
            thread.start()
        # Held: nothing changes, so no answer may come before the signal.
        with pytest.raises(AssertionError):
            wait_until(lambda: bool(answers), 1.0, interval=0.05)

        stop(process.pid)
        code = process.wait(20)
        for thread in threads:
            thread.join(5)
    finally:
        for client in clients:
            client.close()
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)

    output = log.read_text()
    assert code == 0, output
    assert "ERROR" not in output, output
    assert "Traceback" not in output, output
    assert "CancelledError" not in output, output
    assert [a.status_code for a in answers if isinstance(a, httpx.Response)] == [304] * POLLS
