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
import contextlib
import dataclasses
import hashlib
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from routing.config import KNOWN_DOMAINS, RouteLLMConfig, RouterType, parse_router_type
from routing.evaluation import should_route
from routing.experiments import experiment_arm
from routing.model_calls import CallResult, call_models, describe, last_user_text

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
    ab_group: str | None = None  # the key's A/B arm ("control"/"treatment"), if one runs
    # Set by the DomainRouter that made the decision: records an outcome for its event.
    recorder: Callable[..., bool] | None = field(default=None, repr=False, compare=False)

    def record_outcome(
        self,
        *,
        prompt_tokens: int | None = None,
        completion_tokens: int | None = None,
        latency_ms: float | None = None,
        success: bool | None = None,
        error: str | None = None,
        quality: float | None = None,
    ) -> bool:
        """Attach the call's outcome to this decision's event (see CostTracker.record_outcome).
        False (never an exception) when it was not recorded, e.g. cost tracking is off."""
        if self.event_id is None or self.recorder is None:
            return False
        return self.recorder(
            self.event_id,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            latency_ms=latency_ms,
            success=success,
            error=error,
            quality=quality,
        )


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
    """Routes each prompt to the strong or weak model; `acompletion` also makes the call.

    Configuration precedence: a per-call argument > the control plane's live config (remote
    mode) > ROUTELLM_* environment variables > the dataclass defaults. `config=None` means
    `RouteLLMConfig.from_env()`; in remote mode the config given here is used only until the
    first valid document and for the local-only `default_model`.
    """

    def __init__(
        self,
        config: RouteLLMConfig | None = None,
        *,
        flags: Any = None,
        tracker: Any = None,
        detector: DomainDetector | None = None,
        controller_config: Mapping[str, Mapping[str, Any]] | None = None,
        api_base: str | None = None,
        api_key: str | None = None,
        retry_backoff: float = 0.25,
    ) -> None:
        if flags is None:
            from routing.flags import FeatureFlags

            flags = FeatureFlags()
        if config is None:
            config = RouteLLMConfig.from_env()
        if tracker is None:
            from routing.tracker import CostTracker

            remote = getattr(flags, "remote", None)
            tracker = CostTracker(
                url=remote.url if remote else None,
                api_key=remote.api_key if remote else None,
                strong_model=config.strong_model,
                weak_model=config.weak_model,
            )
        self.flags = flags
        self.tracker = tracker
        self.detector: DomainDetector = detector or detect_domain
        self.local_config = config
        self.controller_config = controller_config
        self.api_base = api_base
        self.api_key = api_key
        self.retry_backoff = retry_backoff
        # One routellm Controller per router type (a domain override may name its own type).
        # Keyed on the type alone: RouteLLM's routers score a prompt by itself, and the models
        # come from the live config on every request.
        self._built: dict[str, Any] = {}
        self._building: set[str] = set()  # router types a background build is making
        self._failed: dict[str, str] = {}  # router type -> error of its last failed build
        # The parsed config of the document it came from, held by reference: comparing id()s
        # would match a new document that CPython placed at a freed old one's address.
        self._live_config: tuple[dict[str, Any], RouteLLMConfig] | None = None
        self._lock = threading.Lock()
        # Construction may be slow (routellm's import, checkpoints); requests may not.
        self._build(self._decision_inputs()[1].router_type.value)

    @property
    def controller(self) -> Any:
        """The built routellm Controller of the current config's router type, or None."""
        return self._built.get(self._decision_inputs()[1].router_type.value)

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
            config.default_model = self.local_config.default_model
        except (TypeError, ValueError) as exc:
            log.error("routeplane: live config is invalid (%s); using the local config", exc)
            config = self.local_config
        self._live_config = (document, config)
        with self._lock:
            self._failed.clear()  # a new config: builds that failed may be tried again
        return document, config

    # --- RouteLLM ----------------------------------------------------------------------

    def _build(self, router_type: str) -> None:
        """Build the Controller for a router type (blocking: never on a request)."""
        config = self.local_config
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
                self._failed[router_type] = error
                self._building.discard(router_type)
            log.error(
                "routeplane: cannot build RouteLLM's %r router (%s); requests it would route "
                "use the default model until the config changes",
                router_type,
                error,
            )
            return
        with self._lock:
            self._built = self._built | {router_type: controller}
            self._failed.pop(router_type, None)
            self._building.discard(router_type)

    def _router_for(self, router_type: str) -> Any:
        """The routellm router object of a type; raises ControllerUnavailable (at once, never
        blocking) while it is built in the background or when its build failed."""
        controller = self._built.get(router_type)
        if controller is not None:
            return controller.routers[router_type]
        with self._lock:
            failed = self._failed.get(router_type)
            if failed is not None:
                # Logged once when the build failed; retried only when the config changes.
                raise ControllerUnavailable(
                    f"RouteLLM's {router_type!r} router could not be built: {failed}"
                )
            if router_type not in self._building:
                self._building.add(router_type)
                threading.Thread(
                    target=self._build,
                    args=(router_type,),
                    name=f"routeplane-routellm-{router_type}",
                    daemon=True,
                ).start()
        raise ControllerUnavailable(f"RouteLLM's {router_type!r} router is being built")

    async def _strong_win_rate(
        self, config: RouteLLMConfig, router_type: RouterType, text: str
    ) -> float:
        router = self._router_for(router_type.value)
        if router_type == RouterType.RANDOM:
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
        decision, config, error = await self._decide(text, domain_override, key)
        decision.event_id = self._track(text, decision, config, routing_error=error)
        return decision

    async def _decide(
        self, text: str, domain_override: str | None, key: str | None
    ) -> tuple[RoutingDecision, RouteLLMConfig, str | None]:
        """(the decision, untracked; the config it was made on; RouteLLM's error if any)."""
        started = time.perf_counter()
        document, config = self._decision_inputs()
        domain = domain_override or self._detect(text)
        if key is None:
            key = hashlib.sha256(text.encode()).hexdigest()
        override = (config.domain_routing_overrides or {}).get(domain or "") or {}
        # A/B: a treatment key routes with the experiment's threshold (routing.experiments).
        ab_group, treatment_threshold = experiment_arm(document, key)
        base_threshold = config.threshold if treatment_threshold is None else treatment_threshold
        threshold = float(override.get("threshold", base_threshold))
        strong = override.get("strong_model") or config.strong_model
        weak = override.get("weak_model") or config.weak_model
        default = self._default_model(config, override)
        routed = should_route(document, domain, key)
        fallback_used = False
        win_rate: float | None = None
        error: str | None = None
        if routed:
            try:
                router_type = parse_router_type(override.get("router_type", config.router_type))
                win_rate = await self._strong_win_rate(config, router_type, text)
                model = strong if win_rate >= threshold else weak
            except Exception as exc:  # RouteLLM must never break the caller's request
                fallback_used = True
                error = f"{exc.__class__.__name__}: {exc}"[:500]
                model = default
                if not isinstance(exc, ControllerUnavailable):  # that one is logged per build
                    log.warning("routeplane: RouteLLM failed (%s); using %s", error, model)
        else:
            model = default
        latency_ms = (time.perf_counter() - started) * 1000.0
        revision = document.get("revision")
        decision = RoutingDecision(
            model=model,
            tier=self._tier(model, strong, weak),
            domain=domain,
            routed=routed and not fallback_used,
            fallback_used=fallback_used,
            strong_win_rate=win_rate,
            threshold=threshold,
            latency_ms=latency_ms,
            event_id=None,
            revision=revision if isinstance(revision, int) and revision > 0 else None,
            ab_group=ab_group,
        )
        return decision, config, error

    @staticmethod
    def _default_model(config: RouteLLMConfig, override: Mapping[str, Any]) -> str:
        """Where unrouted traffic goes: the domain's default model, else the application's
        (config.yaml model_config.default_model), else the strong model."""
        return override.get("default_model") or config.default_model or config.strong_model

    @staticmethod
    def _tier(model: str, strong: str, weak: str) -> str:
        return "strong" if model == strong else "weak" if model == weak else "other"

    def _detect(self, text: str) -> str | None:
        try:
            return self.detector(text)
        except Exception:  # a custom detector's bug costs the domain, not the request
            log.exception("routeplane: domain detector failed")
            return None

    def _track(
        self,
        text: str,
        decision: RoutingDecision,
        config: RouteLLMConfig,
        *,
        routing_error: str | None = None,
        error: str | None = None,
        latency_ms: float | None = None,
        success: bool | None = None,
        prompt_tokens: int | None = None,
        completion_tokens: int | None = None,
    ) -> str | None:
        """Track the decision (and the call's outcome, when the router made the call), as the
        config's cost tracking and performance monitoring switches allow."""
        if not config.cost_tracking_enabled:
            return None
        if decision.routed:
            method = "routellm"
        elif routing_error is not None:
            method = "fallback"  # RouteLLM failed: the default model served
        else:
            method = "default"
        monitored = config.performance_monitoring_enabled
        decision.recorder = self._record_outcome if monitored else self._record_outcome_unmonitored
        if routing_error and error:
            error = f"{routing_error}; {error}"[:2000]
        elif routing_error or error:
            error = (routing_error or error)[:2000]
        else:
            error = None
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
                latency_ms=(decision.latency_ms if latency_ms is None else latency_ms)
                if monitored
                else None,
                revision=decision.revision,
                ab_group=decision.ab_group,
                fallback_used=decision.fallback_used,
                error=error,
                success=success,
                prompt_tokens=prompt_tokens,
                completion_tokens=completion_tokens,
            )
        except Exception:  # tracking is best effort; routing goes on
            log.exception("routeplane: tracking the decision failed")
            return None

    def _record_outcome(self, event_id: str, **outcome: Any) -> bool:
        try:
            return bool(self.tracker.record_outcome(event_id, **outcome))
        except Exception:  # a tracker without outcomes, or its bug: never the caller's
            log.exception("routeplane: recording the outcome failed")
            return False

    def _record_outcome_unmonitored(self, event_id: str, **outcome: Any) -> bool:
        """Performance monitoring off: the call's latency is not recorded."""
        outcome["latency_ms"] = None
        return self._record_outcome(event_id, **outcome)

    # --- the call ----------------------------------------------------------------------

    async def acompletion(
        self,
        messages: Sequence[Any],
        *,
        domain_override: str | None = None,
        key: str | None = None,
        **kwargs: Any,
    ) -> Any:
        """Route by domain (the last user message's text), then call the chosen model through
        LiteLLM; returns LiteLLM's response (or, with stream=True, an async iterator of its
        chunks). The decision is on the response as `response.routeplane`.

        Each model gets 1 + config.max_retry_attempts attempts of at most
        config.timeout_seconds (or the `timeout` argument); when config.fallback_enabled, a
        failing model is replaced by the other tier's, then by the default model. The event
        records the serving model, its tokens, the time spent calling models, success or the
        error, and whether a fallback served. Without fallback the error reaches the caller.
        """
        text = last_user_text(messages)
        decision, config, routing_error = await self._decide(text, domain_override, key)
        models = self._call_chain(decision, config)
        stream = bool(kwargs.get("stream"))
        if stream:
            options = dict(kwargs.get("stream_options") or {})
            options.setdefault("include_usage", True)
            kwargs["stream_options"] = options
        timeout = float(kwargs.pop("timeout", None) or config.timeout_seconds)
        result = await call_models(
            models,
            messages,
            retries=config.max_retry_attempts,
            timeout=timeout,
            backoff=self.retry_backoff,
            api_base=self.api_base,
            api_key=self.api_key,
            kwargs=kwargs,
        )
        served = self._served(decision, config, result)

        def finish(usage: Any, error: BaseException | None) -> None:
            self._finish(text, served, config, result, usage, error, routing_error)

        if stream and result.success:
            return TrackedStream(result.response, served, finish)
        finish(getattr(result.response, "usage", None) if result.success else None, result.error)
        if not result.success:
            assert result.error is not None
            raise result.error
        with contextlib.suppress(Exception):  # a response type that takes no attributes
            result.response.routeplane = served
        return result.response

    def completion(self, messages: Sequence[Any], **kwargs: Any) -> Any:
        """`acompletion` for synchronous callers (not from inside a running event loop)."""
        if kwargs.get("stream"):
            raise ValueError("stream=True needs acompletion (an async iterator)")
        return asyncio.run(self.acompletion(messages, **kwargs))

    def _call_chain(self, decision: RoutingDecision, config: RouteLLMConfig) -> list[str]:
        """The routed model, then (fallback enabled) the other tier's and the default model."""
        models = [decision.model]
        if config.fallback_enabled:
            override = (config.domain_routing_overrides or {}).get(decision.domain or "") or {}
            strong = override.get("strong_model") or config.strong_model
            weak = override.get("weak_model") or config.weak_model
            other = weak if decision.model == strong else strong
            for model in (other, self._default_model(config, override)):
                if model not in models:
                    models.append(model)
        return models

    def _served(
        self,
        decision: RoutingDecision,
        config: RouteLLMConfig,
        result: CallResult,
    ) -> RoutingDecision:
        """The decision as served: the model that answered and whether a fallback did."""
        if result.model == decision.model:
            served = decision
        else:
            override = (config.domain_routing_overrides or {}).get(decision.domain or "") or {}
            strong = override.get("strong_model") or config.strong_model
            weak = override.get("weak_model") or config.weak_model
            served = dataclasses.replace(
                decision,
                model=result.model,
                tier=self._tier(result.model, strong, weak),
                fallback_used=True,
            )
        return served

    def _finish(
        self,
        text: str,
        decision: RoutingDecision,
        config: RouteLLMConfig,
        result: CallResult,
        usage: Any,
        error: BaseException | None,
        routing_error: str | None,
    ) -> None:
        """Track one completed call (for a stream: when it ended)."""
        latency_ms = (time.perf_counter() - result.started) * 1000.0
        failures = "; ".join(f"{model}: {message}" for model, message in result.attempts)
        message = describe(error) if error is not None else None
        if error is None and failures:
            message = f"served after failures ({failures})"[:2000]
        elif error is not None and failures:
            message = failures[:2000]
        decision.event_id = self._track(
            text,
            decision,
            config,
            routing_error=routing_error,
            error=message,
            latency_ms=latency_ms,
            success=error is None,
            prompt_tokens=getattr(usage, "prompt_tokens", None),
            completion_tokens=getattr(usage, "completion_tokens", None),
        )


class TrackedStream:
    """LiteLLM's stream, passed through chunk by chunk; the call is tracked when it ends (with
    the usage of its final chunk), fails, or is closed early. `routeplane` is the decision."""

    def __init__(
        self,
        stream: Any,
        decision: RoutingDecision,
        finish: Callable[[Any, BaseException | None], None],
    ) -> None:
        self._stream = stream
        self.routeplane = decision
        self._finish = finish
        self._usage: Any = None
        self._done = False

    def __aiter__(self) -> TrackedStream:
        return self

    async def __anext__(self) -> Any:
        try:
            chunk = await self._stream.__anext__()
        except StopAsyncIteration:
            self._end(None)
            raise
        except Exception as exc:
            self._end(exc)
            raise
        usage = getattr(chunk, "usage", None)
        if usage is not None:
            self._usage = usage
        return chunk

    async def aclose(self) -> None:
        self._end(None)
        close = getattr(self._stream, "aclose", None)
        if close is not None:
            with contextlib.suppress(Exception):
                await close()

    def _end(self, error: BaseException | None) -> None:
        if not self._done:
            self._done = True
            self._finish(self._usage, error)
