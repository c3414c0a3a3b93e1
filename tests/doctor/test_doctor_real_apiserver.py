"""``harvester-upgrade-bff doctor`` against a real kube-apiserver with the BFF's webhook on it.

The cluster: the seven guarded CRDs (the Upgrade CRD and bff/captured/crds), the
seed Upgrades, ``serve`` with its webhook port in its own process, the webhook
overlay's MutatingWebhookConfiguration pointing at it (a loopback ``url``, the
harness CA as ``caBundle``), deploy/'s RBAC for the BFF's ServiceAccount (the
harness applies it) and a Deployment object as the chart makes it, with
``BFF_AUTH_MODE=impersonate`` (no controller runs it; doctor reads its settings).

Healthy: exit 0, every check ok, and the dry-run write changed nothing. Then each
thing doctor watches is broken once and put back: exit 1 with the right sentence
for no webhook, a bad caBundle, a damaged Upgrade and a missing RoleBinding; exit 2
when the API server cannot be reached.
"""

from __future__ import annotations

import base64
import copy
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from bff import cli
from bff.admission.configuration import WEBHOOK_NAME
from bff.doctor import report, webhook
from bff.doctor.client import DoctorClient
from bff.doctor.release import discover
from bff.doctor.settings import DoctorSettings
from bff.kube.config import UpstreamOptions, load_configuration
from tests.admission.test_real_apiserver_guard import Bff, overlay_configuration
from tests.admission.test_real_apiserver_guard_table import _install_crds, _remove_crds
from tests.support.certs import make_server_certificate
from tests.support.processes import one_line_exit_2, run
from tests.support.real_apiserver import (
    BFF_SERVICE_ACCOUNT,
    DEPLOY_RBAC_FROM,
    RealApiServer,
    free_port,
    manifest_objects,
)

pytestmark = pytest.mark.real_apiserver

SUCCEEDED = "hvst-upgrade-7xn6v"
DAMAGED = "hvst-upgrade-damaged"
HARVESTER = "system:serviceaccount:harvester-system:harvester"
DEPLOYMENT = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "harvester-upgrade-bff", "namespace": "harvester-system",
                 "labels": {"app.kubernetes.io/instance": "harvester-upgrade-bff"}},
    "spec": {
        "replicas": 0,
        "selector": {"matchLabels": {"app.kubernetes.io/component": "bff"}},
        "template": {
            "metadata": {"labels": {"app.kubernetes.io/component": "bff"}},
            "spec": {
                "serviceAccountName": BFF_SERVICE_ACCOUNT[1],
                "containers": [{
                    "name": "bff",
                    "image": "harvester-upgrade-bff:0.1.0",
                    "env": [{"name": "BFF_AUTH_MODE", "value": "impersonate"},
                            {"name": "BFF_READ_CACHE", "value": "true"}],
                }],
            },
        },
    },
}  # fmt: skip


@dataclass
class Cluster:
    real: RealApiServer
    bff: Bff
    configuration: dict[str, Any]
    kubeconfig: Path

    def doctor(self, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, dict[str, Any]]:
        """doctor --json in this process: (exit status, the document)."""
        capsys.readouterr()
        status = cli.main(["doctor", "--kubeconfig", str(self.kubeconfig), *extra, "--json"])
        out = capsys.readouterr().out
        return status, json.loads(out)


def _checks(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["id"]: c for c in document["checks"]}


def _consulted(real: RealApiServer) -> bool:
    r = real.request(
        "PATCH",
        real.upgrades_path(SUCCEEDED) + "?dryRun=All",
        {"status": None},
        content_type="application/merge-patch+json",
    )
    warning = next((v for k, v in r.headers.items() if k.lower() == "warning"), "")
    return r.status == 200 and "harvester-upgrade-bff" in warning


def _register(real: RealApiServer, configuration: dict[str, Any]) -> None:
    """Apply the configuration and wait (boundedly) until the API server calls the guard."""
    real.apply(configuration)
    deadline = time.monotonic() + 10
    while not _consulted(real):
        assert time.monotonic() < deadline, "the API server never called the webhook"
        time.sleep(0.1)


@pytest.fixture(scope="module")
def cluster(
    real_apiserver: RealApiServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    real = real_apiserver
    real.reset()
    _install_crds(real)
    directory: Path = tmp_path_factory.mktemp("doctor")
    bff = Bff(real, directory)
    configuration = overlay_configuration(bff.webhook_url, real.ca_bundle)
    kubeconfig = real.kubeconfig(directory / "admin.kubeconfig", client_cert=True)
    try:
        real.apply(DEPLOYMENT)
        _register(real, configuration)
        yield Cluster(real, bff, configuration, kubeconfig)
    finally:
        bff.stop()
        real.delete(configuration, DEPLOYMENT)
        _remove_crds(real)
        real.reset()


def test_a_healthy_install_exits_0_and_the_dry_run_changes_nothing(
    cluster: Cluster, capsys: pytest.CaptureFixture[str]
) -> None:
    before = cluster.real.request("GET", cluster.real.upgrades_path(SUCCEEDED)).body
    status, document = cluster.doctor(capsys, "--url", cluster.bff.url)
    checks = _checks(document)
    assert status == 0, document
    assert document["healthy"] is True
    assert {c["status"] for c in checks.values()} == {"ok"}, document
    assert list(checks) == ["crds", "webhook.registered", "webhook.ca-bundle", "webhook.called",
                            "route", "permissions", "upgrades"]  # fmt: skip
    assert checks["crds"]["summary"].startswith("the 7 guarded CRDs exist and each lacks")
    assert (
        "the caBundle verifies the certificate served at 127.0.0.1:"
        in (checks["webhook.ca-bundle"]["summary"])
    )
    assert checks["webhook.called"]["summary"].startswith(
        f"the API server calls the guard: a dry-run PUT of Upgrade {SUCCEEDED} without its "
        "status came back repaired"
    )
    assert "impersonate mode" in checks["permissions"]["summary"]
    for key in ("id", "status", "summary", "details", "remedy"):
        assert all(key in c for c in document["checks"])
    # The dry run stored nothing: the same object, the same resourceVersion.
    after = cluster.real.request("GET", cluster.real.upgrades_path(SUCCEEDED)).body
    assert after == before


def test_the_human_output_is_one_line_per_check(
    cluster: Cluster, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert cli.main(["doctor", "--kubeconfig", str(cluster.kubeconfig)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("ok       crds: the 7 guarded CRDs exist")
    assert lines[4] == "skipped  route: skipped: no --url given (the Ingress in front of the BFF)"
    assert lines[-1] == "healthy: no problem found"
    assert len(lines) == 8


def test_no_webhook(cluster: Cluster, capsys: pytest.CaptureFixture[str]) -> None:
    cluster.real.delete(cluster.configuration)
    try:
        status, document = cluster.doctor(capsys)
    finally:
        _register(cluster.real, cluster.configuration)
    checks = _checks(document)
    assert status == 1
    assert checks["webhook.registered"]["status"] == "problem"
    assert checks["webhook.registered"]["summary"].startswith(
        "no MutatingWebhookConfiguration harvester-upgrade-bff: the cluster guard is not registered"
    )
    assert "webhook.enabled=true" in checks["webhook.registered"]["remedy"]
    assert checks["webhook.called"]["status"] == "skipped"


def test_a_bad_ca_bundle(
    cluster: Cluster, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    other = make_server_certificate(tmp_path)
    broken = copy.deepcopy(cluster.configuration)
    for hook in broken["webhooks"]:
        hook["clientConfig"]["caBundle"] = base64.b64encode(other.ca_pem).decode()
    cluster.real.apply(broken)
    try:
        # The API server follows the change from an informer: until it refuses the guard.
        deadline = time.monotonic() + 10
        while _consulted(cluster.real):
            assert time.monotonic() < deadline, "the API server kept the old caBundle"
            time.sleep(0.1)
        status, document = cluster.doctor(capsys)
    finally:
        _register(cluster.real, cluster.configuration)
    checks = _checks(document)
    assert status == 1
    bundle = checks["webhook.ca-bundle"]
    assert bundle["status"] == "problem"
    assert bundle["summary"].startswith(
        "the caBundle does not verify the certificate served at 127.0.0.1:"
    )
    assert "certificate verify failed" in bundle["summary"]
    called = checks["webhook.called"]
    assert called["status"] == "problem"
    assert called["summary"].startswith("the API server could not call the guard")


def test_a_guard_the_api_server_does_not_call(
    cluster: Cluster, capsys: pytest.CaptureFixture[str]
) -> None:
    # Registered and trusted, but doctor's user (the harness admin, in system:masters) is
    # left out by a trusted-writer condition: its writes never reach the guard.
    skipping = copy.deepcopy(cluster.configuration)
    for hook in skipping["webhooks"]:
        hook["matchConditions"].append({
            "name": "not-a-trusted-writer",
            "expression": "!request.userInfo.groups.exists(g, g in ['system:masters'])",
        })  # fmt: skip
    cluster.real.apply(skipping)
    try:
        deadline = time.monotonic() + 10
        while _consulted(cluster.real):
            assert time.monotonic() < deadline, "the API server kept calling the guard"
            time.sleep(0.1)
        status, document = cluster.doctor(capsys)
    finally:
        _register(cluster.real, cluster.configuration)
    checks = _checks(document)
    assert status == 1
    assert checks["webhook.ca-bundle"]["status"] == "ok"
    called = checks["webhook.called"]
    assert called["status"] == "problem"
    assert called["summary"] == (
        f"the API server did not call the guard: a dry-run PUT of Upgrade {SUCCEEDED} without "
        "its status came back with the status removed (a real write would wipe it)"
    )
    assert "--trusted-writer" in called["remedy"]


def test_a_damaged_upgrade(cluster: Cluster, capsys: pytest.CaptureFixture[str]) -> None:
    real = cluster.real
    seed = real.request("GET", real.upgrades_path(SUCCEEDED)).body
    damaged = {
        "apiVersion": seed["apiVersion"],
        "kind": "Upgrade",
        "metadata": {
            "name": DAMAGED,
            "namespace": real.namespace,
            "labels": {
                "harvesterhci.io/read-message": "true",
                "harvesterhci.io/upgradeState": "PreparingLoggingInfra",
            },
        },
        "spec": seed["spec"],
        # As Harvester's controller re-initialises it (written as its owner, whom the
        # guard leaves alone).
        "status": {"conditions": [
            {"type": "Completed", "status": "Unknown"},
            {"type": "LogReady", "status": "Unknown"},
        ]},
    }  # fmt: skip
    created = real.request(
        "POST",
        real.upgrades_path(),
        damaged,
        headers={"Impersonate-User": HARVESTER, "Impersonate-Group": "system:masters"},
    )
    assert created.status == 201, created.body
    try:
        status, document = cluster.doctor(capsys)
    finally:
        real.request("DELETE", real.upgrades_path(DAMAGED))
    upgrades = _checks(document)["upgrades"]
    assert status == 1
    assert upgrades["status"] == "problem"
    assert upgrades["summary"] == (
        f"Upgrade {DAMAGED}: a dismissed upgrade is running again (read-message true, "
        "Completed Unknown, state PreparingLoggingInfra): its status was wiped after "
        "'Dismiss it' and Harvester's controller re-initialised it (harvester/harvester#7791)"
    )
    assert "delete this Upgrade" in upgrades["remedy"]


def test_missing_rbac(cluster: Cluster, capsys: pytest.CaptureFixture[str]) -> None:
    real = cluster.real
    (binding,) = [o for o in manifest_objects(DEPLOY_RBAC_FROM) if o["kind"] == "RoleBinding"]
    real.delete(binding)
    try:
        status, document = cluster.doctor(capsys)
    finally:
        real.apply(binding)
    permissions = _checks(document)["permissions"]
    assert status == 1
    assert permissions["status"] == "problem"
    assert permissions["summary"] == (
        "the BFF's ServiceAccount harvester-system/harvester-upgrade-bff may not: list "
        "upgrades.harvesterhci.io in harvester-system; watch upgrades.harvesterhci.io in "
        "harvester-system"
    )


def test_an_unreachable_cluster_exits_2_with_one_line(
    real_apiserver: RealApiServer, tmp_path: Path
) -> None:
    kubeconfig = real_apiserver.kubeconfig(tmp_path / "admin.kubeconfig", client_cert=True)
    text = kubeconfig.read_text().replace(real_apiserver.url, f"https://127.0.0.1:{free_port()}")
    kubeconfig.write_text(text)
    line = one_line_exit_2(run("doctor", "--kubeconfig", str(kubeconfig)))
    assert line.startswith(
        "harvester-upgrade-bff: error: cannot reach the API server at https://127.0.0.1:"
    )


async def test_the_ca_bundle_against_the_webhooks_secret(
    real_apiserver: RealApiServer, tmp_path: Path
) -> None:
    """A Service webhook doctor cannot reach (no endpoints here): the Secret's certificate
    is verified instead, as the chart's cert-manager Certificate would have it."""
    real = real_apiserver
    name = "harvester-upgrade-bff.harvester-system.svc"
    cert, key = real.issue_certificate(tmp_path, name="webhook", hosts=(name,))
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "harvester-upgrade-bff-webhook-tls", "namespace": real.namespace},
        "type": "kubernetes.io/tls",
        "data": {"tls.crt": base64.b64encode(cert.read_bytes()).decode(),
                 "tls.key": base64.b64encode(key.read_bytes()).decode()},
    }  # fmt: skip
    other = make_server_certificate(tmp_path / "other")
    service = {"name": "harvester-upgrade-bff", "namespace": real.namespace, "port": 443}
    settings = DoctorSettings()

    async def verdict(ca_bundle: str) -> report.Check:
        hook = {"name": WEBHOOK_NAME, "clientConfig": {"service": service, "caBundle": ca_bundle}}
        configuration = await load_configuration(
            UpstreamOptions(kubeconfig=str(real.kubeconfig(tmp_path / "k", client_cert=True)))
        )
        async with DoctorClient(configuration) as client:
            release = replace(
                await discover(client, settings), webhook_configuration={"webhooks": [hook]}
            )
            return await webhook.ca_bundle(client, release)

    real.apply(secret)
    try:
        good = await verdict(real.ca_bundle)
        bad = await verdict(base64.b64encode(other.ca_pem).decode())
    finally:
        real.delete(secret)
    assert good.status is report.Status.OK, good
    assert good.summary == (
        "the caBundle verifies the certificate in Secret "
        f"harvester-system/harvester-upgrade-bff-webhook-tls for {name}"
    )
    assert bad.status is report.Status.PROBLEM
    assert bad.summary.startswith(
        "the caBundle does not verify the certificate in Secret "
        f"harvester-system/harvester-upgrade-bff-webhook-tls for {name} (certificate verify "
        "failed: unable to get local issuer certificate)"
    )
