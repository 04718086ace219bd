"""JSON parsing with orjson and a hard size limit (413 rather than reading it all)."""

from __future__ import annotations

from typing import Any

import orjson
from django.conf import settings
from rest_framework.exceptions import ParseError, ValidationError
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
            data = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise ParseError(f"Malformed JSON: {exc}") from None
        # PostgreSQL text and jsonb cannot hold NUL: refuse it here with the field's name rather
        # than let the write fail in the database. JSON can only carry NUL escaped, so the byte
        # search spares the walk for every ordinary body.
        if b"\\u0000" in body:
            where = nul_path(data)
            if where is not None:
                raise ValidationError({where or "body": ["must not contain NUL (\\u0000)"]})
        return data


def nul_path(value: Any, path: str = "") -> str | None:
    """The dotted path of the first string (value or key) holding NUL, else None."""
    if isinstance(value, str):
        return path if "\x00" in value else None
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, list):
        items = ((str(i), v) for i, v in enumerate(value))
    else:
        return None
    for key, item in items:
        where = f"{path}.{key}" if path else str(key)
        if "\x00" in key:
            return path or "body"
        found = nul_path(item, where)
        if found is not None:
            return found
    return None
