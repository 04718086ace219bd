"""The flags document routers poll: one builder for the ASGI fast path and the DRF view.

Both paths serve exactly these bytes and this ETag, so they cannot disagree.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Protocol

import orjson


class DocumentRevision(Protocol):
    """What a flags document is built from: a ConfigRevision, or the fast path's LoadedRevision."""

    number: int
    config: dict[str, Any]
    phase: str
    phase_domain: str
    kill_switch: bool
    experiment: dict[str, Any] | None

    def flags_dict(self) -> dict[str, dict[str, Any]]: ...


@dataclass(frozen=True)
class RenderedDocument:
    router_id: int
    slug: str
    revision: int
    body: bytes
    etag: str  # strong: a quoted hash of the exact body


def flags_document(*, slug: str, revision: DocumentRevision) -> dict[str, Any]:
    return {
        "router": slug,
        "revision": revision.number,
        "phase": revision.phase,
        "phase_domain": revision.phase_domain or None,
        "kill_switch": revision.kill_switch,
        "config": revision.config,
        "flags": revision.flags_dict(),
        # The running A/B experiment ({"id", "split", "treatment_threshold"}) or null.
        "experiment": revision.experiment,
    }


def render_document(*, router_id: int, slug: str, revision: DocumentRevision) -> RenderedDocument:
    body = orjson.dumps(flags_document(slug=slug, revision=revision), option=orjson.OPT_SORT_KEYS)
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    return RenderedDocument(router_id, slug, revision.number, body, etag)


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """RFC 9110 If-None-Match: a list of (possibly weak) tags, or `*`."""
    if not if_none_match:
        return False
    for candidate in if_none_match.split(","):
        tag = candidate.strip()
        if tag == "*" or tag.removeprefix("W/") == etag:
            return True
    return False
