"""DomainRouter: picks the strong or weak model per prompt with RouteLLM, under live flags.

Each call reads the live flags document (remote) or the local flags and config, decides with
`routing.evaluation.should_route` whether this request (domain, sticky key) goes through
RouteLLM, and if so asks the configured RouteLLM router for the strong model's win rate. Any
RouteLLM failure falls back to the domain's override model, else the strong model. Every
decision is tracked (model tier, win rate, threshold, latency, revision).

RouteLLM's Controller (routellm's heavy import, checkpoints) is built when the DomainRouter is
constructed. When the live config later names another router type, it is rebuilt on a
background thread while requests fall back; a build that fails is logged once and its config's
requests fall back until the config changes.

Pointing the learned routers at local files (no Hugging Face download at run time): pass
`controller_config` the way `routellm.controller.Controller(config=...)` takes it, e.g.::

    DomainRouter(config, controller_config={
        "mf": {"checkpoint_path": "/models/routellm/mf_gpt4_augmented"},
        "bert": {"checkpoint_path": "/models/routellm/bert_gpt4_augmented"},
        "causal_llm": {"checkpoint_path": "/models/routellm/causal_llm_gpt4_augmented"},
        "sw_ranking": {
            "arena_battle_datasets": ["/data/arena-55k", "/data/gpt4_judge_battles"],
            "arena_embedding_datasets": ["/data/arena_embeddings", "/data/gpt4_embeddings"],
        },
    })

(checkpoint paths are local directories saved with `save_pretrained`/`snapshot_download`; the
datasets are local `datasets` directories). `mf` and `sw_ranking` embed each prompt through the
OpenAI embeddings API: set `OPENAI_BASE_URL` (and `OPENAI_API_KEY`) to any OpenAI-compatible
embeddings endpoint, e.g. a local text-embeddings-inference server serving
`text-embedding-3-small`-compatible vectors. Set `HF_HUB_OFFLINE=1` in production so a missing
file fails fast (and falls back) instead of downloading. The `random` router needs nothing and
is what the tests use.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from routing.config import KNOWN_DOMAINS, RouteLLMConfig, RouterType
from routing.evaluation import should_route

log = logging.getLogger("routing.domain_router")

DomainDetector = Callable[[str], "str | None"]

_DOMAIN_KEYWORDS: dict[str, tuple[str, ...]] = {
    # Word prefixes: "diagnos" matches diagnosis, diagnose, diagnostic.
    "medical": (
        "patient",
        "diagnos",
        "symptom",
        "disease",
        "clinic",
        "medic",
        "doctor",
        "dose",
        "treatment",
        "therap",
        "surger",
        "drug",
        "health",
        "vaccin",
        "prescri",
    ),
    "legal": (
        "contract",
        "lawsuit",
        "legal",
        "court",
        "statut",
        "liabil",
        "attorney",
        "lawyer",
        "regulat",
        "complian",
        "plaintiff",
        "defendant",
        "clause",
        "gdpr",
        "litigat",
    ),
    "technical": (
        "python",
        "code",
        "coding",
        "function",
        "bug",
        "api",
        "database",
        "sql",
        "algorithm",
        "server",
        "compil",
        "deploy",
        "javascript",
        "kubernetes",
        "docker",
        "debug",
        "program",
    ),
    "creative": (
        "poem",
        "poetry",
        "story",
        "stories",
        "novel",
        "lyric",
        "creative",
        "fiction",
        "character",
        "plot",
        "screenplay",
        "haiku",
        "slogan",
        "imagin",
    ),
    "scientific": (
        "quantum",
        "physic",
        "chemi",
        "biolog",
        "experiment",
        "hypothes",
        "molecul",
        "theorem",
        "equation",
        "research",
        "genom",
        "astronom",
    ),
}
_PREFIXES: dict[str, str] = {
    word: domain for domain, words in _DOMAIN_KEYWORDS.items() for word in words
}
_MIN_PREFIX = min(map(len, _PREFIXES))
_MAX_PREFIX = max(map(len, _PREFIXES))
_WORD = re.compile(r"[a-z]+")
DETECT_CHARS = 4000  # the opening of a long prompt says enough about its domain


def _word_domain(word: str) -> str | None:
    for length in range(_MIN_PREFIX, min(len(word), _MAX_PREFIX) + 1):
        domain = _PREFIXES.get(word[:length])
        if domain is not None:
            return domain
    return None


_word_cache: dict[str, str | None] = {}
_WORD_CACHE_MAX = 50_000


def detect_domain(text: str) -> str | None:
    """The default detector: the domain with the most keyword hits, None when there is none.

    One pass over the words; each word's domain is looked up once and then cached, so a
    typical prompt costs a few µs.
    """
    hits: dict[str, int] = {}
    cache = _word_cache
    for word in _WORD.findall(text[:DETECT_CHARS].lower()):
        try:
            domain = cache[word]
        except KeyError:
            domain = _word_domain(word)
            if len(cache) < _WORD_CACHE_MAX:
                cache[word] = domain
        if domain is not None:
            hits[domain] = hits.get(domain, 0) + 1
    if not hits:
        return None
    best, best_hits = None, 0
    for domain in KNOWN_DOMAINS:  # ties go to the first domain, in a fixed order
        if hits.get(domain, 0) > best_hits:
            best, best_hits = domain, hits[domain]
    return best


@dataclass
class RoutingDecision:
    model: str
    tier: str  # strong | weak | other
    domain: str | None
    routed: bool  # RouteLLM decided (not the default model)
    fallback_used: bool
    strong_win_rate: float | None
    threshold: float
    latency_ms: float
    event_id: str | None
    revision: int | None = None


_ROUTELLM_ENV_DEFAULTS = {
    # routellm's import builds an OpenAI client (needs a key, even if never used) and may try
    # to reach Hugging Face and litellm's price map; none of that may happen at run time here.
    "OPENAI_API_KEY": "unused-routellm-import",
    "HF_HUB_OFFLINE": "1",
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    "TOKENIZERS_PARALLELISM": "false",
}
_import_lock = threading.Lock()


def load_controller_class() -> type:
    with _import_lock:
        for name, value in _ROUTELLM_ENV_DEFAULTS.items():
            os.environ.setdefault(name, value)
        from routellm.controller import Controller

    return Controller


class ControllerUnavailable(RuntimeError):
    """RouteLLM's router for the live config is not built (yet, or its build failed)."""


class DomainRouter:
    def __init__(
        self,
        config: RouteLLMConfig | None = None,
        *,
        flags: Any = None,
        tracker: Any = None,
        detector: DomainDetector | None = None,
        controller_config: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        if flags is None:
            from routing.flags import FeatureFlags

            flags = FeatureFlags()
        if tracker is None:
            from routing.tracker import CostTracker

            remote = getattr(flags, "remote", None)
            tracker = CostTracker(
                url=remote.url if remote else None, api_key=remote.api_key if remote else None
            )
        self.flags = flags
        self.tracker = tracker
        self.detector: DomainDetector = detector or detect_domain
        self.local_config = config or RouteLLMConfig()
        self.controller_config = controller_config
        # (router type, Controller) swapped as one reference, so a request never pairs a new
        # type with an old Controller. Keyed on the type alone: RouteLLM's routers score a
        # prompt by itself, and the models come from the live config on every request.
        self._built: tuple[str, Any] | None = None
        self._building: str | None = None  # the router type a background build is making
        self._failed: tuple[str, str] | None = None  # (router type, error) of the last failure
        # The parsed config of the document it came from, held by reference: comparing id()s
        # would match a new document that CPython placed at a freed old one's address.
        self._live_config: tuple[dict[str, Any], RouteLLMConfig] | None = None
        self._lock = threading.Lock()
        # Construction may be slow (routellm's import, checkpoints); requests may not.
        self._build(self._decision_inputs()[1])

    @property
    def _controller(self) -> Any:
        """The built routellm Controller, or None (bench/sdk.py reads it)."""
        built = self._built
        return built[1] if built is not None else None

    # --- config ------------------------------------------------------------------------

    def _decision_inputs(self) -> tuple[dict[str, Any], RouteLLMConfig]:
        """The document and config this request is decided on (live in remote mode)."""
        document = self.flags.document()
        if not getattr(self.flags, "is_remote", False):
            config = self.local_config
            # The config object may be edited in place (the guide does), so read it each call.
            return {
                **document,
                "config": {
                    "enabled": config.enabled,
                    "domain_specific_routing": config.domain_specific_routing,
                    "domain_routing_overrides": config.domain_routing_overrides,
                },
            }, config
        cached = self._live_config
        if cached is not None and cached[0] is document:
            return document, cached[1]
        try:
            config = RouteLLMConfig.from_dict(document.get("config") or {})
        except (TypeError, ValueError) as exc:
            log.error("routeplane: live config is invalid (%s); using the local config", exc)
            config = self.local_config
        self._live_config = (document, config)
        return document, config

    # --- RouteLLM ----------------------------------------------------------------------

    def _build(self, config: RouteLLMConfig) -> None:
        """Build the Controller for `config`'s router type (blocking: never on a request)."""
        router_type = config.router_type.value
        try:
            controller_cls = load_controller_class()
            kwargs: dict[str, Any] = {
                "routers": [router_type],
                "strong_model": config.strong_model,
                "weak_model": config.weak_model,
            }
            if self.controller_config is not None:
                kwargs["config"] = {k: dict(v) for k, v in self.controller_config.items()}
            controller = controller_cls(**kwargs)
        except Exception as exc:  # a missing extra or checkpoint must not break construction
            error = f"{exc.__class__.__name__}: {exc}"[:500]
            with self._lock:
                self._failed = (router_type, error)
                self._building = None
            log.error(
                "routeplane: cannot build RouteLLM's %r router (%s); requests it would route "
                "use the default model until the config names another router",
                router_type,
                error,
            )
            return
        with self._lock:
            self._built = (router_type, controller)
            self._failed = None
            self._building = None

    def _router_for(self, config: RouteLLMConfig) -> Any:
        """The routellm router object for this config; raises ControllerUnavailable (at once,
        never blocking) while it is built in the background or when its build failed."""
        router_type = config.router_type.value
        built = self._built
        if built is not None and built[0] == router_type:
            return built[1].routers[router_type]
        with self._lock:
            failed = self._failed
            if failed is not None and failed[0] == router_type:
                # Logged once when the build failed; retried only when the config changes.
                raise ControllerUnavailable(
                    f"RouteLLM's {router_type!r} router could not be built: {failed[1]}"
                )
            if self._building is None:
                self._building = router_type
                threading.Thread(
                    target=self._build,
                    args=(config,),
                    name=f"routeplane-routellm-{router_type}",
                    daemon=True,
                ).start()
        raise ControllerUnavailable(f"RouteLLM's {router_type!r} router is being built")

    async def _strong_win_rate(self, config: RouteLLMConfig, text: str) -> float:
        router = self._router_for(config)
        if config.router_type == RouterType.RANDOM:
            return float(router.calculate_strong_win_rate(text))
        # Learned routers run a model or call an embeddings API: keep the event loop free and
        # bound the wait by the config's timeout.
        return float(
            await asyncio.wait_for(
                asyncio.to_thread(router.calculate_strong_win_rate, text),
                timeout=config.timeout_seconds,
            )
        )

    # --- the decision ------------------------------------------------------------------

    async def route_by_domain(
        self,
        text: str,
        base_criteria: Any = None,
        domain_override: str | None = None,
        *,
        key: str | None = None,
    ) -> RoutingDecision:
        started = time.perf_counter()
        document, config = self._decision_inputs()
        domain = domain_override or self._detect(text)
        if key is None:
            key = hashlib.sha256(text.encode()).hexdigest()
        override = (config.domain_routing_overrides or {}).get(domain or "") or {}
        threshold = float(override.get("threshold", config.threshold))
        strong = override.get("strong_model") or config.strong_model
        weak = override.get("weak_model") or config.weak_model
        routed = should_route(document, domain, key)
        fallback_used = False
        win_rate: float | None = None
        error: str | None = None
        if routed:
            try:
                win_rate = await self._strong_win_rate(config, text)
                model = strong if win_rate >= threshold else weak
            except Exception as exc:  # RouteLLM must never break the caller's request
                fallback_used = True
                error = f"{exc.__class__.__name__}: {exc}"[:500]
                model = override.get("default_model") or config.strong_model
                if not isinstance(exc, ControllerUnavailable):  # that one is logged per build
                    log.warning("routeplane: RouteLLM failed (%s); using %s", error, model)
        else:
            model = override.get("default_model") or config.strong_model
        tier = "strong" if model == strong else "weak" if model == weak else "other"
        latency_ms = (time.perf_counter() - started) * 1000.0
        revision = document.get("revision")
        decision = RoutingDecision(
            model=model,
            tier=tier,
            domain=domain,
            routed=routed and not fallback_used,
            fallback_used=fallback_used,
            strong_win_rate=win_rate,
            threshold=threshold,
            latency_ms=latency_ms,
            event_id=None,
            revision=revision if isinstance(revision, int) and revision > 0 else None,
        )
        decision.event_id = self._track(text, decision, error)
        return decision

    def _detect(self, text: str) -> str | None:
        try:
            return self.detector(text)
        except Exception:  # a custom detector's bug costs the domain, not the request
            log.exception("routeplane: domain detector failed")
            return None

    def _track(self, text: str, decision: RoutingDecision, error: str | None) -> str | None:
        if decision.routed:
            method = "routellm"
        elif decision.fallback_used:
            method = "fallback"
        else:
            method = "default"
        try:
            return self.tracker.track_routing_decision(
                text=text,
                domains=[decision.domain or "general"],
                routing_method=method,
                selected_model=decision.model,
                estimated_cost=None,
                model_tier=decision.tier,
                strong_win_rate=decision.strong_win_rate,
                threshold=decision.threshold,
                latency_ms=decision.latency_ms,
                revision=decision.revision,
                fallback_used=decision.fallback_used,
                error=error,
            )
        except Exception:  # tracking is best effort; routing goes on
            log.exception("routeplane: tracking the decision failed")
            return None
