"""The Helm chart renders exactly the objects of each kustomize layout.

``helm template`` of ``deploy/chart/harvester-upgrade-bff`` with
``ci/<layout>-values.yaml`` must equal ``kubectl kustomize`` of that layout
(or, without kubectl, the loader in test_deploy that another test holds equal
to it), object by object: each YAML document parsed, the two sets compared as
normalised dicts, order aside. ``helm lint`` must pass, and the chart must
refuse the combinations the BFF refuses at start.

helm comes from tests/support/helm.py (cached, or built with ``go install``).
Without Go or a cached binary these tests skip with one line, unless
``BFF_REQUIRE_HELM=1`` (CI), which makes that a failure.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.helm import HelmUnavailable, ensure_helm
from tests.test_deploy import ALL_BUILDS, DEPLOY, built

CHART = DEPLOY / "chart" / "harvester-upgrade-bff"
#: The release namespace each layout installs into (its objects' namespace).
NAMESPACES = {name: "harvester-system" for name in ALL_BUILDS} | {"rancher": "cattle-system"}
REQUIRED = os.environ.get("BFF_REQUIRE_HELM") == "1"


@pytest.fixture(scope="module")
def helm() -> Path:
    try:
        return ensure_helm()
    except HelmUnavailable as exc:
        if REQUIRED:
            pytest.fail(f"BFF_REQUIRE_HELM=1 but {exc}")
        pytest.skip(str(exc))


def template(
    helm: Path, values: Path, namespace: str, *extra: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(helm), "template", "harvester-upgrade-bff", str(CHART), "--namespace", namespace,
         "--values", str(values), *extra],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def normalised(documents: list[Any]) -> list[str]:
    return sorted(json.dumps(doc, sort_keys=True) for doc in documents if doc is not None)


def kustomized(name: str) -> list[Any]:
    if shutil.which("kubectl") is None:
        return built(name)
    result = subprocess.run(
        ["kubectl", "kustomize", str(ALL_BUILDS[name])],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    return list(yaml.safe_load_all(result.stdout))


def by_id(documents: list[str]) -> dict[tuple[str, str, str], Any]:
    out = {}
    for doc in map(json.loads, documents):
        meta = doc["metadata"]
        out[(doc["kind"], meta.get("namespace", ""), meta["name"])] = doc
    return out


def test_every_layout_has_values_and_nothing_else_does() -> None:
    assert {p.name for p in (CHART / "ci").iterdir()} == {f"{n}-values.yaml" for n in ALL_BUILDS}


@pytest.mark.parametrize("name", ALL_BUILDS)
def test_the_chart_renders_the_kustomize_layout(helm: Path, name: str) -> None:
    result = template(helm, CHART / "ci" / f"{name}-values.yaml", NAMESPACES[name])
    assert result.returncode == 0, result.stderr
    ours = normalised(list(yaml.safe_load_all(result.stdout)))
    theirs = normalised(kustomized(name))
    # Object by object, so a difference names the object.
    mine, kustomize = by_id(ours), by_id(theirs)
    assert sorted(mine) == sorted(kustomize)
    for key, obj in kustomize.items():
        assert mine[key] == obj, key
    assert ours == theirs


def test_helm_lint_passes_for_every_layout(helm: Path) -> None:
    for name in ALL_BUILDS:
        result = subprocess.run(
            [str(helm), "lint", str(CHART), "--strict", "--namespace", NAMESPACES[name],
             "--values", str(CHART / "ci" / f"{name}-values.yaml")],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert result.returncode == 0, f"{name}: {result.stdout}{result.stderr}"


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (["--set", "rancher.enabled=true"], "readCache: false"),
        (["--set", "rancher.enabled=true,readCache=false,authMode=impersonate"], "passthrough"),
        (["--set", "ui=rancher"], "rancher.enabled: true"),
        (
            ["--set", "rancher.enabled=true,readCache=false,rancher.defaultCluster=c-m-other"],
            "one of rancher.clusters",
        ),
        (["--set", "authMode=other"], "passthrough or impersonate"),
    ],
)
def test_the_chart_refuses_what_the_bff_refuses(
    helm: Path, values: list[str], message: str
) -> None:
    result = template(helm, CHART / "ci" / "base-values.yaml", "harvester-system", *values)
    assert result.returncode != 0
    assert message in result.stderr


def test_rancher_clusters_generate_one_pair_of_paths_each(helm: Path) -> None:
    result = template(
        helm, CHART / "ci" / "rancher-values.yaml", "cattle-system",
        "--set", "rancher.clusters={c-m-aaaa1111,c-m-bbbb2222},rancher.defaultCluster=c-m-bbbb2222",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    docs = [d for d in yaml.safe_load_all(result.stdout) if d]
    ingresses = [d for d in docs if d["kind"] == "Ingress"]
    assert [i["metadata"]["name"] for i in ingresses] == [
        "harvester-upgrade-bff",
        "harvester-upgrade-bff-steve",
    ]
    paths = [
        (p["path"], p["pathType"])
        for ingress in ingresses
        for p in ingress["spec"]["rules"][0]["http"]["paths"]
    ]
    for cluster in ("c-m-aaaa1111", "c-m-bbbb2222"):
        item = f"/k8s/clusters/{cluster}/v1/harvester/harvesterhci.io.upgrades/harvester-system"
        assert (item, "Prefix") in paths
        assert (item, "Exact") in paths
    (deployment,) = (d for d in docs if d["kind"] == "Deployment")
    env = {
        e["name"]: e["value"]
        for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert env["BFF_CLUSTERS"] == "c-m-aaaa1111,c-m-bbbb2222"
    assert env["BFF_DEFAULT_CLUSTER"] == "c-m-bbbb2222"


def test_a_changed_guard_table_renders_the_configuration_the_bff_builds(
    helm: Path, tmp_path: Path
) -> None:
    """webhook.guardedResources and trustedWriters render the same webhook as
    bff/admission/configuration.py builds from the BFF_GUARD_RESOURCES they render."""
    from bff.admission.configuration import configuration, service_client_config
    from bff.admission.guard import TrustedWriters
    from bff.admission.resources import table_from

    values = tmp_path / "values.yaml"
    values.write_text(
        yaml.safe_dump(
            {
                "webhook": {
                    "enabled": True,
                    "trustedWriters": ["user:alice", "group:ops", "bob"],
                    "guardedResources": [
                        {"group": "example.com", "version": "v1", "resource": "widgets",
                         "owners": ["system:serviceaccount:tools:widget", "carol"],
                         "keep": ["status"], "mode": "deny"},
                        {"group": "harvesterhci.io", "version": "v1beta1",
                         "resource": "upgrades", "owners": ["carol"],
                         "keep": ["status", "finalizers", "ownerReferences"]},
                    ],
                }
            }
        )
    )  # fmt: skip
    done = template(helm, values, "harvester-system")
    assert done.returncode == 0, done.stderr
    documents = [d for d in yaml.safe_load_all(done.stdout) if d]
    (shipped,) = [d for d in documents if d["kind"] == "MutatingWebhookConfiguration"]
    (deployment,) = [d for d in documents if d["kind"] == "Deployment"]
    env = {e["name"]: e.get("value") for e in deployment["spec"]["template"]["spec"]
           ["containers"][0]["env"]}  # fmt: skip
    table = table_from(env["BFF_GUARD_RESOURCES"].split(","))
    widgets = table.find("example.com", "widgets")
    assert widgets is not None
    assert widgets.mode == "deny"
    assert len(table) == 2
    trusted = TrustedWriters.parse(env["BFF_TRUSTED_WRITER"].split(","))
    expected = configuration(table, trusted, service_client_config())
    assert shipped["webhooks"] == expected["webhooks"]
