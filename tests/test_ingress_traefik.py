"""The chart's Ingresses on real ingress controllers: a running Traefik, and ingress-nginx's rules.

**Traefik** (v3.6.12, k3s's ingress controller, built from its module:
tests/support/traefik.py) runs its Kubernetes Ingress provider against the real
kube-apiserver. Each layout's Ingresses are applied as deploy/manifests ships
them and as ``helm template`` renders them now, unchanged, next to the
Ingress the dashboard already has (Harvester's ``rancher-expose``, or Rancher's
own). Their Services are ExternalName Services to ``localhost`` (Traefik's
``allowExternalNameServices``), each on the port of a test HTTP server that
names itself in its answer: the BFF's, and Rancher's (``rancher`` port 80, the
number the Ingresses name, so it binds loopback port 80: root, as CI runs;
parallel runs take turns). EndpointSlices may not point at loopback, and
Traefik skips a Service without endpoints, so these are the only loopback
backends it takes. An IngressClass ``nginx`` whose controller is Traefik's,
default as RKE2 makes it, lets the Ingresses keep their class.

Every recorded dashboard request (bff/captured/dashboard/requests.json) is
sent through Traefik's entry point and must be answered by the backend the
design says (docs/install.md, "Which paths reach the BFF"): the dismiss PUTs
by the BFF, the list and the create by Rancher (Steve). The create POST never
reaches the BFF. Traefik's router table, read from its API, is checked too: the
Exact router outranks the BFF's Prefix on the same path. Without the priority
annotation, the same Ingresses send the create to the BFF: Traefik's default
priority is the rule's length, and ``PathPrefix(...)`` is longer than
``Path(...)``. That is what the annotation is for, and the test shows it.

**ingress-nginx** cannot run here (its nginx needs Lua modules Debian does not
ship), so its routing is checked at the configuration level: the locations it
generates from the same Ingresses, and nginx's documented choice among them
(:func:`nginx_location`).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, NoReturn

import pytest

from bff import captured
from tests.support import chart, gotool
from tests.support.dashboard_requests import DESIGN, UNPREFIXED, Request, recorded
from tests.support.helm import ensure_helm
from tests.support.real_apiserver import RealApiServer, RealApiServerUnavailable
from tests.support.traefik import Traefik, TraefikUnavailable, ensure_traefik
from tests.test_deploy import RANCHER_HOST, ROUTED, built, clusters

pytestmark = pytest.mark.real_apiserver

Obj = dict[str, Any]

#: CI needs these to run, not skip (Traefik is built by scripts/test there).
REQUIRED = os.environ.get("BFF_REQUIRE_REAL_APISERVER") == "1" or os.environ.get("CI") == "true"
PRIORITY = "traefik.ingress.kubernetes.io/router.priority"

BFF = "bff"
STEVE = "steve"
#: The namespace the Rancher-integrated layout installs into; Rancher's own lives there too.
RANCHER_NAMESPACE = "cattle-system"
#: Rancher's Service and port, as the Ingresses name it.
RANCHER_PORT = 80
ROUTE_TIMEOUT = 30.0
REQUEST_TIMEOUT = 10.0


# --- layouts: the Ingresses, and the one the dashboard already has ---------------


@dataclass(frozen=True)
class Layout:
    """One layout's Ingresses and where its dashboard sends requests."""

    id: str
    ingresses: list[Obj]
    host: str | None
    bases: list[str]
    #: (host, base, backend) the layout must leave alone: other cluster ids stay
    #: Rancher's; another host has no route of ours at all (None: Traefik's own 404).
    untouched: list[tuple[str | None, str, str | None]] = field(default_factory=list)


def rancher_expose() -> Obj:
    """Harvester's own Ingress for its UI (harvester-installer,
    pkg/config/templates/rancherd-10-harvester.yaml): no class, no host, "/" to Rancher."""
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": "rancher-expose", "namespace": RANCHER_NAMESPACE},
        "spec": {"rules": [{"http": {"paths": [_path("/", "Prefix", "rancher", RANCHER_PORT)]}}]},
    }


def rancher_own(host: str) -> Obj:
    """Rancher's chart's Ingress (chart/templates/ingress.yaml): its host, one
    ImplementationSpecific rule without a path, to the Service rancher port 80."""
    path = {
        "pathType": "ImplementationSpecific",
        "backend": {"service": {"name": "rancher", "port": {"number": RANCHER_PORT}}},
    }
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": "rancher", "namespace": RANCHER_NAMESPACE},
        "spec": {"rules": [{"host": host, "http": {"paths": [path]}}]},
    }


def _path(path: str, path_type: str, service: str, port: int | str) -> Obj:
    ref = {"number": port} if isinstance(port, int) else {"name": port}
    return {
        "path": path,
        "pathType": path_type,
        "backend": {"service": {"name": service, "port": ref}},
    }


def _ingresses(objects: list[Obj]) -> list[Obj]:
    return [obj for obj in objects if obj and obj["kind"] == "Ingress"]


def make_layout(name: str, source: str, objects: list[Obj]) -> Layout:
    ingresses = _ingresses(objects)
    if name != "rancher":
        return Layout(f"{source}:{name}", [*ingresses, rancher_expose()], None, [UNPREFIXED])
    ids = clusters(objects)
    other_host = "other.example.com"
    return Layout(
        f"{source}:{name}",
        [*ingresses, rancher_own(RANCHER_HOST)],
        RANCHER_HOST,
        [f"/k8s/clusters/{cluster}/v1/harvester" for cluster in ids],
        untouched=[
            # A cluster id not listed, and Rancher's local cluster, stay Rancher's.
            (RANCHER_HOST, "/k8s/clusters/c-other/v1/harvester", STEVE),
            (RANCHER_HOST, UNPREFIXED, STEVE),
            # Another host on the same controller gets no route of ours.
            (other_host, f"/k8s/clusters/{ids[0]}/v1/harvester", None),
        ],
    )


def manifest_layout(name: str) -> Layout:
    """The combination as deploy/manifests ships it (held equal to the chart)."""
    return make_layout(name, "manifest", built(name))


def chart_layout(name: str) -> Layout:
    try:
        helm = ensure_helm()
    except gotool.ToolUnavailable as exc:
        if os.environ.get("BFF_REQUIRE_HELM") == "1":
            pytest.fail(f"BFF_REQUIRE_HELM=1 but {exc}")
        pytest.skip(str(exc))
    return make_layout(name, "chart", chart.render(helm, ROUTED[name]))


# --- the backends ------------------------------------------------------------


class Backend(ThreadingHTTPServer):
    """A loopback HTTP server that answers every request with its own name."""

    daemon_threads = True

    def __init__(self, name: str, port: int) -> None:
        super().__init__(("127.0.0.1", port), _Answer)
        self.name = name
        #: (method, target, body) of every request it answered.
        self.seen: list[tuple[str, str, bytes]] = []
        self._lock = threading.Lock()

    def record(self, method: str, target: str, body: bytes) -> None:
        with self._lock:
            self.seen.append((method, target, body))

    def take(self) -> list[tuple[str, str, bytes]]:
        with self._lock:
            seen, self.seen = self.seen, []
        return seen


class _Answer(BaseHTTPRequestHandler):
    server: Backend

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.server.record(self.command, self.path, body)
        payload = json.dumps({"backend": self.server.name}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _answer

    def log_message(self, format: str, *args: Any) -> None:
        # Quiet: pytest shows what matters.
        return


@contextlib.contextmanager
def serving(name: str, port: int) -> Iterator[Backend]:
    server = Backend(name, port)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(REQUEST_TIMEOUT)


@contextlib.contextmanager
def port_80_lock(timeout: float = 600.0) -> Iterator[None]:
    """Loopback port 80 is one per machine: parallel runs of this module take turns."""
    path = gotool.cache_root() / "loopback-port-80.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{path} held for over {timeout}s") from None
                time.sleep(0.5)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


# --- Traefik on the real API server -------------------------------------------


@dataclass
class Stack:
    api: RealApiServer
    traefik: Traefik
    bff: Backend
    steve: Backend

    def apply_layout(self, layout: Layout) -> list[dict[str, Any]]:
        """Apply ``layout``'s Ingresses; its router table once Traefik serves them all."""
        self.api.apply(*layout.ingresses)
        wanted = sum(
            len(rule["http"]["paths"]) for obj in layout.ingresses for rule in obj["spec"]["rules"]
        )
        return self.wait_for_routers(wanted)

    def remove_layout(self, layout: Layout) -> None:
        self.api.delete(*layout.ingresses)
        self.wait_for_routers(0)

    def wait_for_routers(self, count: int) -> list[dict[str, Any]]:
        table: list[dict[str, Any]] = []

        def ready() -> bool:
            nonlocal table
            table = [r for r in self.traefik.routers() if r.get("provider") == "kubernetes"]
            return len(table) == count and all(r.get("status") == "enabled" for r in table)

        self.traefik.wait_until(ready, ROUTE_TIMEOUT, f"{count} enabled Ingress routers")
        return table

    def send(self, request: Request, host: str | None) -> tuple[int, str]:
        """``request`` through Traefik's entry point: its status and the answering backend."""
        data = None if request.body is None else json.dumps(request.body).encode()
        req = urllib.request.Request(  # noqa: S310 - loopback
            self.traefik.web_url + request.target, data=data, method=request.method
        )
        if data is not None:
            req.add_header("Content-Type", "application/json")
        if host is not None:
            req.add_header("Host", host)
        try:
            with urllib.request.urlopen(req, timeout=REQUEST_TIMEOUT) as resp:  # noqa: S310
                return resp.status, json.loads(resp.read())["backend"]
        except urllib.error.HTTPError as err:
            with err:
                return err.code, err.read().decode(errors="replace")


def external_name(namespace: str, name: str, port: int, port_name: str) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "type": "ExternalName",
            "externalName": "localhost",
            "ports": [{"name": port_name, "port": port, "protocol": "TCP"}],
        },
    }


def _unavailable(reason: str) -> NoReturn:
    if REQUIRED:
        pytest.fail(f"CI needs Traefik on the real API server, but {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def apiserver() -> Iterator[RealApiServer]:
    """A real API server of this module's own: the session's is shared, and other
    tests apply deploy/'s Ingresses and a ClusterIP Service of the same names to it."""
    server = RealApiServer(bff_rbac=False)
    try:
        server.start()
    except RealApiServerUnavailable as exc:
        _unavailable(f"the real API server is unavailable: {exc}")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def stack(apiserver: RealApiServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    try:
        ensure_traefik()
    except TraefikUnavailable as exc:
        _unavailable(str(exc))
    workdir = tmp_path_factory.mktemp("traefik")
    api = apiserver
    with port_80_lock(), contextlib.ExitStack() as stack_:
        try:
            steve = stack_.enter_context(serving(STEVE, RANCHER_PORT))
        except PermissionError:
            _unavailable("Rancher's Service port 80 cannot be bound on loopback without root")
        bff = stack_.enter_context(serving(BFF, 0))
        bff_port = bff.server_address[1]
        setup = [
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": RANCHER_NAMESPACE}},
            # RKE2 marks its class "nginx" the default; here Traefik is its controller.
            {
                "apiVersion": "networking.k8s.io/v1",
                "kind": "IngressClass",
                "metadata": {
                    "name": "nginx",
                    "annotations": {"ingressclass.kubernetes.io/is-default-class": "true"},
                },
                "spec": {"controller": "traefik.io/ingress-controller"},
            },
            external_name("harvester-system", "harvester-upgrade-bff", bff_port, "http"),
            external_name(RANCHER_NAMESPACE, "harvester-upgrade-bff", bff_port, "http"),
            external_name(RANCHER_NAMESPACE, "rancher", RANCHER_PORT, "http"),
        ]
        api.apply(*setup)
        kubeconfig = api.kubeconfig(workdir / "kubeconfig", client_cert=True)
        traefik = stack_.enter_context(
            Traefik(
                kubeconfig,
                workdir / "traefik.log",
                [
                    "--providers.kubernetesingress.allowExternalNameServices=true",
                    # Each change shows at once, instead of at most every 2 s.
                    "--providers.providersThrottleDuration=0s",
                ],
            )
        )
        yield Stack(api, traefik, bff, steve)


LAYOUTS = [*(("manifest", name) for name in ROUTED), *(("chart", name) for name in ROUTED)]


def _layout(source: str, name: str) -> Layout:
    return manifest_layout(name) if source == "manifest" else chart_layout(name)


def _shown(table: list[dict[str, Any]]) -> str:
    rows = sorted(table, key=lambda r: -int(r.get("priority", 0)))
    return "\n".join(f"{r.get('priority'):>6} {r['rule']} -> {r['service']}" for r in rows)


@contextlib.contextmanager
def applied(stack: Stack, layout: Layout) -> Iterator[list[dict[str, Any]]]:
    stack.bff.take()
    stack.steve.take()
    try:
        table = stack.apply_layout(layout)
        # Shown with pytest -rP: the priorities that decide each request.
        print(f"{layout.id}: Traefik's router table\n{_shown(table)}")
        yield table
    finally:
        stack.remove_layout(layout)


def _route_all(stack: Stack, layout: Layout) -> dict[str, list[tuple[str, int, str]]]:
    """Send every recorded request; name -> [(request, status, backend)]."""
    out: dict[str, list[tuple[str, int, str]]] = {}
    for base in layout.bases:
        for request in recorded(base, each_client_body=True):
            status, backend = stack.send(request, layout.host)
            out.setdefault(request.name, []).append((request.id, status, backend))
    return out


@pytest.mark.parametrize(("source", "name"), LAYOUTS, ids=[f"{s}:{n}" for s, n in LAYOUTS])
def test_traefik_routes_every_recorded_request_where_the_design_says(
    stack: Stack, source: str, name: str
) -> None:
    layout = _layout(source, name)
    with applied(stack, layout) as table:
        routed = _route_all(stack, layout)
        bff_seen, steve_seen = stack.bff.take(), stack.steve.take()
        for base_host, base, expected in layout.untouched:
            for request in recorded(base, each_client_body=True):
                status, backend = stack.send(request, base_host)
                if expected is None:
                    assert status == 404, f"{base_host} {request.id}: {status} {backend}"
                else:
                    assert (status, backend) == (200, expected), f"{base_host} {request.id}"
        watch = captured.dashboard_requests()["elsewhere"][0]
        for base in layout.bases:
            target = watch["path"].replace("{base}", base)
            status, backend = stack.send(Request("watch", "GET", target, "", None), layout.host)
            assert (status, backend) == (200, STEVE), target
        assert stack.bff.take() == [], "only the dismiss reaches the BFF"
    print("\n".join(f"{i} -> {b} ({s})" for r in routed.values() for i, s, b in r))
    shown = _shown(table)
    assert set(routed) == set(DESIGN)
    for request_name, results in routed.items():
        for request_id, status, backend in results:
            assert status == 200, f"{request_id}: {status} {backend}\n{shown}"
            assert backend == DESIGN[request_name], f"{request_id} reached {backend}\n{shown}"
    # The create POST never reaches the BFF; the backends saw exactly what was sent.
    assert [m for m, _, _ in bff_seen] == ["PUT"] * len(routed["dismiss"])
    assert {t for m, t, _ in steve_seen if m == "POST"} == {
        request.target
        for base in layout.bases
        for request in recorded(base, each_client_body=True)
        if request.name == "create"
    }
    for _, target, body in bff_seen:
        assert "/harvesterhci.io.upgrades/harvester-system/" in target
        assert json.loads(body)["metadata"]["labels"], target
    # Why it holds: each Exact router outranks every router that also matches its path.
    _assert_exact_outranks(table)


#: A path matcher of a rule as Traefik's Ingress provider writes it (``%q``-quoted).
_MATCHER = re.compile(r'\b(PathPrefix|Path)\("((?:[^"\\]|\\.)*)"\)')


def _matches(rule: str, path: str) -> bool:
    """Whether ``rule``'s path matcher matches ``path`` (its Host aside)."""
    found = _MATCHER.search(rule)
    if found is None:
        return True  # a Host-only rule matches every path of its host
    kind, value = found.groups()
    # Traefik's PathPrefix is character-wise (no strictPrefixMatching, k3s's default).
    return path.startswith(value) if kind == "PathPrefix" else path == value


def _exact_path(rule: str) -> str | None:
    found = _MATCHER.search(rule)
    return found.group(2) if found and found.group(1) == "Path" else None


def _assert_exact_outranks(table: list[dict[str, Any]]) -> None:
    exact = [(r, path) for r in table if (path := _exact_path(r["rule"])) is not None]
    assert exact, _shown(table)
    for router, path in exact:
        rivals = [r for r in table if r is not router and _matches(r["rule"], path)]
        assert rivals, f"nothing else matches {path}: the test would prove nothing"
        for rival in rivals:
            assert int(router["priority"]) > int(rival["priority"]), _shown(table)


def _without_priority(layout: Layout) -> Layout:
    stripped = []
    for obj in layout.ingresses:
        copy = json.loads(json.dumps(obj))
        annotations = copy["metadata"].get("annotations", {})
        annotations.pop(PRIORITY, None)
        stripped.append(copy)
    return Layout(layout.id + ":unannotated", stripped, layout.host, layout.bases, layout.untouched)


@pytest.mark.parametrize("name", ["harvester", "rancher"])
def test_without_the_priority_annotation_traefik_sends_the_create_to_the_bff(
    stack: Stack, name: str
) -> None:
    """The bug the annotation fixes: Traefik's default priority is the rule's length."""
    layout = _without_priority(manifest_layout(name))
    assert any(
        PRIORITY in o["metadata"].get("annotations", {})
        for o in built(name)
        if o["kind"] == "Ingress"
    )
    with applied(stack, layout) as table:
        routed = _route_all(stack, layout)
    print("\n".join(f"{i} -> {b} ({s})" for r in routed.values() for i, s, b in r))
    by_rule = {r["rule"]: r for r in table}
    for base in layout.bases:
        namespace_path = f"{base}/harvesterhci.io.upgrades/harvester-system"
        prefix = next(r for rule, r in by_rule.items() if f'PathPrefix("{namespace_path}")' in rule)
        exact = next(r for rule, r in by_rule.items() if f'Path("{namespace_path}")' in rule)
        # Unannotated, each router's priority is its rule's length.
        assert int(prefix["priority"]) == len(prefix["rule"])
        assert int(exact["priority"]) == len(exact["rule"])
        assert int(prefix["priority"]) > int(exact["priority"]), _shown(table)
    assert {backend for _, _, backend in routed["create"]} == {BFF}, _shown(table)


# --- ingress-nginx, at the configuration level ----------------------------------
#
# ingress-nginx turns each Ingress path into an nginx "location" of the server
# for the rule's host (host-less rules join the catch-all server "_"):
#   * pathType Exact  /p  ->  location = /p
#   * pathType Prefix /p  ->  location /p/   plus  location = /p, unless an Exact
#     location for /p already exists on that server (then the Exact one stays);
#     the Prefix "/" is "location /".
# ingress-nginx's own e2e test test/e2e/ingress/pathtype_exact.go ("should
# choose exact location for /exact") holds it to that: an Exact and a Prefix
# Ingress on /exact give "location = /exact" and "location /exact/", and
# /exact is answered by the Exact one. Without use-regex (test_deploy forbids
# it) there are no regex locations, so nginx's choice is, per its docs
# (https://nginx.org/en/docs/http/ngx_http_core_module.html#location): an
# exact "=" location equal to the URI ends the search; otherwise the longest
# matching prefix location wins. Annotations outside nginx.ingress.kubernetes.io
# (Traefik's priority) are ignored.


@dataclass(frozen=True)
class Location:
    exact: bool
    path: str
    backend: str


def nginx_locations(ingresses: list[Obj], host: str | None) -> list[Location]:
    """The locations ingress-nginx generates for ``host``'s server from ``ingresses``."""
    paths = []
    for ingress in ingresses:
        for rule in ingress["spec"]["rules"]:
            if rule.get("host") != host:
                continue
            for path in rule["http"]["paths"]:
                name = path["backend"]["service"]["name"]
                backend = BFF if name == "harvester-upgrade-bff" else STEVE
                paths.append((path.get("path") or "/", path["pathType"], backend))
    exact = {p for p, t, _ in paths if t == "Exact"}
    out = [Location(True, p, b) for p, t, b in paths if t == "Exact"]
    for p, t, b in paths:
        if t == "Exact":
            continue
        out.append(Location(False, p if p.endswith("/") else p + "/", b))
        if p not in exact:
            out.append(Location(True, p, b))
    return out


def nginx_location(locations: list[Location], uri: str) -> Location:
    """nginx's choice: an equal "=" location, else the longest matching prefix."""
    for location in locations:
        if location.exact and location.path == uri:
            return location
    matching = [loc for loc in locations if not loc.exact and uri.startswith(loc.path)]
    assert matching, f"no location for {uri}"
    return max(matching, key=lambda loc: len(loc.path))


def test_the_nginx_model_matches_ingress_nginx_e2e_exact_test() -> None:
    """The case of ingress-nginx's pathtype_exact.go, through the model above."""

    def one(path: Obj) -> Obj:
        return {"spec": {"rules": [{"host": "exact.path", "http": {"paths": [path]}}]}}

    ingresses = [
        one(_path("/exact", "Exact", "rancher", 80)),
        one(_path("/exact", "Prefix", "harvester-upgrade-bff", "http")),
    ]
    locations = nginx_locations(ingresses, "exact.path")
    assert sorted((loc.exact, loc.path) for loc in locations) == [
        (False, "/exact/"),
        (True, "/exact"),
    ]
    assert nginx_location(locations, "/exact").backend == STEVE
    assert nginx_location(locations, "/exact/suffix").backend == BFF


@pytest.mark.parametrize("name", list(ROUTED))
def test_ingress_nginx_routes_every_recorded_request_where_the_design_says(name: str) -> None:
    layout = manifest_layout(name)
    locations = nginx_locations(layout.ingresses, layout.host)
    for base in layout.bases:
        for request in recorded(base, each_client_body=True):
            chosen = nginx_location(locations, request.path)
            assert chosen.backend == DESIGN[request.name], f"{request.id}: {chosen}"
    for base_host, base, expected in layout.untouched:
        others = nginx_locations(layout.ingresses, base_host)
        for request in recorded(base, each_client_body=True):
            if expected is None:
                # No rule of ours for that host: its own server, untouched.
                assert others == [], base_host
            else:
                assert nginx_location(others, request.path).backend == expected, request.id
