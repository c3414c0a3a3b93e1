"""Every request the dashboard sends under the Upgrade paths, through the shipped Ingress.

The requests are the recorded ones in ``bff/captured/dashboard/requests.json``
(method, path, query, body, and the extension source each was read from).

* The base's Ingresses, built from deploy/base (the loader in test_deploy, which
  another test there holds to ``kubectl kustomize``), route each request by the
  Ingress spec's path matching: an Exact path matches only itself; a Prefix
  path matches element by element; the longest matching path wins, and Exact
  wins over Prefix on the same path. Rancher's own Ingress, the ``/`` Prefix to
  Steve that every Harvester has, is the fallback.
* Each request must land on the backend the design in deploy/README.md says:
  the dismiss PUT on the BFF, the list and the create with Steve.
* Whatever the Ingress sends to the BFF, the real BFF (over the sandbox
  emulator) must answer with something other than 405, and the only upstream
  write it makes is the label merge patch.

The Rancher proxy form (``/k8s/clusters/<id>/...``) is routed the same way by
the regex Ingress that deploy/README.md gives for Rancher's host.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pytest

from bff import captured
from tests.conftest import Stack
from tests.support.backends import NAMESPACE
from tests.test_deploy import built, ingress_paths, readme_examples

Obj = dict[str, Any]

BFF = ("harvester-system", "harvester-upgrade-bff")
STEVE = ("cattle-system", "rancher")
#: Where each recorded request must go (deploy/README.md, "Which paths reach the BFF").
#: A newly recorded request fails the tests until it is decided here.
DESIGN = {"list": STEVE, "create": STEVE, "dismiss": BFF}
#: Rancher's own Ingress on Harvester: everything else goes to Rancher, Steve included.
RANCHER_FALLBACK = {"path": "/", "pathType": "Prefix", "backend": STEVE}
UNPREFIXED = "/v1/harvester"
CLUSTER = "c-m-abc12345"
READ = "harvesterhci.io/read-message"


@dataclass(frozen=True)
class Request:
    name: str
    method: str
    path: str
    query: str
    body: Any

    @property
    def id(self) -> str:
        return f"{self.name} {self.method} {self.path}{'?' + self.query if self.query else ''}"


def recorded(base: str, name: str = "hvst-upgrade-7xn6v") -> list[Request]:
    out = []
    for entry in captured.dashboard_requests()["requests"]:
        path = entry["path"].replace("{base}", base).replace("{name}", name)
        for query in entry["queries"]:
            out.append(Request(entry["name"], entry["method"], path, query, entry["body"]))
    return out


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


def base_routes() -> list[Obj]:
    routes = [RANCHER_FALLBACK]
    for ingress in (obj for obj in built("base") if obj["kind"] == "Ingress"):
        assert ingress["spec"]["ingressClassName"] == "nginx"
        for rule in ingress["spec"]["rules"]:
            assert "host" not in rule, "the base joins the controller's host-less server"
        for path in ingress_paths(ingress):
            service = path["backend"]["service"]
            routes.append(
                {
                    "path": path["path"],
                    "pathType": path["pathType"],
                    "backend": (ingress["metadata"]["namespace"], service["name"]),
                }
            )
    return routes


def rancher_proxy_route(uri: str) -> tuple[str, str]:
    """Rancher's host with the README's regex Ingress added.

    use-regex makes every path of the host a case-insensitive regex anchored at
    the start, Rancher's own "/" included; ingress-nginx orders them longest
    first and nginx takes the first regex that matches.
    """
    (ingress,) = (doc for doc in readme_examples() if doc["kind"] == "Ingress")
    paths = [(p["path"], BFF) for p in ingress_paths(ingress)] + [("/", STEVE)]
    for path, backend in sorted(paths, key=lambda p: len(p[0]), reverse=True):
        if re.match("^" + path, uri, re.IGNORECASE):
            return backend
    raise AssertionError(f"nothing matches {uri}")


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


@pytest.mark.parametrize("request_", recorded(UNPREFIXED), ids=lambda r: r.id)
def test_the_base_ingress_sends_each_request_where_the_design_says(request_: Request) -> None:
    assert route(base_routes(), request_.path) == DESIGN[request_.name]


@pytest.mark.parametrize(
    "request_", recorded(f"/k8s/clusters/{CLUSTER}/v1/harvester"), ids=lambda r: r.id
)
def test_the_rancher_proxy_ingress_sends_each_request_where_the_design_says(
    request_: Request,
) -> None:
    assert rancher_proxy_route(request_.path) == DESIGN[request_.name]


def test_the_watch_socket_is_not_under_the_upgrade_paths() -> None:
    (watch,) = captured.dashboard_requests()["elsewhere"]
    assert route(base_routes(), watch["path"].replace("{base}", UNPREFIXED)) == STEVE
    proxied = watch["path"].replace("{base}", f"/k8s/clusters/{CLUSTER}/v1/harvester")
    assert rancher_proxy_route(proxied) == STEVE


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


@pytest.mark.parametrize(
    ("base", "router"),
    [(UNPREFIXED, "base"), (f"/k8s/clusters/{CLUSTER}/v1/harvester", "rancher-proxy")],
)
async def test_every_request_the_ingress_sends_to_the_bff_is_answered(
    emulator_stack: Stack, base: str, router: str
) -> None:
    routes = base_routes()

    def routed(uri: str) -> tuple[str, str]:
        return route(routes, uri) if router == "base" else rancher_proxy_route(uri)

    sent = await _reaching_the_bff(emulator_stack, base, routed)
    assert sent, "the dismiss must reach the BFF"
    for request_, body in sent:
        if request_.method == "PUT":
            # Re-read before each PUT: the previous one moved resourceVersion on.
            live = await emulator_stack.backend.read(body["metadata"]["name"])
            body["metadata"]["resourceVersion"] = live["metadata"]["resourceVersion"]
        url = request_.path + (f"?{request_.query}" if request_.query else "")
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
