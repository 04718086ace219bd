"""Calling the chosen model through LiteLLM: timeout, retries with backoff, fallback models.

`call_models` tries each model in turn (the routed one, then the fallbacks the caller lists),
each up to 1 + `retries` times, every attempt bounded by `timeout` seconds. A timeout, a
connection error, 408, 429 or a 5xx is retried after an exponential backoff with jitter; any
other error (400, 401, 404...) is not retried on the same model. LiteLLM (a RouteLLM
dependency) is imported on the first call. LiteLLM's and the OpenAI client's own retries are
turned off so `retries` is the only retry budget.

OpenAI-compatible endpoints: `api_base` / `api_key` from the arguments, else OPENAI_BASE_URL
(or OPENAI_API_BASE) / OPENAI_API_KEY. With an api_base, a model name without a provider
prefix is sent to it as an OpenAI-style model (`custom_llm_provider="openai"`).
"""

from __future__ import annotations

import asyncio
import os
import random
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

RETRYABLE_STATUS = frozenset({408, 409, 429})
_litellm: Any = None
_import_lock = threading.Lock()


def import_litellm() -> Any:
    global _litellm
    if _litellm is None:
        with _import_lock:
            os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no download
            import litellm

            litellm.suppress_debug_info = True
            _litellm = litellm
    return _litellm


def last_user_text(messages: Sequence[Any]) -> str:
    """The text of the last user message (string content, or the text parts of a list)."""
    for message in reversed(messages or []):
        if not isinstance(message, dict) or message.get("role") != "user":
            continue
        content = message.get("content")
        if isinstance(content, str):
            return content
        if isinstance(content, list):
            return " ".join(
                str(part.get("text", ""))
                for part in content
                if isinstance(part, dict) and part.get("type") == "text"
            )
        return ""
    return ""


def endpoint_kwargs(
    model: str, api_base: str | None, api_key: str | None, kwargs: dict[str, Any]
) -> dict[str, Any]:
    """LiteLLM keywords for where `model` is served (the caller's keywords win)."""
    base = (
        kwargs.get("api_base")
        or api_base
        or os.environ.get("OPENAI_BASE_URL")
        or os.environ.get("OPENAI_API_BASE")
    )
    key = kwargs.get("api_key") or api_key or os.environ.get("OPENAI_API_KEY")
    out: dict[str, Any] = {}
    if base:
        out["api_base"] = base
        if "/" not in model and "custom_llm_provider" not in kwargs:
            out["custom_llm_provider"] = "openai"
    if key:
        out["api_key"] = key
    return out


def is_retryable(exc: BaseException) -> bool:
    if isinstance(exc, asyncio.TimeoutError | TimeoutError | ConnectionError):
        return True
    status = getattr(exc, "status_code", None)
    if not isinstance(status, int):
        # LiteLLM's Timeout / APIConnectionError carry no HTTP status (or 408/500).
        return exc.__class__.__name__ in ("Timeout", "APIConnectionError", "APITimeoutError")
    return status in RETRYABLE_STATUS or status >= 500


def describe(exc: BaseException) -> str:
    status = getattr(exc, "status_code", None)
    prefix = f"HTTP {status} " if isinstance(status, int) else ""
    return f"{prefix}{exc.__class__.__name__}: {exc}"[:500]


@dataclass
class CallResult:
    model: str  # the model that answered (or the last one tried)
    response: Any = None
    error: BaseException | None = None
    attempts: list[tuple[str, str]] = field(default_factory=list)  # (model, error) per failure
    started: float = 0.0

    @property
    def success(self) -> bool:
        return self.error is None


async def call_models(
    models: Sequence[str],
    messages: Sequence[Any],
    *,
    retries: int,
    timeout: float,
    backoff: float,
    api_base: str | None = None,
    api_key: str | None = None,
    kwargs: dict[str, Any] | None = None,
) -> CallResult:
    """Call models[0], retrying; on failure each next model in turn. Never raises for a model
    error: the result carries it (the caller decides to raise)."""
    litellm = import_litellm()
    kwargs = dict(kwargs or {})
    result = CallResult(model=models[0], started=time.perf_counter())
    for model in models:
        result.model = model
        delay = backoff
        for attempt in range(1 + max(0, retries)):
            call = {
                "model": model,
                "messages": list(messages),
                "timeout": timeout,
                "num_retries": 0,
                "max_retries": 0,
                **kwargs,
                **endpoint_kwargs(model, api_base, api_key, kwargs),
            }
            call["model"] = model
            try:
                result.response = await asyncio.wait_for(litellm.acompletion(**call), timeout)
                result.error = None
                return result
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a model error is the result, not a crash
                result.error = exc
                result.attempts.append((model, describe(exc)))
                if not is_retryable(exc) or attempt == retries:
                    break
                await asyncio.sleep(delay * random.uniform(0.5, 1.0))
                delay = min(delay * 2, 10.0)
    return result
