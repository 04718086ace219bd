"""A small OpenAI-compatible model server on loopback, for tests and the integration example.

`POST /v1/chat/completions` (also without `/v1`) answers a chat completion with a `usage`
block (plain or streamed as server-sent events, usage in the final chunk when the request asks
`stream_options.include_usage`). Per model, a test can make it fail (`fail(model, status,
times)`: answer `status` the next `times` calls, or forever with times=None) or hang past a
timeout (`hang(model, seconds)`). Every call is kept in `calls` (model, stream, status, usage),
so a test can price exactly what the "provider" billed. No real provider is involved.

    with FakeModelServer() as fake:
        litellm.acompletion(model="gpt-4o", api_base=fake.api_base, api_key="x", messages=...)
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Call:
    model: str
    stream: bool
    status: int
    prompt_tokens: int = 0
    completion_tokens: int = 0


def usage_for(messages: list[dict[str, Any]], model: str) -> tuple[int, int]:
    """Deterministic token counts: the prompt's words (+ 7 per message), and a reply size
    that varies with the prompt so totals are not round numbers."""
    words = sum(len(str(m.get("content", "")).split()) for m in messages)
    prompt = words + 7 * len(messages)
    completion = 20 + (prompt * 37 + len(model)) % 180
    return prompt, completion


class FakeModelServer:
    def __init__(self, port: int = 0) -> None:
        self.calls: list[Call] = []
        self._failures: dict[str, tuple[int, int | None]] = {}
        self._hangs: dict[str, float] = {}
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                fake.handle(self, json.loads(raw or b"{}"))

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def api_base(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def __enter__(self) -> FakeModelServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # --- behaviour ---------------------------------------------------------------------

    def fail(self, model: str, status: int = 500, times: int | None = None) -> None:
        """Answer `status` to the next `times` calls for `model` (every call when None)."""
        with self._lock:
            self._failures[model] = (status, times)

    def hang(self, model: str, seconds: float) -> None:
        with self._lock:
            self._hangs[model] = seconds

    def heal(self) -> None:
        with self._lock:
            self._failures.clear()
            self._hangs.clear()

    def calls_for(self, model: str, status: int | None = None) -> list[Call]:
        return [
            c for c in self.calls if c.model == model and (status is None or c.status == status)
        ]

    # --- serving -----------------------------------------------------------------------

    def handle(self, h: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
        model = str(body.get("model", ""))
        stream = bool(body.get("stream"))
        with self._lock:
            status, times = self._failures.get(model, (200, 0))
            failing = times is None or times > 0
            if failing and times is not None:
                self._failures[model] = (status, times - 1)
            hang = self._hangs.get(model, 0.0)
        if hang:
            time.sleep(hang)
        if failing and status != 200:
            self.calls.append(Call(model, stream, status))
            error = {"error": {"message": f"fake failure {status}", "type": "server_error"}}
            return self._send(h, status, json.dumps(error).encode(), "application/json")
        prompt, completion = usage_for(body.get("messages") or [], model)
        self.calls.append(Call(model, stream, 200, prompt, completion))
        usage = {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        }
        reply = f"answer from {model}"
        created = int(time.time())
        if not stream:
            answer = {
                "id": f"chatcmpl-{len(self.calls)}",
                "object": "chat.completion",
                "created": created,
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": reply},
                        "finish_reason": "stop",
                    }
                ],
                "usage": usage,
            }
            return self._send(h, 200, json.dumps(answer).encode(), "application/json")
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        chunks = []
        base = {"id": f"chatcmpl-{len(self.calls)}", "object": "chat.completion.chunk",
                "created": created, "model": model}  # fmt: skip
        for index, word in enumerate(reply.split(" ")):
            delta = {"content": (" " if index else "") + word}
            if index == 0:
                delta["role"] = "assistant"
            chunks.append(base | {"choices": [{"index": 0, "delta": delta, "finish_reason": None}]})
        chunks.append(base | {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
        if include_usage:
            chunks.append(base | {"choices": [], "usage": usage})
        payload = b"".join(f"data: {json.dumps(c)}\n\n".encode() for c in chunks)
        self._send(h, 200, payload + b"data: [DONE]\n\n", "text/event-stream")

    @staticmethod
    def _send(h: BaseHTTPRequestHandler, status: int, body: bytes, content_type: str) -> None:
        try:
            h.send_response(status)
            h.send_header("Content-Type", content_type)
            h.send_header("Content-Length", str(len(body)))
            h.end_headers()
            h.wfile.write(body)
        except OSError:  # the client gave up (a timeout): nothing to answer
            pass
