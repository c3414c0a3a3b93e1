"""Just enough of Kubernetes' protobuf encoding to read the review requests kubectl sends.

kubectl sends built-in kinds (``SelfSubjectAccessReview`` for ``auth can-i``,
``SelfSubjectReview`` for ``auth whoami``) as ``application/vnd.kubernetes.protobuf``
and accepts JSON back. A body is the magic ``k8s\\x00`` and a ``runtime.Unknown``
whose ``raw`` field holds the object. This decodes those objects into the same dicts
their JSON would give, for the fields the emulator reads; answers stay JSON.
"""

from __future__ import annotations

from typing import Any

__all__ = ["MEDIA_TYPE", "ProtobufError", "decode_review"]

MEDIA_TYPE = "application/vnd.kubernetes.protobuf"
_MAGIC = b"k8s\x00"

# Field numbers from the generated.proto files of k8s.io/api and apimachinery.
_Schema = dict[int, tuple[str, "Any"]]
_TYPE_META: _Schema = {1: ("apiVersion", str), 2: ("kind", str)}
_UNKNOWN: _Schema = {1: ("typeMeta", _TYPE_META), 2: ("raw", bytes), 4: ("contentType", str)}
_RESOURCE_ATTRIBUTES: _Schema = {
    1: ("namespace", str),
    2: ("verb", str),
    3: ("group", str),
    4: ("version", str),
    5: ("resource", str),
    6: ("subresource", str),
    7: ("name", str),
}
_NON_RESOURCE_ATTRIBUTES: _Schema = {1: ("path", str), 2: ("verb", str)}
_OBJECT_META: _Schema = {1: ("name", str), 2: ("generateName", str), 3: ("namespace", str)}
_KINDS: dict[str, _Schema] = {
    "SelfSubjectAccessReview": {
        1: ("metadata", _OBJECT_META),
        2: (
            "spec",
            {
                1: ("resourceAttributes", _RESOURCE_ATTRIBUTES),
                2: ("nonResourceAttributes", _NON_RESOURCE_ATTRIBUTES),
            },
        ),
    },
    "SelfSubjectReview": {1: ("metadata", _OBJECT_META)},
}


class ProtobufError(ValueError):
    """The body is not a Kubernetes protobuf object this module reads."""


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise ProtobufError("truncated varint")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, pos


def _message(data: bytes, schema: _Schema) -> dict[str, Any]:
    out: dict[str, Any] = {}
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            _, pos = _varint(data, pos)
            continue
        if wire == 1:
            pos += 8
            continue
        if wire == 5:
            pos += 4
            continue
        if wire != 2:
            raise ProtobufError(f"unsupported wire type {wire}")
        length, pos = _varint(data, pos)
        if pos + length > len(data):
            raise ProtobufError("truncated field")
        chunk, pos = data[pos : pos + length], pos + length
        if number not in schema:
            continue
        name, kind = schema[number]
        if kind is str:
            out[name] = chunk.decode("utf-8")
        elif kind is bytes:
            out[name] = chunk
        else:
            out[name] = _message(chunk, kind)
    return out


def decode_review(body: bytes) -> dict[str, Any]:
    """The object in a protobuf body, as a JSON-shaped dict with apiVersion and kind."""
    if not body.startswith(_MAGIC):
        raise ProtobufError("missing the k8s protobuf prefix")
    unknown = _message(body[len(_MAGIC) :], _UNKNOWN)
    type_meta = unknown.get("typeMeta", {})
    kind = type_meta.get("kind", "")
    if kind not in _KINDS:
        raise ProtobufError(f"no protobuf decoding for kind {kind!r}")
    obj = _message(unknown.get("raw", b""), _KINDS[kind])
    # Protobuf cannot tell an empty string from an absent one; JSON omits empty fields.
    return {"apiVersion": type_meta.get("apiVersion", ""), "kind": kind, **_pruned(obj)}


def _pruned(value: dict[str, Any]) -> dict[str, Any]:
    return {
        k: _pruned(v) if isinstance(v, dict) else v for k, v in value.items() if v not in ("", b"")
    }
