"""Credential extraction, header hygiene and the TokenReview cache (bff.auth), in isolation.

The end-to-end proofs (through the BFF, against an API server) are in
tests/security/; these pin the small rules down precisely.
"""

from __future__ import annotations

import pytest
from aiohttp.test_utils import make_mocked_request
from multidict import CIMultiDict

from bff import errors
from bff.auth import (
    Authenticator,
    ReviewCache,
    check_csrf,
    check_origin,
    client_address,
    credential,
    forbidden_header,
)
from bff.identities import AuthMode, ImpersonatedCaller, TokenCaller


@pytest.mark.parametrize(
    "name",
    ["Impersonate-User", "impersonate-group", "IMPERSONATE-UID", "Impersonate_User",
     "impersonate-extra-scopes", "Impersonate-Extra-a%2Fb"],
)  # fmt: skip
def test_every_spelling_of_an_impersonation_header_is_caught(name: str) -> None:
    assert forbidden_header(["Accept", name]) == name


def test_ordinary_headers_are_not_impersonation() -> None:
    assert forbidden_header(["Authorization", "X-Impersonate", "Cookie"]) is None


def test_bearer_token() -> None:
    request = make_mocked_request("GET", "/", headers={"Authorization": "Bearer abc.def"})
    assert credential(request) == ("abc.def", False)


def _split_bearer(header: str) -> str | None:
    """The rule in words: the scheme is what comes before the first space, ``bearer`` in
    any case; the token is the rest, stripped, one word."""
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or len(token.split(maxsplit=1)) != 1:
        return None
    return token


@pytest.mark.parametrize(
    "header",
    ["Bearer x", "bearer x", "BEARER x", "bEaReR x", "Bearer  x ", "Bearer x\t", "Bearer\tx",
     "Bearer x y", "Bearer \xa0x\xa0", "Bearer x\u2003y", "Bearer \u200bx", "Bearerx",
     " Bearer x", "Bearer", "Bearer ", "Bearer \t ", "Basic x", "Bearer\xa0x", "\uff22earer x",
     "Bearer x\x85", "Bearer x\x1f", "Bearer a.b-c_d~e+f/g=", "Bearer x\x00"],
)  # fmt: skip
def test_the_bearer_token_is_read_as_the_rule_says(header: str) -> None:
    request = make_mocked_request("GET", "/", headers={"Authorization": header})
    expected = _split_bearer(header)
    if expected is None:
        with pytest.raises(errors.Unauthorized):
            credential(request)
    else:
        assert credential(request) == (expected, False)


def test_session_cookie() -> None:
    request = make_mocked_request("GET", "/", headers={"Cookie": "R_SESS=token-1"})
    assert credential(request) == ("token-1", True)


def test_header_wins_over_cookie() -> None:
    request = make_mocked_request(
        "GET", "/", headers={"Authorization": "Bearer a", "Cookie": "R_SESS=b"}
    )
    assert credential(request) == ("a", False)


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Basic dXNlcjpwYXNz"}, {"Authorization": "Bearer "},
     {"Authorization": "Bearer a b"}, {"Cookie": "R_SESS="}],
)  # fmt: skip
def test_no_usable_credential_is_401(headers: dict[str, str]) -> None:
    with pytest.raises(errors.Unauthorized):
        credential(make_mocked_request("GET", "/", headers=headers))


def test_csrf_needs_header_equal_to_cookie() -> None:
    ok = make_mocked_request("PUT", "/", headers={"Cookie": "CSRF=x1", "X-API-CSRF": "x1"})
    check_csrf(ok)
    for headers in (
        {"Cookie": "CSRF=x1"},
        {"Cookie": "CSRF=x1", "X-API-CSRF": "x2"},
        {"X-API-CSRF": "x1"},
        {"Cookie": "CSRF=", "X-API-CSRF": ""},
    ):
        with pytest.raises(errors.Forbidden):
            check_csrf(make_mocked_request("PUT", "/", headers=headers))


def test_origin_same_host_or_allowed() -> None:
    same = make_mocked_request(
        "GET", "/", headers={"Host": "bff.local", "Origin": "https://bff.local"}
    )
    check_origin(same, [])
    allowed = make_mocked_request(
        "GET", "/", headers={"Host": "bff.local", "Origin": "https://rancher.example.com"}
    )
    check_origin(allowed, ["https://rancher.example.com"])
    with pytest.raises(errors.Forbidden):
        check_origin(allowed, [])


class _Peer:
    """The smallest transport that can say who the peer is."""

    def get_extra_info(self, name: str, default: object = None) -> object:
        return ("127.0.0.1", 40000) if name == "peername" else default


def test_forwarded_for_only_from_trusted_proxies() -> None:
    request = make_mocked_request(
        "GET", "/", headers={"X-Forwarded-For": "203.0.113.9, 10.0.0.1"}, transport=_Peer()
    )
    assert client_address(request, []) == "127.0.0.1"
    assert client_address(request, ["10.0.0.0/8"]) == "127.0.0.1"
    assert client_address(request, ["127.0.0.0/8"]) == "203.0.113.9"


def test_review_cache_expires_after_ttl() -> None:
    now = [100.0]
    cache = ReviewCache(10.0, clock=lambda: now[0])
    user = ImpersonatedCaller("alice", groups=("devs",))
    cache.put("tok", user)
    assert cache.get("tok") == user
    now[0] += 9.99
    assert cache.get("tok") == user
    now[0] += 0.02
    assert cache.get("tok") is None


def test_review_cache_is_bounded() -> None:
    cache = ReviewCache(10.0, max_entries=2)
    for token in ("a", "b", "c"):
        cache.put(token, ImpersonatedCaller(token))
    assert cache.get("a") is None
    assert cache.get("c") == ImpersonatedCaller("c")


def test_a_token_never_shows_in_repr() -> None:
    assert "s3cret" not in repr(TokenCaller("s3cret"))


def test_a_reviewed_token_expires_on_the_cache_clock() -> None:
    now = [100.0]
    cache = ReviewCache(0.3, clock=lambda: now[0])
    user = ImpersonatedCaller(username="alice")
    cache.put("t", user)
    assert cache.get("t") == user
    now[0] = 100.29
    assert cache.get("t") == user
    now[0] = 100.3
    assert cache.get("t") is None, "gone once the ttl has passed"
    assert cache.get("other") is None


class CountingReviewer:
    """Stands in for the TokenReview: ``good`` is alice, anything else unknown."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    async def review(self, token: str) -> ImpersonatedCaller | None:
        self.asked.append(token)
        return ImpersonatedCaller("alice") if token == "good" else None


async def test_caller_now_answers_only_what_needs_no_review_and_checks_as_caller_does() -> None:
    """Without a coroutine: the passthrough caller, or a kept review (a hit); None when a
    TokenReview is needed, and the same refusals as :meth:`Authenticator.caller`."""
    reviewer, results = CountingReviewer(), list[str]()
    auth = Authenticator(AuthMode.IMPERSONATE, reviewer=reviewer, on_review=results.append)
    good = make_mocked_request("GET", "/", headers={"Authorization": "Bearer good"})
    assert auth.caller_now(good) is None
    assert reviewer.asked == []
    assert await auth.caller(good) == ImpersonatedCaller("alice")
    assert auth.caller_now(good) == ImpersonatedCaller("alice")
    assert reviewer.asked == ["good"]
    assert results == ["accepted", "hit"]
    bad = make_mocked_request("GET", "/", headers={"Authorization": "Bearer bad"})
    assert auth.caller_now(bad) is None
    with pytest.raises(errors.Unauthorized):
        await auth.caller(bad)
    assert auth.caller_now(bad) is None  # a rejection is never kept
    unsigned = make_mocked_request("GET", "/")
    twice = make_mocked_request(
        "GET", "/", headers=CIMultiDict([("Authorization", "Bearer good")] * 2)
    )
    for request, refusal in ((unsigned, errors.Unauthorized), (twice, errors.BadRequest)):
        with pytest.raises(refusal):
            auth.caller_now(request)
        with pytest.raises(refusal):
            await auth.caller(request)
    assert reviewer.asked == ["good", "bad"]
    passthrough = Authenticator(AuthMode.PASSTHROUGH)
    assert passthrough.caller_now(good) == TokenCaller("good")
