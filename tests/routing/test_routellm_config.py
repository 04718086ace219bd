"""RouteLLMConfig: the seed's defaults, env/YAML loading, and the one validation rule set."""

from __future__ import annotations

import pytest

from routing.config import RouteLLMConfig, RouterType, config_errors, default_config_dict


def test_defaults__match_the_seed():
    config = RouteLLMConfig()
    assert config.enabled is False
    assert config.router_type is RouterType.MATRIX_FACTORIZATION
    assert config.threshold == 0.11593
    assert (config.strong_model, config.weak_model) == ("gpt-4-1106-preview", "gpt-3.5-turbo")
    assert (config.max_retry_attempts, config.timeout_seconds) == (3, 30.0)
    assert config.cost_optimization_target == 0.5
    assert config.metrics_retention_days == 30
    assert config.domain_routing_overrides == {}
    assert config.get_router_model_string() == "router-mf-0.11593"


def test_router_type__values():
    assert [t.value for t in RouterType] == ["mf", "bert", "causal_llm", "sw_ranking", "random"]
    assert RouterType("random") is RouterType.RANDOM


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"threshold": 1.5}, "threshold"),
        ({"threshold": -0.1}, "threshold"),
        ({"router_type": "gpt"}, "router_type"),
        ({"max_retry_attempts": -1}, "max_retry_attempts"),
        ({"timeout_seconds": 0}, "timeout_seconds"),
        ({"cost_optimization_target": 1.2}, "cost_optimization_target"),
        ({"metrics_retention_days": 0}, "metrics_retention_days"),
        ({"domain_routing_overrides": {"finance": {"enabled": True}}}, "domain_routing_overrides"),
    ],
)
def test_invalid_values__value_error_naming_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        RouteLLMConfig(**kwargs)


def test_router_type__accepts_string_value():
    assert RouteLLMConfig(router_type="random").router_type is RouterType.RANDOM


def test_from_env():
    config = RouteLLMConfig.from_env(
        {
            "ROUTELLM_ENABLED": "true",
            "ROUTELLM_ROUTER_TYPE": "random",
            "ROUTELLM_THRESHOLD": "0.3",
            "ROUTELLM_STRONG_MODEL": "gpt-4o",
            "ROUTELLM_WEAK_MODEL": "gpt-4o-mini",
            "ROUTELLM_COST_TRACKING": "false",
            "ROUTELLM_PERFORMANCE_MONITORING": "0",
        }
    )
    assert config.enabled is True
    assert config.router_type is RouterType.RANDOM
    assert config.threshold == 0.3
    assert (config.strong_model, config.weak_model) == ("gpt-4o", "gpt-4o-mini")
    assert config.cost_tracking_enabled is False
    assert config.performance_monitoring_enabled is False


@pytest.mark.parametrize(
    ("env", "field"),
    [
        ({"ROUTELLM_THRESHOLD": "high"}, "threshold"),
        ({"ROUTELLM_THRESHOLD": "2"}, "threshold"),
        ({"ROUTELLM_ENABLED": "maybe"}, "enabled"),
        ({"ROUTELLM_ROUTER_TYPE": "gpt"}, "router_type"),
    ],
)
def test_from_env__bad_value__names_field(env, field):
    with pytest.raises(ValueError, match=field):
        RouteLLMConfig.from_env(env)


def test_from_yaml__reads_routellm_section(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(
        "model_config:\n  default_model: gpt-3.5-turbo\n"
        "routellm:\n  enabled: false\n  router_type: mf\n  threshold: 0.2\n"
        "  cost_tracking_enabled: true\n  cost_optimization_target: 0.5\n"
    )
    config = RouteLLMConfig.from_yaml(path)
    assert config.threshold == 0.2
    assert config.router_type is RouterType.MATRIX_FACTORIZATION


def test_from_yaml__no_section__value_error(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("model_config: {}\n")
    with pytest.raises(ValueError, match="routellm"):
        RouteLLMConfig.from_yaml(path)


def test_config_errors__complete_default_dict_is_valid_and_types_are_strict():
    assert config_errors(default_config_dict()) == {}
    assert "enabled" in config_errors({"enabled": 1}, partial=True)
    assert "threshold" in config_errors({"threshold": True}, partial=True)
    assert "max_retry_attempts" in config_errors({"max_retry_attempts": 1.5}, partial=True)
    overrides = {"technical": {"enabled": True, "threshold": 0.4, "default_model": "gpt-4o"}}
    assert config_errors({"domain_routing_overrides": overrides}, partial=True) == {}
    bad = {"technical": {"threshold": 3}}
    assert "domain_routing_overrides.technical.threshold" in config_errors(
        {"domain_routing_overrides": bad}, partial=True
    )
    # Unhashable values are errors, not a TypeError from a set lookup.
    assert "router_type" in config_errors({"router_type": {}}, partial=True)
    unhashable = {"domain_routing_overrides": {"legal": {"router_type": []}}}
    assert "domain_routing_overrides.legal.router_type" in config_errors(unhashable, partial=True)
