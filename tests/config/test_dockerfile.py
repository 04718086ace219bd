"""The image's server command: a concurrency limit and a graceful-shutdown timeout, env-set."""

from __future__ import annotations

import json
import re
import subprocess

from tests.servers import ROOT

DOCKERFILE = (ROOT / "Dockerfile").read_text()


def server_command(**env: str) -> list[str]:
    """The CMD's uvicorn argv as the image's shell expands it (ENV defaults, then `env`)."""
    command = json.loads(re.search(r"^CMD (\[.*\])$", DOCKERFILE, re.M).group(1))
    assert command[:2] == ["sh", "-c"]
    script = command[2].replace("exec uvicorn", "printf '%s\\n'", 1)
    defaults = dict(re.findall(r"^\s+(WEB_[A-Z_]+|PORT)=(\S+?)(?: \\)?$", DOCKERFILE, re.M))
    result = subprocess.run(
        ["sh", "-c", script], env=defaults | env, capture_output=True, text=True, check=True
    )
    return result.stdout.split()


def option(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


def test_image_server__limits_concurrency_and_graceful_shutdown_by_default():
    argv = server_command()
    assert option(argv, "--limit-concurrency") == "2048"
    assert option(argv, "--timeout-graceful-shutdown") == "8"


def test_image_server__limits_set_by_environment():
    argv = server_command(WEB_LIMIT_CONCURRENCY="500", WEB_GRACEFUL_SHUTDOWN_SECONDS="20")
    assert option(argv, "--limit-concurrency") == "500"
    assert option(argv, "--timeout-graceful-shutdown") == "20"
