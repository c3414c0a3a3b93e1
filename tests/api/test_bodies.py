"""bff.api.bodies: request bodies read strictly. JSON only, UTF-8 only, no duplicate key,
no deeper than MAX_DEPTH, at most the limit; an action's body empty, {} or null; a
query parameter that means one thing given once. Bodies arrive over real HTTP at a
small app whose one route reads them as the handlers do."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from aiohttp import web
from multidict import MultiDict

from bff import errors
from bff.api import bodies
from bff.keys import SETTINGS
from bff.settings import Settings

LIMIT = 256


async def _reader(aiohttp_client: Callable[..., Any]) -> Any:
    async def read(request: web.Request) -> web.Response:
        try:
            if request.query.get("action"):
                await bodies.refuse_body(request)
                return web.json_response({"read": None})
            return web.json_response({"read": await bodies.read_json(request, LIMIT)})
        except errors.BffError as error:
            return web.json_response(error.body(), status=error.status)

    app = web.Application()
    app[SETTINGS] = Settings()
    app.router.add_post("/", read)
    return await aiohttp_client(app)


JSON = {"Content-Type": "application/json"}


@pytest.mark.parametrize(
    ("body", "headers", "status", "code"),
    [
        (b'{"a": [1, {"b": null}]}', JSON, 200, None),
        (b'{"a": 1, "a": 2}', JSON, 400, "DuplicateKey"),
        (b'{"a": {"b": 1, "b": 2}}', JSON, 400, "DuplicateKey"),
        (b"[" * 65 + b"]" * 65, JSON, 400, "MalformedJSON"),
        (b"[" * 64 + b"]" * 64, JSON, 200, None),
        (b'{"a": NaN}', JSON, 400, "MalformedJSON"),
        (b'{"a": "\xff"}', JSON, 400, "MalformedJSON"),
        (b"   ", JSON, 400, "EmptyBody"),
        (b"{}", {"Content-Type": "text/plain"}, 415, "UnsupportedMediaType"),
        (b"{}", {"Content-Type": "application/json; charset=latin-1"}, 415,
         "UnsupportedMediaType"),
        (b"{}", {"Content-Type": "application/json; charset=UTF-8"}, 200, None),
        (b'{"a": "' + b"x" * LIMIT + b'"}', JSON, 413, "RequestEntityTooLarge"),
    ],
    ids=["ok", "duplicate", "nested-duplicate", "too-deep", "deep-enough", "nan", "not-utf8",
         "empty", "not-json", "latin-1", "utf-8-charset", "too-large"],
)  # fmt: skip
async def test_json_bodies_are_read_strictly(
    aiohttp_client: Callable[..., Any],
    body: bytes,
    headers: dict[str, str],
    status: int,
    code: str | None,
) -> None:
    client = await _reader(aiohttp_client)
    answer = await client.post("/", data=body, headers=headers)
    assert answer.status == status, await answer.text()
    if code is not None:
        assert (await answer.json())["code"] == code


async def test_a_body_sent_in_chunks_past_the_limit_is_refused(
    aiohttp_client: Callable[..., Any],
) -> None:
    client = await _reader(aiohttp_client)

    async def chunks() -> Any:  # no Content-Length: the limit is counted while reading
        for _ in range(10):
            yield b"x" * 64

    answer = await client.post("/", data=chunks(), headers=JSON)
    assert answer.status == 413


@pytest.mark.parametrize(
    ("body", "status"),
    [(b"", 200), (b"{}", 200), (b" null ", 200), (b'{"a": 1}', 400), (b"x" * 2000, 413)],
)
async def test_an_action_takes_no_body(
    aiohttp_client: Callable[..., Any], body: bytes, status: int
) -> None:
    client = await _reader(aiohttp_client)
    answer = await client.post("/?action=dismiss", data=body, headers=JSON)
    assert answer.status == status


def test_a_parameter_given_twice_is_ambiguous() -> None:
    assert bodies.single(MultiDict(a="1"), "a") == "1"
    assert bodies.single(MultiDict(), "a") is None
    with pytest.raises(errors.BadRequest) as refused:
        bodies.single(MultiDict([("a", "1"), ("a", "2")]), "a")
    assert refused.value.code == errors.Code.AMBIGUOUS_REQUEST
    assert "given 2 times" in refused.value.message


def test_nesting_ignores_brackets_inside_strings() -> None:
    assert bodies.nesting_depth('{"a": "[[[[{{{{", "b": [1]}') == 2
    assert bodies.nesting_depth(r'["\"[[["]') == 1
