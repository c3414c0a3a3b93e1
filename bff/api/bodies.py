"""Reading requests strictly: JSON only, UTF-8 only, size- and depth-limited, unambiguous.

A body is refused, never guessed at: a charset other than UTF-8 (415), a
duplicate key anywhere (400, since last-wins would let a body's first
``metadata.name`` disagree with what is acted on), nesting deeper than
:data:`MAX_DEPTH` (400, checked before parsing so the parser never recurses
that far), and a body on an action, which takes none (400, or 413 when large).
A query parameter or header that means one thing may appear once.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence

from aiohttp import web
from multidict import MultiMapping

from bff import errors
from bff.keys import SETTINGS

#: Deeper than any Upgrade (about 8 levels) by a wide margin; far below the recursion limit.
MAX_DEPTH = 64
#: An action's body may be empty, ``{}`` or ``null`` (what clients send); nothing else.
ACTION_BODY_LIMIT = 1024
_UTF8 = ("utf-8", "utf8")


class _DuplicateKey(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _no_constants(name: str) -> object:
    raise ValueError(f"{name} is not JSON")


def _unique_keys(pairs: Sequence[tuple[str, object]]) -> dict[str, object]:
    obj: dict[str, object] = {}
    for key, value in pairs:
        if key in obj:
            raise _DuplicateKey(key)
        obj[key] = value
    return obj


def nesting_depth(text: str) -> int:
    """The deepest ``[``/``{`` nesting in ``text``, ignoring brackets inside strings."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def parse_json(raw: bytes) -> object:
    """Strict JSON from UTF-8 bytes; :class:`errors.BadRequest` for anything else."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise errors.BadRequest(
            "malformed JSON: the body is not UTF-8", code=errors.Code.MALFORMED_JSON
        ) from None
    if nesting_depth(text) > MAX_DEPTH:
        raise errors.BadRequest(
            f"malformed JSON: nested deeper than {MAX_DEPTH} levels",
            code=errors.Code.MALFORMED_JSON,
        )
    try:
        return json.loads(text, parse_constant=_no_constants, object_pairs_hook=_unique_keys)
    except _DuplicateKey as exc:
        raise errors.BadRequest(
            f"duplicate key {exc.key[:60]!r} in the JSON body", code=errors.Code.DUPLICATE_KEY
        ) from None
    except RecursionError:
        raise errors.BadRequest(
            "malformed JSON: nested too deeply", code=errors.Code.MALFORMED_JSON
        ) from None
    except ValueError as exc:
        raise errors.BadRequest(
            f"malformed JSON: {str(exc)[:120]}", code=errors.Code.MALFORMED_JSON
        ) from None


def _check_charset(request: web.Request) -> None:
    charset = request.charset
    if charset is not None and charset.lower() not in _UTF8:
        raise errors.UnsupportedMediaType(
            f"the body must be UTF-8 JSON; charset {charset[:40]!r} is not supported"
        )


def _stalled(seconds: float) -> errors.BffError:
    error = errors.BffError(
        f"the request body stalled for more than {seconds:g}s", code=errors.Code.REQUEST_TIMEOUT
    )
    error.status = 408
    return error


async def _read(request: web.Request, limit: int) -> bytes:
    """At most ``limit`` bytes of body (413 beyond), each chunk within the idle timeout (408)."""
    too_large = errors.PayloadTooLarge(f"the request body is larger than {limit} bytes")
    if request.content_length is not None and request.content_length > limit:
        raise too_large
    idle = request.app[SETTINGS].idle_timeout
    chunks: list[bytes] = []
    size = 0
    while True:
        try:
            async with asyncio.timeout(idle):
                chunk = await request.content.read(limit + 1 - size)
        except TimeoutError:
            raise _stalled(idle) from None
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            raise too_large


async def read_json(request: web.Request, limit: int) -> object:
    """The body as JSON. 415 unless UTF-8 ``application/json``, 413 over ``limit``, 400 if bad."""
    if request.content_type != "application/json":
        raise errors.UnsupportedMediaType(
            f"the body must be application/json, not {request.content_type[:60]!r}"
        )
    _check_charset(request)
    raw = await _read(request, limit)
    if not raw.strip():
        raise errors.BadRequest("the request body is empty", code=errors.Code.EMPTY_BODY)
    return parse_json(raw)


async def refuse_body(request: web.Request) -> None:
    """Actions take no body: empty, ``{}`` or ``null`` pass; anything else is refused unread."""
    if not request.body_exists:
        return
    raw = (await _read(request, ACTION_BODY_LIMIT)).strip()
    if raw in (b"", b"{}", b"null"):
        return
    raise errors.BadRequest(
        "actions take no request body; send none (or {})", code=errors.Code.UNEXPECTED_BODY
    )


def single(values: MultiMapping[str], name: str, where: str = "query parameter") -> str | None:
    """The one value of ``name``, or None; 400 when it is given more than once."""
    found = values.getall(name, [])
    if len(found) > 1:
        raise errors.BadRequest(
            f"the {where} {name} is given {len(found)} times; give it once",
            code=errors.Code.AMBIGUOUS_REQUEST,
        )
    return found[0] if found else None
