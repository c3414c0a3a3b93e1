"""The sandbox's admission chain (bff.sandbox.admission) against the real webhook over HTTPS.

Covers what the emulator does with the MutatingWebhookConfiguration it holds:
rules, namespaceSelector and matchConditions decide whether the webhook is
called; a mutating answer's JSONPatch is applied and its warnings relayed; a
denial refuses the write with the webhook's message; an unreachable, slow or
nonsensical webhook fails the write under failurePolicy Fail and is skipped
under Ignore; a dry run to a webhook with side effects is refused; and the
configuration is the one the chart renders (checked in
tests/test_deploy.py).
"""

from __future__ import annotations

import asyncio
import copy
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from bff.admission.guard import TrustedWriters
from bff.admission.webhook import Guard, serving
from bff.sandbox.admission import WebhookAdmission, guard_configuration
from bff.sandbox.status import StatusError
from bff.sandbox.users import TOKENS, UserInfo
from tests.admission.reviews import decoded, fixture, succeeded
from tests.support.certs import ServerCertificate, make_server_certificate

ADMIN = TOKENS["sandbox-admin"]
CONTROLLER = TOKENS["sandbox-controller"]


@dataclass(frozen=True)
class Write:
    operation: str = "UPDATE"
    namespace: str = "harvester-system"
    name: str = "hvst-upgrade-7xn6v"
    user: UserInfo = ADMIN
    dry_run: bool = False


@pytest.fixture
def certificate(tmp_path: Path) -> ServerCertificate:
    return make_server_certificate(tmp_path / "pki")


@pytest.fixture
async def webhook_url(certificate: ServerCertificate) -> AsyncIterator[str]:
    async with serving(
        Guard(TrustedWriters()),
        host="127.0.0.1",
        port=0,
        cert=str(certificate.cert_file),
        key=str(certificate.key_file),
    ) as url:
        yield url


@pytest.fixture
async def chain_for() -> AsyncIterator[Callable[..., WebhookAdmission]]:
    made: list[WebhookAdmission] = []

    def make(*configurations: dict[str, Any]) -> WebhookAdmission:
        chain = WebhookAdmission(configurations)
        made.append(chain)
        return chain

    yield make
    for chain in made:
        await chain.close()


def v104() -> dict[str, Any]:
    return decoded(fixture("clients/v1.0.4-dismiss-put-body.json"))


async def test_v104_body_is_repaired_with_warnings(
    webhook_url: str, certificate: ServerCertificate, chain_for: Callable[..., WebhookAdmission]
) -> None:
    chain = chain_for(guard_configuration(webhook_url, certificate.ca_pem))
    live = succeeded()
    obj, warnings = await chain.mutate(Write(), v104(), live)
    assert obj["status"] == live["status"]
    assert obj["metadata"]["finalizers"] == live["metadata"]["finalizers"]
    assert obj["metadata"]["labels"]["harvesterhci.io/read-message"] == "true"
    assert len(warnings) == 2
    assert warnings[0].startswith("harvester-upgrade-bff: Upgrade harvester-system/")
    assert await chain.validate(Write(), obj, live) == []


async def test_unchanged_write_passes_without_warnings(
    webhook_url: str, certificate: ServerCertificate, chain_for: Callable[..., WebhookAdmission]
) -> None:
    chain = chain_for(guard_configuration(webhook_url, certificate.ca_pem))
    body = decoded(fixture("clients/v1.0.5-dismiss-put-body.json"))
    obj, warnings = await chain.mutate(Write(), copy.deepcopy(body), succeeded())
    assert (obj, warnings) == (body, [])


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


async def test_fail_policy_refuses_when_down_but_not_the_controller(
    certificate: ServerCertificate, chain_for: Callable[..., WebhookAdmission]
) -> None:
    url = f"https://127.0.0.1:{_closed_port()}"
    chain = chain_for(guard_configuration(url, certificate.ca_pem))
    live = succeeded()
    with pytest.raises(StatusError) as caught:
        await chain.mutate(Write(), v104(), live)
    assert caught.value.code == 500
    message = caught.value.status["message"]
    assert message.startswith(
        'Internal error occurred: failed calling webhook "guard.harvester-upgrade-bff.'
    )
    assert "?timeout=5s" in message
    # The controller is left out by the matchConditions: never sent to the webhook.
    rewrite = dict(live, status={"conditions": []})
    obj, warnings = await chain.mutate(Write(user=CONTROLLER), copy.deepcopy(rewrite), live)
    assert (obj, warnings) == (rewrite, [])


async def test_ignore_policy_lets_the_write_through_when_down(
    certificate: ServerCertificate, chain_for: Callable[..., WebhookAdmission]
) -> None:
    url = f"https://127.0.0.1:{_closed_port()}"
    chain = chain_for(guard_configuration(url, certificate.ca_pem, failure_policy="Ignore"))
    obj, _ = await chain.mutate(Write(), v104(), succeeded())
    assert "status" not in obj


async def test_every_namespace_and_creates_are_sent_but_not_deletes(
    certificate: ServerCertificate, chain_for: Callable[..., WebhookAdmission]
) -> None:
    # Nothing listens: any call fails the write.
    chain = chain_for(
        guard_configuration(f"https://127.0.0.1:{_closed_port()}", certificate.ca_pem)
    )
    live = succeeded()
    for write, old in [(Write(namespace="default"), live), (Write(operation="CREATE"), None)]:
        with pytest.raises(StatusError) as caught:
            await chain.mutate(write, v104(), old)
        assert caught.value.code == 500
    obj, _ = await chain.mutate(Write(operation="DELETE"), v104(), live)
    assert "status" not in obj


async def test_validate_path_denies_with_the_webhooks_message(
    webhook_url: str, certificate: ServerCertificate, chain_for: Callable[..., WebhookAdmission]
) -> None:
    configuration = guard_configuration(webhook_url, certificate.ca_pem)
    hook = configuration["webhooks"][0]
    hook["clientConfig"]["url"] = hook["clientConfig"]["url"].replace("/mutate", "/validate")
    chain = chain_for(configuration)
    with pytest.raises(StatusError) as caught:
        await chain.mutate(Write(), v104(), succeeded())
    assert caught.value.code == 403
    message = caught.value.status["message"]
    assert message.startswith(
        'admission webhook "guard.harvester-upgrade-bff.harvesterhci.io" denied the request: '
        "harvester-upgrade-bff: refused a write to Upgrade harvester-system/hvst-upgrade-7xn6v"
    )


async def _tls_app(
    certificate: ServerCertificate, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> tuple[web.AppRunner, str]:
    app = web.Application()
    app.router.add_post("/admission/guard/mutate", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certificate.cert_file, certificate.key_file)
    await web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context).start()
    return runner, f"https://127.0.0.1:{runner.addresses[0][1]}"


@pytest.mark.parametrize(
    ("answer", "why"),
    [
        ("slow", "context deadline exceeded"),
        ("500", "the server responded with status 500"),
        ("wrong-uid", "expected response.uid="),
        ("no-response", "response is missing"),
        ("bad-patch", "the server rejected the JSON patch"),
    ],
)
async def test_unusable_answers_fail_the_write(
    certificate: ServerCertificate,
    chain_for: Callable[..., WebhookAdmission],
    answer: str,
    why: str,
) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        review = await request.json()
        uid = review["request"]["uid"]
        if answer == "slow":
            await asyncio.sleep(5)
        if answer == "500":
            return web.Response(status=500, text="boom")
        if answer == "no-response":
            return web.json_response({"apiVersion": "admission.k8s.io/v1"})
        body: dict[str, Any] = {"uid": "other" if answer == "wrong-uid" else uid, "allowed": True}
        if answer == "bad-patch":
            body |= {"patchType": "JSONPatch", "patch": "bm90IGpzb24="}
        return web.json_response({"response": body})

    runner, url = await _tls_app(certificate, handler)
    try:
        configuration = guard_configuration(url, certificate.ca_pem, timeout_seconds=1)
        chain = chain_for(configuration)
        with pytest.raises(StatusError) as caught:
            await chain.mutate(Write(), v104(), succeeded())
        assert caught.value.code == 500
        assert why in caught.value.status["message"]
    finally:
        await runner.cleanup()


async def test_dry_run_to_a_webhook_with_side_effects_is_refused(
    webhook_url: str, certificate: ServerCertificate, chain_for: Callable[..., WebhookAdmission]
) -> None:
    configuration = guard_configuration(webhook_url, certificate.ca_pem)
    configuration["webhooks"][0]["sideEffects"] = "Unknown"
    chain = chain_for(configuration)
    with pytest.raises(StatusError) as caught:
        await chain.mutate(Write(dry_run=True), v104(), succeeded())
    assert caught.value.code == 400
    assert "does not support dry run" in caught.value.status["message"]
    # With sideEffects None (the guard's), a dry run gets the same repair.
    chain = chain_for(guard_configuration(webhook_url, certificate.ca_pem))
    obj, warnings = await chain.mutate(Write(dry_run=True), v104(), succeeded())
    assert obj["status"] == succeeded()["status"]
    assert len(warnings) == 2


def test_configurations_the_sandbox_cannot_call_are_refused(certificate: ServerCertificate) -> None:
    configuration = guard_configuration("https://127.0.0.1:1", certificate.ca_pem)
    hook = configuration["webhooks"][0]
    hook["clientConfig"] = {"service": {"name": "x", "namespace": "y"}}
    with pytest.raises(ValueError, match=r"only clientConfig\.url"):
        WebhookAdmission([configuration])
    configuration = guard_configuration("https://127.0.0.1:1", certificate.ca_pem)
    configuration["webhooks"][0]["matchConditions"][0]["expression"] = "request.("
    with pytest.raises(ValueError, match="matchConditions"):
        WebhookAdmission([configuration])
