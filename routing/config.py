"""RouteLLMConfig: the router's configuration, and the one validation rule set.

The control plane validates with the same functions (`validate_config_dict`), so a value the
server accepts is one every router accepts too.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

KNOWN_DOMAINS: tuple[str, ...] = ("medical", "legal", "technical", "creative", "scientific")


class RouterType(str, Enum):
    MATRIX_FACTORIZATION = "mf"
    BERT = "bert"
    CAUSAL_LLM = "causal_llm"
    SW_RANKING = "sw_ranking"
    RANDOM = "random"

    def __str__(self) -> str:  # so f"{router_type}" reads "mf", as the value does
        return self.value


@dataclass
class RouteLLMConfig:
    # Core routing settings
    enabled: bool = False
    router_type: RouterType = RouterType.MATRIX_FACTORIZATION
    threshold: float = 0.11593
    # Model configuration
    strong_model: str = "gpt-4-1106-preview"
    weak_model: str = "gpt-3.5-turbo"
    # Reliability settings
    fallback_enabled: bool = True
    max_retry_attempts: int = 3
    timeout_seconds: float = 30.0
    # Cost optimization
    cost_tracking_enabled: bool = True
    cost_optimization_target: float = 0.5
    # Monitoring
    performance_monitoring_enabled: bool = True
    metrics_retention_days: int = 30
    # Domain-specific
    domain_specific_routing: bool = True
    domain_routing_overrides: dict[str, dict[str, Any]] = field(default_factory=dict)
    # The application's own default model (config.yaml `model_config.default_model`): where
    # unrouted traffic goes (None: the strong model). A local setting of the router process,
    # not part of the control plane's config document (see LOCAL_FIELDS).
    default_model: str | None = field(default=None, metadata={"local": True})

    def __post_init__(self) -> None:
        if not isinstance(self.router_type, RouterType):
            self.router_type = parse_router_type(self.router_type)
        errors = config_errors(self.to_dict())
        if self.default_model is not None and (
            not isinstance(self.default_model, str) or not self.default_model.strip()
        ):
            errors.setdefault("default_model", []).append("must be a non-empty string or None")
        if errors:
            name, messages = next(iter(errors.items()))
            raise ValueError(f"{name}: {messages[0]}")

    def get_router_model_string(self) -> str:
        return f"router-{self.router_type.value}-{self.threshold}"

    def to_dict(self) -> dict[str, Any]:
        """The control plane's config fields (local-only fields such as default_model left out)."""
        data = {name: getattr(self, name) for name in CONFIG_FIELDS}
        data["domain_routing_overrides"] = dataclasses.asdict(self)["domain_routing_overrides"]
        data["router_type"] = self.router_type.value
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RouteLLMConfig:
        """Build from a JSON-style dict; unknown keys are ignored (newer servers may add some)."""
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **explicit: Any) -> RouteLLMConfig:
        """The dataclass defaults, overridden by ROUTELLM_* variables, overridden by `explicit`
        keyword values (the precedence: argument > environment > defaults)."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        readers = {
            "ROUTELLM_ENABLED": ("enabled", _parse_bool),
            "ROUTELLM_ROUTER_TYPE": ("router_type", parse_router_type),
            "ROUTELLM_THRESHOLD": ("threshold", _parse_float),
            "ROUTELLM_STRONG_MODEL": ("strong_model", str),
            "ROUTELLM_WEAK_MODEL": ("weak_model", str),
            "ROUTELLM_COST_TRACKING": ("cost_tracking_enabled", _parse_bool),
            "ROUTELLM_PERFORMANCE_MONITORING": ("performance_monitoring_enabled", _parse_bool),
        }
        for var, (name, parse) in readers.items():
            raw = env.get(var)
            if raw is None or raw == "":
                continue
            try:
                values[name] = parse(raw)
            except ValueError as exc:
                raise ValueError(f"{name}: {var}={raw!r}: {exc}") from None
        return cls(**(values | explicit))

    @classmethod
    def from_yaml(cls, path: str | os.PathLike[str]) -> RouteLLMConfig:
        """Read the `routellm:` section of a config.yaml (the migration guide's layout), and
        `model_config.default_model` when the file has one."""
        section, default_model = load_yaml_config(path)
        config = cls.from_dict(section)
        if default_model is not None:
            config.default_model = default_model
            config.__post_init__()  # validated like every other field
        return config


def load_yaml_section(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The `routellm:` section of a config.yaml."""
    return load_yaml_config(path)[0]


def load_yaml_config(path: str | os.PathLike[str]) -> tuple[dict[str, Any], Any]:
    """(the `routellm:` section, `model_config.default_model` or None) of a config.yaml."""
    import yaml  # only the YAML path needs PyYAML

    with Path(path).open(encoding="utf-8") as fh:
        document = yaml.safe_load(fh) or {}
    if not isinstance(document, dict) or not isinstance(document.get("routellm"), dict):
        raise ValueError(f"{path}: no 'routellm:' section")
    model_config = document.get("model_config")
    default_model = model_config.get("default_model") if isinstance(model_config, dict) else None
    return dict(document["routellm"]), default_model


def parse_router_type(value: Any) -> RouterType:
    if isinstance(value, RouterType):
        return value
    try:
        return RouterType(str(value).strip().lower())
    except ValueError:
        known = ", ".join(t.value for t in RouterType)
        raise ValueError(f"router_type: unknown router type {value!r} (known: {known})") from None


def _parse_bool(raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ValueError("expected true/false")


def _parse_float(raw: str) -> float:
    return float(raw)


# The fields of the control plane's config document (what the server stores and validates).
CONFIG_FIELDS: tuple[str, ...] = tuple(
    f.name for f in dataclasses.fields(RouteLLMConfig) if not f.metadata.get("local")
)
LOCAL_FIELDS: tuple[str, ...] = tuple(
    f.name for f in dataclasses.fields(RouteLLMConfig) if f.metadata.get("local")
)
ROUTER_TYPES: tuple[str, ...] = tuple(t.value for t in RouterType)
_BOOL_FIELDS = {
    "enabled",
    "fallback_enabled",
    "cost_tracking_enabled",
    "performance_monitoring_enabled",
    "domain_specific_routing",
}
_STR_FIELDS = {"strong_model", "weak_model"}
_OVERRIDE_FIELDS = {
    "enabled": bool,
    "threshold": float,
    "strong_model": str,
    "weak_model": str,
    "router_type": str,
    "default_model": str,
}


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def config_errors(data: dict[str, Any], *, partial: bool = False) -> dict[str, list[str]]:
    """Every problem with a config dict, keyed by field name (empty when valid).

    `partial=True` checks only the fields present (a PATCH); otherwise missing fields are
    errors too, except that `RouteLLMConfig` itself always passes complete dicts.
    """
    errors: dict[str, list[str]] = {}

    def add(name: str, message: str) -> None:
        errors.setdefault(name, []).append(message)

    if not isinstance(data, dict):
        return {"non_field_errors": ["expected a JSON object of config fields"]}
    for name in data:
        if name not in CONFIG_FIELDS:
            add(name, "unknown config field")
    if not partial:
        for name in CONFIG_FIELDS:
            if name not in data:
                add(name, "this field is required")
    for name, value in data.items():
        if name in _BOOL_FIELDS and not isinstance(value, bool):
            add(name, "must be a boolean")
        elif name in _STR_FIELDS and (not isinstance(value, str) or not value.strip()):
            add(name, "must be a non-empty string")
    if "router_type" in data:
        value = data["router_type"]
        raw = value.value if isinstance(value, RouterType) else value
        if not _is_router_type(raw):
            known = ", ".join(ROUTER_TYPES)
            add("router_type", f"unknown router type {raw!r} (known: {known})")
    for name in ("threshold", "cost_optimization_target"):
        if name in data:
            value = data[name]
            if not _is_number(value) or not 0 <= value <= 1:
                add(name, "must be a number between 0 and 1")
    if "max_retry_attempts" in data:
        value = data["max_retry_attempts"]
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            add("max_retry_attempts", "must be an integer >= 0")
    if "timeout_seconds" in data:
        value = data["timeout_seconds"]
        if not _is_number(value) or value <= 0:
            add("timeout_seconds", "must be a number > 0")
    if "metrics_retention_days" in data:
        value = data["metrics_retention_days"]
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            add("metrics_retention_days", "must be an integer >= 1 (days)")
    if "domain_routing_overrides" in data:
        for path, message in _override_errors(data["domain_routing_overrides"]):
            add(path, message)
    return errors


def _is_router_type(value: Any) -> bool:
    # Checked as a string first: a JSON object or list is unhashable (a set lookup would raise).
    return isinstance(value, str) and value in ROUTER_TYPES


def _override_errors(overrides: Any) -> list[tuple[str, str]]:
    """(path, message) for each problem, the path naming the value: `<field>.<domain>.<key>`."""
    field = "domain_routing_overrides"
    if not isinstance(overrides, dict):
        return [(field, "must be an object keyed by domain")]
    problems = []
    for domain, override in overrides.items():
        where = f"{field}.{domain}"
        if domain not in KNOWN_DOMAINS:
            problems.append((where, f"unknown domain (known: {', '.join(KNOWN_DOMAINS)})"))
            continue
        if not isinstance(override, dict):
            problems.append((where, "must be an object"))
            continue
        for key, value in override.items():
            expected = _OVERRIDE_FIELDS.get(key)
            if expected is None:
                continue  # free-form extras are kept, as in the seed
            if expected is float:
                if not _is_number(value) or not 0 <= value <= 1:
                    problems.append((f"{where}.{key}", "must be a number between 0 and 1"))
            elif expected is bool and not isinstance(value, bool):
                problems.append((f"{where}.{key}", "must be a boolean"))
            elif expected is str and (not isinstance(value, str) or not value):
                problems.append((f"{where}.{key}", "must be a non-empty string"))
            elif key == "router_type" and not _is_router_type(value):
                problems.append((f"{where}.{key}", "unknown router type"))
    return problems


def validate_config_dict(data: dict[str, Any], *, partial: bool = False) -> dict[str, Any]:
    """Return a normalised copy (router_type as its string value) or raise ValueError."""
    errors = config_errors(data, partial=partial)
    if errors:
        raise ConfigError(errors)
    clean = dict(data)
    if isinstance(clean.get("router_type"), RouterType):
        clean["router_type"] = clean["router_type"].value
    for name in ("threshold", "cost_optimization_target", "timeout_seconds"):
        if name in clean:
            clean[name] = float(clean[name])
    return clean


class ConfigError(ValueError):
    """Invalid config values; `errors` maps each field to its messages."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        self.errors = errors
        name, messages = next(iter(errors.items()))
        super().__init__(f"{name}: {messages[0]}")


def default_config_dict() -> dict[str, Any]:
    return RouteLLMConfig().to_dict()
