"""bff.errors: each error's status, code and Steve-shaped body, and the upstream
message's shortening. How the middleware answers with them is in test_middleware."""

from __future__ import annotations

import json

import pytest

from bff import errors

KINDS = [
    (errors.BadRequest, 400, "BadRequest"),
    (errors.Unauthorized, 401, "Unauthorized"),
    (errors.Forbidden, 403, "Forbidden"),
    (errors.NotFound, 404, "NotFound"),
    (errors.MethodNotAllowed, 405, "MethodNotAllowed"),
    (errors.Conflict, 409, "Conflict"),
    (errors.UpstreamConflict, 409, "Conflict"),
    (errors.PayloadTooLarge, 413, "RequestEntityTooLarge"),
    (errors.UnsupportedMediaType, 415, "UnsupportedMediaType"),
    (errors.Invalid, 422, "Invalid"),
    (errors.TooManyRequests, 429, "TooManyRequests"),
    (errors.UpstreamRequestRefused, 500, "UpstreamRequestRefused"),
    (errors.BffError, 500, "InternalError"),
]


@pytest.mark.parametrize(("kind", "status", "code"), KINDS, ids=[k[0].__name__ for k in KINDS])
def test_each_error_has_its_status_code_and_steve_body(
    kind: type[errors.BffError], status: int, code: str
) -> None:
    error = kind("a sentence for a human")
    assert json.loads(json.dumps(error.body())) == {
        "type": "error",
        "status": status,
        "code": code,
        "message": "a sentence for a human",
    }


def test_a_code_given_wins_over_the_kinds_default() -> None:
    error = errors.NotFound("no", code=errors.Code.UNKNOWN_VERSION)
    assert error.body()["code"] == "UnknownVersion"
    assert error.status == 404


def test_headers_are_copied_not_shared() -> None:
    given = {"Allow": "GET"}
    error = errors.MethodNotAllowed("no", headers=given)
    given["Allow"] = "PUT"
    assert error.headers == {"Allow": "GET"}


def test_upstream_unavailable_chooses_its_status_per_instance() -> None:
    slow = errors.UpstreamUnavailable("slow", http_status=504, upstream_status=None)
    down = errors.UpstreamUnavailable("down")
    assert (slow.status, down.status) == (504, 502)
    assert errors.UpstreamUnavailable.status == 500  # the class is untouched
    assert slow.code == down.code == "UpstreamUnavailable"


def test_an_upstream_status_is_kept_for_the_log_not_the_body() -> None:
    error = errors.Conflict("changed", upstream_status=409)
    assert error.upstream_status == 409
    assert "upstream_status" not in error.body()


def test_every_code_is_a_distinct_word() -> None:
    values = [code.value for code in errors.Code]
    assert len(values) == len(set(values))
    assert all(value.isalnum() and value[0].isupper() for value in values)


@pytest.mark.parametrize(
    ("message", "limit", "expected"),
    [
        ("short", 10, "short"),
        ("  many \n  spaces\tcollapse  ", 100, "many spaces collapse"),
        ("exactly10!", 10, "exactly10!"),
        ("eleven char", 10, "eleven ch…"),
    ],
)
def test_upstream_messages_are_collapsed_and_shortened(
    message: str, limit: int, expected: str
) -> None:
    shortened = errors.truncate(message, limit)
    assert shortened == expected
    assert len(shortened) <= limit


def test_the_default_limit() -> None:
    assert len(errors.truncate("x" * 1000)) == errors.MAX_UPSTREAM_MESSAGE
