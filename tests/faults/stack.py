"""A whole deployment for fault tests, on private servers the tests may stop and kill.

A private PostgreSQL (pgserver) and Redis (tests.servers), migrated once, with one router per
test; the web server is the README's (uvicorn, 2 workers, config.asgi:application) on a fixed
port, so the SDK's URL stays valid across a restart; a real Celery worker on the private Redis.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg

from config.embedded import free_port
from tests.servers import ROOT, PrivatePostgres, PrivateRedis, app_env, manage, uvicorn_server

ROUTERS = ("webkill", "celerykill", "pgrestart", "redisdown", "outage")
CREATE_ROUTERS = """
import json
from controlplane.actors import Actor
from controlplane.services import create_api_key, create_router
actor = Actor.cli("faults")
keys = {}
for slug in %r:
    router = create_router(slug=slug, actor=actor)
    keys[slug] = {"id": router.pk}
    for role in ("router", "operator"):
        keys[slug][role] = create_api_key(router=router, role=role, actor=actor, name=role)[1]
print(json.dumps(keys))
"""


@dataclass
class RouterKeys:
    slug: str
    id: int
    router: str  # the router key
    operator: str


class Stack:
    def __init__(self) -> None:
        # Not pytest's tmp_path: it is 0700, and pgserver runs postgres as another user as root.
        self.data_dir = Path(tempfile.mkdtemp(prefix="rp-faults-"))
        self.data_dir.chmod(0o755)
        self.postgres = PrivatePostgres(self.data_dir / "pg")
        self.redis = PrivateRedis()
        self.env = app_env(self.postgres.url, self.redis.url, LOG_LEVEL="WARNING")
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        try:
            self.routers = self._prepare()
        except BaseException:
            self.close()
            raise

    def _prepare(self) -> dict[str, RouterKeys]:
        """Migrate, then create every test's router and keys (one Django start for all)."""
        manage(self.env, "migrate", "--noinput")
        created = subprocess.run(
            [sys.executable, "manage.py", "shell", "-c", CREATE_ROUTERS % (ROUTERS,)],
            cwd=ROOT,
            env=self.env,
            check=True,
            capture_output=True,
            text=True,
            timeout=120,
        )
        keys = json.loads(created.stdout.strip().splitlines()[-1])
        return {slug: RouterKeys(slug, **values) for slug, values in keys.items()}

    def close(self) -> None:
        self.redis.stop()
        self.postgres.close()
        shutil.rmtree(self.data_dir, ignore_errors=True)

    # --- the web server -----------------------------------------------------------------

    @contextmanager
    def web(self) -> Iterator[subprocess.Popen]:
        """The README's web server: uvicorn, 2 workers (uvloop, httptools), on self.port."""
        args = ("--loop", "uvloop", "--http", "httptools", "--no-access-log")
        with uvicorn_server(self.env, port=self.port, workers=2, args=args) as (_, process):
            yield process

    # --- the Celery worker ---------------------------------------------------------------

    def start_celery(self, log_path: Path) -> subprocess.Popen:
        """A real `celery worker` (solo pool: the task runs in this very process, so a kill -9
        hits it mid-task) on the private PostgreSQL and Redis."""
        nodename = f"faults-{uuid.uuid4().hex[:8]}@127.0.0.1"
        log = log_path.open("ab")  # appended: a restarted worker logs after the killed one
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "config",
                "worker",
                "--pool=solo",
                "--loglevel=INFO",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                f"--hostname={nodename}",
            ],  # fmt: skip
            cwd=ROOT,
            env={**self.env, "DJANGO_SETTINGS_MODULE": "config.settings"},
            stdout=subprocess.DEVNULL,
            stderr=log,
            start_new_session=True,
        )
        log.close()  # the worker has its own copy
        wait_for(lambda: f"{nodename} ready." in log_path.read_text(errors="replace"), 60, process)
        return process

    def send_task(self, name: str) -> None:
        """Queue a task by name on the private broker, as beat does."""
        from celery import Celery

        with Celery(broker=self.redis.url) as app:
            app.send_task(name)

    # --- database reads ---------------------------------------------------------------------

    def query(self, sql: str, params: tuple | dict = ()) -> list[tuple]:
        """Rows of one statement (none for a write), on a connection of its own."""
        with psycopg.connect(self.postgres.url, autocommit=True) as conn:
            cursor = conn.execute(sql, params)
            return cursor.fetchall() if cursor.description else []

    def event_ids(self, router: RouterKeys) -> list[str]:
        sql = "SELECT event_id::text FROM tracking_event WHERE router_id = %s"
        rows = self.query(sql, (router.id,))
        return [row[0] for row in rows]

    def stored_events(self, router: RouterKeys) -> int:
        try:
            return self.query(
                "SELECT count(*) FROM tracking_event WHERE router_id = %s", (router.id,)
            )[0][0]
        except psycopg.OperationalError:  # the database is down for this test
            return -1


def wait_for(
    predicate: Callable[[], bool], timeout: float, process: subprocess.Popen | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process exited (code {process.returncode})")
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s")
        time.sleep(0.05)


def children_of(pid: int) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                stat = (proc / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(proc.name))
    return found


def worker_serving(master_pid: int, server_port: int) -> int | None:
    """The uvicorn worker holding an established connection on `server_port`, if any (in these
    tests the SDK's sender is the only HTTP client, so: the worker serving it)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local_port = int(fields[1].rsplit(":", 1)[1], 16)
            if local_port == server_port and fields[3] == "01":  # ESTABLISHED
                inodes.add(f"socket:[{fields[9]}]")
    for pid in children_of(master_pid):
        try:
            links = {os.readlink(fd) for fd in Path(f"/proc/{pid}/fd").iterdir()}
        except OSError:
            continue
        if links & inodes:
            return pid
    return None


def kill9(pid: int) -> None:
    os.kill(pid, signal.SIGKILL)
