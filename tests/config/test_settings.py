"""Settings from the environment: the refusals a deployer must see before anything starts."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.servers import ROOT


def load_settings(**env: str) -> subprocess.CompletedProcess[str]:
    """Import the settings in a fresh interpreter with exactly these variables set."""
    base = {k: v for k, v in os.environ.items() if k not in ("DEBUG", "SECRET_KEY")}
    base |= {"DATABASE_URL": "postgres://postgres@127.0.0.1:5432/test", "REDIS_URL": "redis://x"}
    return subprocess.run(
        [sys.executable, "-c", "import config.settings as s; print(s.DEBUG)"],
        cwd=ROOT,
        env=base | env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_debug_off_without_secret_key__refuses_with_how_to_fix():
    result = load_settings(DEBUG="0")
    assert result.returncode != 0
    assert "SECRET_KEY is required when DEBUG is off" in result.stderr


def test_debug_off_with_secret_key__loads():
    result = load_settings(DEBUG="0", SECRET_KEY="a-long-random-production-secret-key-0123456789")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


@pytest.mark.parametrize("url", ["sqlite:///routeplane.db", "mysql://root@127.0.0.1/test"])
def test_database_url_not_postgres__refused(url):
    result = load_settings(DEBUG="1", DATABASE_URL=url)
    assert result.returncode != 0
    assert "Routeplane needs PostgreSQL" in result.stderr


def test_debug_not_a_boolean__refused_naming_it():
    result = load_settings(DEBUG="maybe")
    assert result.returncode != 0
    assert "DEBUG='maybe'" in result.stderr
