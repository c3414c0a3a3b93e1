"""HTTP handlers for the versioned API and the Steve-compatible paths.

Handlers are thin: work out which client family is calling, authenticate,
validate names, call :class:`bff.upgrades.UpgradeService`, shape the answer.
Writes (PUT and actions) also count metrics and write one audit line, whether
they succeed or are refused.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from bff import errors
from bff.api.bodies import read_json, refuse_body, single
from bff.api.paths import STEVE_COLLECTION
from bff.api.versions import STEVE, VERSIONS, ClientVersion
from bff.identity import Caller
from bff.keys import ACTION, AUTH, CLIENT_VERSION, METRICS, SERVICE, SETTINGS
from bff.labels import SelectorError, parse_selector
from bff.model import READ_MESSAGE
from bff.names import check_name, check_namespace
from bff.patches import WARNINGS
from bff.steve import Family, resource
from bff.upgrades import Action, Outcome

audit_log = logging.getLogger("bff.audit")


def _client_version(request: web.Request) -> ClientVersion:
    name = request.match_info.get("version")
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


def _family(request: web.Request, version: ClientVersion) -> Family:
    base = request.app[SETTINGS].base_path
    if "version" in request.match_info:
        url = f"{base}/api/{version.name}/upgrades"
    elif "cluster" in request.match_info:
        cluster = request.match_info["cluster"]
        url = f"{base}/k8s/clusters/{cluster}{STEVE_COLLECTION}"
    else:
        url = f"{base}{STEVE_COLLECTION}"
    return Family(client_version=version.name, collection_url=url, actions=version.actions)


async def _begin(request: web.Request, action: str) -> tuple[ClientVersion, Family, Caller]:
    version = _client_version(request)
    request[CLIENT_VERSION] = version.name
    request[ACTION] = action
    if "cluster" in request.match_info:
        check_name(request.match_info["cluster"])
    caller = await request.app[AUTH].caller(request)
    return version, _family(request, version), caller


def _target(request: web.Request) -> tuple[str, str]:
    return (
        check_namespace(request.match_info["namespace"]),
        check_name(request.match_info["name"]),
    )


async def list_upgrades(request: web.Request) -> web.Response:
    _, family, caller = await _begin(request, "list")
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
        caller, namespace, selector, parsed, family, str(request.rel_url)
    )
    return web.Response(body=body, content_type="application/json", charset="utf-8")


async def get_upgrade(request: web.Request) -> web.Response:
    _, family, caller = await _begin(request, "get")
    namespace, name = _target(request)
    body = await request.app[SERVICE].get_rendered(caller, namespace, name, family)
    return web.Response(body=body, content_type="application/json", charset="utf-8")


@dataclass(frozen=True)
class _Write:
    """A write request, once its client, caller and target are known."""

    action: Action
    version: ClientVersion
    family: Family
    caller: Caller
    namespace: str
    name: str
    run: Callable[[], Awaitable[Outcome]]


async def put_upgrade(request: web.Request) -> web.Response:
    async def plan() -> _Write:
        version, family, caller = await _begin(request, Action.PUT)
        namespace, name = _target(request)

        async def run() -> Outcome:
            body = await read_json(request, request.app[SETTINGS].max_body_bytes)
            return await request.app[SERVICE].put(caller, namespace, name, body)

        return _Write(Action.PUT, version, family, caller, namespace, name, run)

    return await _write(request, plan)


async def post_action(request: web.Request) -> web.Response:
    async def plan() -> _Write:
        version, family, caller = await _begin(request, "action")
        if not version.actions:
            raise errors.MethodNotAllowed(
                f"{version.name} clients have no actions; they PUT the object",
                headers={"Allow": "GET, PUT"},
            )
        namespace, name = _target(request)
        raw = single(request.query, "action") or ""
        if raw not in (Action.DISMISS, Action.CANCEL):
            raise errors.BadRequest(
                f"unknown action {raw[:40]!r}; actions are dismiss and cancel",
                code=errors.Code.UNKNOWN_ACTION,
            )
        action = Action(raw)
        request[ACTION] = action
        await refuse_body(request)
        service = request.app[SERVICE]
        if action is Action.DISMISS:
            return _Write(action, version, family, caller, namespace, name,
                          lambda: service.dismiss(caller, namespace, name))  # fmt: skip
        return _Write(action, version, family, caller, namespace, name,
                      lambda: service.cancel(caller, namespace, name))  # fmt: skip

    return await _write(request, plan)


async def _write(request: web.Request, plan: Callable[[], Awaitable[_Write]]) -> web.Response:
    """Run a write and account for it: metrics, one audit line, Warning headers.

    Refusals are audited too, including those before the caller or the target
    is known (no credential, a bad name, an unknown action).
    """
    metrics = request.app[METRICS]
    match = request.match_info
    entry: dict[str, object] = {
        "user": "-",
        "client_version": match.get("version", STEVE.name)[:20],
        "action": request.get(ACTION, "-"),
        "object": f"{match.get('namespace', '-')[:63]}/{match.get('name', '-')[:253]}",
    }
    try:
        write = await plan()
        entry.update(user=write.caller.audit_name, client_version=write.version.name,
                     action=str(write.action))  # fmt: skip
        outcome = await write.run()
    except errors.BffError as exc:
        entry.update(
            action=str(request.get(ACTION, entry["action"])),
            result="refused",
            code=exc.code,
            status=exc.status,
            upstream_status=exc.upstream_status,
            labels_changed=[],
            ignored=[],
        )
        audit_log.info("write refused", extra={"audit": entry})
        raise
    metrics.writes.labels("performed" if outcome.changed else "skipped").inc()
    if outcome.conflicts:
        metrics.conflict_retries.inc(outcome.conflicts)
    if outcome.status_wipe:
        metrics.status_wipes_prevented.inc()
    for category in outcome.ignored:
        metrics.ignored_fields.labels(str(category)).inc()
    ignored = sorted(str(c) for c in outcome.ignored)
    entry.update(
        result="changed" if outcome.changed else "unchanged",
        status=200,
        upstream_status=200 if outcome.changed else None,
        labels_changed=[READ_MESSAGE] if outcome.changed else [],
        ignored=ignored,
        conflict_retries=outcome.conflicts,
        status_wipe_prevented=outcome.status_wipe,
    )
    audit_log.info("write", extra={"audit": entry})
    response = web.json_response(resource(outcome.obj, write.family))
    response.headers["X-Upgrade-Bff-Changed"] = "true" if outcome.changed else "false"
    for category in sorted(outcome.ignored):
        response.headers.add("Warning", f'299 - "{WARNINGS[category]}"')
    return response
