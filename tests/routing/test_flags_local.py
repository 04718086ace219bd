"""FeatureFlags in local mode (no ROUTEPLANE_URL/API key): exactly the migration guide's flags."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from routing import FeatureFlags
from routing.evaluation import FLAG_NAMES
from tests.servers import ROOT


@pytest.fixture(autouse=True)
def _local_mode(monkeypatch):
    monkeypatch.delenv("ROUTEPLANE_URL", raising=False)
    monkeypatch.delenv("ROUTEPLANE_API_KEY", raising=False)


def test_constants__the_guides_names_and_values():
    assert FeatureFlags.ROUTELLM_ENABLED == "routellm_enabled"
    assert FeatureFlags.ROUTELLM_COST_TRACKING == "routellm_cost_tracking"
    assert FeatureFlags.ROUTELLM_PERFORMANCE_MONITORING == "routellm_performance_monitoring"
    assert FeatureFlags.ROUTELLM_MEDICAL_DOMAIN == "routellm_medical_domain"
    assert FeatureFlags.ROUTELLM_LEGAL_DOMAIN == "routellm_legal_domain"
    assert FeatureFlags.ROUTELLM_TECHNICAL_DOMAIN == "routellm_technical_domain"
    assert FeatureFlags.ROUTELLM_CREATIVE_DOMAIN == "routellm_creative_domain"
    assert FeatureFlags.ROUTELLM_SCIENTIFIC_DOMAIN == "routellm_scientific_domain"
    assert FeatureFlags.ROUTELLM_DYNAMIC_THRESHOLD == "routellm_dynamic_threshold"
    assert FeatureFlags.ROUTELLM_A_B_TESTING == "routellm_a_b_testing"


def test_local__starts_with_every_flag_off():
    flags = FeatureFlags()

    assert flags.is_remote is False
    assert flags.get_all_flags() == {name: False for name in FLAG_NAMES}


def test_local__enable_disable__in_memory_per_instance():
    flags = FeatureFlags()
    flags.enable(FeatureFlags.ROUTELLM_COST_TRACKING)
    flags.enable(FeatureFlags.ROUTELLM_TECHNICAL_DOMAIN)
    flags.disable(FeatureFlags.ROUTELLM_TECHNICAL_DOMAIN)

    assert flags.is_enabled(FeatureFlags.ROUTELLM_COST_TRACKING) is True
    assert flags.is_enabled(FeatureFlags.ROUTELLM_TECHNICAL_DOMAIN) is False
    assert flags.get_all_flags()[FeatureFlags.ROUTELLM_COST_TRACKING] is True
    assert FeatureFlags().is_enabled(FeatureFlags.ROUTELLM_COST_TRACKING) is False


def test_local__key_is_accepted_and_ignored():
    flags = FeatureFlags()
    flags.enable(FeatureFlags.ROUTELLM_ENABLED)

    assert flags.is_enabled(FeatureFlags.ROUTELLM_ENABLED, key="user-1") is True
    assert flags.is_enabled("no_such_flag") is False


def test_get_all_flags__a_copy():
    flags = FeatureFlags()
    snapshot = flags.get_all_flags()
    snapshot[FeatureFlags.ROUTELLM_ENABLED] = True

    assert flags.is_enabled(FeatureFlags.ROUTELLM_ENABLED) is False


def test_import_routing__light__no_django_no_routellm_no_torch():
    code = (
        "import sys, json, routing\n"
        "from routing import RouteLLMConfig, FeatureFlags, CostTracker, RouterType, "
        "DomainRouter, RoutingDecision, RoutingMetrics\n"
        "print(json.dumps({m: m in sys.modules for m in ('django', 'routellm', 'torch')}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )

    assert json.loads(out.stdout) == {"django": False, "routellm": False, "torch": False}
