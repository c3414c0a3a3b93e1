"""The webhook over real HTTPS on loopback: routes, answers, limits, logs, metrics, reload.

Covers: the mutate route's answers to the fixture reviews (v1.0.4 restored,
unchanged and controller writes untouched, dry runs the same but uncounted);
the validate route's denial; malformed reviews and reviews for anything but an
Upgrade answered 400 with a clear message (never 500); 413 over the body limit;
404/405 for other paths and methods; TLS only; log lines that say who, which
object and what was restored, and never the token's credential id; the
``bff_status_restores_total`` counter on the BFF's /metrics; the certificate
reloaded when its files change; and ``serve`` starting the webhook beside the
API (and refusing ``--webhook-port`` without a certificate, with exit 2).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client import generate_latest

from bff.admission import review as rv
from bff.admission.guard import TrustedWriters
from bff.admission.webhook import MAX_REVIEW_BYTES, MUTATE_PATH, VALIDATE_PATH, Guard, serving
from bff.cli import main
from bff.metrics import Metrics
from tests.admission.reviews import (
    CONTROLLER,
    SA_GROUPS,
    admitted,
    decoded,
    fixture,
    succeeded,
    update_review,
)
from tests.support.certs import ServerCertificate, make_server_certificate

UPGRADES = "upgrades.harvesterhci.io"


@dataclass
class Webhook:
    url: str
    certificate: ServerCertificate
    metrics: Metrics
    session: aiohttp.ClientSession

    def context(self, ca_pem: bytes | None = None) -> ssl.SSLContext:
        return ssl.create_default_context(cadata=(ca_pem or self.certificate.ca_pem).decode())

    async def post(self, path: str, body: Any, *, raw: bytes | None = None) -> tuple[int, Any]:
        data = io.BytesIO(raw if raw is not None else json.dumps(body).encode())
        async with self.session.post(
            self.url + path,
            data=data,
            headers={"Content-Type": "application/json"},
            ssl=self.context(),
        ) as response:
            return response.status, await response.json(content_type=None)

    def restores(self, reason: str, resource: str = UPGRADES) -> float:
        value = self.metrics.registry.get_sample_value(
            "bff_status_restores_total", {"resource": resource, "reason": reason}
        )
        return value or 0.0


@pytest.fixture
async def webhook(tmp_path: Path) -> AsyncIterator[Webhook]:
    certificate = make_server_certificate(tmp_path / "pki")
    metrics = Metrics()
    guard = Guard(
        TrustedWriters(),
        on_restore=lambda resource, r: metrics.status_restores.labels(resource, str(r)).inc(),
    )
    async with (
        serving(
            guard,
            host="127.0.0.1",
            port=0,
            cert=str(certificate.cert_file),
            key=str(certificate.key_file),
            check_interval=0.05,
        ) as url,
        aiohttp.ClientSession() as session,
    ):
        yield Webhook(url, certificate, metrics, session)


async def test_v104_body_is_repaired_over_https(webhook: Webhook) -> None:
    live = succeeded()
    review = update_review(live, decoded(fixture("clients/v1.0.4-dismiss-put-body.json")))
    status, answer = await webhook.post(MUTATE_PATH, review)
    assert status == 200
    assert answer["apiVersion"] == "admission.k8s.io/v1"
    assert answer["kind"] == "AdmissionReview"
    stored = admitted(review, answer)
    assert stored["status"] == live["status"]
    assert stored["metadata"]["finalizers"] == live["metadata"]["finalizers"]
    assert len(answer["response"]["warnings"]) == 2
    assert webhook.restores("status_removed") == 1
    assert webhook.restores("finalizers_dropped") == 1
    text = generate_latest(webhook.metrics.registry).decode()
    assert (
        'bff_status_restores_total{reason="status_removed",resource="upgrades.harvesterhci.io"} 1.0'
        in text
    )


async def test_unchanged_and_controller_writes_pass_untouched(webhook: Webhook) -> None:
    live = succeeded()
    same = update_review(live, decoded(fixture("clients/v1.0.5-dismiss-put-body.json")))
    status, answer = await webhook.post(MUTATE_PATH, same)
    assert (status, answer["response"]) == (200, {"uid": same["request"]["uid"], "allowed": True})
    rewrite = dict(live, status={"conditions": []})
    own = update_review(live, rewrite, user=CONTROLLER, groups=SA_GROUPS)
    status, answer = await webhook.post(MUTATE_PATH, own)
    assert (status, answer["response"]) == (200, {"uid": own["request"]["uid"], "allowed": True})
    status, answer = await webhook.post(VALIDATE_PATH, own)
    assert answer["response"]["allowed"] is True
    assert webhook.restores("status_changed") == 0


async def test_dry_run_same_answer_not_counted(webhook: Webhook) -> None:
    live = succeeded()
    body = decoded(fixture("clients/v1.0.4-dismiss-put-body.json"))
    _, dry = await webhook.post(MUTATE_PATH, update_review(live, body, uid="u", dry_run=True))
    assert webhook.restores("status_removed") == 0
    _, real = await webhook.post(MUTATE_PATH, update_review(live, body, uid="u"))
    assert dry == real
    assert webhook.restores("status_removed") == 1


async def test_validate_denies(webhook: Webhook) -> None:
    live = succeeded()
    review = update_review(live, {k: v for k, v in live.items() if k != "status"})
    status, answer = await webhook.post(VALIDATE_PATH, review)
    assert status == 200
    response = answer["response"]
    assert response["uid"] == review["request"]["uid"]
    assert response["allowed"] is False
    assert "patch" not in response
    assert response["status"]["code"] == 403
    assert "would have removed its status" in response["status"]["message"]


def _review_with(**request_changes: Any) -> dict[str, Any]:
    review = update_review(succeeded(), succeeded())
    for key, value in request_changes.items():
        if value is None:
            del review["request"][key]
        else:
            review["request"][key] = value
    return review


def _bad(top: dict[str, Any]) -> dict[str, Any]:
    review = update_review(succeeded(), succeeded())
    review.update(top)
    return review


CONFIGMAPS = {"group": "", "version": "v1", "resource": "configmaps"}
CONFIGMAP = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}}


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"", "the body is not JSON"),
        (b"{not json", "the body is not JSON"),
        (b"\xff\xfe", "the body is not JSON"),
        (b"[]", "the body must be a JSON object, not an array"),
        (
            json.dumps(_bad({"apiVersion": "admission.k8s.io/v1beta1"})).encode(),
            "expected apiVersion admission.k8s.io/v1",
        ),
        (json.dumps(_bad({"kind": "TokenReview"})).encode(), "kind AdmissionReview"),
        (json.dumps(_bad({"request": None})).encode(), "request must be a JSON object"),
        (json.dumps(_review_with(uid=None)).encode(), "request.uid must be a non-empty string"),
        (json.dumps(_review_with(uid="")).encode(), "request.uid must be a non-empty string"),
        (
            json.dumps(_review_with(resource=CONFIGMAPS)).encode(),
            "which the guard table does not hold",
        ),
        (
            json.dumps(
                _review_with(
                    resource={
                        **CONFIGMAPS,
                        "group": "harvesterhci.io",
                        "resource": "upgrades",
                        "version": "v1",
                    }
                )
            ).encode(),
            "upgrades.harvesterhci.io/v1, which the guard table does not hold",
        ),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        (b'{"a":' * 100_000 + b"1" + b"}" * 100_000, "nested too deeply"),
        (json.dumps(_review_with(subResource="status")).encode(), "upgrades/status"),
        (json.dumps(_review_with(operation="PATCH")).encode(), "request.operation must be one of"),
        (
            json.dumps(_review_with(oldObject=None)).encode(),
            "needs both request.object and request.oldObject",
        ),
        (json.dumps(_review_with(object=CONFIGMAP)).encode(), "request.object is v1/ConfigMap"),
        (json.dumps(_review_with(kind=None)).encode(), "request.kind must be a JSON object"),
        (json.dumps(_review_with(object=[1])).encode(), "request.object must be a JSON object"),
        (
            json.dumps(_review_with(userInfo="admin")).encode(),
            "request.userInfo must be a JSON object",
        ),
        (
            json.dumps(_review_with(userInfo={"username": "a", "groups": "g"})).encode(),
            "groups must be an array of strings",
        ),
        (json.dumps(_review_with(dryRun="yes")).encode(), "request.dryRun must be a boolean"),
    ],
)
async def test_malformed_reviews_are_400(webhook: Webhook, raw: bytes, message: str) -> None:
    for path in (MUTATE_PATH, VALIDATE_PATH):
        status, answer = await webhook.post(path, None, raw=raw)
        assert status == 400
        assert message in answer["message"]
    assert webhook.restores("status_removed") == 0


async def test_limits_and_other_routes(webhook: Webhook) -> None:
    status, answer = await webhook.post(MUTATE_PATH, None, raw=b" " * (MAX_REVIEW_BYTES + 1))
    assert status == 413
    assert str(MAX_REVIEW_BYTES) in answer["message"]
    status, _ = await webhook.post("/admission/other", {})
    assert status == 404
    async with webhook.session.get(webhook.url + MUTATE_PATH, ssl=webhook.context()) as r:
        assert r.status == 405
    # TLS only: a plain HTTP request on the port gets no answer.
    plain = webhook.url.replace("https://", "http://")
    with pytest.raises(aiohttp.ClientError):
        async with webhook.session.post(plain + MUTATE_PATH, data=b"{}") as r:
            await r.read()
    # And a client that does not trust the CA refuses the server.
    with pytest.raises(aiohttp.ClientConnectorCertificateError):
        async with webhook.session.post(
            webhook.url + MUTATE_PATH, data=b"{}", ssl=ssl.create_default_context()
        ) as r:
            await r.read()


async def test_restore_is_logged_without_secrets(
    webhook: Webhook, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bff.admission")
    body = decoded(fixture("clients/v1.0.4-dismiss-put-body.json"))
    review = update_review(succeeded(), body, user="jane@example.com", groups=["ops"])
    await webhook.post(MUTATE_PATH, review)
    lines = [
        r for r in caplog.records if r.name == "bff.admission" and "restored" in r.getMessage()
    ]
    assert len(lines) == 1
    record = lines[0]
    message = record.getMessage()
    assert "jane@example.com" in message
    assert "harvester-system/hvst-upgrade-7xn6v" in message
    assert "status (status_removed)" in message
    assert "finalizers (finalizers_dropped)" in message
    assert record.__dict__["review_uid"] == review["request"]["uid"]
    assert record.__dict__["groups"] == "ops"
    everything = " ".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    assert "JTI" not in everything
    assert "secret-jti" not in everything


async def _handshake_ca(url: str) -> bytes:
    """The certificate the server presents now (DER)."""
    host, port = url.removeprefix("https://").rsplit(":", 1)
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    _, writer = await asyncio.open_connection(host, int(port), ssl=context)
    try:
        der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
    finally:
        writer.close()
        await writer.wait_closed()
    assert isinstance(der, bytes)
    return der


def _der(pem: bytes) -> bytes:
    return ssl.PEM_cert_to_DER_cert(pem.decode())


async def test_certificate_is_reloaded_when_the_files_change(
    webhook: Webhook, tmp_path: Path
) -> None:
    before = await _handshake_ca(webhook.url)
    rotated = make_server_certificate(tmp_path / "rotated")
    # Replace the files in place, as a projected Secret's symlink swap ends up.
    webhook.certificate.key_file.write_bytes(rotated.key_file.read_bytes())
    webhook.certificate.cert_file.write_bytes(rotated.cert_file.read_bytes())
    after = before
    for _ in range(200):  # bounded: the watcher looks every 0.05 s
        after = await _handshake_ca(webhook.url)
        if after != before:
            break
        await asyncio.sleep(0.05)
    assert before == _der(webhook.certificate.cert_pem)
    assert after == _der(rotated.cert_pem)
    # A client trusting only the old CA now refuses the server; the new CA works.
    with pytest.raises(aiohttp.ClientConnectorCertificateError):
        await webhook.post(MUTATE_PATH, None, raw=b"{}")
    async with webhook.session.post(
        webhook.url + MUTATE_PATH, data=b"{}", ssl=webhook.context(rotated.ca_pem)
    ) as response:
        assert response.status == 400


def test_webhook_port_without_certificate_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    kubeconfig = Path(__file__).parent / "reviews.py"  # any existing file will do for the flag
    code = main(["serve", "--kubeconfig", str(kubeconfig), "--webhook-port", "9443"])
    assert code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "--webhook-port needs --webhook-tls-cert and --webhook-tls-key" in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--webhook-tls-cert", "X"], "--webhook-tls-cert"),
        (["--trusted-writer", "group:"], "--trusted-writer / BFF_TRUSTED_WRITER"),
        (["--webhook-port", "8080", "--port", "8080"], "must differ from --port"),
        (["--webhook-port", "99999"], "--webhook-port / BFF_WEBHOOK_PORT"),
    ],
)
def test_bad_webhook_flags_are_one_line_and_exit_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    if "X" in argv:
        argv[argv.index("X")] = str(Path(__file__))
    assert main(["serve", *argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert message in err


async def test_half_written_pair_keeps_the_old_certificate(
    webhook: Webhook, tmp_path: Path
) -> None:
    rotated = make_server_certificate(tmp_path / "rotated")
    # Only the certificate changed so far: it does not match the key being served.
    webhook.certificate.cert_file.write_bytes(rotated.cert_file.read_bytes())
    original = _der(webhook.certificate.cert_pem)
    for _ in range(10):
        await asyncio.sleep(0.05)
        assert await _handshake_ca(webhook.url) == original
    webhook.certificate.key_file.write_bytes(rotated.key_file.read_bytes())
    served = original
    for _ in range(200):
        served = await _handshake_ca(webhook.url)
        if served != original:
            break
        await asyncio.sleep(0.05)
    assert served == _der(rotated.cert_pem)


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


async def test_the_bff_serves_the_webhook_on_its_own_port(
    emulator_stack: Any, tmp_path: Path, aiohttp_client: Any
) -> None:
    from dataclasses import replace

    from bff.app import create_app

    certificate = make_server_certificate(tmp_path / "serve")
    logged = _Lines()
    logger = logging.getLogger("bff.admission")
    level = logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(logged)
    settings = replace(
        emulator_stack.settings,
        webhook_port=0,
        webhook_tls_cert=str(certificate.cert_file),
        webhook_tls_key=str(certificate.key_file),
    )
    try:
        client = await aiohttp_client(create_app(settings))
    finally:
        logger.removeHandler(logged)
        logger.setLevel(level)
    # Port 0: the webhook's URL is the one it logs once it listens.
    (line,) = [m for m in logged.lines if m.startswith("admission webhook")]
    url = line.split()[4]  # "admission webhook serving on URL (...)"
    assert url.startswith("https://127.0.0.1:"), line
    review = update_review(succeeded(), decoded(fixture("clients/v1.0.4-dismiss-put-body.json")))
    context = ssl.create_default_context(cadata=certificate.ca_pem.decode())
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{url}{MUTATE_PATH}", json=review, ssl=context) as response:
            assert response.status == 200
            assert admitted(review, await response.json())["status"] == succeeded()["status"]
        # The webhook is not on the API port, and the API port has no webhook route.
        api = await client.post(MUTATE_PATH, json=review)
        assert api.status == 404
    metrics = await (await client.get("/metrics")).text()
    assert (
        'bff_status_restores_total{reason="status_removed",resource="upgrades.harvesterhci.io"} 1.0'
        in metrics
    )


def test_trusted_writer_flag_repeats_and_the_variable_is_a_list() -> None:
    from bff.cli import build_parser
    from bff.settings import Command, from_sources

    def given(*argv: str) -> dict[str, Any]:
        args = vars(build_parser().parse_args(["serve", *argv]))
        return {k: v for k, v in args.items() if k != "command"}

    repeated = given("--trusted-writer", "alice", "--trusted-writer", "group:ops")
    assert from_sources(repeated, {}, command=Command.SERVE).trusted_writers == (
        "alice",
        "group:ops",
    )
    env = {"BFF_TRUSTED_WRITER": "bob, group:x"}
    assert from_sources(given(), env, command=Command.SERVE).trusted_writers == ("bob", "group:x")
    default = from_sources(given(), {}, command=Command.SERVE)
    # Each resource's owners come from the guard table; nobody else is trusted by default.
    assert default.trusted_writers == ()
    assert default.webhook_port is None
    sandbox = vars(build_parser().parse_args(["sandbox", "--webhook-port", "0"]))
    assert "webhook_tls_cert" not in sandbox  # the sandbox makes its own certificate
    assert sandbox["webhook_port"] == "0"


async def test_a_review_that_never_arrives_is_408(tmp_path: Path) -> None:
    certificate = make_server_certificate(tmp_path / "slow")
    guard = Guard(TrustedWriters(), review_timeout=0.2)
    async with serving(
        guard,
        host="127.0.0.1",
        port=0,
        cert=str(certificate.cert_file),
        key=str(certificate.key_file),
    ) as url:
        host, port = url.removeprefix("https://").rsplit(":", 1)
        context = ssl.create_default_context(cadata=certificate.ca_pem.decode())
        reader, writer = await asyncio.open_connection(host, int(port), ssl=context)
        try:
            # Promise a body and never send it.
            writer.write(
                f"POST {MUTATE_PATH} HTTP/1.1\r\nHost: {host}\r\n"
                "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n".encode()
            )
            await writer.drain()
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=30)
            assert head.startswith(b"HTTP/1.1 408")
        finally:
            writer.close()
            with contextlib.suppress(OSError, ssl.SSLError):
                await writer.wait_closed()


def test_a_certificate_that_does_not_load_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = make_server_certificate(tmp_path / "good")
    other = make_server_certificate(tmp_path / "other")
    not_pem = tmp_path / "not.pem"
    not_pem.write_text("hello\n")
    for cert, key in [(not_pem, good.key_file), (good.cert_file, other.key_file)]:
        argv = ["serve", "--webhook-port", "9443", "--webhook-tls-cert", str(cert)]
        assert main([*argv, "--webhook-tls-key", str(key)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1
        assert "not a PEM certificate and its key" in err


# --- the guard table over HTTP ----------------------------------------------------------


def _ippool_v104() -> tuple[dict[str, Any], dict[str, Any]]:
    from bff import captured
    from tests.support.shell import set_field
    from tests.support.v104_save import v104_saved_body

    live = captured.guarded_object("ippool")
    live["metadata"]["finalizers"] = ["example.com/cleanup"]

    edit = (set_field("spec.description", "edited in the form"),)
    return live, v104_saved_body("loadbalancer.harvesterhci.io.ippool", live, edit=edit)


async def test_an_ippool_save_is_repaired_counted_logged_and_audited(
    webhook: Webhook, caplog: pytest.LogCaptureFixture
) -> None:
    live, body = _ippool_v104()
    review = update_review(live, body)
    with caplog.at_level(logging.WARNING, logger="bff.admission"):
        status, answer = await webhook.post(MUTATE_PATH, review)
    assert status == 200
    stored = admitted(review, answer)
    assert stored["status"] == live["status"]
    assert stored["spec"]["description"] == "edited in the form"
    response = answer["response"]
    assert response["auditAnnotations"] == {"restored": "finalizers_dropped,status_removed"}
    assert (
        response["warnings"][0]
        == (
            "harvester-upgrade-bff: IPPool vip-pool: this write would have removed its status "
            "(the pool's IP allocations (allocated, available, history); without them addresses "
            "already in use can be handed out again); the cluster guard kept the current status"
        )[: rv.MAX_WARNING_CHARS]
    )
    ippools = "ippools.loadbalancer.harvesterhci.io"
    assert webhook.restores("status_removed", ippools) == 1
    assert webhook.restores("finalizers_dropped", ippools) == 1
    assert webhook.restores("status_removed") == 0  # not counted as an Upgrade
    (record,) = [r for r in caplog.records if r.getMessage().startswith("restored")]
    assert record.getMessage() == (
        "restored status (status_removed), finalizers (finalizers_dropped) on IPPool vip-pool "
        "(ippools.loadbalancer.harvesterhci.io) by kubernetes-admin"
    )
    assert record.__dict__["resource"] == ippools


async def test_the_validate_route_and_a_deny_row_refuse_with_audit(tmp_path: Path) -> None:
    from bff.admission.resources import table_from

    certificate = make_server_certificate(tmp_path / "pki")
    table = table_from(
        ["ippools.loadbalancer.harvesterhci.io/v1beta1;owner=system:serviceaccount:x:y;mode=deny"]
    )
    live, body = _ippool_v104()
    review = update_review(live, body)
    async with (
        serving(
            Guard(TrustedWriters(), table),
            host="127.0.0.1",
            port=0,
            cert=str(certificate.cert_file),
            key=str(certificate.key_file),
        ) as url,
        aiohttp.ClientSession() as session,
    ):
        context = ssl.create_default_context(cadata=certificate.ca_pem.decode())
        for path in (MUTATE_PATH, VALIDATE_PATH):
            async with session.post(url + path, json=review, ssl=context) as response:
                answer = await response.json()
            assert answer["response"]["allowed"] is False, path
            assert "refused a write to IPPool vip-pool" in answer["response"]["status"]["message"]
            assert answer["response"]["auditAnnotations"]["restored"] == (
                "finalizers_dropped,status_removed"
            )
        # An Upgrade (repair mode) is still repaired on the mutate route.
        upgrade = update_review(
            succeeded(), decoded(fixture("clients/v1.0.4-dismiss-put-body.json"))
        )
        async with session.post(url + MUTATE_PATH, json=upgrade, ssl=context) as response:
            assert (await response.json())["response"]["allowed"] is True


async def test_stated_intent_is_let_through_and_audited(
    webhook: Webhook,
) -> None:
    from bff.admission.guard import INTENT_ANNOTATION

    live, _ = _ippool_v104()
    new = json.loads(json.dumps(live))
    del new["metadata"]["finalizers"]
    new["metadata"]["annotations"][INTENT_ANNOTATION] = "finalizers"
    review = update_review(live, new)
    _, answer = await webhook.post(MUTATE_PATH, review)
    stored = admitted(review, answer)
    assert "finalizers" not in stored["metadata"]
    assert stored["metadata"]["annotations"][INTENT_ANNOTATION] == "finalizers"
    assert answer["response"]["auditAnnotations"] == {"intended-change": "finalizers"}
    assert "patch" not in answer["response"]
    # The validate route answers the same.
    _, answer = await webhook.post(VALIDATE_PATH, review)
    assert answer["response"]["allowed"] is True
    assert "patch" not in answer["response"]
    assert webhook.restores("finalizers_dropped", "ippools.loadbalancer.harvesterhci.io") == 0


async def test_the_upgrade_only_paths_still_answer(webhook: Webhook) -> None:
    review = update_review(succeeded(), decoded(fixture("clients/v1.0.4-dismiss-put-body.json")))
    status, answer = await webhook.post("/admission/upgrades/mutate", review)
    assert status == 200
    assert admitted(review, answer)["status"] == succeeded()["status"]
    status, answer = await webhook.post("/admission/upgrades/validate", review)
    assert status == 200
    assert answer["response"]["allowed"] is False
