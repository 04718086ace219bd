"""The LOGGING setting: one line per record (issue 19.4: django.request warnings came twice)."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.servers import ROOT

PROBE = """
import logging
import django

django.setup()
logging.getLogger("django.request").warning("probe-%s", "django.request")
logging.getLogger("django.security.csrf").warning("probe-%s", "django.security")
logging.getLogger("controlplane.api").warning("probe-%s", "controlplane")
"""


def test_warnings__logged_once_each_with_debug_on_and_off():
    for debug in ("1", "0"):
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DEBUG": debug,
            "SECRET_KEY": "x" * 50,
            "PYTHONPATH": str(ROOT),
        }
        result = subprocess.run(
            [sys.executable, "-c", PROBE],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        lines = result.stderr.splitlines()
        for name in ("django.request", "django.security", "controlplane"):
            assert sum(f"probe-{name}" in line for line in lines) == 1, (debug, result.stderr)
