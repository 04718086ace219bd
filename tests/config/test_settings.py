"""Settings from the environment: the refusals a deployer must see before anything starts."""

from __future__ import annotations

import os
import secrets
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


SECURE_SETTINGS = (
    "SECURE_SSL_REDIRECT",
    "SECURE_HSTS_SECONDS",
    "SESSION_COOKIE_SECURE",
    "CSRF_COOKIE_SECURE",
    "SECURE_PROXY_SSL_HEADER",
)
PRINT_SECURE = "; ".join(
    ["import config.settings as s"] + [f"print(repr(s.{name}))" for name in SECURE_SETTINGS]
)
PRODUCTION = {"DEBUG": "0", "SECRET_KEY": "a-long-random-production-secret-key-0123456789"}


def secure_settings(**env: str) -> list[str]:
    base = {k: v for k, v in os.environ.items() if k not in ("DEBUG", "SECRET_KEY")}
    base = {k: v for k, v in base.items() if not k.startswith(("SECURE_", "SESSION_", "CSRF_"))}
    base |= {"DATABASE_URL": "postgres://postgres@127.0.0.1:5432/test", "REDIS_URL": "redis://x"}
    result = subprocess.run(
        [sys.executable, "-c", PRINT_SECURE],
        cwd=ROOT,
        env=base | env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.split("\n")[: len(SECURE_SETTINGS)]


def test_debug_off__https_on_by_default():
    assert secure_settings(**PRODUCTION) == ["True", "31536000", "True", "True", "None"]


def test_debug_off__each_https_setting_switchable_for_a_tls_proxy():
    switched = secure_settings(
        **PRODUCTION,
        SECURE_SSL_REDIRECT="0",
        SECURE_HSTS_SECONDS="3600",
        SESSION_COOKIE_SECURE="0",
        CSRF_COOKIE_SECURE="0",
        SECURE_PROXY_SSL_HEADER="1",
    )
    assert switched == ["False", "3600", "False", "False", "('HTTP_X_FORWARDED_PROTO', 'https')"]


def test_debug_on__no_https_redirect_or_secure_cookies():
    assert secure_settings(DEBUG="1") == ["False", "0", "False", "False", "None"]


def test_check_deploy__debug_off__no_warnings():
    base = {k: v for k, v in os.environ.items() if k not in ("DEBUG", "SECRET_KEY")}
    base = {k: v for k, v in base.items() if not k.startswith(("SECURE_", "SESSION_", "CSRF_"))}
    # The browser tests set it for Playwright in this process; a deployment never has it.
    base.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    secret = secrets.token_urlsafe(50)  # check --deploy wants 50+ random characters
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=base | {"DEBUG": "0", "SECRET_KEY": secret},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
