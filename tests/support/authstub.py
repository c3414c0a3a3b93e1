"""A stand-in "core" API server that answers only the delegated auth reviews.

The apiextensions-apiserver has no users or RBAC of its own. For every bearer
token it sends a ``TokenReview`` to the server named in
``--authentication-kubeconfig``, and for every request not made by
``system:masters`` it sends a ``SubjectAccessReview`` to the server named in
``--authorization-kubeconfig``. This module is that server: it answers both
reviews from a fixed table, so the real API server makes real 401 and 403
decisions for the same tokens the sandbox emulator knows.

It speaks plain HTTP on loopback. client-go accepts an ``http://`` server in a
kubeconfig, and nothing secret crosses it except the test tokens themselves.
It also serves an empty Service collection for the one core informer the API
server runs; every other path gets a 404 ``Status``.
"""

from __future__ import annotations

import contextlib
import json
import threading
import urllib.parse
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

TOKENREVIEW_PATH = "/apis/authentication.k8s.io/v1/tokenreviews"
SAR_PATH = "/apis/authorization.k8s.io/v1/subjectaccessreviews"

# The token the API server itself presents to this stub. The stub does not
# check it; it exists so the kubeconfig looks like a real one.
DELEGATOR_TOKEN = "harness-delegator"

ALL = "*"
UPGRADES = ("harvesterhci.io", "upgrades")


@dataclass(frozen=True)
class Rule:
    """One RBAC-like rule: verbs on (api group, resource) pairs."""

    verbs: frozenset[str]
    resources: frozenset[tuple[str, str]]

    def allows(self, verb: str, group: str, resource: str) -> bool:
        """``resource`` may carry a subresource (``userextras/scopes``); a
        rule resource ``userextras/*`` matches every subresource, as in RBAC."""
        verb_ok = ALL in self.verbs or verb in self.verbs
        parent = resource.split("/", 1)[0] + "/*"
        res_ok = any(
            (g, r) in self.resources for g, r in ((ALL, ALL), (group, resource), (group, parent))
        )
        return verb_ok and res_ok


def rule(verbs: Iterable[str], *resources: tuple[str, str]) -> Rule:
    return Rule(frozenset(verbs), frozenset(resources))


@dataclass(frozen=True)
class Identity:
    username: str
    uid: str
    groups: tuple[str, ...]
    extra: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


def _sa(namespace: str, name: str) -> Identity:
    return Identity(
        username=f"system:serviceaccount:{namespace}:{name}",
        uid=f"uid-{namespace}-{name}",
        groups=(
            "system:serviceaccounts",
            f"system:serviceaccounts:{namespace}",
            "system:authenticated",
        ),
    )


# Token -> who it is. Mirrors the sandbox emulator, so contract tests can run
# against either server unchanged.
TOKENS: dict[str, Identity] = {
    "sandbox-admin": Identity(
        username="sandbox-admin",
        uid="uid-sandbox-admin",
        groups=("sandbox:admins", "system:authenticated"),
    ),
    "sandbox-viewer": Identity(
        username="sandbox-viewer",
        uid="uid-sandbox-viewer",
        groups=("system:authenticated",),
    ),
    "sandbox-bff": _sa("harvester-system", "harvester-upgrade-bff"),
    "sandbox-controller": _sa("harvester-system", "harvester"),
    "sandbox-nobody": Identity(
        username="sandbox-nobody",
        uid="uid-sandbox-nobody",
        groups=("system:authenticated",),
    ),
}

# Subject (``user:<name>`` or ``group:<name>``) -> rules. Rules are checked
# against the user *and* every group in the review, as RBAC bindings would be,
# so impersonating a user or a group both work as expected.
RULES: dict[str, tuple[Rule, ...]] = {
    "group:sandbox:admins": (rule([ALL], (ALL, ALL)),),
    "user:sandbox-viewer": (rule(["get", "list", "watch"], UPGRADES),),
    "user:system:serviceaccount:harvester-system:harvester-upgrade-bff": (
        rule(["get", "list", "watch", "patch"], UPGRADES),
        rule(["create"], ("authentication.k8s.io", "tokenreviews")),
        rule(
            ["impersonate"],
            ("", "users"),
            ("", "groups"),
            ("authentication.k8s.io", "uids"),
            ("authentication.k8s.io", "userextras/*"),
        ),
    ),
    "user:system:serviceaccount:harvester-system:harvester": (
        rule(["get", "list", "watch", "update", "patch"], UPGRADES),
    ),
}

# The apiserver runs a Service informer against the core server (for webhook
# and conversion service resolution). Answering it with an empty collection,
# rather than 404, lets its /readyz pass and keeps its log quiet.
_CORE_LISTS = {"/api/v1/services": "Service"}
_CORE_RV = "1"

# Like the system:discovery and system:public-info-viewer cluster roles.
_PUBLIC_PATHS = ("/healthz", "/livez", "/readyz", "/version")
_DISCOVERY_PREFIXES = ("/api", "/apis", "/openapi", "/version")


def _non_resource_allowed(path: str, verb: str, groups: Iterable[str]) -> bool:
    if verb != "get":
        return False
    if any(path == p or path.startswith(p + "/") for p in _PUBLIC_PATHS):
        return True
    if "system:authenticated" in groups:
        return any(path == p or path.startswith(p + "/") for p in _DISCOVERY_PREFIXES)
    return False


def review_token(token: str) -> dict[str, Any]:
    """The ``status`` of a TokenReview for ``token``."""
    who = TOKENS.get(token)
    if who is None:
        return {"authenticated": False, "error": "unknown token"}
    user: dict[str, Any] = {"username": who.username, "uid": who.uid, "groups": list(who.groups)}
    if who.extra:
        user["extra"] = {k: list(v) for k, v in who.extra.items()}
    return {"authenticated": True, "user": user, "audiences": []}


def review_access(spec: Mapping[str, Any]) -> dict[str, Any]:
    """The ``status`` of a SubjectAccessReview for ``spec``."""
    user = str(spec.get("user") or "")
    groups = [str(g) for g in spec.get("groups") or ()]
    subjects = [f"user:{user}", *(f"group:{g}" for g in groups)]
    rules = [r for s in subjects for r in RULES.get(s, ())]

    attrs = spec.get("resourceAttributes")
    if attrs is not None:
        verb = str(attrs.get("verb") or "")
        group = str(attrs.get("group") or "")
        resource = str(attrs.get("resource") or "")
        if attrs.get("subresource"):
            resource = f"{resource}/{attrs['subresource']}"
        if any(r.allows(verb, group, resource) for r in rules):
            return {"allowed": True, "reason": f"allowed by harness table for {user}"}
        # No reason on denial, like RBAC: the API server's 403 message then
        # reads exactly as kube-apiserver's does.
        return {"allowed": False}

    nr = spec.get("nonResourceAttributes") or {}
    path = str(nr.get("path") or "")
    verb = str(nr.get("verb") or "")
    superuser = any(r.allows(ALL, ALL, ALL) for r in rules)
    if superuser or _non_resource_allowed(path, verb, groups):
        return {"allowed": True}
    return {"allowed": False}


def _describe(spec: Mapping[str, Any]) -> str:
    attrs = spec.get("resourceAttributes")
    if attrs is not None:
        what = "/".join(
            str(attrs.get(k) or "")
            for k in ("group", "resource", "subresource", "namespace", "name")
        )
        return f"user={spec.get('user')} groups={spec.get('groups')} {attrs.get('verb')} {what}"
    nr = spec.get("nonResourceAttributes") or {}
    return f"user={spec.get('user')} {nr.get('verb')} {nr.get('path')}"


class _Handler(BaseHTTPRequestHandler):
    server_version = "harness-authstub"
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        log = getattr(self.server, "log", None)
        if log is not None:
            log(format % args)

    def _send(self, code: int, body: Mapping[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _not_found(self) -> None:
        self._send(
            HTTPStatus.NOT_FOUND,
            {
                "kind": "Status",
                "apiVersion": "v1",
                "metadata": {},
                "status": "Failure",
                "message": f"the harness auth stub does not serve {self.path}",
                "reason": "NotFound",
                "code": 404,
            },
        )

    def do_GET(self) -> None:
        parsed = urllib.parse.urlsplit(self.path)
        kind = _CORE_LISTS.get(parsed.path)
        if kind is None:
            self._not_found()
            return
        query = urllib.parse.parse_qs(parsed.query)
        if query.get("watch", [""])[0] in ("true", "1"):
            self._empty_watch(kind, query)
        else:
            self._send(
                HTTPStatus.OK,
                {
                    "kind": f"{kind}List",
                    "apiVersion": "v1",
                    "metadata": {"resourceVersion": _CORE_RV},
                    "items": [],
                },
            )

    def _empty_watch(self, kind: str, query: Mapping[str, list[str]]) -> None:
        """A watch on an empty collection that stays open until it times out."""
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        if query.get("sendInitialEvents", [""])[0] == "true":
            # The streaming-list protocol: no initial objects, then the bookmark
            # that marks the end of the initial events.
            event = {
                "type": "BOOKMARK",
                "object": {
                    "kind": kind,
                    "apiVersion": "v1",
                    "metadata": {
                        "resourceVersion": _CORE_RV,
                        "annotations": {"k8s.io/initial-events-end": "true"},
                    },
                },
            }
            self._chunk(json.dumps(event).encode() + b"\n")
        try:
            timeout = float(query.get("timeoutSeconds", ["60"])[0])
        except ValueError:
            timeout = 60.0
        stopping: threading.Event = self.server.stopping  # type: ignore[attr-defined]
        stopping.wait(min(timeout, 600.0))
        self._chunk(b"")

    def _chunk(self, data: bytes) -> None:
        with contextlib.suppress(OSError):
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        try:
            review = json.loads(self.rfile.read(length) or b"{}")
        except ValueError:
            self._send(HTTPStatus.BAD_REQUEST, {"kind": "Status", "code": 400})
            return
        path = self.path.split("?", 1)[0]
        spec = review.get("spec") or {}
        if path == TOKENREVIEW_PATH:
            status = review_token(str(spec.get("token") or ""))
            self.log_message("TokenReview -> %s", (status.get("user") or {}).get("username"))
        elif path == SAR_PATH:
            status = review_access(spec)
            self.log_message("SubjectAccessReview %s -> %s", _describe(spec), status["allowed"])
        else:
            self._not_found()
            return
        counts = getattr(self.server, "counts", None)
        if counts is not None:
            counts[path] = counts.get(path, 0) + 1
        review["status"] = status
        review.setdefault("metadata", {})
        self._send(HTTPStatus.CREATED, review)


class AuthStub:
    """The stub server, running in a daemon thread on 127.0.0.1."""

    def __init__(self, log_path: str | None = None) -> None:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._log_file = open(log_path, "a", buffering=1) if log_path else None  # noqa: SIM115
        self._server.log = self._log if self._log_file else None  # type: ignore[attr-defined]
        self.counts: dict[str, int] = {}
        self._server.counts = self.counts  # type: ignore[attr-defined]
        self._server.stopping = threading.Event()  # type: ignore[attr-defined]
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="authstub", daemon=True
        )

    def _log(self, line: str) -> None:
        if self._log_file is not None:
            self._log_file.write(line + "\n")

    @property
    def url(self) -> str:
        port = self._server.server_address[1]
        return f"http://127.0.0.1:{port}"

    def start(self) -> AuthStub:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.stopping.set()  # type: ignore[attr-defined]
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def kubeconfig_text(self) -> str:
        """A kubeconfig for the API server's ``--*kubeconfig`` flags."""
        return json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "core", "cluster": {"server": self.url}}],
                "users": [{"name": "delegator", "user": {"token": DELEGATOR_TOKEN}}],
                "contexts": [{"name": "core", "context": {"cluster": "core", "user": "delegator"}}],
                "current-context": "core",
            },
            indent=2,
        )
