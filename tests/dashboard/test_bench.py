"""bench/dashboard.py's verdict: a page at or over its p95 goal makes the run exit 1.

The timing itself needs 10 million events; here the data, the server and the clock are fakes.
"""

from __future__ import annotations

import importlib.util
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


@pytest.fixture
def bench(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH))  # the script imports its sibling common.py
    spec = importlib.util.spec_from_file_location("bench_dashboard", BENCH / "dashboard.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)

    @contextmanager
    def no_server(db):
        yield 1

    monkeypatch.setattr(module, "prepare", lambda args: ("bench", "sessionid=x"))
    monkeypatch.setattr(module, "gunicorn", no_server)
    monkeypatch.setattr(module, "drop_database", lambda name: None)
    monkeypatch.setattr(sys, "argv", ["dashboard.py", "--requests", "3"])
    return module


def timings(slow_path: str | None, p95: float):
    def time_page(conn, path, cookie, count, htmx=False):
        return 20.0, p95 if path == slow_path else 40.0, 2048

    return time_page


def test_bench__every_page_under_goal__exits_0(bench, monkeypatch, capsys):
    monkeypatch.setattr(bench, "time_page", timings(None, 0))
    bench.main()  # returns: exit status 0
    assert "OVER GOAL" not in capsys.readouterr().out


@pytest.mark.parametrize("p95", [200.0, 950.0])
def test_bench__a_page_at_or_over_goal__exits_1(bench, monkeypatch, capsys, p95):
    monkeypatch.setattr(bench, "time_page", timings("/audit/", p95))
    with pytest.raises(SystemExit) as exit_info:
        bench.main()
    assert exit_info.value.code == 1
    assert "over goal: audit" in capsys.readouterr().out
