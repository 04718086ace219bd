"""Flag propagation: 1,000 long-polling clients, a flag flipped through the operator API.

    .venv/bin/python bench/propagation.py [--clients 1000] [--rounds 5] [--keep]

Starts config.asgi:application (uvicorn, 2 workers) on its own database (rp_bench_b),
parks every client on `GET /api/v1/flags?wait=30` with the current ETag (raw asyncio sockets,
one connection each), flips a flag with `PUT routers/bench/flags/...` and measures, per client,
the time from sending the PUT (its own processing included: clients usually have the new
document before the PUT's answer arrives) to receiving the new document, and the same from the
commit (the bench's own LISTEN) and from the PUT's HTTP answer. Prints p50/p99/max over all
rounds (goal: p99 < 250 ms from the write's answer).
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import statistics
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from flags_api import drop_database, prepare_database, uvicorn  # noqa: E402


async def read_response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return status, headers, body


class Client:
    def __init__(self, host: str, port: int, key: str) -> None:
        self.host, self.port, self.key = host, port, key
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def connect(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    async def poll(self, etag: str, parked: asyncio.Event | None = None):
        assert self.reader and self.writer
        self.writer.write(
            (
                f"GET /api/v1/flags?wait=30 HTTP/1.1\r\nHost: {self.host}\r\n"
                f"Authorization: Bearer {self.key}\r\nIf-None-Match: {etag}\r\n"
                "User-Agent: routeplane-sdk/bench\r\n\r\n"
            ).encode()
        )
        await self.writer.drain()
        status, headers, _body = await read_response(self.reader)
        return status, headers.get("etag"), time.perf_counter()


async def run(base: str, router_key: str, operator_key: str, clients: int, rounds: int):
    import psycopg
    from flags_api import DB_URL

    host, port = base.split("//")[1].split(":")
    # The bench listens too: the moment its NOTIFY arrives is (within a millisecond) the commit.
    listener = await psycopg.AsyncConnection.connect(DB_URL, autocommit=True)
    await listener.execute("LISTEN routeplane_revisions")
    from_commit: list[float] = []
    from_answer: list[float] = []
    async with listener, httpx.AsyncClient(base_url=base, timeout=30) as api:
        for percent in (10, 20, 30, 40):  # warm both workers' Django (imports, URL resolver)
            await api.put(
                "/api/v1/routers/bench/flags/routellm_a_b_testing",
                headers={"Authorization": f"Bearer {operator_key}"},
                json={"enabled": True, "rollout_percent": percent},
            )
        await asyncio.sleep(0.5)
        async for _note in listener.notifies(timeout=0.1):
            pass  # drain the warm-up notifications
        etag = (
            await api.get("/api/v1/flags", headers={"Authorization": f"Bearer {router_key}"})
        ).headers["etag"]
        pool = [Client(host, int(port), router_key) for _ in range(clients)]
        for start in range(0, clients, 100):
            await asyncio.gather(*(c.connect() for c in pool[start : start + 100]))
        samples: list[float] = []
        for round_number in range(rounds):
            tasks = [asyncio.create_task(c.poll(etag)) for c in pool]
            await asyncio.sleep(2.0)  # every request parked on the server
            assert not any(t.done() for t in tasks), "a poll returned before the flip"
            sent = time.perf_counter()
            committed_at: list[float] = []

            async def watch(seen: list[float]) -> None:
                async for _note in listener.notifies(stop_after=1):
                    seen.append(time.perf_counter())

            watcher = asyncio.create_task(watch(committed_at))
            response = await api.put(
                "/api/v1/routers/bench/flags/routellm_enabled",
                headers={"Authorization": f"Bearer {operator_key}"},
                json={"enabled": True, "rollout_percent": round_number + 1},
            )
            answered = time.perf_counter()
            assert response.status_code == 200, response.text
            results = await asyncio.gather(*tasks)
            statuses = {status for status, _, _ in results}
            assert statuses == {200}, statuses
            new_etags = {e for _, e, _ in results}
            assert len(new_etags) == 1 and etag not in new_etags
            etag = new_etags.pop()
            samples += [(at - sent) * 1000.0 for _, _, at in results]
            from_answer += [(at - answered) * 1000.0 for _, _, at in results]
            await asyncio.wait_for(watcher, 5)
            from_commit += [(at - committed_at[0]) * 1000.0 for _, _, at in results]
        for c in pool:
            c.writer.close()
    return samples, from_commit, from_answer


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, args.clients + 512)), hard))
    _slug, router_key, operator_key = prepare_database()
    try:
        with uvicorn("config.asgi:application") as base:
            samples, from_commit, from_answer = asyncio.run(
                run(base, router_key, operator_key, args.clients, args.rounds)
            )
    finally:
        if not args.keep:
            drop_database()

    def figures(values: list[float]) -> tuple[float, float, float]:
        values = sorted(values)
        return statistics.median(values), values[int(len(values) * 0.99) - 1], values[-1]

    print(f"{args.clients} long-polling clients x {args.rounds} flips, 2 uvicorn workers:")
    p50, p99, top = figures(from_commit)
    print(f"  from commit:       p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {top:.1f} ms")
    s50, s99, stop = figures(samples)
    print(
        f"  from sending PUT:  p50 {s50:.1f} ms, p99 {s99:.1f} ms, max {stop:.1f} ms "
        "(includes the PUT's own Django request and transaction)"
    )
    a50, a99, atop = figures(from_answer)
    print(
        f"  from the PUT's answer: p50 {a50:.1f} ms, p99 {a99:.1f} ms, max {atop:.1f} ms "
        "(negative: the client had the new document before the writer had its answer)"
    )
    print(f"p99 from commit < 250 ms: {'OK' if p99 < 250 else 'MISSED'}")
    print(f"p99 from the PUT's answer < 250 ms: {'OK' if a99 < 250 else 'MISSED'}")


if __name__ == "__main__":
    main()
