"""Soak: the README's deployment under mixed load for --minutes; is memory per process flat?

    .venv/bin/python bench/soak.py [--minutes 10] [--pollers 50] [--ingesters 2]
        [--batch 200] [--batch-every 1.0] [--write-every 2.0] [--report-every 5.0]

Runs `DEBUG=0 python -m config.run` (as in production; --debug: DEBUG=1, the run script's
default): uvicorn 2 workers (uvloop, httptools), a Celery worker with 2 pool processes and Celery
beat, on its own embedded PostgreSQL and Redis in a temp data dir, the demo seeded. Then, for
--minutes, from one asyncio loop on loopback:

- `--pollers` long-pollers: `GET /api/v1/flags?wait=30` with the current ETag, each with its own
  `X-Routeplane-Client` id, polling again at once after every answer;
- one operator writer: `PUT routers/demo/flags/routellm_a_b_testing` flipping its rollout
  percent every --write-every s (every long-poller gets a new document each time);
- `--ingesters` clients each posting a batch of --batch events every --batch-every s;
- one reader of `GET reports/savings` every --report-every s.

After --warmup-seconds (60) of that load, every 10 s it samples the RSS (/proc/<pid>/status
VmRSS) of every process of the deployment except the embedded PostgreSQL/Redis: the uvicorn
master and its workers, the Celery worker and its pool processes, beat. At the end it prints
each process's mean RSS over the first and the last minute and the growth between them (goal:
within 10 %), also the growth from the second minute, the request counts and errors, and stops
everything (Ctrl-C too). Loopback only; it stops by itself. --json keeps every sample.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, SECRET_KEY, free_port  # noqa: E402

SAMPLE_SECONDS = 10.0
ROUTER = "demo"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--pollers", type=int, default=50)
    parser.add_argument("--ingesters", type=int, default=2)
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument("--batch-every", type=float, default=1.0)
    parser.add_argument("--write-every", type=float, default=2.0)
    parser.add_argument("--report-every", type=float, default=5.0)
    parser.add_argument(
        "--warmup-seconds",
        type=float,
        default=60.0,
        help="load before the first sample (not counted in --minutes)",
    )
    parser.add_argument(
        "--debug", action="store_true", help="DEBUG=1 (./scripts/run.sh's default); else DEBUG=0"
    )
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    return parser.parse_args()


# --- the deployment ---------------------------------------------------------------------------


class Deployment:
    """`python -m config.run` on a temp data dir; collects the demo keys from its banner."""

    def __init__(self, port: int, *, debug: bool) -> None:
        self.port = port
        self.data_dir = Path(tempfile.mkdtemp(prefix="rp-soak-"))
        self.data_dir.chmod(0o755)  # pgserver runs postgres as another user when we are root
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL")
        }
        env.update(ROUTEPLANE_DATA_DIR=str(self.data_dir), PORT=str(port))
        # As in production by default: with DEBUG on, Django also keeps the last 9,000 queries
        # of every connection, which looks like growth over the first minutes.
        env.update(DEBUG="1") if debug else env.update(DEBUG="0", SECRET_KEY=SECRET_KEY)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "config.run", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self.keys: dict[str, str] = {}
        self.ready = threading.Event()
        self.log = self.data_dir / "run.log"
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        with self.log.open("w") as log:
            for line in self.process.stdout:
                log.write(line)
                log.flush()
                found = re.search(r"(\w+) key:\s+(rp_[A-Za-z0-9_-]{20,})", line)
                if found:
                    self.keys[found.group(1)] = found.group(2)
                if "Ctrl-C stops everything" in line:
                    self.ready.set()

    def wait_ready(self, timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        while not self.ready.wait(0.5):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"config.run did not come up; its log: {self.log}")

    def processes(self) -> dict[int, str]:
        """pid -> label of every Python process under config.run (not PostgreSQL/Redis)."""
        children: dict[int, list[int]] = {}
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            try:
                ppid = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(proc.name))
        labels: dict[int, str] = {}

        def walk(pid: int, label: str) -> None:
            for child in children.get(pid, []):
                cmdline = cmdline_of(child)
                if "python" not in cmdline:
                    continue
                if label == "celery worker":  # forked: same command line as its parent
                    name = "celery pool"
                elif "resource_tracker" in cmdline:
                    name = "mp tracker"  # multiprocessing's helper beside uvicorn's workers
                elif label == "web master":
                    name = "web worker"
                elif "uvicorn" in cmdline:
                    name = "web master"
                elif "celery" in cmdline and " beat" in cmdline:
                    name = "beat"
                elif "celery" in cmdline and " worker" in cmdline:
                    name = "celery worker"
                else:
                    name = label or "other"
                labels[child] = name
                walk(child, name)

        walk(self.process.pid, "")
        return labels

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)  # config.run stops its children, then PG
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
        shutil.rmtree(self.data_dir, ignore_errors=True)


def cmdline_of(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def rss_kib(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


# --- the load ---------------------------------------------------------------------------------


class Load:
    def __init__(self, base: str, keys: dict[str, str], args: argparse.Namespace) -> None:
        self.base, self.args = base, args
        self.router_headers = {"Authorization": f"Bearer {keys['router']}"}
        self.operator_headers = {"Authorization": f"Bearer {keys['operator']}"}
        self.counts: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()
        self.stop = asyncio.Event()

    def fail(self, what: str, detail: object) -> None:
        self.errors[f"{what}: {detail}"[:120]] += 1

    async def poller(self, index: int) -> None:
        headers = {
            **self.router_headers,
            "X-Routeplane-Client": f"soak-{index}",
            "User-Agent": "routeplane-sdk/soak",
        }
        etag = None
        async with httpx.AsyncClient(base_url=self.base, timeout=45) as client:
            while not self.stop.is_set():
                try:
                    extra = {"If-None-Match": etag} if etag else {}
                    response = await client.get("/api/v1/flags?wait=30", headers=headers | extra)
                except httpx.HTTPError as exc:
                    self.fail("poll", type(exc).__name__)
                    await asyncio.sleep(1)
                    continue
                self.counts[f"poll {response.status_code}"] += 1
                if response.status_code == 200:
                    etag = response.headers.get("etag")
                elif response.status_code != 304:
                    self.fail("poll", response.status_code)
                    await asyncio.sleep(1)

    async def writer(self) -> None:
        path = f"/api/v1/routers/{ROUTER}/flags/routellm_a_b_testing"
        async with httpx.AsyncClient(base_url=self.base, timeout=30) as client:
            flip = 0
            while not self.stop.is_set():
                flip += 1
                body = {"enabled": True, "rollout_percent": 10 + flip % 2}
                try:
                    response = await client.put(path, json=body, headers=self.operator_headers)
                    self.counts[f"write {response.status_code}"] += 1
                    if response.status_code != 200:
                        self.fail("write", response.status_code)
                except httpx.HTTPError as exc:
                    self.fail("write", type(exc).__name__)
                await self.pause(self.args.write_every)

    async def ingester(self) -> None:
        async with httpx.AsyncClient(base_url=self.base, timeout=30) as client:
            while not self.stop.is_set():
                now = datetime.now(UTC).isoformat()
                events = [
                    {
                        "event_id": str(uuid.uuid4()),
                        "timestamp": now,
                        "selected_model": "gpt-3.5-turbo" if i % 3 else "gpt-4-1106-preview",
                        "routing_method": "routellm",
                        "domains": ["technical"],
                        "prompt_tokens": 100 + i % 50,
                        "completion_tokens": 40,
                        "latency_ms": 120.0,
                    }
                    for i in range(self.args.batch)
                ]
                try:
                    response = await client.post(
                        "/api/v1/events", json={"events": events}, headers=self.router_headers
                    )
                    self.counts[f"ingest {response.status_code}"] += 1
                    if response.status_code == 200:
                        self.counts["events accepted"] += response.json()["accepted"]
                    else:
                        self.fail("ingest", response.status_code)
                except httpx.HTTPError as exc:
                    self.fail("ingest", type(exc).__name__)
                await self.pause(self.args.batch_every)

    async def reader(self) -> None:
        async with httpx.AsyncClient(base_url=self.base, timeout=30) as client:
            while not self.stop.is_set():
                try:
                    response = await client.get(
                        "/api/v1/reports/savings?period_days=1", headers=self.router_headers
                    )
                    self.counts[f"report {response.status_code}"] += 1
                    if response.status_code != 200:
                        self.fail("report", response.status_code)
                except httpx.HTTPError as exc:
                    self.fail("report", type(exc).__name__)
                await self.pause(self.args.report_every)

    async def pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stop.wait(), seconds)

    async def run(self, seconds: float, sample) -> None:
        tasks = [asyncio.create_task(self.poller(i)) for i in range(self.args.pollers)]
        tasks += [asyncio.create_task(self.ingester()) for _ in range(self.args.ingesters)]
        tasks += [asyncio.create_task(self.writer()), asyncio.create_task(self.reader())]
        # Each worker imports and caches on the first request of each kind (a report, an
        # ingest: +20 MiB at once, seen without this): measure from when every kind has run.
        await asyncio.sleep(self.args.warmup_seconds)
        started = time.monotonic()
        sample(0.0)
        while (elapsed := time.monotonic() - started) < seconds:
            await asyncio.sleep(min(SAMPLE_SECONDS, seconds - elapsed))
            sample(time.monotonic() - started)
        self.stop.set()
        # Parked long-polls answer within 30 s at most; do not wait for them.
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


# --- the report -------------------------------------------------------------------------------


def growth_table(samples: list[tuple[float, dict[int, tuple[str, int]]]], seconds: float) -> list:
    """Per process: mean RSS over the first and the last minute, and the growth."""
    rows = []
    pids = {pid: label for _, seen in samples for pid, (label, _) in seen.items()}
    last_start = max(0.0, seconds - 60)
    for pid, label in sorted(pids.items(), key=lambda item: (item[1], item[0])):
        first = [seen[pid][1] for t, seen in samples if t <= 60 and pid in seen]
        last = [seen[pid][1] for t, seen in samples if t >= last_start and pid in seen]
        if not first or not last:
            rows.append({"pid": pid, "process": label, "note": "not alive for the whole run"})
            continue
        # The second minute as well: the first holds the start-up (imports, caches, pools), so
        # growth after it tells a leak from warming up.
        second = [seen[pid][1] for t, seen in samples if 60 < t <= 120 and pid in seen]
        first_mib, last_mib = statistics.mean(first) / 1024, statistics.mean(last) / 1024
        second_mib = statistics.mean(second) / 1024 if second else first_mib
        rows.append(
            {
                "pid": pid,
                "process": label,
                "first_minute_mib": round(first_mib, 1),
                "last_minute_mib": round(last_mib, 1),
                "growth_percent": round(100 * (last_mib - first_mib) / first_mib, 1),
                "growth_after_minute_1_percent": round(
                    100 * (last_mib - second_mib) / second_mib, 1
                ),
            }
        )
    return rows


def main() -> int:
    args = parse_args()
    seconds = args.minutes * 60
    port = free_port()
    deployment = Deployment(port, debug=args.debug)
    samples: list[tuple[float, dict[int, tuple[str, int]]]] = []

    def sample(at: float) -> None:
        seen = {}
        for pid, label in deployment.processes().items():
            rss = rss_kib(pid)
            if rss is not None:
                seen[pid] = (label, rss)
        samples.append((at, seen))
        total = sum(rss for _, rss in seen.values()) / 1024
        print(f"  t={at:6.0f} s  {len(seen)} processes  {total:7.1f} MiB", flush=True)

    try:
        deployment.wait_ready()
        if not {"router", "operator"} <= set(deployment.keys):
            raise SystemExit(f"no demo keys in the run banner; log: {deployment.log}")
        load = Load(f"http://127.0.0.1:{port}", deployment.keys, args)
        print(
            f"soak: {args.minutes:g} min after {args.warmup_seconds:g} s of warm-up; "
            f"{args.pollers} long-pollers, {args.ingesters} x "
            f"{args.batch} events every {args.batch_every:g} s, a flag write every "
            f"{args.write_every:g} s, a savings report every {args.report_every:g} s; "
            f"DEBUG={int(args.debug)} python -m config.run (uvicorn 2 workers, Celery worker "
            "--concurrency 2, beat)",
            flush=True,
        )
        asyncio.run(load.run(seconds, sample))
    finally:
        deployment.stop()
    rows = growth_table(samples, seconds)
    print(
        f"\n{'process':<14} {'pid':>7} {'first min MiB':>14} {'last min MiB':>13} "
        f"{'growth':>8} {'after min 1':>12}"
    )
    for row in rows:
        if "note" in row:
            print(f"{row['process']:<14} {row['pid']:>7}  {row['note']}")
        else:
            print(
                f"{row['process']:<14} {row['pid']:>7} {row['first_minute_mib']:>14} "
                f"{row['last_minute_mib']:>13} {row['growth_percent']:>7}% "
                f"{row['growth_after_minute_1_percent']:>11}%"
            )
    print("\nrequests:", dict(sorted(load.counts.items())))
    print("errors:", dict(load.errors) or "none")
    flat = all(abs(row.get("growth_percent", 0)) <= 10 for row in rows)
    print(f"memory flat within 10 %: {'yes' if flat else 'NO'}")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "conditions": vars(args) | {"json": str(args.json)},
                    "processes": rows,
                    "requests": load.counts,
                    "errors": load.errors,
                    "samples": [
                        {"t": round(t), "rss_kib": {pid: rss for pid, (_, rss) in seen.items()}}
                        for t, seen in samples
                    ],
                },
                indent=2,
            )
        )
    return 0 if flat and not load.errors else 1


if __name__ == "__main__":
    sys.exit(main())
