"""Every combination of the chart, really installed with ``helm install`` on a real kube-apiserver.

A server of its own (tests/support/real_apiserver.py; no BFF RBAC from the
harness). For each ci/ combination: ``helm install`` creates every object (not
a dry run: the API server validates and stores each one, RBAC objects
included), each rendered object is then read back, ``helm uninstall`` removes
them all. What this proves and what it does not:

- proved: each object is accepted by the API server of the Kubernetes version
  the harness builds, in the namespaces the combination names, with the
  Ingresses in Rancher's namespace; cert-manager's capability check runs
  against the server's real discovery: refused in one line while cert-manager's
  API is absent, installed once its CRDs are served. The CRDs here are minimal
  (any field accepted), so cert-manager's own validation of the Issuer and
  Certificate is NOT proved, nor that cert-manager issues the certificate, nor
  that Prometheus Operator accepts the ServiceMonitor and PrometheusRule;
- proved: the ``chart`` certificate source keeps its CA and certificate across
  ``helm upgrade`` (``lookup`` of the live Secret), and caBundle stays its CA;
- proved: the ``self`` source's RBAC lets the BFF's account do exactly what the
  BFF needs on its Secret and webhook configuration, and not the same on
  others (SubjectAccessReviews);
- proved: the release notes print the ``doctor`` command;
- not proved here: pods running (the harness has no kubelet), the BFF's own
  certificate management (tested with the BFF).
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bff.doctor.release import container_args, self_certificates
from bff.identities import AuthMode
from bff.kube.permissions import SelfCertificates, needed
from tests.support import chart
from tests.support.helm import HelmUnavailable, ensure_helm
from tests.support.real_apiserver import (
    RealApiServer,
    RealApiServerUnavailable,
    service_account_user,
    unavailable_reason,
)

pytestmark = pytest.mark.real_apiserver

REQUIRED = os.environ.get("BFF_REQUIRE_REAL_APISERVER") == "1"
KUBECTL = shutil.which("kubectl")

if not REQUIRED and ((_why := unavailable_reason()) or (_why := None if KUBECTL else "no kubectl")):
    pytest.skip(f"real API server unavailable: {_why}", allow_module_level=True)

DISCOVERY_WAIT = 30.0  # seconds for a new CRD's API to show in discovery
SA_GROUPS = ["system:serviceaccounts", "system:serviceaccounts:harvester-system"]
Obj = dict[str, Any]


def minimal_crd(group: str, kind: str, plural: str) -> Obj:
    """A CRD serving ``group/v1`` ``kind`` that accepts any fields."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{group}"},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {"kind": kind, "plural": plural, "singular": kind.lower(),
                      "listKind": f"{kind}List"},
            "versions": [{
                "name": "v1", "served": True, "storage": True,
                "schema": {"openAPIV3Schema": {"type": "object",
                                               "x-kubernetes-preserve-unknown-fields": True}},
            }],
        },
    }  # fmt: skip


CERT_MANAGER = [
    minimal_crd("cert-manager.io", "Issuer", "issuers"),
    minimal_crd("cert-manager.io", "Certificate", "certificates"),
]
MONITORING = [
    minimal_crd("monitoring.coreos.com", "ServiceMonitor", "servicemonitors"),
    minimal_crd("monitoring.coreos.com", "PrometheusRule", "prometheusrules"),
]


@pytest.fixture(scope="module")
def helm() -> Path:
    try:
        return ensure_helm()
    except HelmUnavailable as exc:
        if os.environ.get("BFF_REQUIRE_HELM") == "1":
            pytest.fail(f"BFF_REQUIRE_HELM=1 but {exc}")
        pytest.skip(str(exc))


@pytest.fixture(scope="module")
def cluster() -> Iterator[RealApiServer]:
    if KUBECTL is None:
        pytest.fail("kubectl is required and is not installed")
    server = RealApiServer(bff_rbac=False)
    try:
        server.start()
    except RealApiServerUnavailable as exc:
        if REQUIRED:
            pytest.fail(f"real API server required but unavailable: {exc}")
        pytest.skip(f"real API server unavailable: {exc}")
    try:
        server.apply(
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "cattle-system"}}
        )
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def kubeconfig(cluster: RealApiServer, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return cluster.kubeconfig(tmp_path_factory.mktemp("chart") / "admin", client_cert=True)


def run(argv: list[str], kubeconfig: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "KUBECONFIG": str(kubeconfig),
        "HELM_CACHE_HOME": str(kubeconfig.parent),
        "HELM_CONFIG_HOME": str(kubeconfig.parent),
        "HELM_DATA_HOME": str(kubeconfig.parent),
    }
    return subprocess.run(argv, capture_output=True, text=True, timeout=180, check=False, env=env)


def kubectl_get(kubeconfig: Path, obj: Obj) -> subprocess.CompletedProcess[str]:
    assert KUBECTL is not None
    api = obj["apiVersion"]
    group = api.split("/")[0] if "/" in api else ""
    resource = (
        f"{obj['kind'].lower()}.{api.split('/')[-1]}.{group}" if group else obj["kind"].lower()
    )
    argv = [KUBECTL, "get", resource, obj["metadata"]["name"], "-o", "name"]
    if "namespace" in obj["metadata"]:
        argv += ["-n", obj["metadata"]["namespace"]]
    return run(argv, kubeconfig)


def wait_for_api(kubeconfig: Path, group_version: str) -> None:
    assert KUBECTL is not None
    deadline = time.monotonic() + DISCOVERY_WAIT
    while time.monotonic() < deadline:
        if group_version in run([KUBECTL, "api-versions"], kubeconfig).stdout.split():
            return
        time.sleep(0.2)
    pytest.fail(f"{group_version} not served {DISCOVERY_WAIT}s after its CRDs were created")


def install(helm: Path, kubeconfig: Path, release: str, name: str, *extra: str) -> str:
    done = run(
        [str(helm), "install", release, str(chart.CHART), "-n", chart.namespace_of(name),
         "--values", str(chart.values_file(name)), *extra],
        kubeconfig,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout


def manifest(helm: Path, kubeconfig: Path, release: str, namespace: str) -> list[Obj]:
    done = run([str(helm), "get", "manifest", release, "-n", namespace], kubeconfig)
    assert done.returncode == 0, done.stderr
    return chart.documents(done.stdout)


def uninstall(
    helm: Path, kubeconfig: Path, release: str, namespace: str, objects: list[Obj]
) -> None:
    done = run([str(helm), "uninstall", release, "-n", namespace, "--wait"], kubeconfig)
    assert done.returncode == 0, done.stderr
    left = [o for o in objects if kubectl_get(kubeconfig, o).returncode == 0]
    assert not left, [(o["kind"], o["metadata"]["name"]) for o in left]


@pytest.fixture(scope="module")
def crds_after_absent_check(cluster: RealApiServer, helm: Path, kubeconfig: Path) -> None:
    """First, with cert-manager's API absent, the certManager source is refused in one
    line by the real server's discovery; then its (minimal) CRDs are served."""
    done = run(
        [str(helm), "install", "absent", str(chart.CHART), "-n", "harvester-system",
         "--values", str(chart.values_file("none-certmanager"))],
        kubeconfig,
    )  # fmt: skip
    assert done.returncode != 0
    errors = [line for line in done.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, done.stderr
    # The chart's own refusal, before anything is sent: not the API server's
    # "no matches for kind" a missing check would end in.
    assert "needs cert-manager (the cert-manager.io/v1 API is not served)" in errors[0], done.stderr
    assert "skipCertManagerCheck" in errors[0], done.stderr
    cluster.apply(*CERT_MANAGER, *MONITORING)
    wait_for_api(kubeconfig, "cert-manager.io/v1")
    wait_for_api(kubeconfig, "monitoring.coreos.com/v1")


@pytest.mark.parametrize("name", chart.combinations())
def test_each_combination_installs_and_uninstalls(
    helm: Path, kubeconfig: Path, crds_after_absent_check: None, name: str
) -> None:
    release = "harvester-upgrade-bff"
    namespace = chart.namespace_of(name)
    notes = install(helm, kubeconfig, release, name)
    expected = f"harvester-upgrade-bff doctor --namespace {namespace} --release {release}"
    assert expected in notes
    if name.startswith("rancher-"):
        assert f"{expected} --url https://rancher.example.com" in notes
    objects = manifest(helm, kubeconfig, release, namespace)
    assert objects
    for obj in objects:
        found = kubectl_get(kubeconfig, obj)
        assert found.returncode == 0, (obj["kind"], obj["metadata"]["name"], found.stderr)
    uninstall(helm, kubeconfig, release, namespace, objects)


def _secret(kubeconfig: Path, name: str) -> dict[str, str]:
    import json

    assert KUBECTL is not None
    done = run([KUBECTL, "get", "secret", name, "-n", "harvester-system", "-o", "json"], kubeconfig)
    assert done.returncode == 0, done.stderr
    data: dict[str, str] = json.loads(done.stdout)["data"]
    return data


def _ca_bundle(kubeconfig: Path, name: str) -> str:
    import json

    assert KUBECTL is not None
    done = run([KUBECTL, "get", "mutatingwebhookconfiguration", name, "-o", "json"], kubeconfig)
    assert done.returncode == 0, done.stderr
    (hook,) = json.loads(done.stdout)["webhooks"]
    return str(hook["clientConfig"]["caBundle"])


def test_chart_certificates_survive_helm_upgrade(
    helm: Path, kubeconfig: Path, crds_after_absent_check: None
) -> None:
    release, name = "kept", "none-chart"
    install(helm, kubeconfig, release, name)
    fullname = "kept-harvester-upgrade-bff"
    before = _secret(kubeconfig, f"{fullname}-webhook-tls")
    assert base64.b64decode(_ca_bundle(kubeconfig, fullname)) == base64.b64decode(before["ca.crt"])
    done = run(
        [str(helm), "upgrade", release, str(chart.CHART), "-n", "harvester-system",
         "--values", str(chart.values_file(name)), "--set", "replicas=3"],
        kubeconfig,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    after = _secret(kubeconfig, f"{fullname}-webhook-tls")
    assert after == before
    assert base64.b64decode(_ca_bundle(kubeconfig, fullname)) == base64.b64decode(after["ca.crt"])
    objects = manifest(helm, kubeconfig, release, "harvester-system")
    uninstall(helm, kubeconfig, release, "harvester-system", objects)


def test_self_source_rbac_is_exactly_what_the_bff_needs(
    cluster: RealApiServer, helm: Path, kubeconfig: Path, crds_after_absent_check: None
) -> None:
    release, name = "own", "none-self"
    install(helm, kubeconfig, release, name)
    fullname = "own-harvester-upgrade-bff"
    cluster.wait_for_rbac()
    user = service_account_user("harvester-system", fullname)
    secret = f"{fullname}-webhook-tls"

    def may(
        verb: str,
        resource: str,
        name_: str = "",
        group: str = "",
        namespace: str = "harvester-system",
    ) -> bool:
        return cluster.allowed(user, SA_GROUPS, verb=verb, group=group, resource=resource,
                               namespace=namespace, name=name_)  # fmt: skip

    for verb in ("get", "update", "patch"):
        assert may(verb, "secrets", secret), verb
        assert not may(verb, "secrets", "another-secret"), verb
    assert may("create", "secrets")
    assert not may("delete", "secrets", secret)
    assert not may("list", "secrets")
    assert not may("create", "secrets", namespace="kube-system")
    mwc = ("admissionregistration.k8s.io", "mutatingwebhookconfigurations")
    for verb in ("get", "patch"):
        assert may(verb, mwc[1], fullname, group=mwc[0], namespace=""), verb
        assert not may(verb, mwc[1], "another-webhook", group=mwc[0], namespace=""), verb
    assert not may("update", mwc[1], fullname, group=mwc[0], namespace="")
    assert not may("delete", mwc[1], fullname, group=mwc[0], namespace="")
    objects = manifest(helm, kubeconfig, release, "harvester-system")
    # doctor reads self mode from the installed Deployment's arguments, and every
    # permission its one list names for it is granted by the chart.
    (deployment,) = (o for o in objects if o["kind"] == "Deployment")
    certificates = self_certificates(container_args(deployment), {})
    assert certificates == SelfCertificates("harvester-system", secret, fullname)
    wanted = [
        p for p in needed(AuthMode.PASSTHROUGH, read_cache=False, rancher=False,
                          namespace="harvester-system", certificates=certificates)
        if p.used_by.startswith("bff.kube.webhook_certs")
    ]  # fmt: skip
    assert len(wanted) == 5
    for p in wanted:
        assert may(p.verb, p.resource, p.name, group=p.group, namespace=p.namespace), str(p)
    uninstall(helm, kubeconfig, release, "harvester-system", objects)
