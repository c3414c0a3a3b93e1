"""No input gets a 500: each repro from the adversarial pass, answered 4xx, audited, unwritten."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest

from bff import captured
from bff.identities import AuthMode
from bff.sandbox.emulator import Fault
from tests.reliability.conftest import Served, ServeFactory
from tests.support.backends import FAILED, IN_PROGRESS, NAMESPACE, SUCCEEDED

ADMIN = {"Authorization": "Bearer sandbox-admin"}
PUT_ROUTES = (
    "/api/v1.0.4/upgrades/{ns}/{name}",
    "/api/v1.0.5/upgrades/{ns}/{name}",
    "/v1/harvester/harvesterhci.io.upgrades/{ns}/{name}",
    "/k8s/clusters/local/v1/harvester/harvesterhci.io.upgrades/{ns}/{name}",
)


def put_body() -> dict[str, Any]:
    return captured.client_body("v1.0.5")


async def call(
    served: Served,
    method: str,
    path: str,
    *,
    data: bytes | None = None,
    headers: Any = None,
    content_type: str | None = "application/json",
) -> tuple[int, dict[str, Any]]:
    all_headers: Any = headers if headers is not None else dict(ADMIN)
    if content_type is not None and data is not None and isinstance(all_headers, dict):
        all_headers = {**all_headers, "Content-Type": content_type}
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, served.url + path, data=data, headers=all_headers) as response,
    ):
        body = await response.json(content_type=None)
        return response.status, body


def audit_lines(served: Served) -> list[dict[str, Any]]:
    return [r.__dict__["audit"] for r in served.logs.records if r.name == "bff.audit"]


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


@pytest.mark.parametrize("route", PUT_ROUTES)
async def test_deeply_nested_json_is_a_400_with_an_audit_line(served: Served, route: str) -> None:
    body = nested(1000)
    assert len(body) == 2000
    status, answer = await call(
        served, "PUT", route.format(ns=NAMESPACE, name=SUCCEEDED), data=body
    )
    assert status == 400, answer
    assert answer["code"] == "MalformedJSON"
    assert "nested" in answer["message"]
    [line] = audit_lines(served)
    assert line["result"] == "refused"
    assert line["status"] == 400
    assert served.upgrade_writes() == []


async def test_nesting_within_the_limit_is_still_json(served: Served) -> None:
    """Depth is bounded, not forbidden: a modest nesting parses (and is then judged)."""
    status, answer = await call(
        served, "PUT", f"/api/v1.0.5/upgrades/{NAMESPACE}/{SUCCEEDED}", data=nested(20)
    )
    assert answer.get("code") != "MalformedJSON"
    assert status < 500


async def test_duplicate_keys_are_refused(served: Served) -> None:
    """The first metadata.name names another object: last-wins would dismiss the URL's."""
    body = put_body()
    text = json.dumps(body)
    metadata = json.dumps(body["metadata"])[1:]
    text = text.replace(
        '"metadata": {' + metadata, '"metadata": {"name": "' + FAILED + '", ' + metadata, 1
    )
    assert text.count('"name": ') >= 2
    status, answer = await call(
        served, "PUT", f"/api/v1.0.5/upgrades/{NAMESPACE}/{SUCCEEDED}", data=text.encode()
    )
    assert status == 400, answer
    assert answer["code"] == "DuplicateKey"
    assert "'name'" in answer["message"]
    assert served.upgrade_writes() == []
    assert audit_lines(served)[0]["code"] == "DuplicateKey"


async def test_repeated_action_is_refused(served: Served) -> None:
    status, answer = await call(
        served,
        "POST",
        f"/api/v1.0.5/upgrades/{NAMESPACE}/{IN_PROGRESS}?action=dismiss&action=cancel",
    )
    assert status == 400, answer
    assert answer["code"] == "AmbiguousRequest"
    assert "action" in answer["message"]
    assert served.upgrade_writes() == []
    assert audit_lines(served)[0]["code"] == "AmbiguousRequest"


async def test_repeated_label_selector_is_refused(served: Served) -> None:
    status, answer = await call(
        served, "GET", "/api/v1.0.5/upgrades?labelSelector=a%3Db&labelSelector=c"
    )
    assert status == 400, answer
    assert answer["code"] == "AmbiguousRequest"
    assert "labelSelector" in answer["message"]


async def test_repeated_authorization_is_refused(served: Served) -> None:
    from multidict import CIMultiDict

    headers = CIMultiDict(
        [("Authorization", "Bearer sandbox-viewer"), ("Authorization", "Bearer sandbox-admin")]
    )
    for method, path in (
        ("GET", "/api/v1.0.5/upgrades"),
        ("POST", f"/api/v1.0.5/upgrades/{NAMESPACE}/{SUCCEEDED}?action=dismiss"),
    ):
        status, answer = await call(served, method, path, headers=headers)
        assert status == 400, answer
        assert answer["code"] == "AmbiguousRequest"
        assert "Authorization" in answer["message"]
    assert served.upgrade_writes() == []


@pytest.mark.parametrize("charset", ["latin-1", "utf-16", "ascii"])
async def test_a_charset_other_than_utf8_is_415(served: Served, charset: str) -> None:
    status, answer = await call(
        served,
        "PUT",
        f"/api/v1.0.5/upgrades/{NAMESPACE}/{SUCCEEDED}",
        data=json.dumps(put_body()).encode(),
        content_type=f"application/json; charset={charset}",
    )
    assert status == 415, answer
    assert answer["code"] == "UnsupportedMediaType"
    assert "UTF-8" in answer["message"]
    assert served.upgrade_writes() == []


async def test_utf8_charset_declared_is_accepted(served: Served) -> None:
    path = f"/api/v1.0.5/upgrades/{NAMESPACE}/{SUCCEEDED}"
    _, live = await call(served, "GET", path)
    live["metadata"]["labels"]["harvesterhci.io/read-message"] = "true"
    status, answer = await call(
        served,
        "PUT",
        path,
        data=json.dumps(live).encode(),
        content_type="application/json; charset=UTF-8",
    )
    assert status == 200, answer
    assert len(served.upgrade_writes()) == 1


@pytest.mark.parametrize(
    ("data", "status", "code"),
    [
        (b'{"spec": {"upgradeImage": "x"}}', 400, "UnexpectedBody"),
        (b"x" * 5000, 413, "RequestEntityTooLarge"),
    ],
)
async def test_an_action_with_a_body_is_refused(
    served: Served, data: bytes, status: int, code: str
) -> None:
    got, answer = await call(
        served,
        "POST",
        f"/api/v1.0.5/upgrades/{NAMESPACE}/{SUCCEEDED}?action=dismiss",
        data=data,
    )
    assert (got, answer["code"]) == (status, code)
    assert served.upgrade_writes() == []


@pytest.mark.parametrize("data", [None, b"", b"{}", b"  {} \n", b"null"])
async def test_an_action_with_no_body_or_an_empty_object_is_done(
    served: Served, data: bytes | None
) -> None:
    status, answer = await call(
        served, "POST", f"/api/v1.0.5/upgrades/{NAMESPACE}/{SUCCEEDED}?action=dismiss", data=data
    )
    assert status == 200, answer
    assert len(served.upgrade_writes()) == 1


@pytest.mark.parametrize("bad", ["evil\r\nX-Injected: 1", "evil\nname", "nul\x00name"])
async def test_a_token_review_user_that_cannot_be_a_header_is_refused_not_a_500(
    serve_factory: ServeFactory, bad: str
) -> None:
    served = await serve_factory(auth_mode=AuthMode.IMPERSONATE)
    review = {
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenReview",
        "spec": {"token": "-"},
        "status": {"authenticated": True, "user": {"username": bad, "groups": ["x"]}},
    }
    served.faults.add(Fault("POST", "/tokenreviews", status=201, body=review, times=5))
    status, answer = await call(
        served, "POST", f"/api/v1.0.5/upgrades/{NAMESPACE}/{SUCCEEDED}?action=dismiss"
    )
    assert status == 403, answer
    assert answer["code"] == "UnusableIdentity"
    assert bad not in json.dumps(answer)
    assert [w for w in served.upgrade_writes()] == []
    assert audit_lines(served)[0]["code"] == "UnusableIdentity"
