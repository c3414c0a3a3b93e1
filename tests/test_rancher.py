"""Rancher mode end to end: the BFF with --rancher-url, over verified TLS, in front of
the simulated Rancher's cluster proxy, in front of two emulators (clusters ``local`` and
``c-m-abc12345``). The real app, the real kubernetes-asyncio client, loopback HTTP.

What reached each cluster is read from the emulators' write journals (with the user the
proxy impersonated) and from the proxy's own record of the paths it forwarded.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from kubernetes_asyncio import client as k8s

from bff import captured, errors, kube
from bff.app import create_app, upstream_options
from bff.identities import RancherCaller, TokenCaller
from bff.kube import transport
from bff.kube.config import rancher_configuration
from bff.patches import mark_read_patch
from bff.rancher import Clusters
from bff.sandbox.emulator import EMULATOR_JOURNAL, EMULATOR_STORE, create_emulator_app
from bff.sandbox.journal import Journal
from bff.sandbox.kubeconfig import write_kubeconfig
from bff.sandbox.rancher import RANCHER_RECORD, Record, Upstream, create_rancher_app
from bff.sandbox.tls import SandboxCA
from bff.sandbox.users import RANCHER_ADMIN, RANCHER_VIEWER
from bff.settings import Command, Settings, SettingsError, from_sources, served_clusters
from bff.upgrade_resource import GROUP, PLURAL, VERSION
from tests.support.backends import FAILED, MERGE, NS, SUCCEEDED
from tests.support.recorder import Recorder

ADMIN = "token-sbadm:sandboxrancheradminsecret"
VIEWER = "token-sbvwr:sandboxrancherviewersecret"
SECRETS = ("sandboxrancheradminsecret", "sandboxrancherviewersecret", "sandbox-rancher")
OTHER = "c-m-abc12345"
ONLY_OTHER = "hvst-upgrade-other"
STEVE = "/v1/harvester/harvesterhci.io.upgrades"
BFFClient = TestClient[web.Request, web.Application]


@dataclass
class Rancher:
    url: str
    ca_file: Path
    record: Record
    local: web.Application
    other: web.Application
    #: Every request the BFF made with its own kubeconfig (its service account).
    own: Recorder
    own_kubeconfig: Path

    def journal(self, cluster: str = "local") -> Journal:
        return (self.local if cluster == "local" else self.other)[EMULATOR_JOURNAL]

    def live(self, name: str, cluster: str = "local") -> dict[str, Any]:
        app = self.local if cluster == "local" else self.other
        obj = app[EMULATOR_STORE].get(NS, name)
        assert obj is not None
        return obj

    def settings(self, **given: Any) -> Settings:
        values = {
            "kubeconfig": str(self.own_kubeconfig),
            "rancher_url": self.url,
            "rancher_ca_bundle": str(self.ca_file),
            "clusters": ["local", OTHER],
            **given,
        }
        return from_sources(values, {}, command=Command.SERVE)


@pytest.fixture
async def rancher(tmp_path: Path, aiohttp_server: Callable[..., Any]) -> Rancher:
    local: TestServer = await aiohttp_server(create_emulator_app())
    other: TestServer = await aiohttp_server(create_emulator_app())
    # An Upgrade that only the second cluster has.
    item = captured.upgrade("failed")
    item["metadata"] = {"name": ONLY_OTHER, "namespace": NS, "labels": {
        "harvesterhci.io/upgradeState": "Failed"}}  # fmt: skip
    other.app[EMULATOR_STORE].create(NS, item)
    ca = SandboxCA.create()
    ca_file = ca.write_ca(tmp_path / "rancher-ca.crt")
    proxy_app = create_rancher_app({"local": Upstream(_url(local)), OTHER: Upstream(_url(other))})
    proxy: TestServer = await aiohttp_server(proxy_app, ssl=ca.server_context(tmp_path))
    own = Recorder(_url(local))
    own_server: TestServer = await aiohttp_server(own.app())
    kubeconfig = write_kubeconfig(tmp_path / "bff.kubeconfig", _url(own_server),
                                  token="sandbox-bff")  # fmt: skip
    return Rancher(
        f"https://127.0.0.1:{proxy.port}",
        ca_file,
        proxy_app[RANCHER_RECORD],
        local.app,
        other.app,
        own,
        kubeconfig,
    )


def _url(server: TestServer) -> str:
    return str(server.make_url("")).rstrip("/")


@pytest.fixture
async def bff(rancher: Rancher, aiohttp_client: Callable[..., Any]) -> BFFClient:
    client: BFFClient = await aiohttp_client(create_app(rancher.settings()))
    return client


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _dismiss(name: str) -> str:
    return f"/api/v1.0.5/upgrades/{NS}/{name}?action=dismiss"


def _status_bytes(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj.get("status")).encode()


async def test_an_admin_dismisses_with_one_label_patch_as_the_rancher_user(
    rancher: Rancher, bff: BFFClient
) -> None:
    before = rancher.live(FAILED)
    response = await bff.post(_dismiss(FAILED), headers=_bearer(ADMIN))
    assert response.status == 200, await response.text()
    assert response.headers["X-Upgrade-Bff-Changed"] == "true"
    (write,) = rancher.journal().writes()
    assert (write.method, write.content_type, write.status) == ("PATCH", MERGE, 200)
    assert write.path.endswith(f"/namespaces/{NS}/upgrades/{FAILED}")
    assert write.body == mark_read_patch(before["metadata"]["resourceVersion"])
    # Rancher's proxy acted as the Rancher user, not as itself and not as the BFF.
    assert write.user == RANCHER_ADMIN
    after = rancher.live(FAILED)
    assert _status_bytes(after) == _status_bytes(before)
    assert after["metadata"]["labels"]["harvesterhci.io/read-message"] == "true"
    assert rancher.journal(OTHER).writes() == []
    assert {f.path.split("/apis/")[0] for f in rancher.record.forwarded} == {"/k8s/clusters/local"}
    assert {f.user for f in rancher.record.forwarded} == {RANCHER_ADMIN}


async def test_a_rancher_viewer_cannot_dismiss_and_nothing_is_written(
    rancher: Rancher, bff: BFFClient
) -> None:
    before = rancher.live(SUCCEEDED)
    response = await bff.post(_dismiss(SUCCEEDED), headers=_bearer(VIEWER))
    assert response.status == 403
    body = await response.json()
    assert body["type"] == "error"
    assert body["code"] == "Forbidden"
    assert RANCHER_VIEWER in body["message"]
    # The one write attempt reached the cluster as the viewer and was refused there.
    assert [(w.method, w.user, w.status) for w in rancher.journal().writes()] == [
        ("PATCH", RANCHER_VIEWER, 403)
    ]
    assert rancher.live(SUCCEEDED) == before
    # The viewer still reads.
    listed = await bff.get(f"{STEVE}/{NS}", headers=_bearer(VIEWER))
    assert listed.status == 200
    assert {d["id"] for d in (await listed.json())["data"]} >= {f"{NS}/{FAILED}"}


async def test_the_r_sess_cookie_needs_the_csrf_double_submit(
    rancher: Rancher, bff: BFFClient
) -> None:
    path = f"/k8s/clusters/local{STEVE}/{NS}/{SUCCEEDED}"
    body = captured.client_body("v1.0.4")
    before = rancher.live(SUCCEEDED)
    bff.session.cookie_jar.update_cookies({"R_SESS": ADMIN, "CSRF": "c5rf-n0nce"})
    refused = await bff.put(path, json=body)
    assert refused.status == 403
    assert (await refused.json())["code"] == "InvalidCSRFToken"
    wrong = await bff.put(path, json=body, headers={"X-API-CSRF": "other"})
    assert wrong.status == 403
    assert rancher.record.forwarded == []
    assert rancher.journal().writes() == []
    # A read with the cookie needs no CSRF header.
    read = await bff.get(path)
    assert read.status == 200
    assert (await read.json())["links"]["self"] == path
    accepted = await bff.put(path, json=body, headers={"X-API-CSRF": "c5rf-n0nce"})
    assert accepted.status == 200, await accepted.text()
    assert accepted.headers["X-Upgrade-Bff-Changed"] == "true"
    (write,) = rancher.journal().writes()
    assert (write.method, write.user) == ("PATCH", RANCHER_ADMIN)
    assert write.body == mark_read_patch(before["metadata"]["resourceVersion"])
    assert _status_bytes(rancher.live(SUCCEEDED)) == _status_bytes(before)


async def test_a_token_rancher_does_not_know_is_401(rancher: Rancher, bff: BFFClient) -> None:
    for path in (f"{STEVE}/{NS}", _dismiss(FAILED)):
        method = "POST" if "action" in path else "GET"
        response = await bff.request(method, path, headers=_bearer("token-nope0:notasecret"))
        assert response.status == 401, path
        body = await response.json()
        assert (body["type"], body["code"]) == ("error", "Unauthorized")
    assert [f.status for f in rancher.record.forwarded] == []  # refused by the proxy itself
    assert rancher.journal().writes() == []


async def test_the_cluster_in_the_path_selects_the_upstream(
    rancher: Rancher, bff: BFFClient
) -> None:
    other_item = f"/k8s/clusters/{OTHER}{STEVE}/{NS}/{ONLY_OTHER}"
    found = await bff.get(other_item, headers=_bearer(ADMIN))
    assert found.status == 200, await found.text()
    assert (await found.json())["links"]["self"] == other_item
    missing = await bff.get(f"/k8s/clusters/local{STEVE}/{NS}/{ONLY_OTHER}",
                            headers=_bearer(ADMIN))  # fmt: skip
    assert missing.status == 404
    unprefixed = await bff.get(f"{STEVE}/{NS}/{ONLY_OTHER}", headers=_bearer(ADMIN))
    assert unprefixed.status == 404  # the default cluster is local
    item = f"/apis/harvesterhci.io/v1beta1/namespaces/{NS}/upgrades/{ONLY_OTHER}"
    assert rancher.record.paths() == [
        f"/k8s/clusters/{OTHER}{item}",
        f"/k8s/clusters/local{item}",
        f"/k8s/clusters/local{item}",
    ]
    # A write goes to the cluster of its path, and only there.
    put = await bff.put(other_item, json=_body_for(rancher.live(ONLY_OTHER, OTHER)),
                        headers=_bearer(ADMIN))  # fmt: skip
    assert put.status == 200, await put.text()
    assert [(w.method, w.user) for w in rancher.journal(OTHER).writes()] == [
        ("PATCH", RANCHER_ADMIN)
    ]
    assert rancher.journal().writes() == []


async def test_every_request_to_rancher_passes_the_one_transport_allowlist(
    rancher: Rancher,
) -> None:
    """A Rancher cluster is one more base URL of the guarded client: anything but the
    allowed reads and the one label patch is refused before a byte is sent, and a
    client for one cluster cannot reach another."""
    settings = rancher.settings()
    async with kube.connect(upstream_options(settings), impersonate=False) as upstream:
        gateway = upstream.gateway
        for caller in (TokenCaller(ADMIN), RancherCaller(ADMIN, "c-m-nope")):
            with pytest.raises(errors.UpstreamRequestRefused):
                await gateway.get(caller, NS, FAILED)
        assert (await gateway.get(RancherCaller(ADMIN, OTHER), NS, ONLY_OTHER))["metadata"]
    assert settings.rancher_url is not None
    target = kube.RancherUpstream(settings.rancher_url, str(rancher.ca_file), ("local",))
    api = await transport.api_client(rancher_configuration(target, "/k8s/clusters/local", 2))
    try:
        objects = k8s.CustomObjectsApi(api)
        auth: dict[str, Any] = {"_request_auth": {
            "in": "header", "key": "authorization", "type": "api_key",
            "value": f"Bearer {ADMIN}"}}  # fmt: skip
        item = (GROUP, VERSION, NS, PLURAL, FAILED)
        attempts: list[Callable[[], Awaitable[Any]]] = [
            lambda: objects.delete_namespaced_custom_object(*item, **auth),
            lambda: objects.replace_namespaced_custom_object(*item, rancher.live(FAILED), **auth),
            lambda: objects.patch_namespaced_custom_object(
                *item, {"status": None}, **{"_content_type": MERGE, **auth}),
            # Out of this cluster's base URL, to another cluster, with dot segments.
            lambda: objects.get_namespaced_custom_object(
                GROUP, VERSION, NS, PLURAL, f"../../../../../../{OTHER}/api", **auth),
            lambda: api.call_api(f"/../{OTHER}/api", "GET", **auth),
            lambda: api.call_api(f"/%2e%2e/{OTHER}/api", "GET", **auth),
        ]  # fmt: skip
        for attempt in attempts:
            with pytest.raises(errors.UpstreamRequestRefused):
                await attempt()
    finally:
        await api.close()
    assert rancher.record.forwarded[:1] == rancher.record.forwarded  # the one read only
    assert rancher.journal().writes() == []


def _body_for(live: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(json.dumps(live))
    body["metadata"].setdefault("labels", {})["harvesterhci.io/read-message"] = "true"
    body.pop("status")
    return body


async def test_an_unknown_cluster_is_404_before_any_upstream_call(
    rancher: Rancher, bff: BFFClient
) -> None:
    base = f"/k8s/clusters/c-m-nope{STEVE}"
    requests = [
        ("GET", f"{base}", None),
        ("GET", f"{base}/{NS}/{FAILED}", None),
        ("PUT", f"{base}/{NS}/{FAILED}", captured.client_body("v1.0.4")),
    ]
    for method, path, body in requests:
        for headers in (_bearer(ADMIN), {}):
            response = await bff.request(method, path, json=body, headers=headers)
            assert response.status == 404, (method, path)
            answer = await response.json()
            assert answer["type"] == "error"
            assert answer["code"] == "UnknownCluster"
            assert "c-m-nope" in answer["message"]
            # Answered before authentication: the served ids are not listed to anyone.
            assert "local" not in answer["message"]
            assert OTHER not in answer["message"]
    assert rancher.record.forwarded == []
    assert rancher.own.requests == []
    assert rancher.journal().writes() == rancher.journal(OTHER).writes() == []


async def test_readiness_uses_the_service_account_not_a_caller(
    rancher: Rancher, bff: BFFClient, aiohttp_client: Callable[..., Any], tmp_path: Path
) -> None:
    ready = await bff.get("/readyz")
    assert ready.status == 200, await ready.text()
    assert [r.path for r in rancher.own.requests] == ["/version/"]
    assert rancher.own.requests[0].headers["Authorization"] == "Bearer sandbox-bff"
    assert rancher.record.forwarded == []  # no cluster was asked anything for it
    # The BFF's own API server gone: not ready, whatever Rancher says.
    gone = write_kubeconfig(tmp_path / "gone.kubeconfig", "http://127.0.0.1:9",
                            token="sandbox-bff")  # fmt: skip
    unready: BFFClient = await aiohttp_client(create_app(rancher.settings(kubeconfig=str(gone))))
    answer = await unready.get("/readyz")
    assert answer.status == 503
    assert "own Kubernetes API" in await answer.text()


async def test_tls_to_rancher_is_verified_against_the_ca_bundle(
    rancher: Rancher, aiohttp_client: Callable[..., Any], tmp_path: Path
) -> None:
    stranger = SandboxCA.create().write_ca(tmp_path / "another-ca.crt")
    client: BFFClient = await aiohttp_client(
        create_app(rancher.settings(rancher_ca_bundle=str(stranger)))
    )
    ready = await client.get("/readyz")
    assert ready.status == 503
    assert f"Rancher {rancher.url}/ping" in await ready.text()
    refused = await client.post(_dismiss(FAILED), headers=_bearer(ADMIN))
    assert refused.status in (502, 503)
    assert rancher.record.forwarded == []
    assert rancher.journal().writes() == []


async def test_log_lines_never_carry_a_token(
    rancher: Rancher, bff: BFFClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with kube.connect(upstream_options(rancher.settings()), impersonate=False):
        pass
    assert (
        f"Rancher mode: callers' requests go to {rancher.url}/k8s/clusters/<id> for "
        f"c-m-abc12345, local" in caplog.messages
    )
    await bff.post(_dismiss(FAILED), headers=_bearer(ADMIN))
    await bff.post(_dismiss(SUCCEEDED), headers=_bearer(VIEWER))
    await bff.get(f"{STEVE}/{NS}", headers=_bearer("token-nope0:notasecret"))
    assert any(r.name == "bff.audit" for r in caplog.records)
    for record in caplog.records:
        text = record.getMessage() + repr(record.__dict__)
        for secret in (*SECRETS, "notasecret"):
            assert secret not in text, record


# --- settings: one line and exit 2 for what cannot work ---------------------------------


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--rancher-url", "http://rancher.example.com"], "must be an https:// URL"),
        (["--rancher-url", "https://u:p@rancher.example.com"], "no query, no credentials"),
        (
            ["--rancher-url", "https://r.example", "--rancher-ca-bundle", "/nonexistent/ca.pem"],
            "no such file: /nonexistent/ca.pem",
        ),
        (["--rancher-ca-bundle", __file__], "holds no PEM certificate"),
        (
            ["--cluster", "c-m-1", "--rancher-url", "https://r.example"],
            "--default-cluster / BFF_DEFAULT_CLUSTER 'local' is not one of --cluster",
        ),
        (
            ["--rancher-url", "https://r.example", "--auth-mode", "impersonate"],
            "Rancher checks the caller's token and impersonates the user itself",
        ),
        (
            ["--rancher-url", "https://r.example", "--read-cache", "on"],
            "the cache watches the kubeconfig's cluster",
        ),
        (["--default-cluster", "c-m-1"], "needs --rancher-url"),
        (["--cluster", "Local"], "not a cluster id"),
    ],
)
def test_a_bad_rancher_setting_is_one_line_and_exit_2(
    argv: list[str], says: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from bff.cli import main

    assert main(["serve", *argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("harvester-upgrade-bff: error: ")
    assert says in err


def test_rancher_settings_read_from_the_environment(tmp_path: Path) -> None:
    ca = SandboxCA.create().write_ca(tmp_path / "ca.crt")
    environ = {
        "BFF_RANCHER_URL": "https://rancher.example.com/",
        "BFF_RANCHER_CA_BUNDLE": str(ca),
        "BFF_CLUSTERS": "local, c-m-abc12345,local",
        "BFF_DEFAULT_CLUSTER": "c-m-abc12345",
    }
    settings = from_sources({}, environ, command=Command.SERVE)
    assert settings.rancher_url == "https://rancher.example.com"
    assert settings.clusters == ("local", "c-m-abc12345")
    assert settings.default_cluster == "c-m-abc12345"
    with pytest.raises(SettingsError, match="'c-m-abc12345' is not one of"):
        from_sources({"clusters": ["c-m-1", "c-m-2"]}, environ, command=Command.SERVE)
    # Only the default cluster is served when no --cluster is given.
    only = from_sources({}, {"BFF_RANCHER_URL": "https://r.example"}, command=Command.SERVE)
    assert served_clusters(only) == frozenset({"local"})
    assert served_clusters(Settings()) is None


def test_help_explains_every_rancher_flag(capsys: pytest.CaptureFixture[str]) -> None:
    from bff.cli import main

    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for flag, env in [
        ("--rancher-url URL", "BFF_RANCHER_URL"),
        ("--rancher-ca-bundle FILE", "BFF_RANCHER_CA_BUNDLE"),
        ("--cluster ID", "BFF_CLUSTERS"),
        ("--default-cluster ID", "BFF_DEFAULT_CLUSTER"),
    ]:
        assert flag in text
        assert f"[env: {env};" in text
    with pytest.raises(SystemExit):
        main(["sandbox", "--help"])
    assert "[env: BFF_RANCHER_PORT; default: none (off)]" in " ".join(
        capsys.readouterr().out.split()
    )


async def test_rancher_mode_has_no_live_updates_stream(rancher: Rancher, bff: BFFClient) -> None:
    response = await bff.get("/api/v1.0.5/upgrades/events", headers=_bearer(ADMIN))
    assert response.status == 404
    assert (await response.json())["code"] == "LiveUpdatesOff"


def test_outside_rancher_mode_no_request_goes_to_a_cluster_proxy() -> None:
    """Outside Rancher mode the id only builds links: upstream() is None for every path.

    Returning the id would make a request a Rancher one: in impersonate mode it would
    skip the TokenReview and send the caller's raw token on the BFF's own client.
    """
    plain = Clusters(frozenset({"local", OTHER}), None)
    assert not plain.rancher
    assert plain.upstream({"cluster": "local"}) is None
    assert plain.upstream({"cluster": OTHER}) is None
    assert plain.upstream({}) is None
    rancher = Clusters(frozenset({"local", OTHER}), "local")
    assert rancher.upstream({"cluster": OTHER}) == OTHER
    assert rancher.upstream({}) == "local"


@pytest.mark.parametrize(("token", "user", "patch"), [(ADMIN, RANCHER_ADMIN, True),
                                                      (VIEWER, RANCHER_VIEWER, False)])  # fmt: skip
async def test_access_is_asked_of_the_callers_cluster_as_the_rancher_user(
    rancher: Rancher, bff: BFFClient, token: str, user: str, patch: bool
) -> None:
    """The access reviews go through Rancher's proxy with the caller's token, as writes do."""
    response = await bff.get("/api/v1.0.5/upgrades/access", headers=_bearer(token))
    assert response.status == 200, await response.text()
    assert await response.json() == {"type": "access", "namespace": NS, "patch": patch}
    forwarded = rancher.record.forwarded
    assert [f.path for f in forwarded] == [
        "/k8s/clusters/local/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"
    ] * 2
    assert {(f.method, f.user) for f in forwarded} == {("POST", user)}
    assert [w for w in rancher.journal().writes() if "/upgrades" in w.path] == []
    assert {w.user for w in rancher.journal().writes()} == {user}
