"""Requests aiohttp's HTTP parser refuses: a JSON 400, never an echo, never a secret logged.

Each case is a repro from an adversarial pass: before the BFF had its own
request handler, aiohttp wrote the offending bytes (tokens, session cookies)
to the ``aiohttp.server`` ERROR log, echoed them in a ``text/plain`` 400 body
without the security headers, and the access logger crashed on each one.
"""

from __future__ import annotations

import json

import pytest

from tests.reliability.conftest import Served
from tests.reliability.rawhttp import RawResponse, request

SECRET = b"s3cr3t-token-value"

CASES = {
    # An oversized header with a bearer token: over aiohttp's 8190-byte field limit.
    "oversized-authorization": b"GET /healthz HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
    + SECRET
    + b"A" * 9000
    + b"\r\n\r\n",
    # A browser with many cookies: a Cookie header over 8190 bytes holding R_SESS.
    "oversized-cookie": b"GET /healthz HTTP/1.1\r\nHost: x\r\nCookie: a=b; R_SESS="
    + SECRET
    + b"; "
    + b"c=" * 4200
    + b"\r\n\r\n",
    "bare-lf": b"GET /healthz HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
    + SECRET
    + b"\nX-Other: y\r\n\r\n",
    "bare-cr": b"GET /healthz HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
    + SECRET
    + b"\rmore\r\n\r\n",
    "nul": b"GET /healthz HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
    + SECRET
    + b"\x00x\r\n\r\n",
    "pipelined-after-close": b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    b"GET /api/v1.0.5/upgrades HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
    + SECRET
    + b"\r\n\r\n",
    "unknown-method": b"FOO / HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + SECRET + b"\r\n\r\n",
    "garbage-request-line": b"\x16\x03\x01\x02\x00\x01" + SECRET + b"\r\n\r\n",
    "bad-chunk-size": b"PUT /api/v1.0.5/upgrades/harvester-system/x HTTP/1.1\r\nHost: x\r\n"
    b"Authorization: Bearer " + SECRET + b"\r\nTransfer-Encoding: chunked\r\n"
    b"Content-Type: application/json\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
    "content-length-and-chunked": b"POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
    b"Transfer-Encoding: chunked\r\nCookie: R_SESS=" + SECRET + b"\r\n\r\n0\r\n\r\n",
}


def assert_project_400(response: RawResponse) -> None:
    assert response.status == 400
    assert response.headers["content-type"].startswith("application/json")
    body = json.loads(response.body)
    assert body == {
        "type": "error",
        "status": 400,
        "code": "MalformedRequest",
        "message": "the request is not well-formed HTTP/1.1",
    }
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["content-security-policy"] == "frame-ancestors 'none'"
    assert response.headers["x-request-id"]


@pytest.mark.parametrize("name", list(CASES))
async def test_parser_rejection_is_a_json_400_with_nothing_echoed_or_logged(
    served: Served, name: str
) -> None:
    responses = await request(served.host, served.port, CASES[name])
    assert len(responses) == 1, responses
    assert_project_400(responses[0])
    assert SECRET not in responses[0].body
    logged = served.logs.text
    assert SECRET.decode() not in logged
    assert "Traceback" not in logged
    assert not [r for r in served.logs.records if r.levelname in ("ERROR", "CRITICAL")]
    # One access line, with no route the parser never reached and no crash.
    access = [r for r in served.logs.records if r.name == "bff.access"]
    assert [r.getMessage() for r in access] == ["- malformed 400"]
    assert access[0].__dict__["request_id"] == responses[0].headers["x-request-id"]
    assert served.upgrade_writes() == []
