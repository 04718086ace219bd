"""Per-key rate limits on Redis: 429 with Retry-After; Redis down fails open."""

from __future__ import annotations

import contextlib

import pytest
from django.core.cache import cache

pytestmark = pytest.mark.django_db


@pytest.fixture
def three_per_minute(settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"api_key": "3/min", "login": "10/min"},
    }
    cache.clear()
    yield
    with contextlib.suppress(Exception):  # the Redis-down test leaves no reachable cache
        cache.clear()


def test_key_over_its_rate__429_with_retry_after(router_api, router, three_per_minute):
    codes = [router_api.get("/api/v1/routers/").status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    response = router_api.get("/api/v1/routers/")
    assert response.status_code == 429
    assert int(response["Retry-After"]) > 0


def test_limits_are_per_key(router_api, viewer_api, router, three_per_minute):
    for _ in range(3):
        router_api.get("/api/v1/routers/")
    assert router_api.get("/api/v1/routers/").status_code == 429
    assert viewer_api.get("/api/v1/routers/").status_code == 200


def test_redis_down__fails_open(router_api, router, three_per_minute, settings):
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
            "OPTIONS": {"socket_connect_timeout": 0.2, "socket_timeout": 0.2},
        }
    }
    codes = [router_api.get("/api/v1/routers/").status_code for _ in range(5)]
    assert codes == [200] * 5
