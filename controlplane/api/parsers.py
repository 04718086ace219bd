"""JSON parsing with orjson and a hard size limit (413 rather than reading it all)."""

from __future__ import annotations

from typing import Any

import orjson
from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import BaseParser

from controlplane.api.errors import PayloadTooLarge


def read_limited_body(stream: Any, meta: dict[str, Any], limit: int | None = None) -> bytes:
    limit = limit or settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    try:
        length = int(meta.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > limit:
        raise PayloadTooLarge(f"Request body too large: {length} bytes (limit {limit}).")
    body = stream.read(limit + 1) if stream is not None else b""
    if len(body) > limit:
        raise PayloadTooLarge(f"Request body too large (limit {limit} bytes).")
    return body


class JSONParser(BaseParser):
    media_type = "application/json"

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        request = parser_context["request"]
        body = read_limited_body(stream, request.META)
        if not body:
            return {}
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise ParseError(f"Malformed JSON: {exc}") from None
