"""bff.kube.webhook_certs against a loopback stand-in for the API server that answers
what a race between replicas looks like, which the real API server only shows by
chance: a create answered 409 (another replica created the Secret first), an update
answered 409 (another replica renewed it first), a caBundle patch whose resourceVersion
test fails (someone edited the configuration meanwhile). Also: an unreadable Secret is
replaced wholesale, and the patch sets only the caBundles that differ.

The stand-in is an aiohttp server reached through the real certificate client
(bff.kube.transport.certificate_client), so every request also passes the allowlist.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from kubernetes_asyncio import client as k8s

from bff.admission import certificates as certs
from bff.kube import transport
from bff.kube.webhook_certs import CertificateKeeper, CertificateOptions, WebhookCertificateError
from tests.admission.test_certificates import rsa_ca

NS, NAME, HOOKS = "harvester-system", "bff-webhook-tls", "bff-hooks"
SECRET = f"/api/v1/namespaces/{NS}/secrets/{NAME}"
SECRETS = f"/api/v1/namespaces/{NS}/secrets"
MWC = f"/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/{HOOKS}"
OPTIONS = CertificateOptions(NS, NAME, NS, "bff", HOOKS, check_interval=60)


def secret_of(bundle: certs.Bundle, version: str = "5") -> dict[str, Any]:
    data = {"ca.crt": bundle.ca_cert, "ca.key": bundle.ca_key, "tls.crt": bundle.cert,
            "tls.key": bundle.key}  # fmt: skip
    return {
        "apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
        "metadata": {"name": NAME, "namespace": NS, "resourceVersion": version},
        "data": {k: base64.b64encode(v).decode() for k, v in data.items()},
    }  # fmt: skip


def configuration(bundles: list[str], version: str = "9") -> dict[str, Any]:
    return {
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": HOOKS, "resourceVersion": version},
        "webhooks": [
            {"name": f"w{i}.example.com", "admissionReviewVersions": ["v1"],
             "sideEffects": "None", "clientConfig": {"url": "https://x", "caBundle": b}}
            for i, b in enumerate(bundles)
        ],
    }  # fmt: skip


@dataclass
class StandIn:
    """Answers each (method, path) from a queue of (status, body); records what arrived."""

    answers: dict[tuple[str, str], list[tuple[int, Any]]]
    seen: list[tuple[str, str, Any]] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        text = await request.text()
        body = json.loads(text) if text else None
        self.seen.append((request.method, request.path, body))
        queue = self.answers.get((request.method, request.path)) or [(500, {})]
        status, answer = queue.pop(0) if len(queue) > 1 else queue[0]
        if callable(answer):
            answer = answer(body)
        return web.json_response(answer, status=status)


def status(code: int, reason: str) -> dict[str, Any]:
    return {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": code,
            "reason": reason, "message": reason}  # fmt: skip


@contextlib.asynccontextmanager
async def keeping(
    aiohttp_server: Callable[..., Any], stand_in: StandIn, tmp_path: Path
) -> AsyncIterator[CertificateKeeper]:
    """A keeper whose certificate client talks to ``stand_in``; the client closed after."""
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", stand_in.handle)
    server: TestServer = await aiohttp_server(app)
    config = k8s.Configuration(host=str(server.make_url("")).rstrip("/"))
    api = await transport.certificate_client(config, NS, NAME, HOOKS)
    try:
        yield CertificateKeeper(api, OPTIONS, tmp_path)
    finally:
        await api.close()


def _mode(path: str) -> int:
    return Path(path).stat().st_mode & 0o777


def _served(keeper: CertificateKeeper) -> tuple[bytes, bytes]:
    return Path(keeper.cert_file).read_bytes(), Path(keeper.key_file).read_bytes()


async def test_a_create_that_loses_the_race_serves_the_winners_secret(
    aiohttp_server: Callable[..., Any], tmp_path: Path
) -> None:
    winner = certs.new_bundle(OPTIONS.names)
    stand_in = StandIn({
        ("GET", SECRET): [(404, status(404, "NotFound")), (200, secret_of(winner))],
        ("POST", SECRETS): [(409, status(409, "AlreadyExists"))],
    })  # fmt: skip
    async with keeping(aiohttp_server, stand_in, tmp_path) as keeper:
        await keeper.sync_secret()
    assert [(m, p) for m, p, _ in stand_in.seen] == [
        ("GET", SECRET), ("POST", SECRETS), ("GET", SECRET),
    ]  # fmt: skip
    assert _served(keeper) == (winner.cert, winner.key)
    assert _mode(keeper.key_file) == 0o600


async def test_a_renewal_that_loses_the_race_serves_the_other_replicas_renewal(
    aiohttp_server: Callable[..., Any], tmp_path: Path
) -> None:
    near = certs.new_bundle(OPTIONS.names, serving_days=10)
    theirs = certs.renewed(near.ca_cert, near.ca_key, OPTIONS.names)
    stand_in = StandIn({
        ("GET", SECRET): [(200, secret_of(near, "5")), (200, secret_of(theirs, "6"))],
        ("PUT", SECRET): [(409, status(409, "Conflict"))],
    })  # fmt: skip
    async with keeping(aiohttp_server, stand_in, tmp_path) as keeper:
        await keeper.sync_secret()
    (_, _, put), *_ = [s for s in stand_in.seen if s[0] == "PUT"]
    assert put["metadata"]["resourceVersion"] == "5"  # the update was conditional
    assert base64.b64decode(put["data"]["ca.crt"]) == near.ca_cert  # renewed from the same CA
    assert base64.b64decode(put["data"]["tls.crt"]) != near.cert
    assert [m for m, _, _ in stand_in.seen] == ["GET", "PUT", "GET"]
    assert _served(keeper) == (theirs.cert, theirs.key)


async def test_an_unreadable_secret_is_replaced_wholesale(
    aiohttp_server: Callable[..., Any], tmp_path: Path
) -> None:
    broken = secret_of(certs.new_bundle(OPTIONS.names))
    broken["data"]["ca.key"] = base64.b64encode(b"not a key").decode()

    def echo(body: Any) -> Any:
        return {**body, "metadata": {**body["metadata"], "resourceVersion": "6"}}

    stand_in = StandIn({("GET", SECRET): [(200, broken)], ("PUT", SECRET): [(200, echo)]})
    async with keeping(aiohttp_server, stand_in, tmp_path) as keeper:
        await keeper.sync_secret()
    (_, _, put), *_ = [s for s in stand_in.seen if s[0] == "PUT"]
    sent = {k: base64.b64decode(v) for k, v in put["data"].items()}
    assert sent["ca.crt"] != base64.b64decode(broken["data"]["ca.crt"])  # a new CA
    assert certs.judge(certs.Bundle(sent["ca.crt"], sent["ca.key"], sent["tls.crt"],
                                    sent["tls.key"]), OPTIONS.names).action == "keep"  # fmt: skip
    assert _served(keeper) == (sent["tls.crt"], sent["tls.key"])


async def test_the_patch_sets_only_differing_ca_bundles_and_retries_a_failed_test(
    aiohttp_server: Callable[..., Any], tmp_path: Path
) -> None:
    bundle = certs.new_bundle(OPTIONS.names)
    want = base64.b64encode(bundle.ca_cert).decode()
    stand_in = StandIn({
        ("GET", SECRET): [(200, secret_of(bundle))],
        ("GET", MWC): [(200, configuration([want, "b2xk", ""], "9")),
                       (200, configuration([want, "b2xk", "b3RoZXI="], "10"))],
        # The resourceVersion test failed: someone edited the configuration meanwhile.
        ("PATCH", MWC): [(422, status(422, "Invalid")), (200, configuration([want] * 3))],
    })  # fmt: skip
    async with keeping(aiohttp_server, stand_in, tmp_path) as keeper:
        await keeper.sync()
    patches = [body for method, _, body in stand_in.seen if method == "PATCH"]
    test = {"op": "test", "path": "/metadata/resourceVersion"}
    assert patches == [
        [{**test, "value": "9"},
         {"op": "add", "path": "/webhooks/1/clientConfig/caBundle", "value": want},
         {"op": "add", "path": "/webhooks/2/clientConfig/caBundle", "value": want}],
        [{**test, "value": "10"},
         {"op": "add", "path": "/webhooks/1/clientConfig/caBundle", "value": want},
         {"op": "add", "path": "/webhooks/2/clientConfig/caBundle", "value": want}],
    ]  # fmt: skip


async def test_nothing_is_written_when_all_is_in_step(
    aiohttp_server: Callable[..., Any], tmp_path: Path
) -> None:
    bundle = certs.new_bundle(OPTIONS.names)
    want = base64.b64encode(bundle.ca_cert).decode()
    stand_in = StandIn({
        ("GET", SECRET): [(200, secret_of(bundle))],
        ("GET", MWC): [(200, configuration([want, want]))],
    })  # fmt: skip
    async with keeping(aiohttp_server, stand_in, tmp_path) as keeper:
        await keeper.sync()
        await keeper.sync()
    assert [m for m, _, _ in stand_in.seen] == ["GET", "GET", "GET", "GET"]
    assert _served(keeper) == (bundle.cert, bundle.key)


async def test_a_secret_with_a_ca_of_another_key_type_is_replaced(
    aiohttp_server: Callable[..., Any], tmp_path: Path
) -> None:
    # The serving pair is signed with ECDSA; an RSA CA would make the renewal raise.
    ca_cert, ca_key = rsa_ca()
    theirs = replace(certs.new_bundle(OPTIONS.names), ca_cert=ca_cert, ca_key=ca_key)
    assert certs.judge(theirs, OPTIONS.names).action == "replace"
    stand_in = StandIn({
        ("GET", SECRET): [(200, secret_of(theirs))],
        ("PUT", SECRET): [(200, lambda body: body)],
        ("GET", MWC): [(200, configuration([""]))],
        ("PATCH", MWC): [(200, configuration([]))],
    })  # fmt: skip
    async with keeping(aiohttp_server, stand_in, tmp_path) as keeper:
        await keeper.sync()
    assert keeper.bundle is not None
    assert keeper.bundle.ca_cert != ca_cert


async def test_an_unreachable_api_server_is_one_certificate_error(tmp_path: Path) -> None:
    # Nothing listens on the discard port of loopback: the connection is refused.
    config = k8s.Configuration(host="http://127.0.0.1:9")
    api = await transport.certificate_client(config, NS, NAME, HOOKS)
    keeper = CertificateKeeper(api, OPTIONS, tmp_path)
    keeper.bundle = certs.new_bundle(OPTIONS.names)
    try:
        with pytest.raises(WebhookCertificateError, match="cannot get MutatingWebhookConfig"):
            await keeper.sync_ca_bundle()
        with pytest.raises(WebhookCertificateError, match="cannot get Secret"):
            await keeper.sync_secret()
    finally:
        await api.close()


async def test_keeping_survives_a_check_that_fails_unexpectedly(
    aiohttp_server: Callable[..., Any], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    bundle = certs.new_bundle(OPTIONS.names)
    want = base64.b64encode(bundle.ca_cert).decode()
    stand_in = StandIn({
        ("GET", SECRET): [(200, secret_of(bundle))],
        # A configuration the client cannot read into its model, then a good one.
        ("GET", MWC): [(200, {"kind": "MutatingWebhookConfiguration", "webhooks": "x"}),
                       (200, configuration([want]))],
    })  # fmt: skip
    async with keeping(aiohttp_server, stand_in, tmp_path) as keeper:
        keeper.options = replace(OPTIONS, check_interval=0.01)
        task = asyncio.create_task(keeper.keep())
        try:
            async with asyncio.timeout(10):
                while [m for m, p, _ in stand_in.seen if p == MWC].count("GET") < 2:  # noqa: ASYNC110
                    await asyncio.sleep(0.01)
            assert not task.done()
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    assert "the check failed" in caplog.text
