"""The run command (`python -m config.run`) against the embedded defaults.

Real processes: embedded PostgreSQL and Redis, uvicorn, a Celery worker and beat. Both tests
share one data dir, so only the first pays for initdb and migrations.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from config.embedded import free_port
from tests.servers import processes_using

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]


@pytest.fixture(scope="module")
def data_dir() -> Path:
    # Not under pytest's basetemp: as root, pgserver runs postgres as another user, and every
    # new pytest session resets /tmp/pytest-of-<user> to 0700, locking that user out.
    top = Path(tempfile.mkdtemp(prefix="rp-run-"))
    # Deeper than a unix socket path may be (108 bytes): the embedded servers must cope.
    path = top / ("deep-" * 16) / "data"
    path.mkdir(parents=True)
    assert len(str(path / "pgdata" / ".s.PGSQL.5432")) > 108
    yield path
    subprocess.run(
        [sys.executable, "-m", "config.embedded", "stop"],
        cwd=ROOT,
        env={**os.environ, "ROUTEPLANE_DATA_DIR": str(path)},
        capture_output=True,
    )
    shutil.rmtree(top, ignore_errors=True)


class Run:
    def __init__(self, data_dir: Path, **env: str) -> None:
        self.port = free_port()
        environ = {
            k: v
            for k, v in os.environ.items()
            if k not in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "DEBUG", "SECRET_KEY")
        }
        environ.update(ROUTEPLANE_DATA_DIR=str(data_dir), PORT=str(self.port), **env)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "config.run", "--web-workers", "2"],
            cwd=ROOT,
            env=environ,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.append(line.rstrip())

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def get(self, path: str) -> tuple[int, bytes]:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=5) as resp:
            return resp.status, resp.read()

    def wait_for(self, text: str, timeout: float = 150) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.output:
                return
            assert self.process.poll() is None, f"run exited early:\n{self.output}"
            time.sleep(0.2)
        raise AssertionError(f"{text!r} not seen within {timeout}s:\n{self.output}")

    def stop(self, signum: int) -> int:
        self.process.send_signal(signum)
        code = self.process.wait(timeout=60)
        self.reader.join(timeout=5)
        return code


def test_run__embedded_defaults__serves_then_sigint_stops_everything(data_dir):
    run = Run(data_dir)
    try:
        run.wait_for("Routeplane is up")
        assert run.get("/healthz") == (200, b'{"status": "ok"}')
        status, body = run.get("/readyz")
        assert status == 200 and b'"ok"' in body
        run.wait_for("celery@")  # the worker's banner: it connected to the embedded Redis
        run.wait_for("beat: Starting")
        assert "operator / routeplane-demo" in run.output
        assert "router key:   rp_" in run.output
        assert "operator key: rp_" in run.output
        assert (data_dir / "run.json").exists()  # manage.py beside it joins this run
    finally:
        code = run.stop(signal.SIGINT)
    assert code == 0, run.output
    for name in ("web", "worker", "beat"):
        assert f"{name} stopped" in run.output
    assert "embedded PostgreSQL stopped" in run.output
    assert "embedded Redis stopped" in run.output
    assert not (data_dir / "run.json").exists()
    assert processes_using(data_dir) == []


def test_run__debug_off_and_rerun__serves_then_sigterm_stops_everything(data_dir):
    run = Run(data_dir, DEBUG="0", SECRET_KEY="a-test-secret-key-" + "x" * 40)
    try:
        run.wait_for("Routeplane is up")
        assert run.get("/healthz")[0] == 200
        # Seeded before: the router key is not shown again, the demo is not duplicated.
        assert "shown only this once" not in run.output
        assert "Demo router 'demo' exists" in run.output
    finally:
        code = run.stop(signal.SIGTERM)
    assert code == 0, run.output
    assert processes_using(data_dir) == []


def test_run__web_server__concurrency_limit_from_environment(monkeypatch):
    from config.run import children, parse_args

    web = children(parse_args([]))[0].command
    assert web[web.index("--limit-concurrency") + 1] == "2048"
    assert "--timeout-graceful-shutdown" in web
    monkeypatch.setenv("WEB_LIMIT_CONCURRENCY", "300")
    web = children(parse_args([]))[0].command
    assert web[web.index("--limit-concurrency") + 1] == "300"
