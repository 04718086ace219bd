"""Request input shared by the API views: the router a request names, If-Match, JSON bodies."""

from __future__ import annotations

from typing import Any

from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.request import Request

from controlplane import selectors
from controlplane.api.auth import may_act_on
from controlplane.models import Router


def router_for(request: Request, slug: str) -> Router:
    """The router `slug` names; 404 alike when it is missing or outside the key's router, so a
    key cannot learn which other routers exist."""
    router = selectors.router_list().filter(slug=slug).first()
    if router is None or not may_act_on(request, router):
        raise NotFound("No such router.")
    return router


def expected_revision(request: Request) -> int | None:
    """The revision named by If-Match ("3", "\"3\"" or W/"3"); None when absent or `*`."""
    raw = request.headers.get("If-Match", "").strip()
    if not raw or raw == "*":
        return None
    value = raw.removeprefix("W/").strip('"')
    if not (value.isascii() and value.isdigit()):  # "²".isdigit() is true, int("²") fails
        raise ValidationError({"If-Match": ['use the revision number, as in If-Match: "3"']})
    return int(value)


def validated(serializer_class: type, request: Request) -> dict[str, Any]:
    if not isinstance(request.data, dict):
        raise ValidationError({"body": ["expected a JSON object"]})
    data = serializer_class(data=request.data)
    data.is_valid(raise_exception=True)
    return dict(data.validated_data)
