"""AdmissionReview ``admission.k8s.io/v1``: reading a request and writing a response.

Pure functions, no I/O. :func:`parse_review` accepts exactly one shape, an
AdmissionReview for a resource of the guard table (:mod:`bff.admission.resources`),
and turns anything else into a :class:`ReviewError` whose message an operator can
act on (the webhook answers it with 400, never with a 500; JSON nested deeper than
Python's recursion limit included).
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from bff.admission.resources import GuardedResource, GuardTable

JSON = dict[str, Any]

API_VERSION = "admission.k8s.io/v1"
KIND = "AdmissionReview"
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
class GuardReview:
    """The parts of an AdmissionRequest the guard decides on."""

    uid: str
    operation: str
    namespace: str
    name: str
    writer: Writer
    dry_run: bool
    old: JSON | None
    new: JSON | None
    #: The guard table's row for ``request.resource``.
    row: GuardedResource
    #: ``request.kind.kind`` (``IPPool``), for messages.
    kind: str

    @property
    def target(self) -> str:
        name = self.name or _meta_name(self.new) or _meta_name(self.old)
        return f"{self.namespace}/{name}" if self.namespace else name

    @property
    def subject(self) -> str:
        """``IPPool vip-pool``: the object, as messages name it."""
        return f"{self.kind} {self.target}"


def _meta_name(obj: JSON | None) -> str:
    meta = (obj or {}).get("metadata")
    name = meta.get("name") if isinstance(meta, dict) else None
    return name if isinstance(name, str) else ""


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


def _object(value: Any, where: str, api_version: str, kind: str) -> JSON | None:
    if value is None:
        return None
    obj = _mapping(value, where)
    got = (obj.get("apiVersion"), obj.get("kind"))
    if got != (api_version, kind):
        raise ReviewError(
            f"{where} is {got[0]!s}/{got[1]!s}, but request.kind says {api_version} {kind}"
        )
    if "metadata" in obj and not isinstance(obj["metadata"], dict):
        raise ReviewError(f"{where}.metadata must be a JSON object")
    return obj


#: What orjson says of a document nested deeper than it parses (1,024 levels), across
#: its versions.
_TOO_DEEP = ("depth limit", "recursion limit")


def decode(raw: bytes) -> Any:
    """The request body as JSON (RFC 8259: no NaN or Infinity), or a ReviewError.

    As the API server reads it: an integer beyond 64 bits is a float (Go's int64
    overflows to float64 the same way).

    Parsed once, by orjson: a review of megabytes is the guard's largest single step,
    and the one that holds the interpreter's lock longest (about a third of the
    standard library's time)."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        if any(words in str(exc) for words in _TOO_DEEP):
            # No Kubernetes object nests this deep; the API server never sends one.
            raise ReviewError(
                "the body is JSON nested too deeply to be an AdmissionReview"
            ) from None
        raise ReviewError(f"the body is not JSON: {exc}") from None
    except RecursionError:
        raise ReviewError("the body is JSON nested too deeply to be an AdmissionReview") from None


def parse_review(body: Any, table: GuardTable) -> GuardReview:
    """Check ``body`` is an AdmissionReview for a resource of ``table``; return what the
    guard needs."""
    review = _mapping(body, "the body")
    if review.get("apiVersion") != API_VERSION or review.get("kind") != KIND:
        raise ReviewError(
            f"expected apiVersion {API_VERSION} and kind {KIND}, got "
            f"{review.get('apiVersion')!s} and {review.get('kind')!s}"
        )
    request = _mapping(review.get("request"), "request")
    uid = _string(request.get("uid"), "request.uid")
    resource = _mapping(request.get("resource"), "request.resource")
    got = {k: resource.get(k) for k in ("group", "version", "resource")}
    sub = request.get("subResource") or ""
    row = table.find(str(got["group"]), str(got["resource"]))
    if row is None or got["version"] != row.version or sub:
        shown = f"{got['resource']}{'/' + str(sub) if sub else ''}.{got['group']}/{got['version']}"
        raise ReviewError(
            f"request.resource is {shown}, which the guard table does not hold "
            f"({table.describe()}): check the webhook configuration's rules"
        )
    kind = _mapping(request.get("kind"), "request.kind")
    kind_name = _string(kind.get("kind"), "request.kind.kind")
    api_version = f"{row.group}/{row.version}"
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
    old = _object(request.get("oldObject"), "request.oldObject", api_version, kind_name)
    new = _object(request.get("object"), "request.object", api_version, kind_name)
    if operation == "UPDATE" and (old is None or new is None):
        raise ReviewError("an UPDATE review needs both request.object and request.oldObject")
    return GuardReview(
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
        row=row,
        kind=kind_name,
    )


def _response(uid: str, body: JSON) -> JSON:
    return {"apiVersion": API_VERSION, "kind": KIND, "response": {"uid": uid, **body}}


def allowed(
    uid: str,
    patch: str = "",
    warnings: Sequence[str] = (),
    audit: Mapping[str, str] | None = None,
) -> JSON:
    """Allow the write; with ``patch`` (an RFC 6902 document), as the base64 JSONPatch
    the API server applies to the object before storing it. ``audit`` becomes the
    response's ``auditAnnotations``: the API server records each, under the webhook's
    name, in the audit event of the request (at every audit level)."""
    body: JSON = {"allowed": True}
    if patch:
        body["patchType"] = "JSONPatch"
        body["patch"] = base64.b64encode(patch.encode()).decode("ascii")
    if warnings:
        body["warnings"] = [w[:MAX_WARNING_CHARS] for w in warnings]
    if audit:
        body["auditAnnotations"] = dict(audit)
    return _response(uid, body)


def denied(
    uid: str,
    message: str,
    reason: str = "Forbidden",
    code: int = 403,
    audit: Mapping[str, str] | None = None,
) -> JSON:
    """Refuse the write; the API server answers the client with this status."""
    body: JSON = {
        "allowed": False,
        "status": {
            "metadata": {},
            "status": "Failure",
            "message": message,
            "reason": reason,
            "code": code,
        },
    }
    if audit:
        body["auditAnnotations"] = dict(audit)
    return _response(uid, body)
