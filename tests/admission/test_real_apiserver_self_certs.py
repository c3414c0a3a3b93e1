"""``serve --webhook-cert-source self`` on a real kube-apiserver, as its own process.

The BFF runs as a ServiceAccount granted exactly the RBAC docs/metrics.md documents
(:func:`certificate_rbac`: get/update of the one Secret by name and create on
Secrets in its namespace; get/patch of the one MutatingWebhookConfiguration by name),
with ``--webhook-service harvester-system/localhost`` so the serving certificate
names ``localhost`` and the API server itself can call the webhook at
``https://localhost:<port>`` with the caBundle the BFF set. Then:

- the Secret is created (kubernetes.io/tls; tls.crt, tls.key, ca.crt, ca.key), every
  webhook's caBundle is its ca.crt, a TLS handshake on loopback verified against that
  caBundle (for each DNS name of the Service) gets the Secret's tls.crt, and the API
  server calls the webhook through it (the guard's warning on a dry-run status wipe);
- a second replica reuses the Secret; two replicas started at once on no Secret end up
  serving one certificate (the 409 loser reads the winner's);
- a tampered caBundle is repaired; a deleted Secret is made again, with a new CA that
  the caBundle and the served certificate follow, while the process keeps running;
- a serving certificate near its end is renewed from the same CA;
- a ServiceAccount without the RBAC, or without the configuration's half of it, fails
  to start with one readable line and exit status 2.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import json
import socket
import ssl
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from bff.admission import certificates as certs
from tests.admission.test_real_apiserver_guard import overlay_configuration
from tests.support.processes import Child, clean_env, command, one_line_exit_2, run
from tests.support.real_apiserver import RealApiServer

pytestmark = pytest.mark.real_apiserver

NS = "harvester-system"
SECRET = "bff-webhook-self-tls"
HOOKS = "harvester-upgrade-bff-self-certs"
SERVICE = "localhost"  # the API server resolves it to loopback, where the BFF listens
ACCOUNT = "bff-self-certs"
SECRET_PATH = f"/api/v1/namespaces/{NS}/secrets/{SECRET}"
HOOKS_PATH = f"/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/{HOOKS}"
NAMES = certs.dns_names(NS, SERVICE)
RBAC = "rbac.authorization.k8s.io"
WAIT = 30.0
GUARD_WARNING = "harvester-upgrade-bff: Upgrade harvester-system/hvst-upgrade-7xn6v"


def certificate_rbac(account: str, *, configuration: bool = True) -> list[dict[str, Any]]:
    """The narrowest RBAC self mode needs, bound to ``account`` (as docs/metrics.md says)."""
    sa = {"kind": "ServiceAccount", "name": account, "namespace": NS}
    objects: list[dict[str, Any]] = [
        {"apiVersion": "v1", "kind": "ServiceAccount",
         "metadata": {"name": account, "namespace": NS}},
        {"apiVersion": f"{RBAC}/v1", "kind": "Role",
         "metadata": {"name": f"{account}-webhook-cert", "namespace": NS},
         "rules": [
             {"apiGroups": [""], "resources": ["secrets"], "resourceNames": [SECRET],
              "verbs": ["get", "update"]},
             # create cannot be limited by name: the object does not exist yet.
             {"apiGroups": [""], "resources": ["secrets"], "verbs": ["create"]},
         ]},
        {"apiVersion": f"{RBAC}/v1", "kind": "RoleBinding",
         "metadata": {"name": f"{account}-webhook-cert", "namespace": NS},
         "roleRef": {"apiGroup": RBAC, "kind": "Role", "name": f"{account}-webhook-cert"},
         "subjects": [sa]},
    ]  # fmt: skip
    if configuration:
        objects += [
            {"apiVersion": f"{RBAC}/v1", "kind": "ClusterRole",
             "metadata": {"name": f"{account}-webhook-ca-bundle"},
             "rules": [{"apiGroups": ["admissionregistration.k8s.io"],
                        "resources": ["mutatingwebhookconfigurations"],
                        "resourceNames": [HOOKS], "verbs": ["get", "patch"]}]},
            {"apiVersion": f"{RBAC}/v1", "kind": "ClusterRoleBinding",
             "metadata": {"name": f"{account}-webhook-ca-bundle"},
             "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole",
                         "name": f"{account}-webhook-ca-bundle"},
             "subjects": [sa]},
        ]  # fmt: skip
    return objects


def hooks_configuration(port_url: str) -> dict[str, Any]:
    """The overlay's configuration under its own name, with two webhooks and no caBundle."""
    configuration = overlay_configuration(port_url, "")
    configuration["metadata"]["name"] = HOOKS
    (hook,) = configuration["webhooks"]
    del hook["clientConfig"]["caBundle"]
    hook["failurePolicy"] = "Ignore"  # a replica restarting must not block other tests' writes
    second = json.loads(json.dumps(hook))
    second["name"] = "second." + hook["name"]
    configuration["webhooks"] = [hook, second]
    return configuration


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _until(what: str, check: Callable[[], Any], timeout: float = WAIT) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout}s: {what}")
        time.sleep(0.1)


class Cluster:
    """The harness as the test reads it: the Secret, the caBundles, the served certificate."""

    def __init__(self, real: RealApiServer, directory: Path) -> None:
        self.real = real
        self.directory = directory
        self.port = _free_port()
        self.configuration = hooks_configuration(f"https://{SERVICE}:{self.port}")

    def secret(self) -> dict[str, Any] | None:
        r = self.real.request("GET", SECRET_PATH)
        if r.status == 404:
            return None
        assert r.status == 200, r.body
        return dict(r.body)

    def ca_bundles(self) -> list[str]:
        r = self.real.request("GET", HOOKS_PATH)
        assert r.status == 200, r.body
        return [h["clientConfig"].get("caBundle", "") for h in r.body["webhooks"]]

    def kubeconfig(self, account: str) -> Path:
        token = self.real.create_token(NS, account)
        return self.real.kubeconfig(self.directory / f"{account}.kubeconfig", token=token)

    def argv(self, account: str, port: int | None = None) -> list[str]:
        return command(
            "serve", "--kubeconfig", str(self.kubeconfig(account)), "--port", "0",
            "--webhook-port", str(self.port if port is None else port),
            "--webhook-cert-source", "self",
            "--webhook-cert-secret", f"{NS}/{SECRET}",
            "--webhook-service", f"{NS}/{SERVICE}",
            "--webhook-configuration", HOOKS,
            "--webhook-cert-check-interval", "0.5",
        )  # fmt: skip

    def start(self, port: int | None = None) -> Child:
        child = Child(self.argv(ACCOUNT, port), env=clean_env(), stderr=subprocess.STDOUT)
        try:
            child.read_until(r"admission webhook serving on https://", timeout=WAIT)
        except BaseException:
            child.stop()
            raise
        return child


def decoded(secret: dict[str, Any], key: str) -> bytes:
    return base64.b64decode(secret["data"][key])


def served(port: int, ca_bundle: str, name: str = NAMES[2]) -> bytes:
    """The certificate a TLS client gets on loopback, verified against ``ca_bundle`` as ``name``."""
    context = ssl.create_default_context(cadata=base64.b64decode(ca_bundle).decode())
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname=name) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return ssl.DER_cert_to_PEM_cert(der).encode()


def same_cert(one: bytes, other: bytes) -> bool:
    return x509.load_pem_x509_certificate(one) == x509.load_pem_x509_certificate(other)


@pytest.fixture
def cluster(real_apiserver: RealApiServer, tmp_path: Path) -> Iterator[Cluster]:
    real_apiserver.reset()
    here = Cluster(real_apiserver, tmp_path)
    rbac = certificate_rbac(ACCOUNT)
    real_apiserver.apply(*rbac)
    real_apiserver.apply(here.configuration)
    try:
        yield here
    finally:
        real_apiserver.request("DELETE", SECRET_PATH)
        real_apiserver.delete(here.configuration, *reversed(rbac))
        real_apiserver.reset()


def test_the_secret_is_created_and_the_ca_bundle_verifies_the_served_certificate(
    cluster: Cluster,
) -> None:
    assert cluster.secret() is None
    child = cluster.start()
    try:
        secret = cluster.secret()
        assert secret is not None
        assert secret["type"] == "kubernetes.io/tls"
        assert set(secret["data"]) == {"tls.crt", "tls.key", "ca.crt", "ca.key"}
        ca = base64.b64encode(decoded(secret, "ca.crt")).decode()
        # Every webhook's caBundle is the CA (set before the listener started).
        assert cluster.ca_bundles() == [ca, ca]
        for name in NAMES:
            assert same_cert(served(cluster.port, ca, name), decoded(secret, "tls.crt"))
        with pytest.raises(ssl.SSLCertVerificationError):
            served(cluster.port, ca, "other.harvester-system.svc")
        # The API server itself calls the webhook through that caBundle.
        r = _until("the API server calls the webhook", lambda: _dry_run_wipe(cluster.real))
        assert GUARD_WARNING in r.headers.get("Warning", "")
    finally:
        assert child.stop() == 0
    assert "Traceback" not in child.text


def _dry_run_wipe(real: RealApiServer) -> Any:
    path = "/apis/harvesterhci.io/v1beta1/namespaces/harvester-system/upgrades/hvst-upgrade-7xn6v"
    r = real.request("PATCH", path + "?dryRun=All", {"status": None},
                     content_type="application/merge-patch+json")  # fmt: skip
    assert r.status == 200, r.body
    return r if GUARD_WARNING in r.headers.get("Warning", "") else None


def test_a_second_replica_reuses_the_secret(cluster: Cluster) -> None:
    first = cluster.start()
    try:
        before = cluster.secret()
        assert before is not None
        second = cluster.start(port=_free_port())
        try:
            after = cluster.secret()
            assert after is not None
            assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
            ca = cluster.ca_bundles()[0]
            assert same_cert(served(cluster.port, ca), decoded(before, "tls.crt"))
        finally:
            assert second.stop() == 0
        assert "created Secret" not in second.text
    finally:
        assert first.stop() == 0


def test_two_replicas_starting_at_once_serve_one_certificate(cluster: Cluster) -> None:
    ports = [cluster.port, _free_port()]
    children = [
        Child(cluster.argv(ACCOUNT, port), env=clean_env(), stderr=subprocess.STDOUT)
        for port in ports
    ]
    try:
        for child in children:
            child.read_until(r"admission webhook serving on https://", timeout=WAIT)
        secret = cluster.secret()
        assert secret is not None
        ca = cluster.ca_bundles()[0]
        for port in ports:
            assert same_cert(served(port, ca), decoded(secret, "tls.crt"))
    finally:
        for child in children:
            child.stop()
    created = [c for c in children if "created Secret" in c.text]
    assert len(created) <= 1, [c.text for c in children]


def test_a_tampered_ca_bundle_is_repaired(cluster: Cluster) -> None:
    child = cluster.start()
    try:
        secret = cluster.secret()
        assert secret is not None
        ca = base64.b64encode(decoded(secret, "ca.crt")).decode()
        tampered = [{"op": "replace", "path": "/webhooks/1/clientConfig/caBundle",
                     "value": cluster.real.ca_bundle}]  # fmt: skip
        r = cluster.real.request(
            "PATCH", HOOKS_PATH, tampered, content_type="application/json-patch+json"
        )
        assert r.status == 200, r.body
        assert cluster.ca_bundles()[1] != ca
        _until("the caBundle is repaired", lambda: cluster.ca_bundles() == [ca, ca])
    finally:
        assert child.stop() == 0


def test_a_deleted_secret_is_survived(cluster: Cluster) -> None:
    child = cluster.start()
    try:
        old = cluster.secret()
        assert old is not None
        r = cluster.real.request("DELETE", SECRET_PATH)
        assert r.status == 200, r.body
        new = _until("the Secret is made again", cluster.secret)
        assert decoded(new, "ca.crt") != decoded(old, "ca.crt")
        ca = base64.b64encode(decoded(new, "ca.crt")).decode()
        _until("the caBundle follows the new CA", lambda: cluster.ca_bundles() == [ca, ca])

        def serves_new() -> bool:
            with contextlib.suppress(ssl.SSLError):
                return same_cert(served(cluster.port, ca), decoded(new, "tls.crt"))
            return False

        _until("the new pair is served", serves_new)
        assert child.proc.poll() is None
    finally:
        assert child.stop() == 0


def test_a_serving_certificate_near_its_end_is_renewed_from_the_same_ca(
    cluster: Cluster,
) -> None:
    near = certs.new_bundle(NAMES, serving_days=10)
    data = {"ca.crt": near.ca_cert, "ca.key": near.ca_key, "tls.crt": near.cert,
            "tls.key": near.key}  # fmt: skip
    body = {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
            "metadata": {"name": SECRET, "namespace": NS},
            "data": {k: base64.b64encode(v).decode() for k, v in data.items()}}  # fmt: skip
    r = cluster.real.request("POST", f"/api/v1/namespaces/{NS}/secrets", body)
    assert r.status == 201, r.body
    child = cluster.start()
    try:
        secret = cluster.secret()
        assert secret is not None
        assert decoded(secret, "ca.crt") == near.ca_cert
        assert decoded(secret, "tls.crt") != near.cert
        cert = x509.load_pem_x509_certificate(decoded(secret, "tls.crt"))
        assert cert.not_valid_after_utc - dt.datetime.now(dt.UTC) > dt.timedelta(days=300)
        ca = base64.b64encode(near.ca_cert).decode()
        assert cluster.ca_bundles() == [ca, ca]
        assert same_cert(served(cluster.port, ca), decoded(secret, "tls.crt"))
    finally:
        assert child.stop() == 0
    assert "renewed the serving certificate" in child.text


def test_a_service_account_without_the_rbac_fails_readably(cluster: Cluster) -> None:
    account = "bff-without-rbac"
    (service_account,) = certificate_rbac(account)[:1]
    cluster.real.apply(service_account)
    try:
        line = one_line_exit_2(run(*cluster.argv(account)[3:], timeout=60))
    finally:
        cluster.real.delete(service_account)
    assert f"cannot get Secret {NS}/{SECRET}: 403 Forbidden: " in line
    assert f'User "system:serviceaccount:{NS}:{account}" cannot get resource "secrets"' in line


def test_a_service_account_without_the_configurations_rbac_fails_readably(
    cluster: Cluster,
) -> None:
    account = "bff-without-rbac"
    objects = certificate_rbac(account, configuration=False)  # the Secret's half only
    cluster.real.apply(*objects)
    try:
        result = run(*cluster.argv(account)[3:], timeout=60)
    finally:
        cluster.real.delete(*reversed(objects))
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    # The log says what was done first (the Secret made); the last line is the error.
    *logged, line = result.stderr.strip().splitlines()
    assert all("webhook certificate:" in entry for entry in logged), logged
    assert line.startswith("harvester-upgrade-bff: error: ")
    assert f"cannot get MutatingWebhookConfiguration {HOOKS}: 403 Forbidden: " in line


def test_a_patch_whose_resource_version_test_fails_is_refused_as_the_keeper_expects(
    cluster: Cluster,
) -> None:
    """The keeper retries a caBundle patch answered 409 or 422: the real server's answer."""
    stale = [
        {"op": "test", "path": "/metadata/resourceVersion", "value": "1"},
        {"op": "add", "path": "/webhooks/0/clientConfig/caBundle", "value": cluster.real.ca_bundle},
    ]
    r = cluster.real.request("PATCH", HOOKS_PATH, stale, content_type="application/json-patch+json")
    assert r.status in (409, 422), (r.status, r.body)
    assert cluster.ca_bundles() == ["", ""]
