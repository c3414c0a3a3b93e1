"""The sandbox's simulated Rancher: its tokens, its cluster proxy's impersonation, Steve's
create of an Upgrade, and the ``sandbox`` command that starts it (with a BFF in Rancher
mode in front, as the banner says)."""

from __future__ import annotations

import contextlib
import json
import re
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from bff import captured
from bff.sandbox.emulator import EMULATOR_JOURNAL, EMULATOR_STORE
from bff.sandbox.rancher import RANCHER_RECORD, Upstream, create_rancher_app
from bff.sandbox.runner import Sandbox, running
from bff.sandbox.users import RANCHER_ADMIN, RANCHER_VIEWER
from bff.settings import Settings
from tests.support.processes import command, started
from tests.support.silent_tls import EVENT, SilentTlsUpstream, sockets_to

ADMIN = "token-sbadm:sandboxrancheradminsecret"
VIEWER = "token-sbvwr:sandboxrancherviewersecret"
NS = "harvester-system"
UPGRADES = f"/apis/harvesterhci.io/v1beta1/namespaces/{NS}/upgrades"
STEVE = "/v1/harvester/harvesterhci.io.upgrades"


@pytest.fixture
async def sandbox() -> AsyncIterator[Sandbox]:
    async with running(Settings(port=0), kube_port=0, interval=0, rancher_port=0) as started:
        yield started


async def _call(
    sandbox: Sandbox,
    method: str,
    path: str,
    *,
    body: Any = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any]:
    assert sandbox.rancher_url is not None
    async with (
        aiohttp.ClientSession() as session,
        session.request(
            method, sandbox.rancher_url + path, json=body, headers=headers, ssl=sandbox.client_ssl
        ) as response,  # fmt: skip
    ):
        text = await response.text()
        try:
            return response.status, json.loads(text)
        except ValueError:
            return response.status, text


def _cookie(token: str, csrf: str | None = None) -> dict[str, str]:
    cookie = f"R_SESS={token}" + (f"; CSRF={csrf}" if csrf else "")
    return {"Cookie": cookie, **({"X-API-CSRF": csrf} if csrf else {})}


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_the_proxy_acts_as_the_rancher_user_for_a_token_or_a_cookie(
    sandbox: Sandbox,
) -> None:
    for headers, user in ((_bearer(VIEWER), RANCHER_VIEWER), (_cookie(ADMIN), RANCHER_ADMIN)):
        status, listed = await _call(sandbox, "GET", f"/k8s/clusters/local{UPGRADES}",
                                     headers=headers)  # fmt: skip
        assert status == 200
        assert len(listed["items"]) == 3
        forwarded = sandbox.rancher[RANCHER_RECORD].forwarded[-1]  # type: ignore[index]
        assert (forwarded.cluster, forwarded.user) == ("local", user)
    # A write as the viewer reaches the cluster as the viewer, and RBAC refuses it there.
    patch = {"metadata": {"labels": {"harvesterhci.io/read-message": "true"}}}
    status, refused = await _call(
        sandbox, "PATCH", f"/k8s/clusters/local{UPGRADES}/hvst-upgrade-fl4k2", body=patch,
        headers={**_bearer(VIEWER), "Content-Type": "application/merge-patch+json",
                 # The caller's own impersonation never gets through: Rancher sets its own.
                 "Impersonate-User": RANCHER_ADMIN, "Impersonate-Group": "system:masters"},
    )  # fmt: skip
    assert status == 403, refused
    assert f'User "{RANCHER_VIEWER}" cannot patch' in refused["message"]
    (entry,) = sandbox.emulator[EMULATOR_JOURNAL].writes()
    assert (entry.method, entry.user, entry.status) == ("PATCH", RANCHER_VIEWER, 403)


async def test_unknown_tokens_are_401_and_unknown_clusters_404_before_forwarding(
    sandbox: Sandbox,
) -> None:
    for headers in ({}, _bearer("token-nope0:notasecret"), _cookie("sandbox-admin"),
                    {"Authorization": f"Basic {ADMIN}"}):  # fmt: skip
        status, body = await _call(sandbox, "GET", f"/k8s/clusters/local{UPGRADES}",
                                   headers=headers)  # fmt: skip
        assert status == 401, headers
        assert body["type"] == "error"
    status, body = await _call(sandbox, "GET", f"/k8s/clusters/c-m-nope{UPGRADES}",
                               headers=_bearer(ADMIN))  # fmt: skip
    assert status == 404
    assert "c-m-nope" in body["message"]
    status, _ = await _call(sandbox, "GET", "/v3/users", headers=_bearer(ADMIN))
    assert status == 404
    assert sandbox.rancher[RANCHER_RECORD].forwarded == []  # type: ignore[index]
    assert await _call(sandbox, "GET", "/ping") == (200, "pong")


@pytest.mark.parametrize("base", ["", "/k8s/clusters/local"])
async def test_the_dashboards_create_body_creates_the_upgrade_as_the_user(
    sandbox: Sandbox, base: str
) -> None:
    (create,) = (r for r in captured.dashboard_requests()["requests"] if r["name"] == "create")
    assert create["method"] == "POST"
    path = create["path"].replace("{base}", base + "/v1/harvester")
    assert path == f"{base}{STEVE}/{NS}"
    journal = sandbox.emulator[EMULATOR_JOURNAL]
    # A cookie without the CSRF double submit is refused before anything is sent.
    status, _ = await _call(sandbox, "POST", path, body=create["body"], headers=_cookie(ADMIN))
    assert status == 403
    assert journal.writes("POST") == []
    # The viewer may not create: refused by the cluster, for the viewer.
    status, _ = await _call(sandbox, "POST", path, body=create["body"],
                            headers=_cookie(VIEWER, "n0nce"))  # fmt: skip
    assert status == 403
    assert [(e.user, e.status) for e in journal.writes("POST")] == [(RANCHER_VIEWER, 403)]
    status, made = await _call(sandbox, "POST", path, body=create["body"],
                               headers=_cookie(ADMIN, "n0nce"))  # fmt: skip
    assert status == 201, made
    name = made["metadata"]["name"]
    assert name.startswith("hvst-upgrade-")
    assert (made["id"], made["type"]) == (f"{NS}/{name}", "harvesterhci.io.upgrade")
    assert made["links"]["self"].endswith(f"{path}/{name}")
    stored = sandbox.emulator[EMULATOR_STORE].get(NS, name)
    assert stored is not None
    assert (stored["apiVersion"], stored["kind"]) == ("harvesterhci.io/v1beta1", "Upgrade")
    assert stored["spec"] == create["body"]["spec"]
    assert stored["metadata"]["annotations"] == create["body"]["metadata"]["annotations"]
    assert "type" not in stored
    assert [(e.user, e.status) for e in journal.writes("POST")][-1] == (RANCHER_ADMIN, 201)


# --- the command ---------------------------------------------------------------------


def _request(url: str, token: str, method: str = "GET",
             context: ssl.SSLContext | None = None) -> tuple[int, Any]:  # fmt: skip
    request = urllib.request.Request(  # noqa: S310 (loopback URLs the test built)
        url, method=method, headers={"Authorization": f"Bearer {token}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10, context=context) as response:  # noqa: S310
            return response.status, json.load(response)
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, json.load(exc)


def _ready(url: str) -> bool:
    with (
        contextlib.suppress(urllib.error.URLError, ConnectionError),
        urllib.request.urlopen(url, timeout=2) as ready,  # noqa: S310 (loopback)
    ):
        return bool(ready.status == 200)
    return False


def test_the_sandbox_starts_its_rancher_and_a_rancher_mode_bff_works_through_it() -> None:
    with started(
        command("sandbox", "--port", "0", "--kube-port", "0", "--rancher-port", "0")
    ) as sb:
        text = sb.banner()
        found = re.search(r"Simulated Rancher\s+(https://127\.0\.0\.1:\d+)$", text, re.M)
        assert found is not None, text
        rancher = found.group(1)
        assert ADMIN in text
        assert VIEWER in text
        ca = re.search(r"--cacert (\S+)", text)
        assert ca is not None
        context = ssl.create_default_context(cafile=ca.group(1))
        status, listed = _request(f"{rancher}/k8s/clusters/local{UPGRADES}", VIEWER,
                                  context=context)  # fmt: skip
        assert status == 200
        assert len(listed["items"]) == 3
        # The banner's Rancher-mode BFF, on a free port instead of 8081.
        serve_line = re.search(r"harvester-upgrade-bff serve (.+?)\\\n\s+(.+?)\n", text)
        assert serve_line is not None, text
        argv = f"{serve_line.group(1)} {serve_line.group(2)}".replace("8081", "0").split()
        with started(command("serve", *argv), stderr=subprocess.STDOUT) as serve:
            url = serve.read_until(r"serving on (http://127\.0\.0\.1:\d+)").group(1)
            for _ in range(100):
                if _ready(f"{url}/readyz"):
                    break
                time.sleep(0.1)
            else:
                pytest.fail("the Rancher-mode BFF never became ready")
            dismiss = f"{url}/api/v1.0.5/upgrades/{NS}/hvst-upgrade-7xn6v?action=dismiss"
            status, refused = _request(dismiss, VIEWER, "POST")
            assert status == 403, refused
            assert RANCHER_VIEWER in refused["message"]
            example = next(line for line in text.splitlines() if f"{NS}/hvst-upgrade-fl4k2" in line)
            example = example.strip().strip("'").replace("http://127.0.0.1:8081", url)
            status, done = _request(example, ADMIN, "POST")
            assert status == 200, done
            assert done["metadata"]["labels"]["harvesterhci.io/read-message"] == "true"
            assert serve.stop() == 0
        assert sb.stop() == 0


async def test_a_watch_its_caller_left_is_dropped_before_rancher_stops(tmp_path: Path) -> None:
    # The cluster never answers a TLS close: only a dropped connection is gone at the stop.
    with SilentTlsUpstream(tmp_path, {}) as cluster:
        rancher = TestServer(
            create_rancher_app({"c-1": Upstream(cluster.url, cluster.client_context())})
        )
        await rancher.start_server()
        try:
            async with (
                aiohttp.ClientSession() as session,
                session.get(
                    rancher.make_url(f"/k8s/clusters/c-1{UPGRADES}?watch=true"),
                    headers=_bearer(ADMIN),
                ) as response,
            ):
                assert await response.content.readline() == EVENT
                assert sockets_to(cluster.port) == 1
        finally:
            await rancher.close()
        assert sockets_to(cluster.port) == 0
