"""Rancher mode against a real kube-apiserver: the BFF over verified TLS to the simulated
Rancher, whose cluster proxy reaches the real server as a real service account and
impersonates the Rancher user the way Rancher does. The real server's authenticator,
impersonation filter and RBAC judge what the emulator judges in tests/test_rancher.py.
"""

from __future__ import annotations

import json
import ssl
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from bff.app import create_app
from bff.patches import mark_read_patch
from bff.sandbox.kubeconfig import write_kubeconfig
from bff.sandbox.rancher import RANCHER_RECORD, Upstream, create_rancher_app
from bff.sandbox.tls import SandboxCA
from bff.sandbox.users import RANCHER_ADMIN, RANCHER_SERVICE_ACCOUNT, RANCHER_VIEWER
from bff.settings import Command, from_sources
from tests.support.backends import FAILED, MERGE, NS, SUCCEEDED
from tests.support.recorder import Recorder

pytestmark = pytest.mark.real_apiserver

ADMIN = "token-sbadm:sandboxrancheradminsecret"
VIEWER = "token-sbvwr:sandboxrancherviewersecret"
RBAC = "rbac.authorization.k8s.io"
SA_NAMESPACE, SA_NAME = RANCHER_SERVICE_ACCOUNT.removeprefix("system:serviceaccount:").split(":")
PREFIX = "test-rancher"


def _binding(name: str, role: str, subject: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": f"{RBAC}/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": f"{PREFIX}:{name}"},
        "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": role},
        "subjects": [subject],
    }


def _user(name: str) -> dict[str, str]:
    return {"apiGroup": RBAC, "kind": "User", "name": name}


#: Rancher's rights on a cluster it proxies, and the two Rancher users' bindings, as
#: real RBAC objects (the emulator's table has the same rows).
CLUSTER_ROLE: dict[str, Any] = {
    "apiVersion": f"{RBAC}/v1",
    "kind": "ClusterRole",
    "metadata": {"name": f"{PREFIX}:impersonator"},
    "rules": [
        {"apiGroups": [""], "resources": ["users", "groups"], "verbs": ["impersonate"]},
        {"apiGroups": ["authentication.k8s.io"], "resources": ["userextras/principalid",
         "userextras/username"], "verbs": ["impersonate"]},
    ],
}  # fmt: skip
BINDINGS = [
    _binding("impersonator", f"{PREFIX}:impersonator",
             {"kind": "ServiceAccount", "name": SA_NAME, "namespace": SA_NAMESPACE}),
    _binding("admin", "cluster-admin", _user(RANCHER_ADMIN)),
    _binding("viewer", "harness:upgrade-viewer", _user(RANCHER_VIEWER)),
]  # fmt: skip
CLUSTER_ROLES = "/apis/rbac.authorization.k8s.io/v1/clusterroles"
CLUSTER_ROLE_BINDINGS = "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings"


def _create(real: Any, path: str, obj: dict[str, Any]) -> None:
    answer = real.request("POST", path, obj)
    assert answer.status in (201, 409), (path, answer.status, answer.body)


async def test_rancher_mode_against_a_real_api_server(
    real_apiserver: Any,
    tmp_path: Path,
    aiohttp_server: Callable[..., Any],
    aiohttp_client: Callable[..., Any],
) -> None:
    real = real_apiserver
    real.reset()
    _create(real, "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                          "metadata": {"name": SA_NAMESPACE}})  # fmt: skip
    account = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": SA_NAME}}
    _create(real, f"/api/v1/namespaces/{SA_NAMESPACE}/serviceaccounts", account)
    _create(real, CLUSTER_ROLES, CLUSTER_ROLE)
    for binding in BINDINGS:
        _create(real, CLUSTER_ROLE_BINDINGS, binding)
    try:
        issued = real.request(
            "POST", f"/api/v1/namespaces/{SA_NAMESPACE}/serviceaccounts/{SA_NAME}/token",
            {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
             "spec": {"expirationSeconds": 600}},
        )  # fmt: skip
        assert issued.status == 201, issued.body
        recorder = Recorder(real.url, ssl.create_default_context(cafile=str(real.ca_file)))
        between: TestServer = await aiohttp_server(recorder.app())
        ca = SandboxCA.create()
        proxy_app = create_rancher_app(
            {"local": Upstream(str(between.make_url("")).rstrip("/"),
                               token=issued.body["status"]["token"])}
        )  # fmt: skip
        proxy: TestServer = await aiohttp_server(proxy_app, ssl=ca.server_context(tmp_path))
        own = write_kubeconfig(tmp_path / "bff.kubeconfig", real.url, token="sandbox-bff",
                               ca_file=str(real.ca_file))  # fmt: skip
        settings = from_sources(
            {"kubeconfig": str(own), "rancher_url": f"https://127.0.0.1:{proxy.port}",
             "rancher_ca_bundle": str(ca.write_ca(tmp_path / "ca.crt"))},
            {}, command=Command.SERVE,
        )  # fmt: skip
        bff: TestClient[web.Request, web.Application] = await aiohttp_client(create_app(settings))
        ready = await bff.get("/readyz")
        assert ready.status == 200, await ready.text()

        def live(name: str) -> dict[str, Any]:
            answer = real.request("GET", real.upgrades_path(name))
            assert answer.status == 200
            return answer.body  # type: ignore[no-any-return]

        unread = live(SUCCEEDED)
        refused = await bff.post(f"/api/v1.0.5/upgrades/{NS}/{SUCCEEDED}?action=dismiss",
                                 headers={"Authorization": f"Bearer {VIEWER}"})  # fmt: skip
        assert refused.status == 403
        assert f'User "{RANCHER_VIEWER}" cannot patch' in (await refused.json())["message"]
        assert live(SUCCEEDED) == unread

        before = live(FAILED)
        done = await bff.post(f"/api/v1.0.5/upgrades/{NS}/{FAILED}?action=dismiss",
                              headers={"Authorization": f"Bearer {ADMIN}"})  # fmt: skip
        assert done.status == 200, await done.text()
        after = live(FAILED)
        assert json.dumps(after["status"]) == json.dumps(before["status"])
        assert after["metadata"]["labels"]["harvesterhci.io/read-message"] == "true"

        viewer_patch, admin_patch = recorder.writes
        assert (viewer_patch.method, viewer_patch.status) == ("PATCH", 403)
        assert (admin_patch.method, admin_patch.status, admin_patch.content_type) == (
            "PATCH", 200, MERGE)  # fmt: skip
        assert admin_patch.body == mark_read_patch(before["metadata"]["resourceVersion"])
        sent = [(k.lower(), v) for k, v in admin_patch.header_items]
        assert ("impersonate-user", RANCHER_ADMIN) in sent
        assert ("impersonate-group", "system:cattle:authenticated") in sent
        assert ("impersonate-extra-principalid", f"local://{RANCHER_ADMIN}") in sent
        assert all(f.path.startswith("/k8s/clusters/local/") for f in
                   proxy_app[RANCHER_RECORD].forwarded)  # fmt: skip
    finally:
        for binding in BINDINGS:
            real.request("DELETE", f"{CLUSTER_ROLE_BINDINGS}/{binding['metadata']['name']}")
        real.request("DELETE", f"{CLUSTER_ROLES}/{CLUSTER_ROLE['metadata']['name']}")
        real.request("DELETE", f"/api/v1/namespaces/{SA_NAMESPACE}/serviceaccounts/{SA_NAME}")
