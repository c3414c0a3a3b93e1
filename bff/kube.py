"""The only module that talks to the Kubernetes API (and imports its client).

It offers reads, and exactly one write: :meth:`UpgradeGateway.mark_read`, a
JSON merge patch that adds ``harvesterhci.io/read-message: "true"`` under a
``resourceVersion`` precondition.

That promise is kept by the transport, not by convention: every request of
every client built here passes :class:`_RestClient`, which refuses, before a
byte is sent, anything :data:`ALLOWED` does not list (GET, the one label
patch, and the review POSTs). Code that reached past the gateway to the
generated client would still be refused there.

Credentials are per request and never borrowed:

* in passthrough mode the gateway's client carries *no* credentials of its
  own (no token, no client certificate); each call carries the caller's token;
* in impersonate mode the gateway acts with the BFF's identity plus
  ``Impersonate-*`` headers for a user a TokenReview confirmed;
* in Rancher mode (:class:`RancherUpstream`) each served cluster has a client
  for ``<rancher>/k8s/clusters/<id>`` with no credentials of its own, verified
  against the configured CA bundle; each call carries the caller's Rancher
  token to the cluster the caller's request names. The same allowlist guards
  it: the paths are checked after ``/k8s/clusters/<id>``.

The client library's exceptions end here: they are translated into
:mod:`bff.errors` and never reach a handler.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import re
import ssl
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import aiohttp
import orjson
import yaml
from kubernetes_asyncio import client as k8s
from kubernetes_asyncio import config as k8s_config
from kubernetes_asyncio.client import rest as k8s_rest
from kubernetes_asyncio.config.config_exception import ConfigException
from multidict import CIMultiDict

from bff import errors, proxy
from bff.callers import Caller, ImpersonatedCaller, RancherCaller, TokenCaller
from bff.connections import Dropped
from bff.model import GROUP, PLURAL, VERSION
from bff.patches import mark_read_patch

log = logging.getLogger(__name__)

JSONObject = dict[str, Any]
#: Called after every upstream request with (verb, seconds, HTTP status or 0).
Observer = Callable[[str, float, int], None]

MERGE_PATCH = "application/merge-patch+json"


class ClusterConfigNotFound(Exception):
    """No kubeconfig and not running in a cluster: ``serve`` cannot start."""


@dataclass(frozen=True)
class RancherUpstream:
    """Rancher's cluster proxy as the callers' upstream (Rancher mode)."""

    #: ``https://rancher.example.com``: the clusters are ``<url>/k8s/clusters/<id>``.
    url: str
    #: PEM CA bundle TLS to Rancher is verified against; None: the system's CAs.
    ca_bundle: str | None
    clusters: tuple[str, ...]


@dataclass(frozen=True)
class UpstreamOptions:
    kubeconfig: str | None = None
    context: str | None = None
    connect_timeout: float = 5.0
    read_timeout: float = 15.0
    pool_size: int = 32
    rancher: RancherUpstream | None = None


def _noop(verb: str, seconds: float, status: int) -> None:
    return None


async def load_configuration(options: UpstreamOptions) -> Any:
    """Cluster configuration from ``--kubeconfig``/``KUBECONFIG``, else in-cluster.

    Never anything else: with neither, this raises :class:`ClusterConfigNotFound`.
    """
    configuration = k8s.Configuration()
    path = options.kubeconfig or os.environ.get("KUBECONFIG")
    try:
        if path:
            await k8s_config.load_kube_config(
                config_file=path,
                context=options.context,
                client_configuration=configuration,
                persist_config=False,
            )
        else:
            k8s_config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    except (ConfigException, OSError) as exc:
        where = f"kubeconfig {path!r}" if path else "in-cluster service account"
        reason = " ".join(str(exc).split()).rstrip(". ")
        raise ClusterConfigNotFound(
            f"cannot load cluster configuration from {where}: {reason}"
        ) from exc
    except (yaml.YAMLError, ValueError, TypeError, AttributeError, KeyError) as exc:
        # A file that is not YAML, or YAML that is not a kubeconfig.
        mark = getattr(exc, "problem_mark", None)
        at = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        raise ClusterConfigNotFound(
            f"cannot load cluster configuration from kubeconfig {path!r}: "
            f"it is not a valid kubeconfig file{at}"
        ) from None
    configuration.connection_pool_maxsize = options.pool_size
    if not configuration.proxy:  # a kubeconfig proxy-url wins, as with kubectl
        configuration.proxy = proxy.for_server(configuration.host or "")
    if configuration.proxy:
        log.info("the Kubernetes API is reached through the proxy %s",
                 proxy.redacted(configuration.proxy))  # fmt: skip
    return configuration


def anonymous_copy(configuration: Any) -> Any:
    """The same cluster, CA and TLS settings, with every credential removed.

    Passthrough requests use this, so a request that somehow lacked the caller's
    token would reach the API server anonymous, never as the BFF. A client
    certificate must go too: the API server authenticates x509 before bearer
    tokens, so a kept certificate would silently win over the caller's token.
    """
    anon = copy.copy(configuration)
    anon.api_key = {}
    anon.api_key_prefix = {}
    anon.refresh_api_key_hook = None
    anon.cert_file = None
    anon.key_file = None
    anon.username = None
    anon.password = None
    return anon


def rancher_configuration(rancher: RancherUpstream, path: str, pool_size: int) -> Any:
    """A client configuration for ``<rancher url><path>``: TLS verified, no credentials."""
    configuration = k8s.Configuration()
    configuration.host = rancher.url + path
    configuration.ssl_ca_cert = rancher.ca_bundle
    configuration.verify_ssl = True
    configuration.api_key = {}
    configuration.connection_pool_maxsize = pool_size
    configuration.proxy = proxy.for_server(configuration.host)
    return configuration


# --- the transport: what may leave the BFF at all ---------------------------------------

_DNS_LABEL = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS_SUBDOMAIN = f"{_DNS_LABEL}(\\.{_DNS_LABEL})*"
UPGRADE_PATH = re.compile(
    rf"/apis/{re.escape(GROUP)}/{VERSION}/namespaces/{_DNS_LABEL}/{PLURAL}/{_DNS_SUBDOMAIN}"
)


#: A ``.`` or ``..`` path segment, plain or percent-encoded.
_DOT_SEGMENT = re.compile(r"(^|/)(\.|%2e){1,2}(/|$)", re.IGNORECASE)


def _is_mark_read_patch(body: object) -> bool:
    """Exactly :func:`bff.patches.mark_read_patch` for some resourceVersion, nothing more."""
    if not isinstance(body, dict):
        return False
    meta = body.get("metadata")
    version = meta.get("resourceVersion") if isinstance(meta, dict) else None
    return isinstance(version, str) and bool(version) and body == mark_read_patch(version)


def _is_review(api_version: str, kind: str) -> Callable[[object], bool]:
    def check(body: object) -> bool:
        return (
            isinstance(body, dict)
            and body.get("apiVersion") == api_version
            and body.get("kind") == kind
            and set(body) <= {"apiVersion", "kind", "metadata", "spec"}
        )

    return check


@dataclass(frozen=True)
class Allowed:
    """One kind of request the transport lets through to the API server.

    A request goes out only if one entry matches it: same method, a path that
    fully matches ``path`` (after the cluster URL), and then either no body at
    all (``body is None``) or exactly ``content_type`` and a body ``body``
    accepts. ``query`` says whether query parameters may come along.
    """

    name: str
    method: str
    path: re.Pattern[str]
    body: Callable[[object], bool] | None = None
    content_type: str | None = None
    query: bool = False


#: Everything the product may send upstream. Reads are free; the only change to
#: an Upgrade is the one label merge patch; reviews are questions the API server
#: answers without storing anything.
ALLOWED: tuple[Allowed, ...] = (
    Allowed("read (get, list, watch, discovery)", "GET", re.compile(r"/.*"), query=True),
    Allowed(
        "the read-message label patch of one Upgrade",
        "PATCH",
        UPGRADE_PATH,
        body=_is_mark_read_patch,
        content_type=MERGE_PATCH,
    ),
    Allowed(
        "TokenReview",
        "POST",
        re.compile(r"/apis/authentication\.k8s\.io/v1/tokenreviews"),
        body=_is_review("authentication.k8s.io/v1", "TokenReview"),
        content_type="application/json",
    ),
    Allowed(
        "SubjectAccessReview",
        "POST",
        re.compile(r"/apis/authorization\.k8s\.io/v1/subjectaccessreviews"),
        body=_is_review("authorization.k8s.io/v1", "SubjectAccessReview"),
        content_type="application/json",
    ),
    Allowed(
        "SelfSubjectAccessReview",
        "POST",
        re.compile(r"/apis/authorization\.k8s\.io/v1/selfsubjectaccessreviews"),
        body=_is_review("authorization.k8s.io/v1", "SelfSubjectAccessReview"),
        content_type="application/json",
    ),
)


def check_request(
    allowed: Sequence[Allowed],
    base_url: str,
    method: str,
    url: str,
    *,
    query: object,
    headers: Mapping[str, object] | None,
    body: object,
    post_params: object,
) -> Allowed:
    """The entry of ``allowed`` this request matches; :class:`errors.UpstreamRequestRefused`
    if none does. Pure: it looks at the request, it sends nothing."""
    method = method.upper()
    base = base_url.rstrip("/")
    if not url.startswith(base + "/") or any(c in url[len(base) :] for c in "?#"):
        raise errors.UpstreamRequestRefused(f"{method} to a URL outside the cluster's API")
    path = url[len(base) :]
    # A dot segment resolves to outside the base URL (in the client, or in a proxy that
    # decodes an encoded slash): the BFF never builds one (every name is DNS-1123).
    if _DOT_SEGMENT.search(path) or "%2f" in path.lower():
        raise errors.UpstreamRequestRefused(f"{method} to a URL outside the cluster's API")
    # Without a Content-Type the client library sends application/json.
    content_type = "application/json"
    for key, value in (headers or {}).items():
        if key.lower() == "content-type":
            content_type = str(value)
    has_body = body is not None or bool(post_params)
    for entry in allowed:
        if entry.method != method or not entry.path.fullmatch(path):
            continue
        if query and not entry.query:
            continue
        if entry.body is None:
            if not has_body:
                return entry
            continue
        if post_params or content_type != entry.content_type or not entry.body(body):
            continue
        return entry
    raise errors.UpstreamRequestRefused(f"{method} {path[:200]} is not a request the BFF makes")


class _RestClient(k8s_rest.RESTClientObject):
    """The one door to the API server: every request of every client passes here.

    It refuses, before a byte is sent, anything that :data:`ALLOWED` (plus the
    ``extra`` entries a caller names explicitly) does not list.

    Its session never consults the environment (``trust_env=False``): the proxy
    was resolved once at startup (:func:`bff.proxy.for_server`) and is passed
    explicitly, so no request scans ``os.environ`` or reads ``~/.netrc``. It
    also sends a tuple header value as repeated headers (``Impersonate-Group``
    needs it). Answers given up on mid-stream are dropped through :attr:`dropped`,
    and :meth:`close` waits for them to be gone before it closes the pool.
    """

    def __init__(self, configuration: Any, extra: Sequence[Allowed] = ()) -> None:
        # The library's constructor, but trust_env=False.
        context = ssl.create_default_context(cafile=configuration.ssl_ca_cert)
        if configuration.cert_file:
            context.load_cert_chain(configuration.cert_file, keyfile=configuration.key_file)
        if not configuration.verify_ssl:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        if configuration.disable_strict_ssl_verification:
            context.verify_flags &= ~ssl.VERIFY_X509_STRICT
        self.server_hostname = configuration.tls_server_name
        # Credentials in the proxy URL become Proxy-Authorization (aiohttp does that).
        self.proxy = configuration.proxy
        self.proxy_headers = configuration.proxy_headers
        self.pool_manager = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(
                limit=configuration.connection_pool_maxsize, ssl=context
            ),
            trust_env=False,
            read_bufsize=2**21,  # watch events of large objects exceed the default
        )
        self._base_url: str = configuration.host
        self.allowed: tuple[Allowed, ...] = (*ALLOWED, *extra)
        self.dropped = Dropped()

    async def close(self) -> None:
        await self.dropped.wait()
        await super().close()

    async def request(self, method: str, url: str, query_params: Any = None,
                      headers: Any = None, body: Any = None, post_params: Any = None,
                      *args: Any, **kwargs: Any) -> Any:  # fmt: skip
        check_request(
            self.allowed,
            self._base_url,
            method,
            url,
            query=query_params,
            headers=headers,
            body=body,
            post_params=post_params,
        )
        if headers:
            expanded: CIMultiDict[str] = CIMultiDict()
            for key, value in headers.items():
                for item in value if isinstance(value, tuple) else (value,):
                    expanded.add(key, str(item))
            headers = expanded
        return await super().request(
            method, url, query_params, headers, body, post_params, *args, **kwargs
        )


async def api_client(configuration: Any, extra: Sequence[Allowed] = ()) -> Any:
    """A Kubernetes API client whose every request passes the allowlist."""
    api = k8s.ApiClient(configuration)
    await api.rest_client.close()  # replaced by the guarded one below
    api.rest_client = _RestClient(configuration, extra)
    api.user_agent = "harvester-upgrade-bff"
    return api


def _auth(caller: Caller) -> dict[str, Any]:
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


class _Calls:
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


class UpgradeGateway(_Calls):
    """Reads Upgrades, and writes the one label merge patch. Nothing else."""

    async def get(self, caller: Caller, namespace: str, name: str) -> JSONObject:
        obj: JSONObject = await self._call(
            "get",
            self._objects.get_namespaced_custom_object,
            GROUP, VERSION, namespace, PLURAL, name,
            **_auth(caller),
        )  # fmt: skip
        return obj

    async def list(self, caller: Caller, namespace: str, label_selector: str = "") -> JSONObject:
        kwargs: dict[str, Any] = _auth(caller)
        if label_selector:
            kwargs["label_selector"] = label_selector
        result: JSONObject = await self._call(
            "list",
            self._objects.list_namespaced_custom_object,
            GROUP, VERSION, namespace, PLURAL,
            **kwargs,
        )  # fmt: skip
        return result

    async def mark_read(
        self, caller: Caller, namespace: str, name: str, resource_version: str
    ) -> JSONObject:
        """The one write: label merge patch, conditional on ``resource_version``.

        The content type is named explicitly: for a dict body the client would
        otherwise choose JSON patch.
        """
        obj: JSONObject = await self._call(
            "patch",
            self._objects.patch_namespaced_custom_object,
            GROUP, VERSION, namespace, PLURAL, name,
            mark_read_patch(resource_version),
            _content_type=MERGE_PATCH,
            **_auth(caller),
        )  # fmt: skip
        return obj


class ClusterGateways:
    """Rancher mode: the gateway of the cluster a caller's request names.

    A caller that names no served cluster is refused before anything is sent.
    """

    def __init__(self, gateways: Mapping[str, UpgradeGateway]) -> None:
        self._gateways = dict(gateways)

    def _for(self, caller: Caller) -> UpgradeGateway:
        gateway = self._gateways.get(caller.cluster) if isinstance(caller, RancherCaller) else None
        if gateway is None:
            raise errors.UpstreamRequestRefused("a request for no served cluster")
        return gateway

    async def get(self, caller: Caller, namespace: str, name: str) -> JSONObject:
        return await self._for(caller).get(caller, namespace, name)

    async def list(self, caller: Caller, namespace: str, label_selector: str = "") -> JSONObject:
        return await self._for(caller).list(caller, namespace, label_selector)

    async def mark_read(
        self, caller: Caller, namespace: str, name: str, resource_version: str
    ) -> JSONObject:
        return await self._for(caller).mark_read(caller, namespace, name, resource_version)


class ClusterProbe(_Calls):
    """Readiness: is the API reachable, and does it serve Upgrades? (BFF's own identity.)"""

    async def problem(self) -> str | None:
        try:
            resources = await self._call(
                "discovery", self._objects.get_api_resources, GROUP, VERSION
            )
        except errors.BffError as exc:
            return f"{GROUP}/{VERSION} discovery failed: {exc.message}"
        names = {r.name for r in (resources.resources or [])}
        if PLURAL not in names:
            return f"the API server does not serve {PLURAL}.{GROUP}/{VERSION}"
        return None


class RancherProbe(_Calls):
    """Rancher-mode readiness, with no caller: the BFF's own API server answers ``/version``
    (its kubeconfig or service account), and Rancher answers ``/ping`` over verified TLS.

    The Upgrades live on the clusters behind Rancher, which the BFF reaches only with a
    caller's token, so the Upgrade API itself is not part of readiness here.
    """

    def __init__(
        self, own: Any, rancher: Any, url: str, options: UpstreamOptions, observer: Observer
    ) -> None:
        super().__init__(own, options, observer)
        self._rancher = rancher
        self._url = url

    async def problem(self) -> str | None:
        try:
            await self._call("discovery", k8s.VersionApi(self._api).get_code)
        except errors.BffError as exc:
            return f"the BFF's own Kubernetes API did not answer /version: {exc.message}"
        try:
            response = await self._call(
                "discovery",
                self._rancher.call_api,
                "/ping", "GET",
                auth_settings=[],
                _preload_content=False,
            )  # fmt: skip
            body = await _read_ok(response)
        except errors.BffError as exc:
            reason = exc.message.replace("the Kubernetes API", "it")
            return f"Rancher {self._url}/ping: {reason}"
        if body.strip() != b"pong":
            return f"Rancher {self._url}/ping did not answer pong"
        return None


class TokenReviewer(_Calls):
    """Asks the API server who a token belongs to (impersonate mode only).

    A TokenReview is a question, not a change: the API server stores nothing.
    """

    async def review(self, token: str) -> ImpersonatedCaller | None:
        auth = k8s.AuthenticationV1Api(self._api)
        body = k8s.V1TokenReview(
            api_version="authentication.k8s.io/v1",
            kind="TokenReview",
            spec=k8s.V1TokenReviewSpec(token=token),
        )
        result = await self._call("create", auth.create_token_review, body)
        status = result.status
        if status is None or not status.authenticated or status.user is None:
            return None
        user = status.user
        _check_header_safe(user)
        return ImpersonatedCaller(
            username=user.username or "",
            uid=user.uid or "",
            groups=tuple(user.groups or ()),
            extra={k: tuple(v or ()) for k, v in (user.extra or {}).items()},
        )


def _check_header_safe(user: Any) -> None:
    """Every part of the reviewed identity becomes an Impersonate-* header: no control chars."""
    values = [user.username or "", user.uid or "", *(user.groups or ())]
    for key, extra in (user.extra or {}).items():
        values.extend([key, *(extra or ())])
    if any(ord(c) < 0x20 or ord(c) == 0x7F for value in values for c in value):
        raise errors.Forbidden(
            "the Kubernetes API named a user for this token that cannot be impersonated "
            "(control characters in the user name, uid, groups or extra)",
            code=errors.Code.UNUSABLE_IDENTITY,
        )


async def _read_ok(response: Any) -> bytes:
    """The whole body of an unparsed (``_preload_content=False``) answer that must be a 200."""
    async with response:
        body: bytes = await response.read()
        if response.status != 200:
            raise _failed(response.status, response.reason, body)
    return body


def _failed(status: int, reason: str | None, body: bytes) -> errors.BffError:
    failure = k8s.ApiException(status=status, reason=reason or "")
    failure.body = body
    return translate(failure)


class UpgradeWatcher(_Calls):
    """The cache's upstream (BFF's own identity): list, then watch from a resourceVersion.

    Both answers are read as bytes and parsed once (orjson); nothing goes
    through the generated client's model deserialisation.
    """

    #: The server closes a watch after this long; the cache simply watches again.
    WATCH_SECONDS = 300

    async def list(self, namespace: str) -> JSONObject:
        response = await self._call(
            "list",
            self._objects.list_namespaced_custom_object,
            GROUP, VERSION, namespace, PLURAL,
            _preload_content=False,
        )  # fmt: skip
        listed: JSONObject = orjson.loads(await _read_ok(response))
        return listed

    async def watch(
        self, namespace: str, resource_version: str, on_open: Callable[[], None]
    ) -> AsyncGenerator[JSONObject, None]:
        """The watch's events, parsed; ``on_open`` runs once the server has accepted it."""
        started = time.perf_counter()
        try:
            response = await self._objects.list_namespaced_custom_object(
                GROUP, VERSION, namespace, PLURAL,
                watch=True,
                resource_version=resource_version,
                allow_watch_bookmarks=True,
                timeout_seconds=self.WATCH_SECONDS,
                _preload_content=False,
                _request_timeout=aiohttp.ClientTimeout(
                    connect=self._timeout[0], sock_connect=self._timeout[0],
                    sock_read=self.WATCH_SECONDS + 30,
                ),
            )  # fmt: skip
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            self._observe("watch", time.perf_counter() - started, 0)
            raise translate(exc) from None
        self._observe("watch", time.perf_counter() - started, response.status)
        async with response:
            if response.status != 200:
                body = await response.read()
                raise _failed(response.status, response.reason, body)
            on_open()
            ended = False
            try:
                while line := await response.content.readline():
                    if line.strip():
                        yield orjson.loads(line)
                ended = True
            except (TimeoutError, aiohttp.ClientError, OSError) as exc:
                raise translate(exc) from None
            finally:
                if not ended:  # given up on: cancelled, closed by the cache, or broken
                    self._api.rest_client.dropped.drop(response)


class AccessReviewer(_Calls):
    """Asks the API server whether a caller may read Upgrades (for reads from the cache).

    Reviews are questions, not changes: the API server stores nothing.
    """

    def __init__(
        self, callers: Any, own: Any, options: UpstreamOptions, observer: Observer
    ) -> None:
        super().__init__(callers, options, observer)
        self._callers = k8s.AuthorizationV1Api(callers)
        self._own = k8s.AuthorizationV1Api(own)

    @staticmethod
    def _attributes(verb: str, namespace: str) -> Any:
        return k8s.V1ResourceAttributes(
            group=GROUP, version=VERSION, resource=PLURAL, verb=verb, namespace=namespace
        )

    async def self_review(self, caller: TokenCaller, verb: str, namespace: str) -> bool:
        """SelfSubjectAccessReview, sent with the caller's own token."""
        body = k8s.V1SelfSubjectAccessReview(
            api_version="authorization.k8s.io/v1",
            kind="SelfSubjectAccessReview",
            spec=k8s.V1SelfSubjectAccessReviewSpec(
                resource_attributes=self._attributes(verb, namespace)
            ),
        )
        result = await self._call(
            "review", self._callers.create_self_subject_access_review, body, **_auth(caller)
        )
        return bool(result.status and result.status.allowed)

    async def subject_review(self, caller: ImpersonatedCaller, verb: str, namespace: str) -> bool:
        """SubjectAccessReview for the reviewed user, sent with the BFF's identity."""
        body = k8s.V1SubjectAccessReview(
            api_version="authorization.k8s.io/v1",
            kind="SubjectAccessReview",
            spec=k8s.V1SubjectAccessReviewSpec(
                user=caller.username,
                uid=caller.uid or None,
                groups=list(caller.groups) or None,
                extra={k: list(v) for k, v in caller.extra.items()} or None,
                resource_attributes=self._attributes(verb, namespace),
            ),
        )
        result = await self._call("review", self._own.create_subject_access_review, body)
        return bool(result.status and result.status.allowed)


@dataclass(frozen=True)
class Upstream:
    gateway: UpgradeGateway | ClusterGateways
    probe: ClusterProbe | RancherProbe
    reviewer: TokenReviewer
    watcher: UpgradeWatcher
    #: None in Rancher mode: access reviews serve the read cache, which it has not.
    access: AccessReviewer | None


@asynccontextmanager
async def connect(
    options: UpstreamOptions,
    *,
    impersonate: bool,
    observer: Observer = _noop,
    extra_allowed: Sequence[Allowed] = (),
) -> AsyncIterator[Upstream]:
    """Open the upstream clients once (per app) and close them on the way out.

    ``extra_allowed`` names requests beyond :data:`ALLOWED` that these clients
    may send; the product passes none.
    """
    own_config = await load_configuration(options)
    own = await api_client(own_config, extra_allowed)
    if options.rancher is not None:
        try:
            async with _rancher(own, options, options.rancher, observer, extra_allowed) as up:
                yield up
        finally:
            await own.close()
        return
    try:
        callers = (
            own if impersonate else await api_client(anonymous_copy(own_config), extra_allowed)
        )
    except BaseException:
        await own.close()
        raise
    try:
        yield Upstream(
            gateway=UpgradeGateway(callers, options, observer),
            probe=ClusterProbe(own, options, observer),
            reviewer=TokenReviewer(own, options, observer),
            watcher=UpgradeWatcher(own, options, observer),
            access=AccessReviewer(callers, own, options, observer),
        )
    finally:
        if callers is not own:
            await callers.close()
        await own.close()


@asynccontextmanager
async def _rancher(
    own: Any,
    options: UpstreamOptions,
    rancher: RancherUpstream,
    observer: Observer,
    extra_allowed: Sequence[Allowed],
) -> AsyncIterator[Upstream]:
    """Rancher mode: one credential-less client per served cluster, one for Rancher's /ping."""
    clients: list[Any] = []
    try:
        gateways = {}
        for cluster in rancher.clusters:
            config = rancher_configuration(rancher, f"/k8s/clusters/{cluster}", options.pool_size)
            clients.append(await api_client(config, extra_allowed))
            gateways[cluster] = UpgradeGateway(clients[-1], options, observer)
        log.info("Rancher mode: callers' requests go to %s/k8s/clusters/<id> for %s",
                 rancher.url, ", ".join(rancher.clusters))  # fmt: skip
        ping = rancher_configuration(rancher, "", 2)
        if ping.proxy:
            log.info("Rancher is reached through the proxy %s", proxy.redacted(ping.proxy))
        clients.append(await api_client(ping, extra_allowed))
        yield Upstream(
            gateway=ClusterGateways(gateways),
            probe=RancherProbe(own, clients[-1], rancher.url, options, observer),
            reviewer=TokenReviewer(own, options, observer),
            watcher=UpgradeWatcher(own, options, observer),
            access=None,
        )
    finally:
        for client in clients:
            await client.close()
