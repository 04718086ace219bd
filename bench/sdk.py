"""SDK hot-path costs: FeatureFlags.is_enabled, DomainRouter.route_by_domain (with and without
tracking) and CostTracker.track_routing_decision alone.

    .venv/bin/python bench/sdk.py [--calls 200000]

is_enabled runs in remote mode on a live-looking document (no server needed: the poller's
document is what every call reads). DomainRouter uses the real routellm Controller with the
`random` router and a remote CostTracker (whose enqueue is part of the measured call; its
sender thread validates the events and posts batches to a stand-in events endpoint in another
process). Each figure is wall time per call; "cpu" is the caller thread's CPU time per call
(time.thread_time), steadier than wall time on a loaded machine, and "sender" the sender
thread's CPU time per event (it shares the GIL with the caller).
Goals: is_enabled < 5 µs; DomainRouter overhead < 50 µs per decision.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def event_sink(port: int) -> None:
    """A stand-in for POST /api/v1/events in its own process: accepts every batch at once."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    import orjson

    class Sink(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:
            pass

        def do_POST(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            count = len(orjson.loads(body).get("events", []))
            answer = orjson.dumps({"accepted": count, "duplicates": 0, "rejected": []})
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

    ThreadingHTTPServer(("127.0.0.1", port), Sink).serve_forever()


def per_call_us(fn, calls: int) -> float:
    started = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - started) / calls * 1e6


def sender_cpu_seconds() -> float:
    """CPU time of the tracker's sender threads so far."""
    total = 0.0
    for thread in threading.enumerate():
        if thread.name.startswith("routeplane-tracker") and thread.ident is not None:
            total += time.clock_gettime(time.pthread_getcpuclockid(thread.ident))
    return total


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=200_000)
    args = parser.parse_args()
    tmp = tempfile.mkdtemp(prefix="routeplane-bench-sdk-")
    os.environ["ROUTEPLANE_CACHE_PATH"] = tmp + "/"
    os.environ["ROUTEPLANE_SPOOL_DIR"] = tmp

    from routing import CostTracker, DomainRouter, FeatureFlags, RouteLLMConfig, RouterType

    url = f"http://127.0.0.1:{closed_port()}"
    flags = FeatureFlags(url=url, api_key="rp_bench", first_timeout=0.1)
    document = dict(flags.document())
    document["revision"] = 2
    document["config"] = {**document["config"], "enabled": True, "router_type": "random"}
    document["flags"] = {
        **document["flags"],
        "routellm_enabled": {"enabled": True, "rollout_percent": 50},
        "routellm_cost_tracking": {"enabled": True, "rollout_percent": 100},
    }
    flags.poller.apply(document)

    no_key = per_call_us(lambda: flags.is_enabled("routellm_cost_tracking"), args.calls)
    with_key = per_call_us(lambda: flags.is_enabled("routellm_enabled", "user-42"), args.calls)
    print(
        f"FeatureFlags.is_enabled (remote doc): {no_key:.2f} µs without key, "
        f"{with_key:.2f} µs with a rollout key (goal < 5 µs): "
        f"{'OK' if max(no_key, with_key) < 5 else 'MISSED'}"
    )

    import multiprocessing

    sink_port = closed_port()
    sink = multiprocessing.Process(target=event_sink, args=(sink_port,), daemon=True)
    sink.start()
    time.sleep(0.5)
    tracker = CostTracker(
        url=f"http://127.0.0.1:{sink_port}", api_key="rp_bench", max_queue=10_000_000
    )
    router = DomainRouter(
        RouteLLMConfig(enabled=True, router_type=RouterType.RANDOM), flags=flags, tracker=tracker
    )
    texts = [f"Fix the bug in this Python function number {i}" for i in range(1000)]

    async def decide(n: int) -> tuple[float, float]:
        """(wall µs, caller CPU µs) per decision."""
        # Warm-up: half the keys are routed (50 % rollout); the first routed one builds the
        # Controller, importing routellm and torch, which is not what we measure.
        for i in range(200):
            await router.route_by_domain(texts[i % 1000], key=f"warm-{i}")
        assert router.controller is not None
        started, cpu = time.perf_counter(), time.thread_time()
        for i in range(n):
            await router.route_by_domain(texts[i % 1000], key=str(i))
        return (time.perf_counter() - started) / n * 1e6, (time.thread_time() - cpu) / n * 1e6

    calls = max(1000, args.calls // 10)
    sender_before = sender_cpu_seconds()
    total, total_cpu = asyncio.run(decide(calls))
    tracker.flush(30)
    sender = (sender_cpu_seconds() - sender_before) / calls * 1e6
    rr = router.controller.routers["random"]
    raw = per_call_us(lambda: rr.calculate_strong_win_rate("x"), calls)
    print(
        f"DomainRouter.route_by_domain (random router, tracking enqueue included): "
        f"{total:.1f} µs per decision (cpu {total_cpu:.1f} µs; sender {sender:.1f} µs per "
        f"event), of which RouteLLM's random router {raw:.1f} µs; overhead {total - raw:.1f} µs "
        f"(goal < 50 µs): {'OK' if total - raw < 50 else 'MISSED'}"
    )

    class NoTracker:
        def track_routing_decision(self, **kwargs) -> str:
            return "-"

    router.tracker = NoTracker()
    untracked, untracked_cpu = asyncio.run(decide(calls))
    print(
        f"  without tracking: {untracked:.1f} µs per decision (cpu {untracked_cpu:.1f} µs), "
        f"overhead {untracked - raw:.1f} µs; so tracking costs about "
        f"{total - untracked:.1f} µs of the total"
    )

    def track() -> None:
        tracker.track_routing_decision(
            text=texts[0],
            domains=["technical"],
            routing_method="routellm",
            selected_model="gpt-3.5-turbo",
            estimated_cost=None,
            strong_win_rate=0.4,
            threshold=0.5,
            latency_ms=0.1,
            revision=2,
        )

    sender_before, cpu = sender_cpu_seconds(), time.thread_time()
    alone = per_call_us(track, calls)
    alone_cpu = (time.thread_time() - cpu) / calls * 1e6
    tracker.flush(30)
    sender = (sender_cpu_seconds() - sender_before) / calls * 1e6
    print(
        f"  CostTracker.track_routing_decision alone (remote): {alone:.1f} µs per call "
        f"(cpu {alone_cpu:.1f} µs; sender {sender:.1f} µs per event)"
    )
    print(f"  tracker sent {tracker.sent} events to a stand-in events endpoint")
    sink.terminate()


if __name__ == "__main__":
    main()
