"""The sandbox's other guarded resources: the six CRDs of ``bff.captured.crds``.

Besides Upgrades (served in full by :mod:`~bff.sandbox.crud` and friends), the
emulator serves IPPools, LoadBalancers, ScheduleVMBackups, Settings, KeyPairs and
ClusterNetworks, seeded with one object each (``bff.captured.guarded``, each with a
status as its controller writes it), so the cluster guard can be watched on all of
them. This is deliberately a small server, enough for a dashboard-style save and the
demo, not kube-apiserver's registry:

- GET of one object, LIST of a collection (namespaced or cluster-wide);
- PUT (with the ``resourceVersion`` precondition: 409 on a stale one), merge patch
  and JSON patch, POST; ``?dryRun=All``;
- every write goes through the emulator's admission (the webhook configurations it
  holds; the cluster guard's applies to all seven resources), and its warnings come
  back as ``Warning: 299`` headers;
- authentication and authorisation are the emulator's (the middleware in front of
  every route);
- no watch, no schema validation or pruning, no discovery documents, no tables,
  and no controllers: nothing rewrites a status here. The demo needs none: it shows
  what a save stores.
"""

from __future__ import annotations

import copy
import datetime as dt
import itertools
import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import jsonpatch
from aiohttp import web

from bff import captured
from bff.sandbox.httpio import object_response, status_response
from bff.sandbox.keys import EMULATOR_ADMISSION, USER
from bff.sandbox.status import StatusError
from bff.sandbox.users import UserInfo

__all__ = ["GUARDED_STORE", "GuardedKind", "GuardedStore", "add_routes", "kinds"]

JSON = dict[str, Any]


@dataclass(frozen=True)
class GuardedKind:
    """One served resource, read from its CRD."""

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool

    @property
    def resource(self) -> tuple[str, str, str, str]:
        """What the admission chain needs: group, version, resource, kind."""
        return (self.group, self.version, self.plural, self.kind)


def kinds() -> list[GuardedKind]:
    """The six kinds, from their CRDs (the storage version of each)."""
    out = []
    for crd in captured.guarded_crds():
        spec = crd["spec"]
        (storage,) = [v["name"] for v in spec["versions"] if v.get("storage")]
        out.append(
            GuardedKind(
                spec["group"],
                storage,
                spec["names"]["plural"],
                spec["names"]["kind"],
                spec["scope"] == "Namespaced",
            )
        )
    return out


@dataclass(frozen=True)
class GuardedWrite:
    """A write as the admission chain sees it (the attributes of its Write protocol)."""

    operation: str
    namespace: str
    name: str
    user: UserInfo
    dry_run: bool
    resource: tuple[str, str, str, str]


class GuardedStore:
    """The objects, by (resource, namespace, name), with one resourceVersion counter."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str, str], JSON] = {}
        self._versions = itertools.count(1)

    def get(self, kind: GuardedKind, namespace: str, name: str) -> JSON | None:
        obj = self.objects.get((kind.plural, namespace, name))
        return copy.deepcopy(obj) if obj is not None else None

    def list(self, kind: GuardedKind, namespace: str | None) -> list[JSON]:
        return [
            copy.deepcopy(o)
            for (plural, ns, _), o in sorted(self.objects.items())
            if plural == kind.plural and (namespace is None or ns == namespace)
        ]

    def store(self, kind: GuardedKind, obj: JSON, old: JSON | None) -> JSON:
        meta = obj.setdefault("metadata", {})
        if old is None:
            meta["uid"] = str(uuid.uuid4())
            meta["creationTimestamp"] = _now()
            meta["generation"] = 1
        else:
            for key in ("uid", "creationTimestamp", "generation"):
                if key in old["metadata"]:
                    meta[key] = old["metadata"][key]
        meta["resourceVersion"] = str(next(self._versions))
        self.objects[(kind.plural, meta.get("namespace", ""), meta["name"])] = copy.deepcopy(obj)
        return obj

    def seed(self, all_kinds: Iterable[GuardedKind]) -> None:
        by_kind = {k.kind: k for k in all_kinds}
        for obj in captured.guarded_objects():
            self.store(by_kind[obj["kind"]], obj, None)


GUARDED_STORE = web.AppKey("emulator_guarded_store", GuardedStore)


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _not_found(kind: GuardedKind, name: str) -> StatusError:
    return StatusError.not_found(name, resource=kind.plural, group=kind.group)


async def _body(request: web.Request) -> Any:
    try:
        return json.loads(await request.read())
    except ValueError as exc:
        raise StatusError.bad_request(f"the body is not JSON: {exc}") from None


def _names(request: web.Request) -> tuple[str, str]:
    return request.match_info.get("namespace", ""), request.match_info.get("name", "")


def _dry_run(request: web.Request) -> bool:
    return request.query.get("dryRun") == "All"


async def _admit(
    request: web.Request, kind: GuardedKind, obj: JSON, old: JSON | None
) -> web.Response:
    namespace, _ = _names(request)
    meta = obj.get("metadata")
    if not isinstance(meta, dict) or not isinstance(meta.get("name"), str) or not meta["name"]:
        raise StatusError.bad_request("metadata.name is required")
    if (obj.get("apiVersion"), obj.get("kind")) != (f"{kind.group}/{kind.version}", kind.kind):
        raise StatusError.bad_request(
            f"the object is {obj.get('apiVersion')}/{obj.get('kind')}, not "
            f"{kind.group}/{kind.version} {kind.kind}"
        )
    if kind.namespaced:
        meta["namespace"] = namespace
    write = GuardedWrite(
        "UPDATE" if old is not None else "CREATE",
        namespace,
        meta["name"],
        request[USER],
        _dry_run(request),
        kind.resource,
    )
    admission = request.app[EMULATOR_ADMISSION]
    obj, warnings = await admission.mutate(write, obj, old)  # type: ignore[arg-type]
    warnings += await admission.validate(write, obj, old)  # type: ignore[arg-type]
    store = request.app[GUARDED_STORE]
    if write.dry_run:
        return object_response(obj, warnings=warnings)
    stored = store.store(kind, obj, old)
    return object_response(stored, status=200 if old is not None else 201, warnings=warnings)


def _handlers(kind: GuardedKind) -> dict[str, Any]:
    async def get(request: web.Request) -> web.Response:
        namespace, name = _names(request)
        obj = request.app[GUARDED_STORE].get(kind, namespace, name)
        if obj is None:
            raise _not_found(kind, name)
        return object_response(obj)

    async def list_(request: web.Request) -> web.Response:
        namespace = request.match_info.get("namespace")
        items = request.app[GUARDED_STORE].list(kind, namespace)
        return object_response(
            {
                "apiVersion": f"{kind.group}/{kind.version}",
                "kind": f"{kind.kind}List",
                "metadata": {"resourceVersion": ""},
                "items": items,
            }
        )

    async def create(request: web.Request) -> web.Response:
        body = await _body(request)
        if not isinstance(body, dict):
            raise StatusError.bad_request("the body must be a JSON object")
        namespace, _ = _names(request)
        name = (body.get("metadata") or {}).get("name", "")
        if request.app[GUARDED_STORE].get(kind, namespace, name) is not None:
            raise StatusError.already_exists(name)
        return await _admit(request, kind, body, None)

    async def replace(request: web.Request) -> web.Response:
        namespace, name = _names(request)
        old = request.app[GUARDED_STORE].get(kind, namespace, name)
        if old is None:
            raise _not_found(kind, name)
        body = await _body(request)
        if not isinstance(body, dict):
            raise StatusError.bad_request("the body must be a JSON object")
        sent = (body.get("metadata") or {}).get("resourceVersion")
        if sent and sent != old["metadata"]["resourceVersion"]:
            raise StatusError.conflict(name)
        return await _admit(request, kind, body, old)

    async def patch(request: web.Request) -> web.Response:
        namespace, name = _names(request)
        old = request.app[GUARDED_STORE].get(kind, namespace, name)
        if old is None:
            raise _not_found(kind, name)
        body = await _body(request)
        media = request.headers.get("Content-Type", "").split(";")[0].strip()
        try:
            if media == "application/json-patch+json":
                new = jsonpatch.JsonPatch(body).apply(copy.deepcopy(old))
            elif media == "application/merge-patch+json":
                new = _merge(copy.deepcopy(old), body)
            else:
                raise StatusError(
                    415, "UnsupportedMediaType", f"the body type {media!r} is not supported"
                )
        except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException) as exc:
            raise StatusError.bad_request(f"the JSON patch does not apply: {exc}") from None
        return await _admit(request, kind, new, old)

    return {"get": get, "list": list_, "create": create, "replace": replace, "patch": patch}


def _merge(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return patch
    if not isinstance(target, dict):
        target = {}
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        else:
            target[key] = _merge(target.get(key), value)
    return target


def _errors_as_status(handler: Any) -> Any:
    async def wrapped(request: web.Request) -> web.Response:
        try:
            return await handler(request)  # type: ignore[no-any-return]
        except StatusError as err:
            return status_response(err)

    return wrapped


def add_routes(app: web.Application, *, seed: bool = True) -> None:
    """Serve the six kinds on ``app`` (the emulator), seeded unless ``seed`` is False."""
    served = kinds()
    app[GUARDED_STORE] = GuardedStore()
    if seed:
        app[GUARDED_STORE].seed(served)
    router = app.router
    for kind in served:
        h = {k: _errors_as_status(v) for k, v in _handlers(kind).items()}
        base = f"/apis/{kind.group}/{kind.version}"
        router.add_get(f"{base}/{kind.plural}", h["list"])
        collection = (
            f"{base}/namespaces/{{namespace}}/{kind.plural}"
            if kind.namespaced
            else f"{base}/{kind.plural}"
        )
        if kind.namespaced:
            router.add_get(collection, h["list"])
        router.add_post(collection, h["create"])
        router.add_get(collection + "/{name}", h["get"])
        router.add_put(collection + "/{name}", h["replace"])
        router.add_patch(collection + "/{name}", h["patch"])
