"""The migration guide's five scripts, verbatim but for `from routing import ...`, run as
subprocesses: locally (in memory) and against a live control plane."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.servers import ROOT

EXAMPLES = ROOT / "examples"
# shared/ lies beside the checkout (in CI too); /work/shared on a developer's machine.
GUIDE = next(
    (
        path
        for path in (
            ROOT.parent / "shared" / "seeds" / "routellm-migration-guide.md",
            Path("/work/shared/seeds/routellm-migration-guide.md"),
        )
        if path.exists()
    ),
    Path("/work/shared/seeds/routellm-migration-guide.md"),
)
SCRIPTS = [
    "assessment_script.py",
    "test_routellm.py",
    "validation_script.py",
    "monitoring_example.py",
    "emergency_rollback.py",
]


def run(script: str, **env: str) -> str:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("ROUTEPLANE_")}
    environ.update(PYTHONPATH=str(ROOT), PYTHONIOENCODING="utf-8", **env)
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / script)],
        cwd=EXAMPLES,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    return done.stdout


@pytest.mark.skipif(not GUIDE.exists(), reason="the migration guide is not on this machine")
@pytest.mark.parametrize("script", SCRIPTS)
def test_scripts__verbatim_but_for_the_import_line(script):
    guide = GUIDE.read_text(encoding="utf-8")
    block = next(
        b for b in re.findall(r"```python\n(.*?)```", guide, re.S) if b.startswith(f"# {script}")
    )
    ours = (EXAMPLES / script).read_text(encoding="utf-8")

    expected = block.replace(
        "from src.orchestrator.models.routellm_integration import", "from routing import"
    )
    assert ours == expected


def test_assessment__local__compatible():
    out = run("assessment_script.py")
    assert "Assessment: ✓ Compatible" in out


def test_test_routellm__local__tracks_three_requests():
    out = run("test_routellm.py")
    assert out.count("Tracked routing decision") == 3
    assert "Test report - Tracked 3 requests" in out


def test_validation__local__success():
    out = run("validation_script.py")
    assert "Overall: ✓ SUCCESS" in out


def test_monitoring__local__report_printed():
    out = run("monitoring_example.py")
    assert "Total requests: 0" in out
    assert "Average latency:" in out


def test_emergency_rollback__local__every_flag_off():
    out = run("emergency_rollback.py")
    assert "Emergency rollback completed" in out
    assert "'routellm_enabled': False" in out


@pytest.mark.slow
class TestRemote:  # not django_db: see tests/flags_live.py
    @pytest.fixture
    def env(self, live_app, live_router, tmp_path):
        def make(key: str) -> dict[str, str]:
            return {
                "ROUTEPLANE_URL": live_app,
                "ROUTEPLANE_API_KEY": key,
                "ROUTEPLANE_CACHE_PATH": str(tmp_path) + "/",
            }

        return make

    def test_assessment__router_key__compatible(self, env, live_router):
        out = run("assessment_script.py", **env(live_router.router_key))
        assert "Assessment: ✓ Compatible" in out

    def test_test_routellm__router_key__server_counts_three(self, env, live_router):
        out = run("test_routellm.py", **env(live_router.router_key))
        assert out.count("Tracked routing decision") == 3
        assert "Test report - Tracked 3 requests" in out

    def test_validation__operator_key__success_and_flag_written(self, env, live_router):
        from controlplane.selectors import current_revision

        out = run("validation_script.py", **env(live_router.operator_key))

        assert "Overall: ✓ SUCCESS" in out
        revision = current_revision(router=live_router.router())
        assert revision.flags_dict()["routellm_cost_tracking"]["enabled"] is True

    def test_validation__router_key__flags_step_fails_with_the_reason(self, env, live_router):
        out = run("validation_script.py", **env(live_router.router_key))
        assert "Feature flags: changing a flag needs an operator API key" in out

    def test_monitoring__router_key__server_report(self, env, live_router):
        out = run("monitoring_example.py", **env(live_router.router_key))
        assert "Total requests: 0" in out

    def test_emergency_rollback__operator_key__routing_flags_off_on_the_server(
        self, env, live_router
    ):
        from controlplane.actors import Actor
        from controlplane.selectors import current_revision
        from controlplane.services import set_phase

        set_phase(
            router=live_router.router(), phase="full", domain="technical", actor=Actor("user:test")
        )

        out = run("emergency_rollback.py", **env(live_router.operator_key))

        assert "Emergency rollback completed" in out
        flags = current_revision(router=live_router.router()).flags_dict()
        assert flags["routellm_enabled"]["enabled"] is False
        assert flags["routellm_technical_domain"]["enabled"] is False
        assert flags["routellm_cost_tracking"]["enabled"] is True  # monitoring keeps running

    def test_emergency_rollback__router_key__one_line_refusal_no_traceback(self, env, live_router):
        environ = {k: v for k, v in os.environ.items() if not k.startswith("ROUTEPLANE_")}
        environ |= {"PYTHONPATH": str(ROOT), **env(live_router.router_key)}
        done = subprocess.run(
            [sys.executable, str(EXAMPLES / "emergency_rollback.py")],
            cwd=EXAMPLES,
            env=environ,
            capture_output=True,
            text=True,
            timeout=60,
        )

        assert done.returncode == 1
        assert done.stderr.startswith("routeplane: changing a flag needs an operator API key")
        assert done.stderr.count("\n") == 1  # one line, not a traceback

@pytest.mark.slow
def test_routellm_integration_example__runs_end_to_end_against_the_fake_model_server():
    pytest.importorskip("routellm")
    environ = {k: v for k, v in os.environ.items() if not k.startswith("ROUTEPLANE_")}
    environ.update(PYTHONIOENCODING="utf-8", OPENAI_API_KEY="dummy")
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / "routellm_integration_example.py")],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=180,
    )

    assert done.returncode == 0, done.stderr
    figures = dict(
        line.split(":", 1) for line in done.stdout.splitlines() if ":" in line
    )
    assert figures["requests"].strip() == "20"
    assert figures["success rate"].strip() == "1.00"
    assert float(figures["fallback rate"]) > 0  # the outage was absorbed by the fallback
    assert float(figures["estimated savings"].split("$")[1].split()[0]) > 0
    assert "(20 samples)" in figures["average quality"]
