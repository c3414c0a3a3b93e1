"""Doctor's own door to the API server: reads, access reviews, and dry-run writes only.

``serve``'s door (:mod:`bff.kube.transport`) lets through exactly what the BFF
sends. Doctor asks other questions (CRDs, the webhook configuration, Services,
Secrets, any guarded object), so it gets its own entry with its own closed rule,
:func:`check`, applied before a byte leaves the process:

- ``GET`` of any API path (a get or a list; never a watch, which never ends);
- ``POST`` of a ``SubjectAccessReview`` or ``SelfSubjectAccessReview``: questions the
  API server answers without storing anything;
- ``PUT``/``PATCH``/``POST`` carrying ``dryRun=All``: the API server runs admission
  (the webhook included) and validation, and stores nothing.

Anything else (a real write, a DELETE, a path outside the cluster's API) raises
:class:`RequestRefused`. The session never reads the environment
(``trust_env=False``); the proxy is the one :mod:`bff.kube.config` resolved.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import aiohttp
from multidict import CIMultiDictProxy

from bff.kube.transport import DOT_SEGMENT, ssl_context

#: The access reviews doctor asks, with the kind each path takes.
REVIEWS = {
    "/apis/authorization.k8s.io/v1/subjectaccessreviews": "SubjectAccessReview",
    "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews": "SelfSubjectAccessReview",
}
#: Writes sent only as dry runs. Not POST: the connect subresources (a pod's exec or
#: attach, a Service's proxy) take POSTs and ignore dryRun.
_WRITES = ("PUT", "PATCH")
#: Subresources that pass a request on instead of storing it: dryRun means nothing there.
_CONNECT = frozenset({"proxy", "exec", "attach", "portforward"})
_PATH = re.compile(r"/[A-Za-z0-9._~%:/-]*")


class RequestRefused(Exception):
    """A request doctor's door does not let through; nothing was sent."""


class ClusterUnreachable(Exception):
    """The API server could not be reached, or refused doctor's credentials."""


@dataclass(frozen=True)
class Answer:
    status: int
    body: Any
    headers: CIMultiDictProxy[str] = field(repr=False)

    @property
    def warnings(self) -> list[str]:
        return self.headers.getall("Warning", [])


def check(method: str, path: str, query: Mapping[str, str], body: object) -> str:
    """Which rule lets this request through (its name); :class:`RequestRefused` if none.

    Pure: it looks at the request and sends nothing.
    """
    method = method.upper()
    if not _PATH.fullmatch(path) or DOT_SEGMENT.search(path) or "%2f" in path.lower():
        raise RequestRefused(f"{method} to a path outside the cluster's API: {path[:200]!r}")
    if method == "GET":
        if body is not None:
            raise RequestRefused("a GET carries no body")
        if query.get("watch", "").lower() in ("1", "true"):
            raise RequestRefused("doctor never watches: a watch does not end by itself")
        return "read"
    if method == "POST" and path in REVIEWS and not query:
        if (
            isinstance(body, dict)
            and body.get("apiVersion") == "authorization.k8s.io/v1"
            and body.get("kind") == REVIEWS[path]
        ):
            return "access review"
        raise RequestRefused(f"POST {path} with a body that is not a {REVIEWS[path]}")
    if method in _WRITES and query.get("dryRun") == "All":
        if _CONNECT & set(path.split("/")):
            raise RequestRefused(f"{method} {path[:200]}: a connect subresource ignores dryRun")
        return "dry-run write"
    raise RequestRefused(
        f"{method} {path[:200]} would change the cluster: doctor only reads, asks access "
        "reviews and sends dry-run (dryRun=All) writes"
    )


class DoctorClient:
    """Requests to the API server of ``configuration`` (a kubernetes-asyncio Configuration)."""

    def __init__(self, configuration: Any, *, timeout: float = 10.0) -> None:
        self._base = str(configuration.host).rstrip("/")
        self._proxy = configuration.proxy or None
        self._server_hostname = getattr(configuration, "tls_server_name", None) or None
        self._configuration = configuration
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=4, ssl=ssl_context(configuration)),
            timeout=aiohttp.ClientTimeout(total=timeout),
            trust_env=False,
        )
        #: Requests that left the process, by rule (what the tests count).
        self.sent: list[tuple[str, str, str]] = []

    @property
    def server(self) -> str:
        return self._base

    async def close(self) -> None:
        await self._session.close()

    async def __aenter__(self) -> DoctorClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def request(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str] | None = None,
        body: object = None,
        content_type: str = "application/json",
    ) -> Answer:
        query = dict(query or {})
        rule = check(method, path, query, body)
        headers = {"Accept": "application/json", "User-Agent": "harvester-upgrade-bff-doctor"}
        # Asked per request: an in-cluster token is refreshed by the configuration's hook.
        # The kubeconfig and in-cluster loaders keep "Bearer <token>" under "BearerToken".
        authorization = await self._configuration.get_api_key_with_prefix(
            "BearerToken", alias="authorization"
        )
        if authorization:
            headers["Authorization"] = authorization
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = content_type
        url = self._base + path
        if query:
            url += "?" + "&".join(f"{quote(k)}={quote(v, safe='')}" for k, v in query.items())
        self.sent.append((rule, method.upper(), path))
        try:
            async with self._session.request(
                method,
                url,
                data=data,
                headers=headers,
                proxy=self._proxy,
                server_hostname=self._server_hostname,
            ) as response:
                raw = await response.read()
                status, answer_headers = response.status, response.headers
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            reason = str(exc) or exc.__class__.__name__
            raise ClusterUnreachable(
                f"cannot reach the API server at {self._base}: {reason}"
            ) from None
        try:
            decoded: Any = json.loads(raw) if raw else None
        except ValueError:
            decoded = raw.decode(errors="replace")
        return Answer(status, decoded, answer_headers)

    async def get(self, path: str, **query: str) -> Answer:
        return await self.request("GET", path, query=query)
