"""Servers for tests that need real processes.

Private servers for fault tests (an embedded PostgreSQL, a redis-server, the app itself): fault
tests stop and restart these; they never touch the shared PostgreSQL/Redis. And the launchers
that run the app or a Celery worker on the pytest test database: `test_database_url()`,
`uvicorn_server`, `celery_worker_process`.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

import httpx

from config.embedded import free_port

ROOT = Path(__file__).resolve().parent.parent


class PrivatePostgres:
    """pgserver in a temp dir; stop() kills the postmaster, start() brings it back."""

    def __init__(self, data_dir: Path) -> None:
        import pgserver

        self.server = pgserver.get_server(data_dir, cleanup_mode="delete")
        if "routeplane" not in self.server.psql("SELECT datname FROM pg_database;"):
            self.server.psql("CREATE DATABASE routeplane;")
        self.url = self.server.get_uri().replace("/postgres?", "/routeplane?")

    def stop(self) -> None:
        pid = self.server.get_pid()
        os.kill(pid, signal.SIGINT)  # fast shutdown
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)
        raise TimeoutError("private PostgreSQL did not stop")

    def start(self) -> None:
        self.server.ensure_postgres_running()

    def close(self) -> None:
        self.server.cleanup()


class PrivateRedis:
    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None
        self.start()

    def start(self) -> None:
        binary = shutil.which("redis-server") or "redis-server"
        self.process = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_port(self.port)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


def processes_using(data_dir: Path) -> list[str]:
    """Live processes of a run command (`python -m config.run`) using this data dir: its
    Python children inherit ROUTEPLANE_DATA_DIR; the postmaster (which overwrites its environ
    with its process title) names the dir in its command line."""
    marker = f"ROUTEPLANE_DATA_DIR={data_dir}".encode()
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes()
            environ = (proc / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if marker in environ or str(data_dir).encode() in cmdline:
            found.append(f"{proc.name}: {cmdline[:200]!r}")
    # Redis rewrites both environ and command line; its pid file stays until it exits.
    for pidfile in (data_dir / "redis.pid", data_dir / "pgdata" / "postmaster.pid"):
        if pidfile.exists():
            pid = pidfile.read_text().split()[0]
            if Path(f"/proc/{pid}").exists():
                found.append(f"{pid}: from {pidfile.name}")
    return sorted(set(found))


def wait_for_port(port: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on port {port}")


def test_database_url() -> str:
    """The pytest test database as a URL a subprocess (server, worker, psycopg) can use.

    Call it once the test database exists (after `django_db_setup`): Django then has put the
    test database's name into the settings.
    """
    from django.conf import settings

    db = settings.DATABASES["default"]
    auth = quote(db.get("USER") or "postgres")
    if db.get("PASSWORD"):
        auth += ":" + quote(db["PASSWORD"])
    socket_dir = (db.get("OPTIONS") or {}).get("host")
    if socket_dir:  # the embedded server listens on a unix socket (dj_database_url: ?host=)
        return f"postgresql://{auth}@/{db['NAME']}?host={quote(socket_dir)}"
    host = db.get("HOST") or "127.0.0.1"
    port = db.get("PORT") or 5432
    return f"postgres://{auth}@{host}:{port}/{db['NAME']}"


test_database_url.__test__ = False  # a helper, not a test (modules import it by this name)


def app_env(database_url: str, redis_url: str, **extra: str) -> dict[str, str]:
    env = {**os.environ, "DATABASE_URL": database_url, "REDIS_URL": redis_url, "DEBUG": "1"}
    env.pop("CELERY_BROKER_URL", None)
    env.update(extra)
    return env


def manage(env: dict[str, str], *args: str) -> None:
    subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        timeout=300,
    )


@contextmanager
def uvicorn_server(
    env: dict[str, str], *, port: int | None = None, workers: int = 1, args: tuple[str, ...] = ()
) -> Iterator[tuple[str, subprocess.Popen]]:
    """config.asgi:application under uvicorn; yields (base URL, process)."""
    port = port or free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "config.asgi:application",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--log-level",
            "warning",
            # Parked long-polls would otherwise hold a graceful shutdown for up to 30 s.
            "--timeout-graceful-shutdown",
            "1",
            *args,
        ],
        cwd=ROOT,
        env=env,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(base, process)
        yield base, process
    finally:
        stop_process(process)


def wait_healthy(base: str, process: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("app server did not start")
        time.sleep(0.1)


def stop_process(process: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, sig)
        process.wait(15)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(5)


@contextmanager
def celery_worker_process(
    database_url: str, *, log_path: Path | None = None, timeout: float = 60
) -> Iterator[subprocess.Popen]:
    """A real `celery worker` (solo pool) on `database_url` and this run's Redis.

    Yields once the worker answers a ping, so tasks sent from then on are consumed. The queue
    is purged first: tasks left over from an earlier run must not reach this worker. With
    `log_path` the worker's log goes to that file (and the process has a `log_path` attribute);
    otherwise to this process's stderr.
    """
    from config.celery import app

    app.control.purge()
    # A name of its own: a ping must reach this worker, not another one on the same broker.
    nodename = f"test-{uuid.uuid4().hex[:8]}@127.0.0.1"
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DEBUG": "1",
        "LOG_LEVEL": "WARNING",
    }
    log = log_path.open("wb") if log_path else None
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "--pool=solo",
            "--concurrency=1",
            "--loglevel=WARNING",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            f"--hostname={nodename}",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL if log else None,
        stderr=log,
    )
    process.log_path = log_path  # type: ignore[attr-defined]
    try:
        deadline = time.monotonic() + timeout
        while not _pings(app, nodename):
            if process.poll() is not None:
                raise RuntimeError(f"celery worker exited at start (code {process.returncode})")
            if time.monotonic() > deadline:
                raise RuntimeError(f"celery worker did not answer a ping within {timeout} s")
            time.sleep(0.3)
        yield process
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if log:
            log.close()


def _pings(app, nodename: str) -> bool:
    try:
        return bool(app.control.ping(destination=[nodename], timeout=0.5))
    except Exception:  # the broker may still be connecting: ask again
        return False
