"""Reading request bodies strictly: JSON only, size-limited, well-formed."""

from __future__ import annotations

import json

from aiohttp import web

from bff import errors


def _no_constants(name: str) -> object:
    raise ValueError(f"{name} is not JSON")


async def read_json(request: web.Request, limit: int) -> object:
    """The body as JSON. 415 unless ``application/json``, 413 over ``limit``, 400 if malformed."""
    if request.content_type != "application/json":
        raise errors.UnsupportedMediaType(
            f"the body must be application/json, not {request.content_type[:60]!r}"
        )
    if request.content_length is not None and request.content_length > limit:
        raise errors.PayloadTooLarge(f"the request body is larger than {limit} bytes")
    raw = await request.read()
    if len(raw) > limit:
        raise errors.PayloadTooLarge(f"the request body is larger than {limit} bytes")
    if not raw.strip():
        raise errors.BadRequest("the request body is empty", code=errors.Code.EMPTY_BODY)
    try:
        return json.loads(raw, parse_constant=_no_constants)
    except (ValueError, UnicodeDecodeError) as exc:
        raise errors.BadRequest(
            f"malformed JSON: {str(exc)[:120]}", code=errors.Code.MALFORMED_JSON
        ) from None
