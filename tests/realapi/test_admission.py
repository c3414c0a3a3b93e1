"""The harness's admission chain: kube-apiserver calls a loopback HTTPS webhook.

A MutatingWebhookConfiguration with a ``url`` clientConfig and the harness CA
as ``caBundle`` (:meth:`RealApiServer.apply`), a hook serving a certificate
from :meth:`RealApiServer.issue_certificate`: the server calls it on an
Upgrade UPDATE, applies its JSONPatch and relays its warning; ``reset()``
removes the configuration again.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import ssl
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from tests.support.real_apiserver import RealApiServer, unavailable_reason

pytestmark = pytest.mark.real_apiserver

if (_why := unavailable_reason()) and os.environ.get("BFF_REQUIRE_REAL_APISERVER") != "1":
    pytest.skip(f"real API server unavailable: {_why}", allow_module_level=True)

SUCCEEDED = "hvst-upgrade-7xn6v"
MERGE = "application/merge-patch+json"
HOOK = "harness-test-hook.harvesterhci.io"


def configuration(url: str, ca_bundle: str) -> dict[str, Any]:
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": "harness-test-hook"},
        "webhooks": [
            {
                "name": HOOK,
                "clientConfig": {"url": url, "caBundle": ca_bundle},
                "rules": [
                    {
                        "apiGroups": ["harvesterhci.io"],
                        "apiVersions": ["v1beta1"],
                        "operations": ["UPDATE"],
                        "resources": ["upgrades"],
                        "scope": "Namespaced",
                    }
                ],
                "admissionReviewVersions": ["v1"],
                "sideEffects": "None",
                "failurePolicy": "Fail",
                "timeoutSeconds": 5,
            }
        ],
    }


async def test_a_mutating_webhook_on_loopback_https_is_called(
    real_apiserver: RealApiServer, tmp_path: Path
) -> None:
    server = real_apiserver
    reviews: list[dict[str, Any]] = []

    async def mutate(request: web.Request) -> web.Response:
        review = await request.json()
        reviews.append(review["request"])
        patch = [{"op": "add", "path": "/metadata/annotations", "value": {"hooked": "yes"}}]
        answer = {"apiVersion": review["apiVersion"], "kind": review["kind"]}
        answer["response"] = {
            "uid": review["request"]["uid"],
            "allowed": True,
            "patchType": "JSONPatch",
            "patch": base64.b64encode(json.dumps(patch).encode()).decode(),
            "warnings": ["the test hook was here"],
        }
        return web.json_response(answer)

    cert, key = server.issue_certificate(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(cert), str(key))
    app = web.Application()
    app.router.add_post("/mutate", mutate)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        server.apply(configuration(f"https://127.0.0.1:{port}/mutate", server.ca_bundle))
        path = server.upgrades_path(SUCCEEDED)
        # The configuration takes effect once the server's informer has it.
        for attempt in range(100):  # bounded: 100 x 0.05 s
            patch = {"metadata": {"labels": {"attempt": str(attempt)}}}
            r = await asyncio.to_thread(server.request, "PATCH", path, patch, content_type=MERGE)
            assert r.status == 200, r.body
            if reviews:
                break
            await asyncio.sleep(0.05)
        assert reviews, "the webhook was never called"
        assert r.body["metadata"]["annotations"] == {"hooked": "yes"}
        assert r.headers["Warning"] == '299 - "the test hook was here"'
        request = reviews[-1]
        assert request["operation"] == "UPDATE"
        assert request["userInfo"]["username"] == "harness-admin"
        assert request["oldObject"]["metadata"]["name"] == SUCCEEDED
    finally:
        await asyncio.to_thread(server.reset)
        await runner.cleanup()
    listed = server.request(
        "GET", "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations"
    )
    assert listed.body["items"] == [], "reset() removes webhook configurations"
