"""The local run command: `python -m config.run` (what ./scripts/run.sh execs).

Starts the embedded PostgreSQL and Redis once when DATABASE_URL / REDIS_URL are unset, then
migrates, collects static files, seeds the demo, and supervises three children: the web server
(uvicorn, the ASGI app with the flags fast path), a Celery worker and Celery beat. Ctrl-C or
SIGTERM stops the children (each in its own session, so the terminal's Ctrl-C reaches only this
supervisor and the shutdown order is ours), then the embedded servers. If a child dies, the
others are stopped too and the exit status is 1: a half-running control plane is worse than
none. While it serves, `$ROUTEPLANE_DATA_DIR/run.json` records it, so manage.py run beside it
joins it (config.instance).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from config import embedded as services
from config import instance

BASE_DIR = Path(__file__).resolve().parent.parent
STOP_TIMEOUT = 15.0  # seconds a child gets for a graceful stop before SIGKILL
_print_lock = threading.Lock()


def say(message: str) -> None:
    with _print_lock:
        print(f"routeplane | {message}", flush=True)


@dataclass
class Child:
    name: str
    command: list[str]
    process: subprocess.Popen | None = None
    pump: threading.Thread | None = field(default=None, repr=False)

    def start(self, env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            self.command,
            cwd=BASE_DIR,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        self.pump = threading.Thread(target=_pump, args=(self.name, self.process.stdout))
        self.pump.daemon = True
        self.pump.start()

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None


def _die_with_parent() -> None:
    """Linux: the child gets SIGTERM if the supervisor is killed (-9) so nothing is orphaned."""
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:  # best effort: non-Linux systems have no prctl
        pass


def _pump(name: str, stream: IO[bytes]) -> None:
    for raw in iter(stream.readline, b""):
        line = raw.decode("utf-8", "replace").rstrip()
        with _print_lock:
            print(f"{name:<10} | {line}", flush=True)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m config.run", description=__doc__)
    parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    parser.add_argument(
        "--web-workers", type=int, default=int(os.environ.get("WEB_CONCURRENCY", "2"))
    )
    parser.add_argument(
        "--worker-concurrency", type=int, default=int(os.environ.get("CELERY_CONCURRENCY", "2"))
    )
    parser.add_argument("--no-seed", action="store_true", help="skip seed_demo")
    parser.add_argument(
        "--keep-services",
        action="store_true",
        help="leave the embedded PostgreSQL/Redis running on exit",
    )
    return parser.parse_args(argv)


def prepare_environment() -> tuple[dict[str, str], list[str]]:
    """The children's environment; starts the embedded servers when no URL is given."""
    os.environ.setdefault("DEBUG", "1")  # local runs need no SECRET_KEY; DEBUG=0 works too
    # Plain HTTP on this machine: no HTTPS redirect, HSTS or secure-only cookies (settings turn
    # them on when DEBUG is off); set them to 1 to run behind TLS.
    for name in (
        "SECURE_SSL_REDIRECT",
        "SECURE_HSTS_SECONDS",
        "SESSION_COOKIE_SECURE",
        "CSRF_COOKIE_SECURE",
    ):
        os.environ.setdefault(name, "0")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    embedded: list[str] = []
    if os.environ.get("ROUTEPLANE_DATA_DIR"):
        # One data dir holds everything a run writes, so runs side by side never share files.
        os.environ.setdefault("STATIC_ROOT", str(services.data_dir() / "staticfiles"))

    # Every web worker writes its /metrics counters here; a new run starts them at zero.
    from config.multiproc import ENV_NAME, fresh_multiproc_dir

    metrics_dir = os.environ.get(ENV_NAME) or str(services.data_dir() / "prometheus")
    os.environ[ENV_NAME] = str(fresh_multiproc_dir(Path(metrics_dir)))

    if not os.environ.get("DATABASE_URL"):
        say(f"starting the embedded PostgreSQL in {services.data_dir() / 'pgdata'}")
        os.environ["DATABASE_URL"] = services.embedded_postgres_url()
        embedded.append("postgres")
    if not (os.environ.get("REDIS_URL") or os.environ.get("CELERY_BROKER_URL")):
        say("starting the embedded Redis")
        os.environ["REDIS_URL"] = services.embedded_redis_url()
        embedded.append("redis")
    return dict(os.environ), embedded


def setup(env: dict[str, str], *, seed: bool, stop: threading.Event) -> str:
    """migrate, collectstatic, seed_demo; returns seed_demo's output (it holds the key)."""
    manage = [sys.executable, str(BASE_DIR / "manage.py")]
    steps = [
        ("migrate", [*manage, "migrate", "--noinput", "-v", "1"]),
        ("static", [*manage, "collectstatic", "--noinput", "-v", "0"]),
    ]
    if seed:
        steps.append(("seed_demo", [*manage, "seed_demo"]))
    output = ""
    for name, command in steps:
        say(f"{name}: {' '.join(command[1:])}")
        result = subprocess.run(
            command, cwd=BASE_DIR, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True
        )
        text = (result.stdout + result.stderr).strip()
        for line in text.splitlines():
            if name != "migrate" or not line.startswith("  Applying"):
                print(f"{name:<10} | {line}", flush=True)
        if stop.is_set():  # Ctrl-C reached the step too (same process group): not its fault
            raise SetupFailed(f"interrupted during {name}")
        if result.returncode != 0:
            raise SetupFailed(f"{name} failed (exit {result.returncode})")
        if name == "seed_demo":
            output = text
    return output


class SetupFailed(Exception):
    pass


def children(args: argparse.Namespace) -> list[Child]:
    python = sys.executable
    web = [
        python, "-m", "uvicorn", "config.asgi:application",
        "--host", args.host, "--port", str(args.port),
        "--workers", str(args.web_workers),
        "--loop", "uvloop", "--http", "httptools",
        "--no-access-log", "--timeout-graceful-shutdown", "5",
        "--limit-concurrency", os.environ.get("WEB_LIMIT_CONCURRENCY", "2048"),
    ]  # fmt: skip
    worker = [
        python, "-m", "celery", "-A", "config", "worker",
        "--loglevel", "INFO", "--concurrency", str(args.worker_concurrency),
    ]  # fmt: skip
    beat = [
        python, "-m", "celery", "-A", "config", "beat", "--loglevel", "INFO",
        "--scheduler", "django_celery_beat.schedulers:DatabaseScheduler",
        "--pidfile=",  # no stale pidfile blocks the next start after a crash
    ]  # fmt: skip
    return [Child("web", web), Child("worker", worker), Child("beat", beat)]


def wait_healthy(url: str, child: Child, stop: threading.Event, timeout: float = 90.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and child.running() and not stop.is_set():
        with contextlib.suppress(OSError):
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return True
        time.sleep(0.25)
    return False


def stop_children(running: list[Child]) -> None:
    # SIGTERM to each leader: uvicorn's master stops its workers, Celery does a warm shutdown.
    for child in running:
        if child.running():
            with contextlib.suppress(ProcessLookupError):
                os.kill(child.pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT
    for child in running:
        if child.process is None:
            continue
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.process.wait(timeout=max(0.1, deadline - time.monotonic()))
    # Whatever is left of each session (a stuck leader, a pool process) is killed outright.
    for child in running:
        if child.process is None:
            continue
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(child.pid, signal.SIGKILL)
        if child.process.poll() is None:
            child.process.wait(timeout=5)
        say(f"{child.name} stopped (exit {child.process.returncode})")


def stop_embedded(names: list[str]) -> None:
    from config import embedded

    if "redis" in names and embedded.stop_redis():
        say("embedded Redis stopped")
    if "postgres" in names and embedded.stop_postgres():
        say("embedded PostgreSQL stopped")


def local_host(host: str) -> str:
    """Where this machine reaches a server bound to `host` (a wildcard means loopback)."""
    return "127.0.0.1" if host in ("0.0.0.0", "::", "") else host


def record_instance(args: argparse.Namespace, embedded: list[str]) -> None:
    """run.json in the data dir: manage.py beside this run joins it (config.instance)."""
    instance.record(
        services.data_dir(),
        instance.Instance(
            pid=os.getpid(),
            url=f"http://{local_host(args.host)}:{args.port}/",
            debug=os.environ["DEBUG"].strip().lower() in ("1", "true", "yes", "on"),
            # A URL the user gave may hold a password: it stays in their environment only.
            database_url=os.environ["DATABASE_URL"] if "postgres" in embedded else None,
            redis_url=os.environ["REDIS_URL"] if "redis" in embedded else None,
        ),
    )


def banner(args: argparse.Namespace, seed_output: str) -> None:
    url = f"http://{local_host(args.host)}:{args.port}/"
    password = os.environ.get("ROUTEPLANE_DEMO_PASSWORD") or "routeplane-demo"
    lines = [
        f"Routeplane is up: {url}",
        f"  dashboard login: operator / {password}   (viewer / {password} reads only;"
        " passwords are set when the demo is first seeded)",
        f"  API docs: {url}api/docs/   admin: {url}admin/",
    ]
    keys = dict(
        re.findall(r"Its (\w+) key \(shown only now\): (rp_[A-Za-z0-9_-]{20,})", seed_output)
    )
    if keys:
        lines.append("  demo router 'demo' API keys (shown only this once; stored as hashes):")
        for role, raw in keys.items():
            lines.append(f"    {role + ' key:':<14}{raw}")
        lines.append(
            f"  run the examples: ROUTEPLANE_URL={url.rstrip('/')} ROUTEPLANE_API_KEY=<a key>"
            " .venv/bin/python examples/<script>.py   (see the README)"
        )
    lines.append("  manage.py commands from this directory, in another terminal, join this run.")
    lines.append("  Ctrl-C stops everything.")
    width = max(len(line) for line in lines) + 2
    say("=" * width)
    for line in lines:
        say(line)
    say("=" * width)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        if stop.is_set():
            return
        say(f"{signal.Signals(signum).name} received: stopping")
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    embedded: list[str] = []
    running: list[Child] = []
    status = 0
    try:
        env, embedded = prepare_environment()
        seed_output = setup(env, seed=not args.no_seed, stop=stop)
        for child in children(args):
            child.start(env)
            running.append(child)
            say(f"{child.name} started (pid {child.pid})")
        if wait_healthy(f"http://{local_host(args.host)}:{args.port}/healthz", running[0], stop):
            record_instance(args, embedded)
            banner(args, seed_output)
        elif not stop.is_set():
            say("the web server did not become healthy; stopping")
            status = 1
            stop.set()
        while not stop.wait(0.5):
            dead = [child for child in running if not child.running()]
            if dead:
                for child in dead:
                    say(f"{child.name} exited (code {child.process.returncode}); stopping the rest")
                status = 1
                break
    except SetupFailed as exc:
        say(str(exc))
        status = 0 if stop.is_set() else 1
    except Exception as exc:
        say(f"failed: {exc.__class__.__name__}: {exc}")
        status = 1
        raise
    finally:
        # Shutdown must finish even if Ctrl-C is pressed again meanwhile.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        instance.forget(services.data_dir())
        stop_children(running)
        if embedded and not args.keep_services:
            stop_embedded(embedded)
        say("all stopped")
    return status


if __name__ == "__main__":
    sys.exit(main())
