"""AdmissionReview ``admission.k8s.io/v1``: reading a request and writing a response.

Pure functions, no I/O. :func:`parse_review` accepts exactly one shape, an
AdmissionReview for ``upgrades.harvesterhci.io/v1beta1``, and turns anything
else into a :class:`ReviewError` whose message an operator can act on (the
webhook answers it with 400, never with a 500).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bff import upgrade_resource as model
from bff.upgrade_resource import GROUP, VERSION

JSON = dict[str, Any]

API_VERSION = "admission.k8s.io/v1"
KIND = "AdmissionReview"
RESOURCE = model.PLURAL
OBJECT_KIND = model.KIND
OBJECT_API_VERSION = model.API_VERSION
OPERATIONS = ("CREATE", "UPDATE", "DELETE", "CONNECT")
# The API server shows a warning longer than this truncated; keep each one whole.
MAX_WARNING_CHARS = 256


class ReviewError(ValueError):
    """The body is not an AdmissionReview this webhook answers; the message says why."""


@dataclass(frozen=True)
class Writer:
    """``request.userInfo``: who sent the write. ``extra`` is never kept: it can hold
    credential identifiers, and nothing here needs it."""

    username: str
    groups: tuple[str, ...] = ()


@dataclass(frozen=True)
class UpgradeReview:
    """The parts of an AdmissionRequest the guard decides on."""

    uid: str
    operation: str
    namespace: str
    name: str
    writer: Writer
    dry_run: bool
    old: JSON | None
    new: JSON | None

    @property
    def target(self) -> str:
        return f"{self.namespace}/{self.name}" if self.namespace else self.name


def _mapping(value: Any, where: str) -> JSON:
    if not isinstance(value, dict):
        raise ReviewError(f"{where} must be a JSON object, not {_type(value)}")
    return value


def _type(value: Any) -> str:
    return {
        dict: "an object",
        list: "an array",
        str: "a string",
        bool: "a boolean",
        int: "a number",
        float: "a number",
        type(None): "null",
    }.get(type(value), type(value).__name__)


def _string(value: Any, where: str, *, required: bool = True) -> str:
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value):
        raise ReviewError(f"{where} must be a non-empty string")
    return value


def _object(value: Any, where: str) -> JSON | None:
    if value is None:
        return None
    obj = _mapping(value, where)
    api_version, kind = obj.get("apiVersion"), obj.get("kind")
    if (api_version, kind) != (OBJECT_API_VERSION, OBJECT_KIND):
        raise ReviewError(
            f"{where} is {api_version!s}/{kind!s}; this webhook reviews only "
            f"{OBJECT_API_VERSION} {OBJECT_KIND}"
        )
    if "metadata" in obj and not isinstance(obj["metadata"], dict):
        raise ReviewError(f"{where}.metadata must be a JSON object")
    return obj


def decode(raw: bytes) -> Any:
    """The request body as JSON, or a ReviewError."""
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, ValueError) as exc:
        raise ReviewError(f"the body is not JSON: {exc}") from None


def parse_review(body: Any) -> UpgradeReview:
    """Check ``body`` is an AdmissionReview for an Upgrade; return what the guard needs."""
    review = _mapping(body, "the body")
    if review.get("apiVersion") != API_VERSION or review.get("kind") != KIND:
        raise ReviewError(
            f"expected apiVersion {API_VERSION} and kind {KIND}, got "
            f"{review.get('apiVersion')!s} and {review.get('kind')!s}"
        )
    request = _mapping(review.get("request"), "request")
    uid = _string(request.get("uid"), "request.uid")
    resource = _mapping(request.get("resource"), "request.resource")
    wanted = {"group": GROUP, "version": VERSION, "resource": RESOURCE}
    got = {k: resource.get(k) for k in wanted}
    sub = request.get("subResource") or ""
    if got != wanted or sub:
        shown = f"{got['resource']}{'/' + str(sub) if sub else ''}.{got['group']}/{got['version']}"
        raise ReviewError(
            f"request.resource is {shown}; this webhook reviews only "
            f"{RESOURCE}.{GROUP}/{VERSION}: check the webhook configuration's rules"
        )
    operation = request.get("operation")
    if operation not in OPERATIONS:
        raise ReviewError(f"request.operation must be one of {', '.join(OPERATIONS)}")
    user = _mapping(request.get("userInfo"), "request.userInfo")
    groups = user.get("groups") or []
    if not isinstance(groups, list) or not all(isinstance(g, str) for g in groups):
        raise ReviewError("request.userInfo.groups must be an array of strings")
    dry_run = request.get("dryRun", False)
    if not isinstance(dry_run, bool):
        raise ReviewError("request.dryRun must be a boolean")
    old = _object(request.get("oldObject"), "request.oldObject")
    new = _object(request.get("object"), "request.object")
    if operation == "UPDATE" and (old is None or new is None):
        raise ReviewError("an UPDATE review needs both request.object and request.oldObject")
    return UpgradeReview(
        uid=uid,
        operation=operation,
        namespace=_string(request.get("namespace"), "request.namespace", required=False),
        name=_string(request.get("name"), "request.name", required=False),
        writer=Writer(
            username=_string(user.get("username"), "request.userInfo.username", required=False),
            groups=tuple(groups),
        ),
        dry_run=dry_run,
        old=old,
        new=new,
    )


def _response(uid: str, body: JSON) -> JSON:
    return {"apiVersion": API_VERSION, "kind": KIND, "response": {"uid": uid, **body}}


def allowed(uid: str, patch: str = "", warnings: Sequence[str] = ()) -> JSON:
    """Allow the write; with ``patch`` (an RFC 6902 document), as the base64 JSONPatch
    the API server applies to the object before storing it."""
    body: JSON = {"allowed": True}
    if patch:
        body["patchType"] = "JSONPatch"
        body["patch"] = base64.b64encode(patch.encode()).decode("ascii")
    if warnings:
        body["warnings"] = [w[:MAX_WARNING_CHARS] for w in warnings]
    return _response(uid, body)


def denied(uid: str, message: str, reason: str = "Forbidden", code: int = 403) -> JSON:
    """Refuse the write; the API server answers the client with this status."""
    return _response(
        uid,
        {
            "allowed": False,
            "status": {
                "metadata": {},
                "status": "Failure",
                "message": message,
                "reason": reason,
                "code": code,
            },
        },
    )
