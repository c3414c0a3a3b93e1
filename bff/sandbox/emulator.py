"""A Kubernetes API server for one custom resource, ``upgrades.harvesterhci.io/v1beta1``.

:func:`create_emulator_app` builds an aiohttp application that answers the REST paths a
client (kubernetes-asyncio, kubectl, the BFF) uses, with kube-apiserver's semantics:
authentication by bearer token, impersonation, RBAC, GET/LIST/WATCH, create, update,
JSON/merge patch, delete with finalizers, TokenReview and discovery. The write rules live
in :mod:`bff.sandbox.store`; this module is the HTTP layer.

Test support, reachable only through the emulator's own AppKeys (the BFF never sees it):

- ``EMULATOR_STORE``: the :class:`~bff.sandbox.store.Store` (``get``, ``list``,
  ``compact``, ``bump``);
- ``EMULATOR_JOURNAL``: every non-GET request as it arrived, with the answer's status;
- ``EMULATOR_FAULTS``: injected answers, delays, or store actions for matching requests.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import copy
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import jsonpatch
import yaml
from aiohttp import web

from bff.labels import Selector, SelectorError, parse_selector
from bff.sandbox import identities
from bff.sandbox.identities import Attributes, ImpersonationError, UserInfo
from bff.sandbox.mergepatch import apply_merge_patch
from bff.sandbox.seed import seed_store
from bff.sandbox.store import (
    API_VERSION,
    GROUP,
    KIND,
    LIST_KIND,
    PLURAL,
    VERSION,
    Event,
    StatusError,
    Store,
)

__all__ = [
    "EMULATOR_FAULTS",
    "EMULATOR_JOURNAL",
    "EMULATOR_STORE",
    "Fault",
    "Faults",
    "Journal",
    "JournalEntry",
    "create_emulator_app",
]

log = logging.getLogger("bff.sandbox.emulator")

JSON = dict[str, Any]
MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"
# customresource_handler.go: the patch types a custom resource accepts (no strategic merge).
CR_PATCH_TYPES = (JSON_PATCH, MERGE_PATCH, APPLY_PATCH)
BODY_TYPES = ("application/json", "application/yaml")
PUBLIC_PATHS = frozenset({"/healthz", "/livez", "/readyz", "/version"})
KUBE_VERSION = {
    "major": "1",
    "minor": "33",
    "gitVersion": "v1.33.0",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2025-04-23T00:00:00Z",
    "goVersion": "go1.24.2",
    "compiler": "gc",
    "platform": "linux/amd64",
}


# --- test support: journal and faults --------------------------------------------------


@dataclass(frozen=True)
class JournalEntry:
    """One non-GET request as it arrived, and the status it got."""

    method: str
    path: str
    query: Mapping[str, str]
    content_type: str
    body: Any
    user: str
    status: int


@dataclass
class Journal:
    entries: list[JournalEntry] = field(default_factory=list)

    def writes(self, method: str | None = None) -> list[JournalEntry]:
        return [e for e in self.entries if method is None or e.method == method.upper()]

    def clear(self) -> None:
        self.entries.clear()


@dataclass
class Fault:
    """An injected behaviour for requests with ``method`` (and a path ending in ``path_suffix``).

    Applied ``times`` times, in this order: run ``action`` on the store, sleep ``delay``
    seconds, then answer ``status`` (with ``body`` or a matching Status, and ``headers``)
    instead of handling the request. Without ``status`` the request is handled normally.
    """

    method: str
    path_suffix: str | None = None
    status: int | None = None
    body: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)
    delay: float = 0.0
    action: Callable[[Store], object] | None = None
    times: int = 1

    def matches(self, method: str, path: str) -> bool:
        return self.method.upper() in (method.upper(), "*") and (
            self.path_suffix is None or path.endswith(self.path_suffix)
        )


@dataclass
class Faults:
    pending: list[Fault] = field(default_factory=list)

    def add(self, fault: Fault) -> Fault:
        self.pending.append(fault)
        return fault

    def clear(self) -> None:
        self.pending.clear()

    def take(self, method: str, path: str) -> Fault | None:
        for fault in self.pending:
            if fault.matches(method, path):
                fault.times -= 1
                if fault.times <= 0:
                    self.pending.remove(fault)
                return fault
        return None


_FAULT_REASONS = {
    400: ("BadRequest", "injected bad request"),
    401: ("Unauthorized", "Unauthorized"),
    403: ("Forbidden", "forbidden: injected"),
    404: ("NotFound", "the server could not find the requested resource"),
    409: ("Conflict", "Operation cannot be fulfilled: injected conflict"),
    410: ("Expired", "injected expiry"),
    422: ("Invalid", "injected invalid"),
    429: ("TooManyRequests", "Too many requests, please try again later."),
    500: ("InternalError", "Internal error occurred: injected fault"),
    503: ("ServiceUnavailable", "the server is currently unable to handle the request"),
    504: ("Timeout", "the server was unable to return a response in the time allotted"),
}


EMULATOR_STORE = web.AppKey("emulator_store", Store)
EMULATOR_JOURNAL = web.AppKey("emulator_journal", Journal)
EMULATOR_FAULTS = web.AppKey("emulator_faults", Faults)
_BOOKMARK_INTERVAL = web.AppKey("emulator_bookmark_interval", float)

_USER = web.RequestKey("emulator_user", UserInfo)
_JOURNAL_BODY = web.RequestKey("emulator_journal_body", object)


# --- helpers ----------------------------------------------------------------------------


def _status_response(err: StatusError) -> web.Response:
    response = web.json_response(err.status, status=err.code)
    for name, value in err.headers.items():
        response.headers[name] = value
    return response


def _warning_header(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return f'299 - "{escaped}"'


def _object_response(
    obj: Any, status: int = 200, warnings: list[str] | None = None
) -> web.Response:
    response = web.json_response(obj, status=status)
    for warning in warnings or []:
        response.headers.add("Warning", _warning_header(warning))
    return response


def _media_type(request: web.Request) -> str:
    raw = request.headers.get("Content-Type", "")
    return raw.split(";", 1)[0].strip().lower()


async def _read_body(request: web.Request) -> Any:
    """Decode a JSON or YAML request body, as the API server's negotiated decoder does."""
    media = _media_type(request) or "application/json"
    if media not in BODY_TYPES:
        raise StatusError.unsupported_media_type(BODY_TYPES)
    raw = await request.read()
    try:
        if media == "application/yaml":
            return yaml.safe_load(raw)
        return json.loads(raw)
    except (ValueError, yaml.YAMLError) as exc:
        raise StatusError.bad_request(
            f"couldn't get version/kind; json parse error: {exc}"
        ) from None


def _flag(value: str | None) -> bool:
    return value is not None and value.lower() in ("1", "t", "true")


def _selector(request: web.Request) -> Selector:
    try:
        return parse_selector(request.query.get("labelSelector", ""))
    except SelectorError as exc:
        raise StatusError.bad_request(str(exc)) from None


def _field_selector(request: web.Request, name: str | None = None) -> dict[str, str]:
    """The equality terms of ``fieldSelector`` on metadata.name / metadata.namespace."""
    terms: dict[str, str] = {}
    if name is not None:
        terms["metadata.name"] = name
    text = request.query.get("fieldSelector", "")
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = part.partition("==") if "==" in part else part.partition("=")
        if not sep or key.endswith("!"):
            raise StatusError.bad_request(f'invalid selector: "{text}"')
        if key not in ("metadata.name", "metadata.namespace"):
            raise StatusError.bad_request(f"field label not supported: {key}")
        terms[key] = value
    return terms


def _fields_match(obj: JSON, terms: Mapping[str, str]) -> bool:
    meta = obj["metadata"]
    return all(meta.get(k.removeprefix("metadata.")) == v for k, v in terms.items())


def _labels(obj: JSON) -> Mapping[str, str]:
    labels = obj["metadata"].get("labels") or {}
    return labels if isinstance(labels, dict) else {}


# --- authentication, authorisation, impersonation -----------------------------------------


_RESOURCE_PREFIX = f"/apis/{GROUP}/{VERSION}/"


def _attributes(request: web.Request, user: UserInfo) -> Attributes:
    """What the request asks for, as kube-apiserver's RequestInfo resolver would say."""
    path = request.path
    method = request.method
    if path == "/apis/authentication.k8s.io/v1/tokenreviews":
        return Attributes(user, method.lower() if method != "POST" else "create",
                          api_group="authentication.k8s.io", api_version="v1",
                          resource="tokenreviews")  # fmt: skip
    if path.startswith(_RESOURCE_PREFIX):
        parts = path[len(_RESOURCE_PREFIX) :].split("/")
        namespace = ""
        if len(parts) >= 2 and parts[0] == "namespaces":
            namespace, parts = parts[1], parts[2:]
        if parts and parts[0] == PLURAL and len(parts) <= 2:
            name = parts[1] if len(parts) == 2 else ""
            verb = {
                "GET": "get",
                "HEAD": "get",
                "POST": "create",
                "PUT": "update",
                "PATCH": "patch",
                "DELETE": "delete",
            }.get(method, method.lower())
            watch = request.query.getone("watch", None)
            if verb == "get" and watch is not None and watch.lower() not in ("false", "0"):
                verb = "watch"
            elif verb == "get" and not name:
                verb = "list"
            elif verb == "delete" and not name:
                verb = "deletecollection"
            return Attributes(user, verb, api_group=GROUP, api_version=VERSION,
                              resource=PLURAL, namespace=namespace, name=name)  # fmt: skip
    return Attributes(user, method.lower(), resource_request=False, path=path)


def _forbidden(attrs: Attributes) -> StatusError:
    details = {"name": attrs.name, "group": attrs.api_group, "kind": attrs.resource}
    return StatusError(
        403,
        "Forbidden",
        identities.forbidden_message(attrs),
        {k: v for k, v in details.items() if v} or None,
    )


_UNAUTHORIZED = StatusError(401, "Unauthorized", "Unauthorized")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def _log_and_journal(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Outermost: one log line per request, the journal, and errors as Status objects."""
    started = time.monotonic()
    status = 500
    try:
        response = await _as_status(request, handler)
        status = response.status
        return response
    except asyncio.CancelledError:
        status = 499  # the server stopped while the request (a watch) was open
        raise
    finally:
        user = request.get(_USER)
        who = user.username if user else "-"
        log.info(
            "%s %s user=%s -> %d (%.0f ms)",
            request.method,
            request.path,
            who,
            status,
            (time.monotonic() - started) * 1000,
        )
        if request.method not in ("GET", "HEAD"):
            journal = request.app[EMULATOR_JOURNAL]
            journal.entries.append(
                JournalEntry(
                    method=request.method,
                    path=request.path,
                    query=dict(request.query),
                    content_type=request.headers.get("Content-Type", ""),
                    body=request.get(_JOURNAL_BODY),
                    user=who,
                    status=status,
                )
            )


async def _as_status(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.method not in ("GET", "HEAD") and request.can_read_body:
        raw = await request.read()
        try:
            request[_JOURNAL_BODY] = json.loads(raw) if raw else None
        except ValueError:
            request[_JOURNAL_BODY] = raw.decode("utf-8", "replace")
    try:
        return await handler(request)
    except StatusError as err:
        return _status_response(err)
    except web.HTTPMethodNotAllowed:
        return _status_response(StatusError.method_not_allowed())
    except web.HTTPNotFound:
        return _status_response(
            StatusError(404, "NotFound", "the server could not find the requested resource")
        )


@web.middleware
async def _authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
    header = request.headers.get("Authorization", "")
    user: UserInfo | None
    if not header:
        # Anonymous requests are authenticated as system:anonymous and then authorised,
        # like kube-apiserver with anonymous auth on (its default): 403, not 401.
        user = UserInfo(identities.ANONYMOUS, groups=(identities.ALL_UNAUTHENTICATED,))
    else:
        scheme, _, token = header.partition(" ")
        user = identities.authenticate(token.strip()) if scheme.lower() == "bearer" else None
        if user is None:
            raise _UNAUTHORIZED
    request[_USER] = user
    try:
        acting = identities.impersonate(user, list(request.headers.items()))
    except ImpersonationError as exc:
        if exc.attributes is None:
            return web.Response(
                status=500,
                text=f'Internal Server Error: "{request.path}": {exc}',
                content_type="text/plain",
            )
        raise _forbidden(exc.attributes) from None
    if acting is not None:
        request[_USER] = acting
        user = acting
    attrs = _attributes(request, user)
    if not identities.authorize(attrs):
        raise _forbidden(attrs)
    return await handler(request)


@web.middleware
async def _inject_faults(request: web.Request, handler: Handler) -> web.StreamResponse:
    fault = request.app[EMULATOR_FAULTS].take(request.method, request.path)
    if fault is None:
        return await handler(request)
    if fault.action is not None:
        fault.action(request.app[EMULATOR_STORE])
    if fault.delay:
        await asyncio.sleep(fault.delay)
    if fault.status is None:
        return await handler(request)
    body = fault.body
    if body is None:
        reason, message = _FAULT_REASONS.get(fault.status, ("Unknown", "injected fault"))
        body = StatusError(fault.status, reason, message).status
    response = web.json_response(body, status=fault.status)
    for name, value in fault.headers.items():
        response.headers[name] = value
    return response


# --- discovery and health -------------------------------------------------------------------


async def _healthz(request: web.Request) -> web.Response:
    return web.Response(text="ok")


async def _version(request: web.Request) -> web.Response:
    return web.json_response(KUBE_VERSION)


def _group(name: str, version: str) -> JSON:
    gv = {"groupVersion": f"{name}/{version}", "version": version}
    return {"name": name, "versions": [gv], "preferredVersion": gv}


async def _apis(request: web.Request) -> web.Response:
    return web.json_response(
        {
            "kind": "APIGroupList",
            "apiVersion": "v1",
            "groups": [_group("authentication.k8s.io", "v1"), _group(GROUP, VERSION)],
        }
    )


async def _api_group(request: web.Request) -> web.Response:
    return web.json_response({"kind": "APIGroup", "apiVersion": "v1", **_group(GROUP, VERSION)})


async def _api_resources(request: web.Request) -> web.Response:
    return web.json_response(
        {
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": API_VERSION,
            "resources": [
                {
                    "name": PLURAL,
                    "singularName": "upgrade",
                    "namespaced": True,
                    "kind": KIND,
                    "verbs": [
                        "delete",
                        "deletecollection",
                        "get",
                        "list",
                        "patch",
                        "create",
                        "update",
                        "watch",
                    ],
                    "storageVersionHash": "5cx8pHt9LWU=",
                }
            ],
        }
    )


async def _auth_group(request: web.Request) -> web.Response:
    return web.json_response(
        {"kind": "APIGroup", "apiVersion": "v1", **_group("authentication.k8s.io", "v1")}
    )


async def _auth_resources(request: web.Request) -> web.Response:
    return web.json_response(
        {
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": "authentication.k8s.io/v1",
            "resources": [
                {
                    "name": "tokenreviews",
                    "singularName": "tokenreview",
                    "namespaced": False,
                    "kind": "TokenReview",
                    "verbs": ["create"],
                }
            ],
        }
    )


async def _token_review(request: web.Request) -> web.Response:
    body = await _read_body(request)
    # Like kube-apiserver, a body without apiVersion/kind is decoded as the endpoint's kind.
    if not isinstance(body, dict) or body.get("kind", "TokenReview") != "TokenReview":
        raise StatusError.bad_request("the body must be a TokenReview")
    spec = body.get("spec") or {}
    token = spec.get("token") or ""
    if not token:
        raise StatusError.bad_request("token is required for TokenReview in authentication")
    user = identities.authenticate(token)
    status: JSON = {"user": {}}
    if user is not None:
        status = {"authenticated": True, "user": user.as_token_review_user()}
        if spec.get("audiences"):
            status["audiences"] = spec["audiences"]
    return web.json_response(
        {
            "kind": "TokenReview",
            "apiVersion": "authentication.k8s.io/v1",
            "metadata": {"creationTimestamp": None},
            "spec": spec,
            "status": status,
        },
        status=201,
    )


# --- upgrades ---------------------------------------------------------------------------


def _store(request: web.Request) -> Store:
    return request.app[EMULATOR_STORE]


async def _get(request: web.Request) -> web.StreamResponse:
    namespace, name = request.match_info["namespace"], request.match_info["name"]
    if _flag(request.query.get("watch")):
        return await _watch(request, namespace, _field_selector(request, name))
    obj = _store(request).get(namespace, name)
    if obj is None:
        raise StatusError.not_found(name)
    return web.json_response(obj)


async def _list_namespaced(request: web.Request) -> web.StreamResponse:
    return await _list(request, request.match_info["namespace"])


async def _list_all(request: web.Request) -> web.StreamResponse:
    return await _list(request, None)


async def _list(request: web.Request, namespace: str | None) -> web.StreamResponse:
    selector = _selector(request)
    fields = _field_selector(request)
    if _flag(request.query.get("watch")):
        return await _watch(request, namespace, fields, selector)
    store = _store(request)
    items = [o for o in store.list(namespace, selector) if _fields_match(o, fields)]
    rv = store.resource_version
    metadata: JSON = {"resourceVersion": str(rv)}
    limit_text = request.query.get("limit", "")
    start = 0
    token = request.query.get("continue", "")
    if token:
        try:
            decoded = json.loads(base64.urlsafe_b64decode(token.encode()))
            start_key = str(decoded["start"])
        except (ValueError, KeyError, TypeError):
            raise StatusError.bad_request("invalid continue token") from None
        start = sum(1 for o in items if _item_key(o) < start_key)
    items = items[start:]
    if limit_text.isdigit() and 0 < int(limit_text) < len(items):
        items = items[: int(limit_text)]
        next_key = _item_key(items[-1]) + "\x00"
        token_body = {"v": "meta.k8s.io/v1", "rv": rv, "start": next_key}
        metadata["continue"] = base64.urlsafe_b64encode(json.dumps(token_body).encode()).decode()
        metadata["remainingItemCount"] = len(
            [o for o in store.list(namespace, selector) if _item_key(o) > next_key]
        )
    else:
        metadata["continue"] = ""
    return web.json_response(
        {"apiVersion": API_VERSION, "items": items, "kind": LIST_KIND, "metadata": metadata}
    )


def _item_key(obj: JSON) -> str:
    return f"{obj['metadata']['namespace']}/{obj['metadata']['name']}"


def _watch_event(
    event: Event, namespace: str | None, fields: Mapping[str, str], selector: Selector
) -> JSON | None:
    """The event a filtered watch sees, as the cacher converts it (cache_watcher.go)."""

    def passes(obj: JSON | None) -> bool:
        return (
            obj is not None
            and (namespace is None or obj["metadata"]["namespace"] == namespace)
            and _fields_match(obj, fields)
            and selector.matches(_labels(obj))
        )

    current = event.type != "DELETED" and passes(event.obj)
    previous = passes(event.prev) if event.type != "ADDED" else False
    if event.type == "DELETED":
        return {"type": "DELETED", "object": event.obj} if passes(event.obj) else None
    if current and previous:
        return {"type": "MODIFIED", "object": event.obj}
    if current:
        return {"type": "ADDED", "object": event.obj}
    if previous and event.prev is not None:
        gone = copy.deepcopy(event.prev)
        gone["metadata"]["resourceVersion"] = str(event.resource_version)
        return {"type": "DELETED", "object": gone}
    return None


async def _watch(
    request: web.Request,
    namespace: str | None,
    fields: Mapping[str, str],
    selector: Selector | None = None,
) -> web.StreamResponse:
    if selector is None:
        selector = _selector(request)
    store = _store(request)
    rv_text = request.query.get("resourceVersion", "")
    timeout_text = request.query.get("timeoutSeconds", "")
    bookmarks = _flag(request.query.get("allowWatchBookmarks"))
    timeout = float(timeout_text) if timeout_text.isdigit() and int(timeout_text) > 0 else None
    initial: list[JSON] = []
    error: StatusError | None = None
    if rv_text in ("", "0"):
        for obj in store.list(namespace, selector):
            if _fields_match(obj, fields):
                initial.append({"type": "ADDED", "object": obj})
    else:
        if not rv_text.isdigit():
            raise StatusError.bad_request(f"invalid resource version: {rv_text}")
        since = int(rv_text)
        if since < store.history_start:
            error = StatusError.expired(
                f"too old resource version: {since} ({store.history_start})"
            )
        elif since > store.resource_version:
            error = StatusError(
                504,
                "Timeout",
                f"Too large resource version: {since}, current: {store.resource_version}",
                {"causes": [{"reason": "ResourceVersionTooLarge",
                             "message": "Too large resource version"}],
                 "retryAfterSeconds": 1},
            )  # fmt: skip
        else:
            for past in store.events_since(since):
                converted = _watch_event(past, namespace, fields, selector)
                if converted is not None:
                    initial.append(converted)
    # Subscribing in the same step as reading history: no event can fall in between.
    sub = store.subscribe()
    response = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
    try:
        await response.prepare(request)
        if error is not None:
            await _send(response, {"type": "ERROR", "object": error.status})
            return response
        for item in initial:
            await _send(response, item)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout if timeout else None
        interval = request.app[_BOOKMARK_INTERVAL]
        next_bookmark = loop.time() + interval
        while True:
            now = loop.time()
            waits = [next_bookmark - now] if bookmarks else []
            if deadline is not None:
                waits.append(deadline - now)
            wait = max(0.0, min(waits)) if waits else None
            try:
                event: Event | None = await asyncio.wait_for(sub.queue.get(), wait)
            except TimeoutError:
                if deadline is not None and loop.time() >= deadline:
                    break
                if bookmarks and loop.time() >= next_bookmark:
                    await _send(response, _bookmark(store.resource_version))
                    next_bookmark = loop.time() + interval
                continue
            if event is None:
                break
            converted = _watch_event(event, namespace, fields, selector)
            if converted is not None:
                await _send(response, converted)
    except ConnectionResetError:
        pass
    finally:
        store.unsubscribe(sub)
    with contextlib.suppress(ConnectionResetError):
        await response.write_eof()
    return response


def _bookmark(resource_version: int) -> JSON:
    return {
        "type": "BOOKMARK",
        "object": {
            "kind": KIND,
            "apiVersion": API_VERSION,
            "metadata": {"resourceVersion": str(resource_version), "creationTimestamp": None},
        },
    }


async def _send(response: web.StreamResponse, event: JSON) -> None:
    await response.write(json.dumps(event, separators=(",", ":")).encode() + b"\n")


async def _create(request: web.Request) -> web.Response:
    body = await _read_body(request)
    obj, warnings = _store(request).create(request.match_info["namespace"], body)
    return _object_response(obj, 201, warnings)


def _check_name(obj: Any, name: str) -> None:
    """``checkName`` in handlers/rest.go: the body must name the object in the URL."""
    meta = obj.get("metadata") if isinstance(obj, dict) else None
    body_name = (meta or {}).get("name", "") if isinstance(meta, dict) else ""
    if body_name != name:
        raise StatusError.bad_request(
            f"the name of the object ({body_name}) does not match the name on the URL ({name})"
        )


async def _replace(request: web.Request) -> web.Response:
    namespace, name = request.match_info["namespace"], request.match_info["name"]
    body = await _read_body(request)
    store = _store(request)
    decoded, _ = store.decode(body)
    meta = decoded["metadata"]
    if meta.get("namespace") and meta["namespace"] != namespace:
        raise StatusError.bad_request(
            "the namespace of the provided object does not match the namespace sent on the request"
        )
    _check_name(decoded, name)
    obj, warnings, _ = store.update(
        namespace, name, lambda _live: body, uid_precondition=meta.get("uid") or None
    )
    return _object_response(obj, 200, warnings)


def _json_patch_error(op: Mapping[str, Any], exc: Exception) -> str:
    """evanphx/json-patch v4's wording for a failed operation."""
    path = str(op.get("path", ""))
    kind = op.get("op")
    if isinstance(exc, jsonpatch.JsonPatchTestFailed):
        return f"testing value {path} failed: test failed"
    key = path.rsplit("/", 1)[-1]
    if kind == "remove":
        return (
            f"error in remove for path: '{path}': "
            f"Unable to remove nonexistent key: {key}: missing value"
        )
    if kind == "replace":
        return f"replace operation does not apply: doc is missing key: {path}: missing value"
    if kind in ("add", "move", "copy"):
        return f'{kind} operation does not apply: doc is missing path: "{path}": missing value'
    return str(exc)


def _apply_json_patch(live: JSON, patch: Any) -> Any:
    if not isinstance(patch, list) or not all(isinstance(op, dict) for op in patch):
        raise StatusError.bad_request(
            f"json: cannot unmarshal {type(patch).__name__} into Go value of type jsonpatch.Patch"
        )
    doc: Any = live
    for op in patch:
        if op.get("op") not in ("add", "remove", "replace", "move", "copy", "test"):
            raise StatusError.unprocessable(f"Unexpected kind: {op.get('op')}")
        try:
            doc = jsonpatch.JsonPatch([op]).apply(doc)
        except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException) as exc:
            raise StatusError.unprocessable(_json_patch_error(op, exc)) from None
    return doc


async def _patch(request: web.Request) -> web.Response:
    namespace, name = request.match_info["namespace"], request.match_info["name"]
    media = _media_type(request)
    if media not in (MERGE_PATCH, JSON_PATCH):
        # Strategic merge patch does not exist for custom resources; server-side apply is
        # not emulated (it needs managedFields), so it is refused the same way.
        raise StatusError.unsupported_media_type(CR_PATCH_TYPES)
    raw = await request.read()
    try:
        patch = json.loads(raw)
    except ValueError:
        if media == MERGE_PATCH:
            raise StatusError.bad_request("Invalid JSON Patch") from None
        raise StatusError.bad_request("invalid character in the JSON patch document") from None
    if media == MERGE_PATCH and not isinstance(patch, dict):
        raise StatusError.bad_request("Invalid JSON Patch")

    def patched(live: JSON) -> Any:
        result = (
            apply_merge_patch(live, patch)
            if media == MERGE_PATCH
            else _apply_json_patch(live, patch)
        )
        _check_name(result, name)
        return result

    obj, warnings, _ = _store(request).update(namespace, name, patched)
    return _object_response(obj, 200, warnings)


async def _delete(request: web.Request) -> web.Response:
    namespace, name = request.match_info["namespace"], request.match_info["name"]
    options: Any = None
    if request.can_read_body:
        raw = await request.read()
        if raw.strip():
            try:
                options = json.loads(raw)
            except ValueError:
                raise StatusError.bad_request("invalid DeleteOptions") from None
    preconditions = (options or {}).get("preconditions") or {} if isinstance(options, dict) else {}
    _, answer = _store(request).delete(
        namespace,
        name,
        uid_precondition=preconditions.get("uid"),
        rv_precondition=preconditions.get("resourceVersion"),
    )
    return web.json_response(answer, status=200)


async def _delete_collection(request: web.Request) -> web.Response:
    namespace = request.match_info["namespace"]
    store = _store(request)
    selector = _selector(request)
    deleted = []
    for obj in store.list(namespace, selector):
        remaining, _ = store.delete(namespace, obj["metadata"]["name"])
        deleted.append(remaining or obj)
    return web.json_response(
        {
            "apiVersion": API_VERSION,
            "items": deleted,
            "kind": LIST_KIND,
            "metadata": {"resourceVersion": str(store.resource_version)},
        }
    )


# --- the factory ------------------------------------------------------------------------


def create_emulator_app(
    *,
    seed: bool = True,
    store: Store | None = None,
    bookmark_interval: float = 60.0,
) -> web.Application:
    """The emulator, seeded with the three sample Upgrades unless ``seed`` is False."""
    app = web.Application(middlewares=[_log_and_journal, _authenticate, _inject_faults])
    app[EMULATOR_STORE] = store if store is not None else Store()
    app[EMULATOR_JOURNAL] = Journal()
    app[EMULATOR_FAULTS] = Faults()
    app[_BOOKMARK_INTERVAL] = bookmark_interval
    if seed:
        seed_store(app[EMULATOR_STORE])

    async def close_watches(app: web.Application) -> None:
        app[EMULATOR_STORE].close_watchers()

    app.on_shutdown.append(close_watches)

    ns_base = f"/apis/{GROUP}/{VERSION}/namespaces/{{namespace}}/{PLURAL}"
    app.router.add_get("/healthz", _healthz)
    app.router.add_get("/livez", _healthz)
    app.router.add_get("/readyz", _healthz)
    app.router.add_get("/version", _version)
    app.router.add_get("/apis", _apis)
    app.router.add_get(f"/apis/{GROUP}", _api_group)
    app.router.add_get(f"/apis/{GROUP}/{VERSION}", _api_resources)
    app.router.add_get("/apis/authentication.k8s.io", _auth_group)
    app.router.add_get("/apis/authentication.k8s.io/v1", _auth_resources)
    app.router.add_post("/apis/authentication.k8s.io/v1/tokenreviews", _token_review)
    app.router.add_get(f"/apis/{GROUP}/{VERSION}/{PLURAL}", _list_all)
    app.router.add_get(ns_base, _list_namespaced)
    app.router.add_post(ns_base, _create)
    app.router.add_delete(ns_base, _delete_collection)
    app.router.add_get(ns_base + "/{name}", _get)
    app.router.add_put(ns_base + "/{name}", _replace)
    app.router.add_patch(ns_base + "/{name}", _patch)
    app.router.add_delete(ns_base + "/{name}", _delete)
    return app
