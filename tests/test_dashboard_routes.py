"""Every request the dashboard sends under the Upgrade paths, through each layout's Ingresses.

The requests are the recorded ones in ``bff/captured/dashboard/requests.json``
(method, path, query, body, and the extension source each was read from).

* Each layout's Ingresses, as the chart renders them (deploy/manifests, held
  equal to ``helm template`` by tests/test_manifests.py), route each request by the
  Ingress spec's path matching among the rules of the request's host (host-less
  rules form the catch-all server): an Exact path matches only itself; a Prefix
  path matches element by element; the longest matching path wins, and Exact
  wins over Prefix on the same path. The Ingress the dashboard already has is
  the fallback: on Harvester, Harvester's ``cattle-system/rancher-expose`` (no
  host, ``/`` to Rancher's Service); on the Rancher server, Rancher's chart's
  ``cattle-system/rancher`` (Rancher's host, ``/`` to the same Service).
* Each request must land on the backend the design in docs/install.md says:
  the dismiss PUT on the BFF, the list and the create with Rancher (Steve).
* Whatever an Ingress sends to the BFF, the real BFF (over the sandbox
  emulator) must answer with something other than 405, and the only upstream
  write it makes is the label merge patch; every path an Ingress gives the BFF
  is one the BFF serves.
* The Rancher-mode layouts' BFF, with exactly the layout's settings (only
  Rancher's address and CA moved to loopback), in front of the sandbox's
  simulated Rancher, answers what the layout's Ingress sends it with a Rancher
  token, and the only write reaching the cluster is the label patch, made by
  Rancher as the Rancher user.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from bff import captured
from bff.app import create_app
from bff.sandbox.emulator import EMULATOR_STORE
from bff.sandbox.users import RANCHER_ADMIN
from bff.settings import Command, Settings, from_sources
from tests.conftest import Stack
from tests.support import dashboard_requests
from tests.support.backends import NAMESPACE
from tests.support.dashboard_requests import UNPREFIXED, Request, recorded
from tests.test_deploy import (
    RANCHER_HOST,
    RANCHER_MODE,
    RANCHER_SERVICE_URL,
    ROUTED,
    built,
    clusters,
    env,
    ingress_paths,
)
from tests.test_rancher import ADMIN as RANCHER_ADMIN_TOKEN
from tests.test_rancher import Rancher, rancher  # noqa: F401 (the fixture)

Obj = dict[str, Any]

BFF = ("harvester-system", "harvester-upgrade-bff")
STEVE = ("cattle-system", "rancher")
#: Where each recorded request must go, as the Service each Ingress names.
DESIGN = {name: {"bff": BFF, "steve": STEVE}[to] for name, to in dashboard_requests.DESIGN.items()}
#: The Ingress each UI already has: everything else goes to Rancher, Steve included.
#: On Harvester, rancher-expose (harvester-installer,
#: pkg/config/templates/rancherd-10-harvester.yaml); on the Rancher server, the
#: Rancher chart's Ingress (rancher/rancher, chart/templates/ingress.yaml: an
#: ImplementationSpecific rule without a path, which ingress-nginx serves as "/").
RANCHER_FALLBACK = {"path": "/", "pathType": "Prefix", "backend": STEVE}
#: Layouts for the standalone Harvester UI (host-less, on the Harvester cluster).
HARVESTER_LAYOUTS = [name for name in ROUTED if name != "rancher"]
READ = "harvesterhci.io/read-message"


# --- Ingress path matching, per the Ingress spec ------------------------------


def _elements(path: str) -> list[str]:
    return [part for part in path.split("/") if part]


def path_matches(path: str, path_type: str, uri: str) -> bool:
    if path_type == "Exact":
        return path == uri
    assert path_type == "Prefix", path_type
    # Element-wise: /foo/bar matches /foo/bar and /foo/bar/baz, not /foo/barbaz.
    wanted = _elements(path)
    return _elements(uri)[: len(wanted)] == wanted


def route(routes: list[Obj], uri: str) -> tuple[str, str]:
    """The backend of the winning path: longest first, then Exact over Prefix."""
    matching = [r for r in routes if path_matches(r["path"], r["pathType"], uri)]
    assert matching, f"nothing matches {uri}"
    best = max(matching, key=lambda r: (len(r["path"].rstrip("/")), r["pathType"] == "Exact"))
    # Two different backends on the very same path and type would be ambiguous.
    ties = {
        r["backend"]
        for r in matching
        if (r["path"].rstrip("/"), r["pathType"]) == (best["path"].rstrip("/"), best["pathType"])
    }
    assert len(ties) == 1, f"{uri}: equally good paths to {sorted(ties)}"
    backend: tuple[str, str] = best["backend"]
    return backend


def layout_routes(name: str, host: str | None = None) -> list[Obj]:
    """The paths a request for ``host`` meets: that host's rules, or the catch-all's."""
    objects = built(name)
    services = {
        (o["metadata"]["namespace"], o["metadata"]["name"])
        for o in objects
        if o["kind"] == "Service"
    }
    routes = [RANCHER_FALLBACK]
    for ingress in (obj for obj in objects if obj["kind"] == "Ingress"):
        assert ingress["spec"]["ingressClassName"] == "nginx"
        namespace = ingress["metadata"]["namespace"]
        for rule in ingress["spec"]["rules"]:
            if rule.get("host") != host:
                continue
            for path in rule["http"]["paths"]:
                service = (namespace, path["backend"]["service"]["name"])
                # An Ingress names a Service of its own namespace: the layout's
                # BFF Service, or Rancher's, which lives in cattle-system.
                if service[1] == BFF[1]:
                    assert service in services, f"{name}: no Service {service}"
                    backend = BFF
                else:
                    assert service == STEVE, f"{name}: unexpected backend {service}"
                    backend = STEVE
                routes.append(
                    {"path": path["path"], "pathType": path["pathType"], "backend": backend}
                )
    return routes


def routed_clusters(name: str) -> list[str]:
    """The cluster ids whose paths the layout's Ingresses route, in order."""
    out: list[str] = []
    for ingress in (obj for obj in built(name) if obj["kind"] == "Ingress"):
        for path in ingress_paths(ingress):
            parts = path["path"].split("/")
            if path["path"].startswith("/k8s/clusters/") and parts[3] not in out:
                out.append(parts[3])
    return out


def layout_router(name: str) -> tuple[str, Any]:
    """The base under which the layout's dashboard calls, and a path -> backend function."""
    if name == "rancher":
        routes = layout_routes(name, RANCHER_HOST)
        base = f"/k8s/clusters/{routed_clusters(name)[0]}/v1/harvester"
    else:
        routes = layout_routes(name)
        base = UNPREFIXED
    return base, lambda uri: route(routes, uri)


def base_routes() -> list[Obj]:
    return layout_routes("harvester")


def test_the_matcher_follows_the_ingress_spec() -> None:
    routes = [
        {"path": "/", "pathType": "Prefix", "backend": ("a", "root")},
        {"path": "/foo", "pathType": "Prefix", "backend": ("a", "prefix")},
        {"path": "/foo", "pathType": "Exact", "backend": ("a", "exact")},
        {"path": "/foo/bar", "pathType": "Prefix", "backend": ("a", "longer")},
    ]
    assert route(routes, "/foo") == ("a", "exact")
    assert route(routes, "/foo/") == ("a", "prefix")
    assert route(routes, "/foo/x") == ("a", "prefix")
    assert route(routes, "/foo/bar/baz") == ("a", "longer")
    assert route(routes, "/foo/barbaz") == ("a", "prefix")
    assert route(routes, "/foobar") == ("a", "root")


def test_every_recorded_request_is_decided() -> None:
    names = [entry["name"] for entry in captured.dashboard_requests()["requests"]]
    assert sorted(names) == sorted(DESIGN)
    for entry in captured.dashboard_requests()["requests"]:
        assert entry["sources"], entry["name"]
        assert all({"repo", "path", "what"} <= set(source) for source in entry["sources"])


@pytest.mark.parametrize("layout", HARVESTER_LAYOUTS)
@pytest.mark.parametrize("request_", recorded(UNPREFIXED), ids=lambda r: r.id)
def test_the_harvester_ingresses_send_each_request_where_the_design_says(
    layout: str, request_: Request
) -> None:
    for rule in (r for o in built(layout) if o["kind"] == "Ingress" for r in o["spec"]["rules"]):
        assert "host" not in rule, "these join the controller's host-less server, as Harvester's"
    assert route(layout_routes(layout), request_.path) == DESIGN[request_.name]


def test_the_rancher_ingress_routes_exactly_the_clusters_the_bff_serves() -> None:
    assert routed_clusters("rancher") == clusters(built("rancher"))
    assert routed_clusters("harvester") == []


def _rancher_requests() -> list[Request]:
    return [
        request_
        for cluster in routed_clusters("rancher")
        for request_ in recorded(f"/k8s/clusters/{cluster}/v1/harvester")
    ]


@pytest.mark.parametrize("request_", _rancher_requests(), ids=lambda r: r.id)
def test_the_rancher_ingress_sends_each_request_where_the_design_says(request_: Request) -> None:
    assert route(layout_routes("rancher", RANCHER_HOST), request_.path) == DESIGN[request_.name]


def test_the_rancher_ingress_leaves_other_clusters_and_hosts_alone() -> None:
    routes = layout_routes("rancher", RANCHER_HOST)
    # A cluster id not listed is Rancher's as before (the BFF would 404 it).
    for request_ in recorded("/k8s/clusters/c-other/v1/harvester"):
        assert route(routes, request_.path) == STEVE, request_.id
    # Rancher's own local cluster is not a Harvester cluster here.
    for request_ in recorded(UNPREFIXED):
        assert route(routes, request_.path) == STEVE, request_.id
    # Another host on the same controller is untouched.
    for request_ in recorded(f"/k8s/clusters/{clusters(built('rancher'))[0]}/v1/harvester"):
        assert route(layout_routes("rancher", "other.example.com"), request_.path) == STEVE


@pytest.mark.parametrize("layout", ROUTED)
def test_the_watch_socket_is_not_under_the_upgrade_paths(layout: str) -> None:
    (watch,) = captured.dashboard_requests()["elsewhere"]
    base, routed = layout_router(layout)
    assert routed(watch["path"].replace("{base}", base)) == STEVE


# --- what reaches the BFF, answered by the real BFF ---------------------------


def _dismiss_body(version: str, live: Obj) -> Obj:
    body = captured.client_body(version)
    meta = live["metadata"]
    body["id"] = f"{NAMESPACE}/{meta['name']}"
    body["metadata"].update(
        name=meta["name"],
        uid=meta["uid"],
        resourceVersion=meta["resourceVersion"],
        labels={**meta.get("labels", {}), READ: "true"},
    )
    return body


def _bodies(request_: Request, live: Obj) -> list[Any]:
    body = request_.body
    if isinstance(body, dict) and "client_body" in body:
        versions = sorted(set(body["client_body"].values()))
        return [_dismiss_body(version, live) for version in versions]
    return [body]


async def _reaching_the_bff(stack: Stack, base: str, routed: Any) -> list[tuple[Request, Any]]:
    live = next(iter((await stack.backend.read_all()).values()))
    return [
        (request_, body)
        for request_ in recorded(base, live["metadata"]["name"])
        if routed(request_.path) == BFF
        for body in _bodies(request_, live)
    ]


@pytest.mark.parametrize("layout", ROUTED)
async def test_every_request_the_ingress_sends_to_the_bff_is_answered(
    emulator_stack: Stack, layout: str
) -> None:
    base, routed = layout_router(layout)
    sent = await _reaching_the_bff(emulator_stack, base, routed)
    assert sent, "the dismiss must reach the BFF"
    for request_, body in sent:
        if request_.method == "PUT":
            # Re-read before each PUT: the previous one moved resourceVersion on.
            live = await emulator_stack.backend.read(body["metadata"]["name"])
            body["metadata"]["resourceVersion"] = live["metadata"]["resourceVersion"]
        url = request_.target
        response = await emulator_stack.client.request(
            request_.method,
            url,
            json=body if request_.method in {"POST", "PUT"} else None,
            headers={"Authorization": "Bearer sandbox-admin"},
        )
        text = await response.text()
        assert response.status != 405, f"{request_.id}: {text}"
        assert response.status < 400, f"{request_.id}: {response.status} {text}"
    # Whatever reached the BFF, the only upstream writes are label merge patches.
    writes = emulator_stack.upstream_writes()
    assert writes, "the dismiss is a write"
    for write in writes:
        assert write.method == "PATCH", write
        assert write.content_type == "application/merge-patch+json", write
        assert isinstance(write.body, dict)
        assert set(write.body) == {"metadata"}, write.body
        assert set(write.body["metadata"]) <= {"labels", "resourceVersion"}, write.body


def _bff_paths(layout: str) -> list[str]:
    return sorted(
        {
            path["path"]
            for ingress in built(layout)
            if ingress["kind"] == "Ingress"
            for path in ingress_paths(ingress)
            if path["backend"]["service"]["name"] == BFF[1]
        }
    )


@pytest.mark.parametrize("layout", ROUTED)
async def test_every_path_an_ingress_gives_the_bff_is_served(
    emulator_stack: Stack, layout: str
) -> None:
    live = next(iter((await emulator_stack.backend.read_all()).values()))
    paths = _bff_paths(layout)
    assert paths
    for path in paths:
        # The item under a namespace path; the collection under the BFF's own API.
        if path.endswith(f"/{NAMESPACE}"):
            probe = f"{path}/{live['metadata']['name']}"
        else:
            probe = f"{path}/upgrades"
        response = await emulator_stack.client.get(
            probe, headers={"Authorization": "Bearer sandbox-admin"}
        )
        assert response.status == 200, f"{layout}: GET {probe}: {response.status}"


# --- the Rancher-mode layouts, as configured, in front of the simulated Rancher ---


def _layout_settings(layout: str, proxy: Rancher) -> Settings:
    """The layout's own BFF_* settings, with Rancher and its CA made on loopback."""
    environ = dict(env(built(layout)))
    assert environ["BFF_RANCHER_URL"] == RANCHER_SERVICE_URL
    environ["BFF_RANCHER_URL"] = proxy.url
    environ["BFF_RANCHER_CA_BUNDLE"] = str(proxy.ca_file)
    given = {"kubeconfig": str(proxy.own_kubeconfig)}
    return from_sources(given, environ, command=Command.SERVE)


@pytest.mark.parametrize("layout", RANCHER_MODE)
async def test_the_rancher_mode_layouts_answer_what_their_ingress_sends_as_the_rancher_user(
    rancher: Rancher,  # noqa: F811 (the fixture imported above)
    aiohttp_client: Callable[..., Any],
    layout: str,
) -> None:
    """Every recorded request the layout's Ingress gives the BFF, with a Rancher token.

    The BFF runs with exactly the layout's settings (only Rancher's address and
    CA are the simulated Rancher's). Its cluster ids are those the layout's
    Ingress routes: ``local`` for Harvester's embedded Rancher, and
    ``c-m-abc12345``, the shipped example, which the simulated Rancher also serves.
    """
    client = await aiohttp_client(create_app(_layout_settings(layout, rancher)))
    base, routed = layout_router(layout)
    cluster = "local" if layout == "harvester" else routed_clusters(layout)[0]
    app = rancher.local if cluster == "local" else rancher.other
    # A finished Upgrade of that cluster, so the dismiss is allowed and writes.
    live = next(
        obj
        for obj in app[EMULATOR_STORE].list(NAMESPACE)
        if obj["metadata"].get("labels", {}).get("harvesterhci.io/upgradeState")
        in {"Succeeded", "Failed"}
    )
    sent = 0
    for request_ in recorded(base, live["metadata"]["name"]):
        if routed(request_.path) != BFF:
            continue
        for body in _bodies(request_, rancher.live(live["metadata"]["name"], cluster)):
            url = request_.target
            response = await client.request(
                request_.method,
                url,
                json=body,
                headers={"Authorization": f"Bearer {RANCHER_ADMIN_TOKEN}"},
            )
            text = await response.text()
            assert response.status != 405, f"{request_.id}: {text}"
            assert response.status < 400, f"{request_.id}: {response.status} {text}"
            sent += 1
    assert sent, "the dismiss must reach the BFF"
    writes = rancher.journal(cluster).writes()
    assert writes, "the dismiss is a write"
    for write in writes:
        assert (write.method, write.content_type) == ("PATCH", "application/merge-patch+json")
        assert set(write.body) == {"metadata"}, write.body
        assert set(write.body["metadata"]) <= {"labels", "resourceVersion"}, write.body
        # Rancher acted as the Rancher user, not as itself and not as the BFF.
        assert write.user == RANCHER_ADMIN
    # Every request went to the cluster the path (or the default) names, through Rancher.
    assert {f.path.split("/v1/")[0].split("/apis/")[0] for f in rancher.record.forwarded} == {
        f"/k8s/clusters/{cluster}"
    }
