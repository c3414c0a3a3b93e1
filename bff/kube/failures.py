"""The client library's failures, translated into :mod:`bff.errors`.

The client's exceptions end here: nothing of an upstream answer but its
``Status.message`` (and a numeric ``Retry-After``) goes any further.
"""

from __future__ import annotations

import json
from typing import Any

import aiohttp
from kubernetes_asyncio import client as k8s

from bff import errors


def translate(exc: BaseException) -> errors.BffError:
    """Map a client-library or transport failure to the project's own error.

    The upstream body is parsed for its ``Status.message`` only; nothing else
    of it, and none of its headers but ``Retry-After``, goes any further.
    """
    if isinstance(exc, k8s.ApiException):
        status = int(exc.status or 0)
        message = _status_message(exc.body) or (exc.reason or "upstream error")
        message = errors.truncate(message)
        kinds: dict[int, type[errors.BffError]] = {
            401: errors.Unauthorized,
            403: errors.Forbidden,
            404: errors.NotFound,
            409: errors.UpstreamConflict,
            422: errors.Invalid,
        }
        if status in kinds:
            return kinds[status](message, upstream_status=status)
        if status == 429:
            retry_after = exc.headers.get("Retry-After") if exc.headers else None
            headers = {"Retry-After": retry_after} if retry_after and retry_after.isdigit() else {}
            return errors.TooManyRequests(message, headers=headers, upstream_status=status)
        if status in (503, 504):
            return errors.UpstreamUnavailable(
                f"the Kubernetes API answered {status}", http_status=status, upstream_status=status
            )
        return errors.UpstreamUnavailable(
            f"the Kubernetes API answered {status}", http_status=502, upstream_status=status
        )
    if isinstance(exc, TimeoutError):
        return errors.UpstreamUnavailable(
            "the Kubernetes API did not answer in time", http_status=504
        )
    if isinstance(exc, aiohttp.ClientConnectionError | OSError):
        return errors.UpstreamUnavailable("the Kubernetes API is unreachable", http_status=503)
    return errors.UpstreamUnavailable("the Kubernetes API request failed", http_status=502)


def _status_message(body: object) -> str:
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    if not isinstance(body, str):
        return ""
    try:
        parsed = json.loads(body)
    except ValueError:
        return ""
    message = parsed.get("message") if isinstance(parsed, dict) else None
    return message if isinstance(message, str) else ""


async def read_ok(response: Any) -> bytes:
    """The whole body of an unparsed (``_preload_content=False``) answer that must be a 200."""
    async with response:
        body: bytes = await response.read()
        if response.status != 200:
            raise failed(response.status, response.reason, body)
    return body


def failed(status: int, reason: str | None, body: bytes) -> errors.BffError:
    failure = k8s.ApiException(status=status, reason=reason or "")
    failure.body = body
    return translate(failure)
