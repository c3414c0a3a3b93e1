"""The chart's RBAC, proved on a real kube-apiserver: enough, and nothing more.

A server of its own, where the harness grants the BFF's service account
nothing. Each test applies what the chart renders (``deploy/manifests/``, held
equal to the chart by tests/test_manifests.py) with stock ``kubectl apply``,
gets the service account's token with ``kubectl
create token`` (TokenRequest), and runs the BFF with only that identity:

* **enough**: in each mode, with the read cache off and on, readiness, reads
  and the dismiss work, for a
  static-token user and for a caller that is itself a service account (whose
  token carries a uid and an extra, so every kind of impersonation is needed);
* **nothing more**: for every (API group, resource, verb) the rendered objects
  grant the BFF's service account, one of those runs *without* that one grant
  fails. A grant the run does not need is a test failure, and the
  grant goes.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp.test_utils import TestClient

from bff.app import create_app
from bff.identities import AuthMode
from bff.sandbox.kubeconfig import write_kubeconfig
from bff.settings import Settings
from tests.support.real_apiserver import (
    BFF_SERVICE_ACCOUNT,
    CONTROLLER_SERVICE_ACCOUNT,
    DEPLOY,
    NAMESPACE,
    RBAC_KINDS,
    RealApiServer,
    RealApiServerUnavailable,
    manifest_objects,
    service_account_user,
    unavailable_reason,
)

pytestmark = pytest.mark.real_apiserver

REQUIRED = os.environ.get("BFF_REQUIRE_REAL_APISERVER") == "1"
KUBECTL = shutil.which("kubectl")

if not REQUIRED and ((_why := unavailable_reason()) or (_why := None if KUBECTL else "no kubectl")):
    pytest.skip(f"real API server unavailable: {_why}", allow_module_level=True)

# ui none (no Ingress), passthrough with the read cache's Role; and impersonate.
BASE = DEPLOY / "manifests" / "none-noguard.yaml"
IMPERSONATE = DEPLOY / "manifests" / "none-impersonate.yaml"
SUCCEEDED, FAILED, IN_PROGRESS = "hvst-upgrade-7xn6v", "hvst-upgrade-fl4k2", "hvst-upgrade-zjft7"
READ = "harvesterhci.io/read-message"
BFF_USER = service_account_user(*BFF_SERVICE_ACCOUNT)


@pytest.fixture(scope="module")
def cluster() -> Iterator[RealApiServer]:
    if KUBECTL is None:
        pytest.fail("kubectl is required to apply deploy/manifests and is not installed")
    server = RealApiServer(bff_rbac=False)
    try:
        server.start()
    except RealApiServerUnavailable as exc:
        if REQUIRED:
            pytest.fail(f"real API server required but unavailable: {exc}")
        pytest.skip(f"real API server unavailable: {exc}")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def admin_kubeconfig(cluster: RealApiServer, tmp_path: Path) -> Path:
    return cluster.kubeconfig(tmp_path / "admin.kubeconfig", token="sandbox-admin")


def kubectl(kubeconfig: Path, *args: str, stdin: str | None = None) -> str:
    assert KUBECTL is not None
    result = subprocess.run(
        [KUBECTL, "--kubeconfig", str(kubeconfig), *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, (args, result.stderr)
    return result.stdout


def rendered(kubeconfig: Path, directory: Path) -> list[dict[str, Any]]:
    del kubeconfig  # rendered by the chart already, no cluster needed
    return manifest_objects(directory)


def granted_to_bff(objects: list[dict[str, Any]]) -> list[tuple[str, str, str, str]]:
    """(role kind/name, API group, resource, verb) for every grant bound to the BFF's account."""
    namespace, name = BFF_SERVICE_ACCOUNT
    subject = {"kind": "ServiceAccount", "name": name, "namespace": namespace}
    roles = {(o["kind"], o["metadata"]["name"]): o for o in objects if o["kind"] in RBAC_KINDS}
    grants = []
    for binding in (o for o in objects if o["kind"] in ("RoleBinding", "ClusterRoleBinding")):
        if subject not in binding.get("subjects", []):
            continue
        ref = binding["roleRef"]
        role = roles[(ref["kind"], ref["name"])]
        for rule in role.get("rules", []):
            assert "nonResourceURLs" not in rule, "no non-resource grants expected"
            assert "resourceNames" not in rule, "no per-name grants expected"
            for group in rule["apiGroups"]:
                for resource in rule["resources"]:
                    for verb in rule["verbs"]:
                        grants.append((f"{ref['kind']}/{ref['name']}", group, resource, verb))
    return grants


def without(rules: list[dict[str, Any]], group: str, resource: str, verb: str) -> list[Any]:
    """``rules`` with one (group, resource, verb) taken out, every other grant kept."""
    out = []
    for rule in rules:
        for g in rule["apiGroups"]:
            for r in rule["resources"]:
                verbs = [v for v in rule["verbs"] if (g, r, v) != (group, resource, verb)]
                if verbs:
                    out.append({"apiGroups": [g], "resources": [r], "verbs": verbs})
    return out


def set_rules(cluster: RealApiServer, role: dict[str, Any], rules: list[Any]) -> None:
    """Replace a role's rules (a PUT of the live object), and wait for the authorizer."""
    path = cluster.object_path(role)
    live = cluster.request("GET", path).body
    live["rules"] = rules
    r = cluster.request("PUT", path, live)
    assert r.status == 200, r.body
    cluster.wait_for_rbac()


def apply_deploy(cluster: RealApiServer, kubeconfig: Path, directory: Path) -> list[dict[str, Any]]:
    """Apply everything ``directory`` renders, after removing what another build added."""
    objects = rendered(kubeconfig, directory)
    every = rendered(kubeconfig, IMPERSONATE)
    names = {(o["kind"], o["metadata"]["name"]) for o in objects}
    extra = [o for o in every if (o["kind"], o["metadata"]["name"]) not in names]
    cluster.delete(*(o for o in extra if o["kind"] in RBAC_KINDS))
    # The namespaces the objects live in exist on a Harvester cluster already
    # (harvester-system, and cattle-system for Rancher, where the Steve Ingress goes).
    namespaces = sorted(
        {o["metadata"]["namespace"] for o in objects if "namespace" in o["metadata"]}
    )
    present = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n}} for n in namespaces
    ]
    kubectl(kubeconfig, "apply", "-f", "-", stdin=yaml.safe_dump_all([*present, *objects]))
    cluster.wait_for_rbac()
    cluster.reset()
    return objects


def bff_token(kubeconfig: Path) -> str:
    namespace, name = BFF_SERVICE_ACCOUNT
    token = kubectl(kubeconfig, "-n", namespace, "create", "token", name, "--duration=10m")
    return token.strip()


Client = Callable[..., Awaitable[TestClient]]  # type: ignore[type-arg]


READY_WAIT = 50  # x 0.1 s: the read cache is ready once it has listed and watches


async def run_bff(
    cluster: RealApiServer,
    tmp_path: Path,
    aiohttp_client: Client,
    mode: AuthMode,
    token: str,
    read_cache: bool,
) -> dict[str, int]:
    """The BFF with only ``token``: readiness, reads and dismisses; each step's status."""
    config = write_kubeconfig(
        tmp_path / f"bff-{mode.value}.kubeconfig", cluster.url, token=token,
        ca_file=str(cluster.ca_file),
    )  # fmt: skip
    settings = Settings(
        kubeconfig=str(config), namespace=NAMESPACE, auth_mode=mode, read_cache=read_cache
    )
    client = await aiohttp_client(create_app(settings))
    ns, name = CONTROLLER_SERVICE_ACCOUNT
    callers = {
        "sandbox-admin": "sandbox-admin",
        # A service account's TokenRequest token: a uid, an extra (credential-id)
        # and a service-account user name, each its own kind of impersonation.
        "controller service account": cluster.create_token(ns, name, seconds=600),
    }
    base = "/api/v1.0.5/upgrades"
    for _ in range(READY_WAIT):
        ready = (await client.get("/readyz")).status
        if ready == 200:
            break
        await asyncio.sleep(0.1)
    steps: dict[str, int] = {"readyz": ready}
    for (who, caller), target in zip(callers.items(), (SUCCEEDED, FAILED), strict=True):
        auth = {"Authorization": f"Bearer {caller}"}
        listed = await client.get(base, headers=auth)
        steps[f"list as {who}"] = listed.status
        if listed.status == 200:
            assert len((await listed.json())["data"]) == 3
        one = f"{base}/{NAMESPACE}/{target}"
        steps[f"get as {who}"] = (await client.get(one, headers=auth)).status
        dismissed = await client.post(f"{one}?action=dismiss", headers=auth)
        steps[f"dismiss as {who}"] = dismissed.status
        # Read back through the BFF: with the read cache on, its watch must see the write.
        for _ in range(READY_WAIT):
            seen = await client.get(one, headers=auth)
            if seen.status != 200 or (await seen.json())["metadata"]["labels"].get(READ):
                break
            await asyncio.sleep(0.1)
        labels = (await seen.json())["metadata"]["labels"] if seen.status == 200 else {}
        steps[f"read back as {who}"] = 200 if labels.get(READ) == "true" else seen.status or 0
    # Another writer's change (straight to the API server) shows through the BFF:
    # with the read cache on, only its watch can bring it.
    poke = {"metadata": {"labels": {"example.com/poked": "yes"}}}
    await asyncio.to_thread(
        cluster.request, "PATCH", cluster.upgrades_path(IN_PROGRESS), poke,
        content_type="application/merge-patch+json",
    )  # fmt: skip
    auth = {"Authorization": "Bearer sandbox-admin"}
    for _ in range(READY_WAIT):
        seen = await client.get(f"{base}/{NAMESPACE}/{IN_PROGRESS}", headers=auth)
        poked = (
            seen.status == 200 and "example.com/poked" in (await seen.json())["metadata"]["labels"]
        )
        if poked:
            break
        await asyncio.sleep(0.1)
    steps["another writer's change seen"] = 200 if poked else 0
    for target in (SUCCEEDED, FAILED):
        labels = cluster.request("GET", cluster.upgrades_path(target)).body["metadata"]["labels"]
        steps[f"{target} read-message"] = 200 if labels.get(READ) == "true" else 0
    await client.close()
    return steps


def all_ok(steps: dict[str, int]) -> bool:
    return all(status == 200 for status in steps.values())


# Every supported way to run it; the most demanding first.
RUNS = [
    (AuthMode.IMPERSONATE, True),
    (AuthMode.IMPERSONATE, False),
    (AuthMode.PASSTHROUGH, True),
    (AuthMode.PASSTHROUGH, False),
]


@pytest.mark.parametrize(
    ("mode", "read_cache"), RUNS, ids=[f"{m.value}-cache-{'on' if c else 'off'}" for m, c in RUNS]
)
async def test_deploy_rbac_is_enough(
    cluster: RealApiServer,
    admin_kubeconfig: Path,
    tmp_path: Path,
    aiohttp_client: Client,
    mode: AuthMode,
    read_cache: bool,
) -> None:
    apply_deploy(cluster, admin_kubeconfig, IMPERSONATE if mode is AuthMode.IMPERSONATE else BASE)
    token = bff_token(admin_kubeconfig)
    assert cluster.review_token(token)["user"]["username"] == BFF_USER
    steps = await run_bff(cluster, tmp_path, aiohttp_client, mode, token, read_cache)
    assert all_ok(steps), steps


def test_the_bff_may_not_write_upgrades_with_its_own_identity(
    cluster: RealApiServer, admin_kubeconfig: Path
) -> None:
    apply_deploy(cluster, admin_kubeconfig, IMPERSONATE)
    groups = ["system:serviceaccounts", f"system:serviceaccounts:{NAMESPACE}"]
    for verb in ("get", "patch", "update", "create", "delete", "deletecollection"):
        assert not cluster.allowed(BFF_USER, groups, verb=verb), verb


IMPERSONATE_GRANTS = granted_to_bff(manifest_objects(IMPERSONATE))


@pytest.mark.parametrize(
    "grant", IMPERSONATE_GRANTS, ids=[f"{g[1] or 'core'}-{g[2]}-{g[3]}" for g in IMPERSONATE_GRANTS]
)
async def test_every_grant_is_needed(
    cluster: RealApiServer,
    admin_kubeconfig: Path,
    tmp_path: Path,
    aiohttp_client: Client,
    grant: tuple[str, str, str, str],
) -> None:
    objects = apply_deploy(cluster, admin_kubeconfig, IMPERSONATE)
    role_id, group, resource, verb = grant
    kind, name = role_id.split("/", 1)
    (role,) = (o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name)
    set_rules(cluster, role, without(role["rules"], group, resource, verb))
    sa_groups = ["system:serviceaccounts", f"system:serviceaccounts:{NAMESPACE}"]
    scope = NAMESPACE if kind == "Role" else ""
    if resource != "*":
        assert not cluster.allowed(
            BFF_USER, sa_groups, verb=verb, group=group, resource=resource, namespace=scope
        ), "the grant is still in effect"
    token = bff_token(admin_kubeconfig)
    try:
        steps = {}
        for mode, read_cache in RUNS:
            run = await run_bff(cluster, tmp_path, aiohttp_client, mode, token, read_cache)
            cluster.reset()
            steps.update({f"{mode.value}/{read_cache}: {s}": status for s, status in run.items()})
            if not all_ok(run):
                break
    finally:
        set_rules(cluster, role, role["rules"])
    failed = {step: status for step, status in steps.items() if status != 200}
    assert failed, f"{verb} on {resource} ({group or 'core'}) is granted but never used: {steps}"
