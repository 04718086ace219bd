"""Per-key rate limits on Redis that fail open: Redis down must not take the API down.

The count is one atomic Redis INCR per request in a fixed window, so every web process and
every replica shares it exactly, even under a parallel burst (DRF's default throttle reads,
appends and writes back a history list, which two processes can interleave). A fixed window can
let up to twice the rate through across a window boundary; within a window it never lets more.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.core.cache import cache
from rest_framework.request import Request
from rest_framework.throttling import SimpleRateThrottle

from controlplane.models import ApiKey

if TYPE_CHECKING:
    from rest_framework.views import APIView

log = logging.getLogger(__name__)
_WARN_EVERY_SECONDS = 60.0
_last_warning = 0.0


class ApiKeyRateThrottle(SimpleRateThrottle):
    scope = "api_key"

    def get_rate(self) -> str | None:
        # Read the rate per request (not at import) so settings changes apply.
        from rest_framework.settings import api_settings

        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)

    def get_cache_key(self, request: Request, view: APIView) -> str:
        if isinstance(request.auth, ApiKey):
            ident = f"key:{request.auth.pk}"
        elif request.user and request.user.is_authenticated:
            ident = f"user:{request.user.pk}"
        else:
            ident = f"ip:{self.get_ident(request)}"
        return self.cache_format % {"scope": self.scope, "ident": ident}

    def allow_request(self, request: Request, view: APIView) -> bool:
        if self.rate is None:
            return True
        now = time.time()
        window = int(now // self.duration)
        self.window_end = (window + 1) * self.duration
        key = f"{self.get_cache_key(request, view)}:{window}"
        try:
            # add() is SET NX (the window's first request creates the counter with its expiry);
            # incr() is INCR: the count is exact across processes.
            cache.add(key, 0, timeout=self.duration + 1)
            count = cache.incr(key)
        except Exception as exc:  # Redis unreachable: let the request through
            _warn_fail_open(exc)
            return True
        return count <= self.num_requests

    def wait(self) -> float:
        """Seconds until the current window ends (the Retry-After of a 429)."""
        return max(1, math.ceil(self.window_end - time.time()))


def _warn_fail_open(exc: Exception) -> None:
    global _last_warning
    now = time.monotonic()
    if now - _last_warning > _WARN_EVERY_SECONDS:  # once a minute, not per request
        _last_warning = now
        log.warning("rate limits off, cache unavailable: %s", exc.__class__.__name__)


@dataclass
class _KeyRequest:
    """What ApiKeyRateThrottle reads of a request (its key), for callers outside DRF."""

    auth: ApiKey
    user: None = None


@dataclass(frozen=True)
class Refusal:
    status: int
    body: bytes
    headers: dict[str, str]


def key_rate_refusal(key_id: int) -> Refusal | None:
    """Count one request of API key `key_id` against the per-key API rate, as DRF does for a
    view (the same counter in the cache). None when allowed; else the 429 DRF would answer,
    rendered by the API's own exception handler and renderer, so the bytes are the same.

    For the ASGI ingestion fast path, which runs no DRF view. Call it from a thread: it talks
    to the cache (Redis) synchronously.
    """
    from rest_framework.exceptions import Throttled
    from rest_framework.settings import api_settings

    throttle = ApiKeyRateThrottle()
    if throttle.allow_request(_KeyRequest(ApiKey(pk=key_id)), None):  # type: ignore[arg-type]
        return None
    response = api_settings.EXCEPTION_HANDLER(Throttled(throttle.wait()), {})
    renderer = api_settings.DEFAULT_RENDERER_CLASSES[0]()
    headers = {name: value for name, value in response.items() if name.lower() == "retry-after"}
    return Refusal(response.status_code, renderer.render(response.data), headers)
