"""The cluster guard end to end on a real kube-apiserver, driven with the stock kubectl.

The chart's MutatingWebhookConfiguration (deploy/manifests/none-certmanager.yaml) is applied
with the harness CA as ``caBundle`` and a loopback URL for the BFF's webhook
port, ``harvester-upgrade-bff serve`` runs as a user would run it (its own
process, a kubeconfig, ``--webhook-port`` with a certificate the harness CA
signed), and then:

- ``kubectl replace`` of the v1.0.4 body keeps status and prints the warning;
- ``kubectl patch --type=json`` removing status is repaired;
- the controller's identity (its token from the static token file) still
  rewrites status;
- with the BFF stopped, ``failurePolicy: Fail`` refuses other writers' updates
  with the API server's "failed calling webhook" error, while the controller,
  left out by the ``matchConditions`` expression the API server evaluates
  itself, still writes.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.admission.reviews import decoded, fixture
from tests.support.chart import shipped_webhook_configuration
from tests.support.processes import Child, command
from tests.support.real_apiserver import RealApiServer

pytestmark = pytest.mark.real_apiserver

ROOT = Path(__file__).resolve().parents[2]
NAME = "hvst-upgrade-7xn6v"
KUBECTL = shutil.which("kubectl")
GUARD_WARNING = "Warning: harvester-upgrade-bff: Upgrade harvester-system/hvst-upgrade-7xn6v"


def overlay_configuration(url: str, ca_bundle: str) -> dict[str, Any]:
    configuration = copy.deepcopy(shipped_webhook_configuration())
    # cert-manager's injector is not here; the harness CA is the caBundle instead.
    configuration["metadata"].pop("annotations")
    for hook in configuration["webhooks"]:
        path = hook["clientConfig"]["service"]["path"]
        hook["clientConfig"] = {"url": url + path, "caBundle": ca_bundle}
    return configuration


class Bff:
    """``harvester-upgrade-bff serve`` in its own process, with the webhook port on.

    Both ports are 0: the URLs come from the lines the BFF logs once it listens."""

    def __init__(self, real: RealApiServer, directory: Path) -> None:
        cert, key = real.issue_certificate(directory, name="webhook")
        kubeconfig = real.kubeconfig(directory / "bff.kubeconfig", token="sandbox-bff")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("BFF_", "KUBECONFIG"))}
        argv = command("serve", "--kubeconfig", str(kubeconfig), "--port", "0",
                   "--webhook-port", "0", "--webhook-tls-cert", str(cert),
                   "--webhook-tls-key", str(key))  # fmt: skip
        self.child = Child(argv, env=env, stderr=subprocess.STDOUT)
        try:
            # The webhook starts with the application, before the API port listens.
            webhook = self.child.read_until(r"admission webhook serving on (https://[\d.:]+)")
            self.webhook_url = webhook.group(1)
            self.url = self.child.read_until(r"serving on (http://[\d.:]+)").group(1)
        except BaseException:
            self.child.stop()
            raise

    def stop(self) -> None:
        self.child.stop()


class Kubectl:
    def __init__(self, real: RealApiServer, directory: Path) -> None:
        assert KUBECTL is not None
        self.configs = {
            token: real.kubeconfig(directory / f"{token}.kubeconfig", token=token)
            for token in ("sandbox-admin", "sandbox-controller")
        }

    def __call__(
        self, *args: str, token: str = "sandbox-admin", stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        assert KUBECTL is not None
        return subprocess.run(
            [KUBECTL, "--kubeconfig", str(self.configs[token]), "-n", "harvester-system", *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def get(self, token: str = "sandbox-admin") -> Any:
        done = self("get", "upgrade", NAME, "-o", "json", token=token)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)


@pytest.fixture
def guarded(real_apiserver: RealApiServer, tmp_path: Path) -> Iterator[tuple[Bff, Kubectl]]:
    if KUBECTL is None:
        pytest.skip("kubectl is not installed")
    real_apiserver.reset()
    kubectl = Kubectl(real_apiserver, tmp_path)
    bff = Bff(real_apiserver, tmp_path)
    configuration = overlay_configuration(bff.webhook_url, real_apiserver.ca_bundle)
    try:
        real_apiserver.apply(configuration)
        _wait_until_consulted(kubectl)
        yield bff, kubectl
    finally:
        bff.stop()
        real_apiserver.delete(configuration)
        _wait_until_not_consulted(kubectl)
        real_apiserver.reset()


def _dry_run_wipe(kubectl: Kubectl) -> subprocess.CompletedProcess[str]:
    # A merge patch, so it applies whether or not the object still has a status.
    return kubectl(
        "patch", "upgrade", NAME, "--type=merge", "--dry-run=server", "-p", '{"status":null}'
    )  # fmt: skip


def _wait_until_consulted(kubectl: Kubectl) -> None:
    """The API server picks configurations up from an informer: wait, boundedly."""
    for _ in range(100):
        if GUARD_WARNING in _dry_run_wipe(kubectl).stderr:
            return
        time.sleep(0.1)
    raise AssertionError("the API server never called the webhook")


def _wait_until_not_consulted(kubectl: Kubectl) -> None:
    for _ in range(100):
        done = _dry_run_wipe(kubectl)
        if done.returncode == 0 and "harvester-upgrade-bff" not in done.stderr:
            return
        time.sleep(0.1)
    raise AssertionError("the webhook configuration is still in effect after deletion")


def test_kubectl_replace_of_the_v104_body_keeps_status(guarded: tuple[Bff, Kubectl]) -> None:
    _, kubectl = guarded
    before = kubectl.get()
    body = decoded(fixture("clients/v1.0.4-dismiss-put-body.json"))
    body["metadata"]["resourceVersion"] = before["metadata"]["resourceVersion"]
    done = kubectl("replace", "-f", "-", stdin=json.dumps(body))
    assert done.returncode == 0, done.stderr
    assert "upgrade.harvesterhci.io/hvst-upgrade-7xn6v replaced" in done.stdout
    assert GUARD_WARNING + ": this write would have removed its status" in done.stderr
    assert "dropped finalizer wrangler.cattle.io/harvester-upgrade-controller" in done.stderr
    after = kubectl.get()
    assert after["status"] == before["status"]
    assert after["metadata"]["finalizers"] == before["metadata"]["finalizers"]
    assert after["metadata"]["labels"]["harvesterhci.io/read-message"] == "true"


def test_kubectl_json_patch_removing_status_is_repaired(guarded: tuple[Bff, Kubectl]) -> None:
    _, kubectl = guarded
    before = kubectl.get()
    done = kubectl(
        "patch", "upgrade", NAME, "--type=json", "-p", '[{"op":"remove","path":"/status"}]'
    )
    assert done.returncode == 0, done.stderr
    assert GUARD_WARNING in done.stderr
    assert kubectl.get()["status"] == before["status"]


def _controller_rewrite(kubectl: Kubectl) -> subprocess.CompletedProcess[str]:
    live = kubectl.get(token="sandbox-controller")
    live["status"]["conditions"][0]["lastUpdateTime"] = "2030-01-01T00:00:00Z"
    return kubectl("replace", "-f", "-", token="sandbox-controller", stdin=json.dumps(live))


def test_the_controller_still_rewrites_status(guarded: tuple[Bff, Kubectl]) -> None:
    _, kubectl = guarded
    done = _controller_rewrite(kubectl)
    assert done.returncode == 0, done.stderr
    assert "harvester-upgrade-bff" not in done.stderr
    after = kubectl.get()
    assert after["status"]["conditions"][0]["lastUpdateTime"] == "2030-01-01T00:00:00Z"


def test_with_the_bff_stopped_fail_refuses_others_but_not_the_controller(
    guarded: tuple[Bff, Kubectl],
) -> None:
    bff, kubectl = guarded
    bff.stop()
    before = kubectl.get()
    done = kubectl(
        "patch", "upgrade", NAME, "--type=json", "-p", '[{"op":"remove","path":"/status"}]'
    )
    assert done.returncode != 0
    assert 'failed calling webhook "guard.harvester-upgrade-bff.harvesterhci.io"' in done.stderr
    assert kubectl.get()["status"] == before["status"]
    done = kubectl("label", "upgrade", NAME, "example.com/x=y")
    assert done.returncode != 0
    assert "failed calling webhook" in done.stderr
    # The controller never waits for the webhook.
    done = _controller_rewrite(kubectl)
    assert done.returncode == 0, done.stderr
    assert kubectl.get()["status"]["conditions"][0]["lastUpdateTime"] == "2030-01-01T00:00:00Z"
