"""An OpenFeature provider backed by Routeplane flags (the same rule and document as FeatureFlags).

    from openfeature import api
    from routing.openfeature import RouteplaneProvider

    api.set_provider(RouteplaneProvider())  # ROUTEPLANE_URL / ROUTEPLANE_API_KEY, or local
    client = api.get_client()
    client.get_boolean_value("routellm_enabled", False, EvaluationContext(targeting_key="u-1"))

Boolean flags are the ten Routeplane flags; `routing:<domain>` (e.g. `routing:technical`)
resolves the full routing decision for that domain (kill switch, config.enabled, flags and
overrides). The evaluation context's targeting key is the sticky rollout key.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from openfeature.evaluation_context import EvaluationContext
from openfeature.event import ProviderEventDetails
from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import FlagResolutionDetails, Reason
from openfeature.provider import AbstractProvider, Metadata

from routing.evaluation import KILLABLE_FLAGS, is_flag_enabled, should_route
from routing.flags import FeatureFlags

ROUTING_PREFIX = "routing:"


class RouteplaneProvider(AbstractProvider):
    def __init__(self, url: str | None = None, api_key: str | None = None, **kwargs: Any) -> None:
        super().__init__()
        self.flags = FeatureFlags(url=url, api_key=api_key, **kwargs)
        if self.flags.poller is not None:
            self.flags.poller.add_listener(self._changed)

    def get_metadata(self) -> Metadata:
        return Metadata(name="routeplane")

    def _changed(self, document: Mapping[str, Any]) -> None:
        self.emit_provider_configuration_changed(
            ProviderEventDetails(message=f"revision {document.get('revision')}")
        )

    def resolve_boolean_details(
        self,
        flag_key: str,
        default_value: bool,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[bool]:
        document = self.flags.document()
        key = evaluation_context.targeting_key if evaluation_context else None
        poller = self.flags.poller
        metadata = {
            "revision": int(document.get("revision") or 0),
            "source": poller.source if poller is not None else "local",
        }
        stale = poller is not None and poller.source != "server"
        if flag_key.startswith(ROUTING_PREFIX):
            domain = flag_key[len(ROUTING_PREFIX) :] or None
            value = should_route(document, domain, key)
            reason = Reason.DISABLED if document.get("kill_switch") else Reason.TARGETING_MATCH
        else:
            if flag_key not in document.get("flags", {}) and not (
                poller is None and flag_key in self.flags.get_all_flags()
            ):
                return FlagResolutionDetails(
                    value=default_value,
                    error_code=ErrorCode.FLAG_NOT_FOUND,
                    error_message=f"no Routeplane flag named {flag_key!r}",
                    reason=Reason.ERROR,
                    flag_metadata=metadata,
                )
            if poller is None:
                value = self.flags.is_enabled(flag_key, key)
            else:
                value = is_flag_enabled(document, flag_key, key)
            state = document.get("flags", {}).get(flag_key) or {}
            if document.get("kill_switch") and flag_key in KILLABLE_FLAGS:
                reason = Reason.DISABLED
            elif key is not None and 0 < int(state.get("rollout_percent", 0)) < 100:
                reason = Reason.SPLIT
            else:
                reason = Reason.STATIC
        if stale:
            reason = Reason.STALE
        return FlagResolutionDetails(
            value=value, reason=reason, variant="on" if value else "off", flag_metadata=metadata
        )

    def _type_mismatch(self, default_value: Any) -> FlagResolutionDetails[Any]:
        return FlagResolutionDetails(
            value=default_value,
            error_code=ErrorCode.TYPE_MISMATCH,
            error_message="Routeplane flags are booleans",
            reason=Reason.ERROR,
        )

    def resolve_string_details(
        self, flag_key: str, default_value: str, evaluation_context: EvaluationContext | None = None
    ) -> FlagResolutionDetails[str]:
        return self._type_mismatch(default_value)

    def resolve_integer_details(
        self, flag_key: str, default_value: int, evaluation_context: EvaluationContext | None = None
    ) -> FlagResolutionDetails[int]:
        return self._type_mismatch(default_value)

    def resolve_float_details(
        self,
        flag_key: str,
        default_value: float,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[float]:
        return self._type_mismatch(default_value)

    def resolve_object_details(
        self,
        flag_key: str,
        default_value: Sequence[Any] | Mapping[str, Any],
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[Any]:
        return self._type_mismatch(default_value)
