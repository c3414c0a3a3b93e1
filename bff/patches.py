"""From a client's whole-object PUT body to the one write the BFF may make.

Everything here is pure: no I/O, no clock, no client library. The rules are
the contract's "Semantics of a write":

* the only change a client can make is ``harvesterhci.io/read-message: "true"``;
* every other difference from the live object is ignored and reported by
  category, so the response can say so in ``Warning`` headers;
* a read-message label missing from the body never removes it (a stale view
  is not an intent);
* a ``metadata.uid`` that differs from the live object's is a conflict.

The one patch body itself is built by :func:`mark_read_patch`; the upstream
gateway sends nothing else.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass

from bff.errors import BadRequest, Code, Conflict
from bff.upgrade_resource import API_VERSION, FINISHED_STATES, KIND, READ_MESSAGE, UPGRADE_STATE

JSONObject = Mapping[str, object]

#: Fields of a Steve resource that are envelope, not object.
_STEVE_FIELDS = frozenset({"id", "type", "links", "actions"})
_OBJECT_FIELDS = frozenset({"apiVersion", "kind", "metadata", "spec", "status"})
#: Metadata the API server owns: leaving them out of a body changes nothing.
_SERVER_METADATA = frozenset(
    {
        "uid",
        "creationTimestamp",
        "generation",
        "resourceVersion",
        "managedFields",
        "selfLink",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
    }
)
_OWN_METADATA = frozenset({"name", "namespace", "labels", "annotations", "finalizers", "uid"})


class Ignored(enum.StrEnum):
    """Categories of body content the BFF ignores, each reported to the client."""

    STATUS = "status"
    SPEC = "spec"
    LABELS = "labels"
    ANNOTATIONS = "annotations"
    FINALIZERS = "finalizers"
    METADATA = "metadata"
    OTHER = "other"


WARNINGS: Mapping[Ignored, str] = {
    Ignored.STATUS: "status in the request body was ignored; the live status was kept",
    Ignored.SPEC: "spec in the request body was ignored; only the read-message label can change",
    Ignored.LABELS: "labels other than harvesterhci.io/read-message=true were ignored",
    Ignored.ANNOTATIONS: "annotations in the request body were ignored",
    Ignored.FINALIZERS: "finalizers in the request body were ignored",
    Ignored.METADATA: "metadata fields in the request body (such as resourceVersion) were ignored",
    Ignored.OTHER: "unknown top-level fields in the request body were ignored",
}


@dataclass(frozen=True)
class Reduction:
    """What a PUT body amounts to once everything but the allowed change is dropped."""

    #: The body asks for read-message="true" and the live object lacks it.
    dismiss: bool
    #: The body asks for read-message="true" (whether or not it is already set).
    wants_read: bool
    ignored: frozenset[Ignored]
    #: Forwarding the body as a PUT would have wiped or regressed ``.status``.
    status_wipe: bool


def _mapping(value: object) -> JSONObject:
    return value if isinstance(value, Mapping) else {}


def metadata(obj: JSONObject) -> JSONObject:
    return _mapping(obj.get("metadata"))


def labels(obj: JSONObject) -> Mapping[str, str]:
    raw = _mapping(metadata(obj).get("labels"))
    return {k: v for k, v in raw.items() if isinstance(v, str)}


def resource_version(obj: JSONObject) -> str:
    value = metadata(obj).get("resourceVersion")
    return value if isinstance(value, str) else ""


def upgrade_state(obj: JSONObject) -> str:
    return labels(obj).get(UPGRADE_STATE, "")


def is_finished(obj: JSONObject) -> bool:
    return upgrade_state(obj) in FINISHED_STATES


def is_read(obj: JSONObject) -> bool:
    return labels(obj).get(READ_MESSAGE) == "true"


def mark_read_patch(resource_version: str) -> dict[str, object]:
    """The only body the BFF ever sends upstream, as a JSON merge patch.

    The ``resourceVersion`` makes it conditional: the API server applies it only
    if the object is still the version the guards were checked against.
    """
    if not resource_version:
        raise ValueError("a mark-read patch needs the resourceVersion it was checked against")
    return {"metadata": {"labels": {READ_MESSAGE: "true"}, "resourceVersion": resource_version}}


def check_body(body: object, *, namespace: str, name: str) -> JSONObject:
    """Check a PUT body's shape and identity against the URL, before any upstream call."""
    if not isinstance(body, Mapping):
        raise BadRequest("the request body must be a JSON object", code=Code.INVALID_BODY)
    api_version = body.get("apiVersion")
    if api_version is not None and api_version != API_VERSION:
        raise BadRequest(f"apiVersion must be {API_VERSION}", code=Code.INVALID_BODY)
    kind = body.get("kind")
    if kind is not None and kind != KIND:
        raise BadRequest(f"kind must be {KIND}", code=Code.INVALID_BODY)
    meta = body.get("metadata")
    if not isinstance(meta, Mapping):
        raise BadRequest("metadata must be an object", code=Code.INVALID_BODY)
    if meta.get("name") != name:
        raise BadRequest(
            "metadata.name in the body does not match the name in the URL",
            code=Code.IDENTITY_MISMATCH,
        )
    body_namespace = meta.get("namespace")
    if body_namespace is not None and body_namespace != namespace:
        raise BadRequest(
            "metadata.namespace in the body does not match the namespace in the URL",
            code=Code.IDENTITY_MISMATCH,
        )
    steve_id = body.get("id")
    if steve_id is not None and steve_id != f"{namespace}/{name}":
        raise BadRequest("id in the body does not match the URL", code=Code.IDENTITY_MISMATCH)
    body_labels = meta.get("labels")
    if body_labels is not None and (
        not isinstance(body_labels, Mapping)
        or not all(isinstance(v, str) for v in body_labels.values())
    ):
        raise BadRequest("metadata.labels must be an object of strings", code=Code.INVALID_LABELS)
    uid = meta.get("uid")
    if uid is not None and not isinstance(uid, str):
        raise BadRequest("metadata.uid must be a string", code=Code.INVALID_BODY)
    return body


def check_same_object(body: JSONObject, live: JSONObject) -> None:
    """A body naming another incarnation of the object (deleted and re-created) is refused."""
    uid = metadata(body).get("uid")
    if uid and uid != metadata(live).get("uid"):
        raise Conflict(
            "metadata.uid in the body does not match the live object: "
            "it was deleted and re-created since the client read it",
            code=Code.UID_MISMATCH,
        )


def reduce_put(body: JSONObject, live: JSONObject) -> Reduction:
    """Reduce a checked PUT body to the allowed change, against the live object."""
    check_same_object(body, live)
    ignored: set[Ignored] = set()
    body_meta, live_meta = metadata(body), metadata(live)

    status_wipe = "status" in live and body.get("status") != live.get("status")
    if status_wipe or ("status" in body and body.get("status") != live.get("status")):
        ignored.add(Ignored.STATUS)
    if body.get("spec") != live.get("spec"):
        ignored.add(Ignored.SPEC)

    body_labels, live_labels = labels(body), labels(live)
    wants_read = body_labels.get(READ_MESSAGE) == "true"
    if _without(body_labels, READ_MESSAGE) != _without(live_labels, READ_MESSAGE) or (
        not wants_read and body_labels.get(READ_MESSAGE) != live_labels.get(READ_MESSAGE)
    ):
        ignored.add(Ignored.LABELS)
    if _mapping(body_meta.get("annotations")) != _mapping(live_meta.get("annotations")):
        ignored.add(Ignored.ANNOTATIONS)
    # A body without finalizers says nothing about them (the BFF never writes them), so
    # only finalizers the body does carry, and that differ, are reported as ignored.
    if "finalizers" in body_meta and (body_meta.get("finalizers") or []) != (
        live_meta.get("finalizers") or []
    ):
        ignored.add(Ignored.FINALIZERS)
    for key in (body_meta.keys() | live_meta.keys()) - _OWN_METADATA:
        if key in body_meta:
            differs = body_meta[key] != live_meta.get(key)
        else:
            differs = key not in _SERVER_METADATA
        if differs:
            ignored.add(Ignored.METADATA)
    if body.keys() - _OBJECT_FIELDS - _STEVE_FIELDS:
        ignored.add(Ignored.OTHER)

    return Reduction(
        dismiss=wants_read and not is_read(live),
        wants_read=wants_read,
        ignored=frozenset(ignored),
        status_wipe=status_wipe,
    )


def _without(mapping: Mapping[str, str], key: str) -> dict[str, str]:
    return {k: v for k, v in mapping.items() if k != key}
