"""/healthz (the process is up) and /readyz (PostgreSQL and Redis reachable)."""

from __future__ import annotations

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse


def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


def readyz(request: HttpRequest) -> JsonResponse:
    checks = {"database": "ok", "redis": "ok"}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as exc:
        checks["database"] = f"down: {exc.__class__.__name__}"
        return JsonResponse({"status": "down", "checks": checks}, status=503)
    try:
        import redis

        client = redis.Redis.from_url(
            settings.REDIS_URL, socket_connect_timeout=0.5, socket_timeout=0.5
        )
        client.ping()
    except Exception as exc:
        checks["redis"] = f"down: {exc.__class__.__name__}"
        return JsonResponse({"status": "degraded", "checks": checks})
    return JsonResponse({"status": "ok", "checks": checks})
