"""routing.refusal: an uncaught key refusal is one line on stderr, not a traceback."""

from __future__ import annotations

import subprocess
import sys

import pytest

from routing.refusal import KeyRefused, refused
from tests.servers import ROOT


def python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )


def test_refused__a_permission_error_with_the_message():
    error = refused("changing a flag needs an operator API key (HTTP 403)")
    assert isinstance(error, PermissionError) and isinstance(error, KeyRefused)
    assert str(error) == "changing a flag needs an operator API key (HTTP 403)"


def test_uncaught_refusal__one_line_exit_1():
    done = python("from routing.refusal import refused\nraise refused('needs an operator key')")
    assert done.returncode == 1
    assert done.stderr == "routeplane: needs an operator key\n"


def test_other_uncaught_errors__still_a_traceback():
    done = python("from routing.refusal import refused\nrefused('x')\nraise ValueError('bad')")
    assert done.returncode == 1
    assert "Traceback" in done.stderr and "ValueError: bad" in done.stderr


@pytest.mark.parametrize("caught", [True, False])
def test_program_own_excepthook__left_alone(caught):
    code = (
        "import sys\n"
        "sys.excepthook = lambda *a: print('own hook', file=sys.stderr)\n"
        "from routing.refusal import refused\n"
        + ("try:\n    raise refused('x')\nexcept PermissionError:\n    pass\n" if caught else "")
        + "raise refused('needs an operator key')"
    )
    done = python(code)
    assert done.stderr == "own hook\n"
