"""What every upstream call shares: per-request credentials, timeouts, observation.

Credentials are per request and never borrowed: a caller's own token, or the
BFF's identity plus ``Impersonate-*`` headers for a user a TokenReview confirmed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import aiohttp
from kubernetes_asyncio import client as k8s

from bff import errors
from bff.identities import Caller, TokenCaller
from bff.kube.config import UpstreamOptions
from bff.kube.failures import translate

log = logging.getLogger("bff.kube")

JSONObject = dict[str, Any]
#: Called after every upstream request with (verb, seconds, HTTP status or 0).
Observer = Callable[[str, float, int], None]


def noop(verb: str, seconds: float, status: int) -> None:
    return None


def credentials(caller: Caller) -> dict[str, Any]:
    """Per-request credentials: keyword arguments for a generated client call."""
    if isinstance(caller, TokenCaller):
        return {
            "_request_auth": {
                "in": "header",
                "key": "authorization",
                "type": "api_key",
                "value": f"Bearer {caller.token}",
            }
        }
    headers: dict[str, str | tuple[str, ...]] = {"Impersonate-User": caller.username}
    if caller.uid:
        headers["Impersonate-Uid"] = caller.uid
    if caller.groups:
        headers["Impersonate-Group"] = tuple(caller.groups)
    for key, values in caller.extra.items():
        headers[f"Impersonate-Extra-{_escape_extra_key(key)}"] = tuple(values)
    return {"_headers": headers}


def _escape_extra_key(key: str) -> str:
    # Kubernetes percent-encodes extra keys in header names (client-go transport).
    return quote(key, safe="")


class Calls:
    """Shared plumbing: timeouts, latency observation and error translation."""

    def __init__(self, api: Any, options: UpstreamOptions, observer: Observer) -> None:
        self._api = api
        self._objects = k8s.CustomObjectsApi(api)
        self._timeout = (options.connect_timeout, options.read_timeout)
        self._observe = observer

    async def _call(self, verb: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        status = 0
        try:
            result = await fn(*args, _request_timeout=self._timeout, **kwargs)
            status = 201 if verb == "create" else 200
            return result
        except k8s.ApiException as exc:
            status = int(exc.status or 0)
            raise translate(exc) from None
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise translate(exc) from None
        except ValueError:
            # The client could not build the request or read the answer (a header value
            # with a newline, a reply that is not the declared model): never a 500.
            log.warning("the Kubernetes client could not %s: a request or answer it cannot use",
                        verb)  # fmt: skip
            raise errors.UpstreamUnavailable(
                "the Kubernetes API request could not be made or its answer read", http_status=502
            ) from None
        finally:
            self._observe(verb, time.perf_counter() - started, status)
