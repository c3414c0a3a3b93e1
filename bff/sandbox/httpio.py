"""The emulator's HTTP plumbing: request bodies and query parameters in, Status and
objects out, as kube-apiserver's handlers decode and encode them."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import yaml
from aiohttp import web

from bff.label_selectors import Selector, SelectorError, parse_selector
from bff.sandbox.resource import JSON
from bff.sandbox.status import StatusError

__all__ = [
    "BODY_TYPES",
    "Handler",
    "as_status",
    "field_selector",
    "fields_match",
    "flag",
    "json_response",
    "labels_of",
    "media_type",
    "object_response",
    "read_body",
    "selector",
    "status_response",
    "warning_header",
]

BODY_TYPES = ("application/json", "application/yaml")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def json_response(body: Any, status: int = 200) -> web.Response:
    """A JSON answer typed ``application/json`` exactly, as kube-apiserver types it.

    client-go matches the media type with its parameters: with aiohttp's usual
    ``; charset=utf-8`` it cannot decode an error Status and shows a generic message.
    """
    return web.Response(
        body=json.dumps(body).encode(), status=status, headers={"Content-Type": "application/json"}
    )


def status_response(err: StatusError) -> web.Response:
    response = json_response(err.status, status=err.code)
    for name, value in err.headers.items():
        response.headers[name] = value
    return response


def warning_header(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return f'299 - "{escaped}"'


def object_response(obj: Any, status: int = 200, warnings: list[str] | None = None) -> web.Response:
    response = json_response(obj, status=status)
    for warning in warnings or []:
        response.headers.add("Warning", warning_header(warning))
    return response


def media_type(request: web.Request) -> str:
    raw = request.headers.get("Content-Type", "")
    return raw.split(";", 1)[0].strip().lower()


async def read_body(request: web.Request) -> Any:
    """Decode a JSON or YAML request body, as the API server's negotiated decoder does."""
    media = media_type(request) or "application/json"
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


def flag(value: str | None) -> bool:
    return value is not None and value.lower() in ("1", "t", "true")


def selector(request: web.Request) -> Selector:
    try:
        return parse_selector(request.query.get("labelSelector", ""))
    except SelectorError as exc:
        raise StatusError.bad_request(str(exc)) from None


def field_selector(request: web.Request, name: str | None = None) -> dict[str, str]:
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


def fields_match(obj: JSON, terms: Mapping[str, str]) -> bool:
    meta = obj["metadata"]
    return all(meta.get(k.removeprefix("metadata.")) == v for k, v in terms.items())


def labels_of(obj: JSON) -> Mapping[str, str]:
    labels = obj["metadata"].get("labels") or {}
    return labels if isinstance(labels, dict) else {}


async def as_status(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Run ``handler``, answering every API error (and aiohttp's own 404/405) as a Status."""
    try:
        return await handler(request)
    except StatusError as err:
        return status_response(err)
    except web.HTTPMethodNotAllowed:
        return status_response(StatusError.method_not_allowed())
    except web.HTTPNotFound:
        return status_response(
            StatusError(404, "NotFound", "the server could not find the requested resource")
        )
