"""HTTP handlers for the versioned API and the Steve-compatible paths.

Handlers are thin: work out which client version is calling, authenticate,
validate names, call :class:`bff.upgrades.UpgradeService`, shape the answer.
Writes (PUT and actions) also count metrics and write one audit line, whether
they succeed or are refused.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping

from aiohttp import web
from multidict import CIMultiDict

from bff import errors
from bff.api.bodies import read_json, refuse_body, single
from bff.api.paths import RANCHER_STEVE_ROUTE, STEVE_ROUTE, UPGRADES_ROUTE
from bff.identities import Caller
from bff.keys import ACCESS, AUTH, METRICS, SERVICE, SETTINGS
from bff.label_selectors import SelectorError, parse_selector
from bff.middleware import ANSWER_HEADERS
from bff.names import check_name, check_namespace
from bff.patches import WARNINGS
from bff.request_keys import ACTION, ACTIONS, CLIENT_VERSION, Action
from bff.steve import STEVE, VERSIONS, ClientVersion, resource
from bff.upgrade_resource import READ_MESSAGE
from bff.upgrades import Outcome

audit_log = logging.getLogger("bff.audit")


def _client_version(match: Mapping[str, str]) -> ClientVersion:
    name = match.get("version")
    if name is None:
        return STEVE
    version = VERSIONS.get(name)
    if version is None:
        supported = ", ".join(VERSIONS)
        raise errors.NotFound(
            f"unknown client version {name[:40]!r}; supported versions: {supported}",
            code=errors.Code.UNKNOWN_VERSION,
        )
    return version


@functools.lru_cache(maxsize=1024)
def _linked(resource: web.AbstractResource, client: str, part: str, value: str) -> ClientVersion:
    """The client version named ``client`` linking to ``resource`` (its ``part`` set to
    ``value``, when one is named).

    Once per route, version and parameter, not per request: ``url_for`` quotes and
    builds a URL (about a tenth of a cached GET). The router is frozen before the
    first request, so the URL cannot change after.
    """
    url = resource.url_for(**{part: value}) if part else resource.url_for()
    return VERSIONS.get(client, STEVE).at(str(url))


def _at(request: web.Request, version: ClientVersion) -> ClientVersion:
    """``version`` linking to the collection this request came through (named routes)."""
    router = request.app.router
    match = request.match_info
    if "version" in match:
        return _linked(router[UPGRADES_ROUTE], version.name, "version", version.name)
    cluster = match.get("cluster")
    if cluster is not None:
        return _linked(router[RANCHER_STEVE_ROUTE], STEVE.name, "cluster", cluster)
    return _linked(router[STEVE_ROUTE], STEVE.name, "", "")


def _labelled(request: web.Request, action: Action) -> ClientVersion:
    """The client version (404 for an unknown one), both recorded for the metrics with
    ``action``; a cluster id in the path is checked too."""
    match = request.match_info
    version = _client_version(match)
    request[CLIENT_VERSION] = version.name
    request[ACTION] = action
    cluster = match.get("cluster")
    if cluster is not None:
        check_name(cluster)
    return version


async def _begin(request: web.Request, action: Action) -> tuple[ClientVersion, Caller]:
    version = _labelled(request, action)
    caller = await request.app[AUTH].caller(request)
    return _at(request, version), caller


def _target(request: web.Request) -> tuple[str, str]:
    match = request.match_info
    return check_namespace(match["namespace"]), check_name(match["name"])


async def list_upgrades(request: web.Request) -> web.Response:
    version, caller = await _begin(request, Action.LIST)
    settings = request.app[SETTINGS]
    namespace = check_namespace(request.match_info.get("namespace", settings.namespace))
    selector = single(request.query, "labelSelector") or ""
    try:
        parsed = parse_selector(selector)
    except SelectorError as exc:
        raise errors.BadRequest(
            f"invalid labelSelector: {exc}", code=errors.Code.INVALID_SELECTOR
        ) from None
    body = await request.app[SERVICE].list_rendered(
        caller, namespace, selector, parsed, version, str(request.rel_url)
    )
    return _json(body)


#: The headers of a JSON answer, with every answer's own (the middleware would add them one
#: by one); each answer gets a copy (aiohttp's Response makes it).
_JSON_HEADERS = CIMultiDict({"Content-Type": "application/json; charset=utf-8", **ANSWER_HEADERS})


def _json(body: bytes) -> web.Response:
    return web.Response(body=body, headers=_JSON_HEADERS)  # copied by the Response


async def get_upgrade(request: web.Request) -> web.Response:
    # :func:`_begin`, and the read, each without a coroutine when nothing needs awaiting
    # (the caller's review and the allow kept, the object cached): the most frequent
    # request there is.
    app = request.app
    labelled = _labelled(request, Action.GET)
    auth = app[AUTH]
    caller = auth.caller_now(request)
    if caller is None:
        caller = await auth.caller(request)
    version = _at(request, labelled)
    namespace, name = _target(request)
    service = app[SERVICE]
    body = service.rendered_now(caller, namespace, name, version)
    if body is None:
        body = await service.get_rendered(caller, namespace, name, version)
    return _json(body)


async def upgrade_access(request: web.Request) -> web.Response:
    """What the caller may do to the Upgrades in the BFF's namespace: ``patch`` or not.

    Every write the BFF makes is a PATCH with the caller's credentials (or as the
    caller, impersonated), so ``patch`` says whether Dismiss, Cancel or a PUT could
    change anything for this caller. Authorised like a list (403 for a caller who
    may not even read); then the ``patch`` review's denial is the answer, not an
    error. In Rancher mode both reviews go through Rancher's proxy of the caller's
    cluster with the caller's Rancher token, as the caller's writes would.
    """
    _, caller = await _begin(request, Action.ACCESS)  # an unknown version is a 404
    namespace = request.app[SETTINGS].namespace
    access = request.app[ACCESS]
    await access.check(caller, "list", namespace)
    patch = await access.allows(caller, "patch", namespace)
    body = {"type": "access", "namespace": namespace, "patch": patch}
    return web.json_response(body)


async def put_upgrade(request: web.Request) -> web.Response:
    with _WriteAudit(request) as audit:
        version, caller = await _begin(request, Action.PUT)
        audit.acting(caller, version, Action.PUT)
        namespace, name = _target(request)
        body = await read_json(request, request.app[SETTINGS].max_body_bytes)
        outcome = await request.app[SERVICE].put(caller, namespace, name, body)
        return audit.written(outcome, version)


async def post_action(request: web.Request) -> web.Response:
    with _WriteAudit(request) as audit:
        version, caller = await _begin(request, Action.ACTION)
        audit.acting(caller, version, Action.ACTION)
        if not version.actions:
            raise errors.MethodNotAllowed(
                f"{version.name} clients have no actions; they PUT the object",
                headers={"Allow": "GET, PUT"},
            )
        namespace, name = _target(request)
        action = _action(single(request.query, "action") or "")
        request[ACTION] = action
        audit.acting(caller, version, action)
        await refuse_body(request)
        service = request.app[SERVICE]
        if action is Action.DISMISS:
            outcome = await service.dismiss(caller, namespace, name)
        else:
            outcome = await service.cancel(caller, namespace, name)
        return audit.written(outcome, version)


def _action(raw: str) -> Action:
    if raw not in ACTIONS:
        raise errors.BadRequest(
            f"unknown action {raw[:40]!r}; actions are dismiss and cancel",
            code=errors.Code.UNKNOWN_ACTION,
        )
    return Action(raw)


class _WriteAudit:
    """One audit line per write request, whatever happens, and the metrics of a write.

    Used as ``with _WriteAudit(request) as audit:`` around the whole handler:
    a refusal (a :class:`errors.BffError`, even before the caller or the target
    is known) is logged as ``refused``, any other exception as ``error`` (the
    error middleware answers it with a plain 500), and :meth:`written` logs the
    outcome and builds the answer.
    """

    def __init__(self, request: web.Request) -> None:
        self._request = request
        match = request.match_info
        self._entry: dict[str, object] = {
            "user": "-",
            "client_version": match.get("version", STEVE.name)[:20],
            "action": str(request.get(ACTION, "-")),
            "object": f"{match.get('namespace', '-')[:63]}/{match.get('name', '-')[:253]}",
        }

    def __enter__(self) -> _WriteAudit:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: object
    ) -> None:
        if exc is None or not isinstance(exc, Exception):
            return
        self._entry["action"] = str(self._request.get(ACTION, self._entry["action"]))
        if isinstance(exc, errors.BffError):
            self._entry.update(result="refused", code=exc.code, status=exc.status,
                               upstream_status=exc.upstream_status)  # fmt: skip
            message = "write refused"
        else:
            self._entry.update(result="error", code=errors.Code.INTERNAL_ERROR, status=500,
                               upstream_status=None)  # fmt: skip
            message = "write failed"
        self._entry.update(labels_changed=[], ignored=[])
        audit_log.info(message, extra={"audit": self._entry})

    def acting(self, caller: Caller, version: ClientVersion, action: Action) -> None:
        self._entry.update(user=caller.audit_name, client_version=version.name,
                           action=str(action))  # fmt: skip

    def written(self, outcome: Outcome, version: ClientVersion) -> web.Response:
        metrics = self._request.app[METRICS]
        metrics.writes.labels("performed" if outcome.changed else "skipped").inc()
        if outcome.conflicts:
            metrics.conflict_retries.inc(outcome.conflicts)
        if outcome.status_wipe:
            metrics.status_wipes_prevented.inc()
        for category in outcome.ignored:
            metrics.ignored_fields.labels(str(category)).inc()
        self._entry.update(
            result="changed" if outcome.changed else "unchanged",
            status=200,
            upstream_status=200 if outcome.changed else None,
            labels_changed=[READ_MESSAGE] if outcome.changed else [],
            ignored=sorted(str(c) for c in outcome.ignored),
            conflict_retries=outcome.conflicts,
            status_wipe_prevented=outcome.status_wipe,
        )
        audit_log.info("write", extra={"audit": self._entry})
        response = web.json_response(resource(outcome.obj, version))
        response.headers["X-Upgrade-Bff-Changed"] = "true" if outcome.changed else "false"
        for category in sorted(outcome.ignored):
            response.headers.add("Warning", f'299 - "{WARNINGS[category]}"')
        return response
