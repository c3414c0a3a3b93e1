"""The Upgrade REST handlers: GET, LIST (namespaced and across namespaces), create,
replace, patch, delete and deletecollection.

Every write that stores an Upgrade (create, PUT, merge and JSON patch) goes through
:func:`bff.sandbox.writes.write`, and nowhere else.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any, Literal

from aiohttp import web

from bff.sandbox import tables
from bff.sandbox.httpio import (
    field_selector,
    fields_match,
    flag,
    json_response,
    media_type,
    object_response,
    read_body,
    selector,
)
from bff.sandbox.keys import EMULATOR_ADMISSION, EMULATOR_STORE, USER
from bff.sandbox.patching import apply_json_patch, apply_merge_patch
from bff.sandbox.resource import API_VERSION, JSON, LIST_KIND
from bff.sandbox.schema import decode
from bff.sandbox.status import FieldError, StatusError
from bff.sandbox.store import PendingWrite, Store
from bff.sandbox.watch import watch
from bff.sandbox.writes import WriteRequest, write

__all__ = [
    "create",
    "delete",
    "delete_collection",
    "get",
    "list_all",
    "list_namespaced",
    "patch",
    "replace",
]

MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"
# customresource_handler.go: the patch types a custom resource accepts (no strategic merge).
CR_PATCH_TYPES = (JSON_PATCH, MERGE_PATCH, APPLY_PATCH)


def _store(request: web.Request) -> Store:
    return request.app[EMULATOR_STORE]


# --- reads ---------------------------------------------------------------------------------


async def get(request: web.Request) -> web.StreamResponse:
    namespace, name = request.match_info["namespace"], request.match_info["name"]
    if flag(request.query.get("watch")):
        return await watch(request, namespace, field_selector(request, name), selector(request))
    obj = _store(request).get(namespace, name)
    if obj is None:
        raise StatusError.not_found(name)
    if tables.wants_table(request):
        rv = {"resourceVersion": obj["metadata"]["resourceVersion"]}
        return json_response(tables.table([obj], rv, include=tables.include_object(request)))
    return json_response(obj)


async def list_namespaced(request: web.Request) -> web.StreamResponse:
    return await _list(request, request.match_info["namespace"])


async def list_all(request: web.Request) -> web.StreamResponse:
    return await _list(request, None)


async def _list(request: web.Request, namespace: str | None) -> web.StreamResponse:
    labels = selector(request)
    fields = field_selector(request)
    if flag(request.query.get("watch")):
        return await watch(request, namespace, fields, labels)
    store = _store(request)
    items = [o for o in store.list(namespace, labels) if fields_match(o, fields)]
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
            [o for o in store.list(namespace, labels) if _item_key(o) > next_key]
        )
    else:
        metadata["continue"] = ""
    if tables.wants_table(request):
        shown = {k: v for k, v in metadata.items() if v != ""}
        return json_response(tables.table(items, shown, include=tables.include_object(request)))
    return json_response(
        {"apiVersion": API_VERSION, "items": items, "kind": LIST_KIND, "metadata": metadata}
    )


def _item_key(obj: JSON) -> str:
    return f"{obj['metadata']['namespace']}/{obj['metadata']['name']}"


# --- writes --------------------------------------------------------------------------------


async def _write(
    request: web.Request,
    operation: Literal["CREATE", "UPDATE"],
    name: str,
    new_body: Callable[[JSON | None], Any],
    *,
    uid_precondition: str | None = None,
) -> PendingWrite:
    """Hand one write to the write path, as the user the request acts as."""
    write_request = WriteRequest(
        patch=request.method == "PATCH",
        operation=operation,
        namespace=request.match_info["namespace"],
        name=name,
        user=request[USER],
        dry_run=_dry_run(request),
        field_validation=_field_validation(request),
    )
    return await write(
        _store(request),
        request.app[EMULATOR_ADMISSION],
        write_request,
        new_body,
        uid_precondition=uid_precondition,
    )


_OPTIONS_KIND = {"POST": "CreateOptions", "PUT": "UpdateOptions", "PATCH": "PatchOptions"}


def _unsupported(request: web.Request, field_path: str, value: Any, supported: str) -> StatusError:
    """``ValidateCreateOptions`` and friends: a bad option value is a 422 on the options."""
    error = FieldError(
        "FieldValueNotSupported", field_path, value, f"supported values: {supported}"
    )
    kind = _OPTIONS_KIND.get(request.method, "CreateOptions")
    return StatusError.invalid("", [error], group="meta.k8s.io", kind=kind)


def _dry_run(request: web.Request) -> bool:
    values = request.query.getall("dryRun", [])
    if any(v != "All" for v in values):
        raise _unsupported(request, "dryRun", values, '"All"')
    return bool(values)


def _field_validation(request: web.Request) -> Literal["Strict", "Warn", "Ignore"]:
    value = request.query.get("fieldValidation", "")
    if value == "Strict":
        return "Strict"
    if value == "Ignore":
        return "Ignore"
    if value in ("Warn", ""):
        return "Warn"
    raise _unsupported(request, "fieldValidation", value, '"", "Ignore", "Strict", "Warn"')


async def create(request: web.Request) -> web.Response:
    _dry_run(request), _field_validation(request)  # refused before the body is read
    body = await read_body(request)
    meta = body.get("metadata") if isinstance(body, dict) else None
    name = meta.get("name") or "" if isinstance(meta, dict) else ""
    written = await _write(request, "CREATE", str(name), lambda _none: body)
    return object_response(written.obj, 201, written.warnings)


def _check_name(obj: Any, name: str) -> None:
    """``checkName`` in handlers/rest.go: the body must name the object in the URL."""
    meta = obj.get("metadata") if isinstance(obj, dict) else None
    body_name = (meta or {}).get("name", "") if isinstance(meta, dict) else ""
    if body_name != name:
        raise StatusError.bad_request(
            f"the name of the object ({body_name}) does not match the name on the URL ({name})"
        )


async def replace(request: web.Request) -> web.Response:
    _dry_run(request), _field_validation(request)  # refused before the body is read
    namespace, name = request.match_info["namespace"], request.match_info["name"]
    body = await read_body(request)
    decoded, _ = decode(body)
    meta = decoded["metadata"]
    if meta.get("namespace") and meta["namespace"] != namespace:
        raise StatusError.bad_request(
            "the namespace of the provided object does not match the namespace sent on the request"
        )
    _check_name(decoded, name)
    written = await _write(
        request, "UPDATE", name, lambda _live: body, uid_precondition=meta.get("uid") or None
    )
    return object_response(written.obj, 200, written.warnings)


async def patch(request: web.Request) -> web.Response:
    _dry_run(request), _field_validation(request)  # refused before the body is read
    name = request.match_info["name"]
    media = media_type(request)
    if media not in (MERGE_PATCH, JSON_PATCH):
        # Strategic merge patch does not exist for custom resources; server-side apply is
        # not emulated (it needs managedFields), so it is refused the same way.
        raise StatusError.unsupported_media_type(CR_PATCH_TYPES)
    raw = await request.read()
    try:
        document = json.loads(raw)
    except ValueError:
        if media == MERGE_PATCH:
            raise StatusError.bad_request("Invalid JSON Patch") from None
        raise StatusError.bad_request("invalid character in the JSON patch document") from None
    if media == MERGE_PATCH and not isinstance(document, dict):
        raise StatusError.bad_request("Invalid JSON Patch")

    def patched(live: JSON | None) -> Any:
        result = (
            apply_merge_patch(live, document)
            if media == MERGE_PATCH
            else apply_json_patch(live or {}, document)
        )
        _check_name(result, name)
        return result

    written = await _write(request, "UPDATE", name, patched)
    return object_response(written.obj, 200, written.warnings)


async def delete(request: web.Request) -> web.Response:
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
    return json_response(answer, status=200)


async def delete_collection(request: web.Request) -> web.Response:
    namespace = request.match_info["namespace"]
    store = _store(request)
    deleted = []
    for obj in store.list(namespace, selector(request)):
        remaining, _ = store.delete(namespace, obj["metadata"]["name"])
        deleted.append(remaining or obj)
    return json_response(
        {
            "apiVersion": API_VERSION,
            "items": deleted,
            "kind": LIST_KIND,
            "metadata": {"resourceVersion": str(store.resource_version)},
        }
    )
