"""/readyz against real outages of a private PostgreSQL and Redis (never the shared ones)."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import httpx
import pytest

from tests.servers import PrivatePostgres, PrivateRedis, app_env, manage, uvicorn_server

pytestmark = pytest.mark.slow


def test_readyz__redis_down_degraded__postgres_down_503__recovers():
    # Not pytest's tmp_path: it is 0700, and pgserver runs postgres as another user under root.
    data_dir = Path(tempfile.mkdtemp(prefix="rp-readyz-"))
    data_dir.chmod(0o755)
    postgres = PrivatePostgres(data_dir / "pg")
    redis = PrivateRedis()
    try:
        env = app_env(postgres.url, redis.url)
        manage(env, "migrate", "--noinput")
        with uvicorn_server(env) as (base, _process):
            assert httpx.get(f"{base}/readyz").json()["status"] == "ok"

            redis.stop()
            degraded = httpx.get(f"{base}/readyz")
            assert degraded.status_code == 200
            assert degraded.json()["status"] == "degraded"
            assert degraded.json()["checks"]["redis"].startswith("down")

            postgres.stop()
            down = httpx.get(f"{base}/readyz")
            assert down.status_code == 503
            assert down.json()["checks"]["database"].startswith("down")
            assert httpx.get(f"{base}/healthz").status_code == 200  # the process is still up

            postgres.start()
            redis.start()
            assert httpx.get(f"{base}/readyz").json()["status"] == "ok"
    finally:
        redis.stop()
        postgres.close()
        shutil.rmtree(data_dir, ignore_errors=True)
