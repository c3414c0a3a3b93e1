"""The one door to the API server: the allowlist and the REST client every request passes.

Every client the BFF builds (:func:`api_client`) sends through :class:`RestClient`,
which refuses, before a byte is sent, anything :data:`ALLOWED` does not list: the
reads the product makes (one Upgrade, the Upgrade list and watch, the Upgrade
API's discovery, ``/version``, Rancher's ``/ping``), the one label merge patch,
and the review POSTs. Code that reached past the gateways to the generated
client would still be refused here. The list is closed: no caller can widen it.
With ``--webhook-cert-source self`` a second, separate client
(:func:`certificate_client`) may read and write that one Secret and set the
caBundles of that one MutatingWebhookConfiguration, and send nothing else; the
product's clients never can.

This module holds only that door; what goes through it is built in the sibling
modules of :mod:`bff.kube`. A second HTTP session elsewhere in the product is a
lint error (ruff's banned-api rule, TID251, in pyproject.toml).
"""

from __future__ import annotations

import re
import ssl
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp
from kubernetes_asyncio import client as k8s
from kubernetes_asyncio.client import rest as k8s_rest
from multidict import CIMultiDict

from bff import errors
from bff.abandoned import Dropped
from bff.patches import mark_read_patch
from bff.upgrade_resource import GROUP, PLURAL, VERSION

MERGE_PATCH = "application/merge-patch+json"

_DNS_LABEL = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS_SUBDOMAIN = f"{_DNS_LABEL}(\\.{_DNS_LABEL})*"
#: The Upgrade API of the cluster (its discovery document is this path itself).
UPGRADE_API = rf"/apis/{re.escape(GROUP)}/{VERSION}"
#: The Upgrades of one namespace: list, and watch (``?watch=true``).
UPGRADES_PATH = re.compile(rf"{UPGRADE_API}/namespaces/{_DNS_LABEL}/{PLURAL}")
#: One Upgrade.
UPGRADE_PATH = re.compile(rf"{UPGRADES_PATH.pattern}/{_DNS_SUBDOMAIN}")


#: A ``.`` or ``..`` path segment, also percent-encoded: refused on every request.
DOT_SEGMENT = re.compile(r"(^|/)(\.|%2e){1,2}(/|$)", re.IGNORECASE)


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


#: Everything the product may send upstream: the reads it makes, by path; the only
#: change to an Upgrade, the one label merge patch; and reviews, questions the API
#: server answers without storing anything. With Rancher, the paths are those after
#: ``/k8s/clusters/<id>`` (the client's base URL), and ``/ping`` after Rancher's URL.
ALLOWED: tuple[Allowed, ...] = (
    Allowed("get one Upgrade", "GET", UPGRADE_PATH),
    Allowed("list or watch the Upgrades of a namespace", "GET", UPGRADES_PATH, query=True),
    Allowed("discovery of the Upgrade API (readiness)", "GET", re.compile(UPGRADE_API)),
    # kubernetes-asyncio's VersionApi asks for /version/ (with the slash).
    Allowed("/version (Rancher mode's readiness)", "GET", re.compile(r"/version/?")),
    Allowed("Rancher's /ping (Rancher mode's readiness)", "GET", re.compile(r"/ping")),
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


#: The content type of a JSON patch (RFC 6902). Only :func:`certificate_allowlist` takes
#: it (the caBundle of the BFF's own webhook configuration, ``--webhook-cert-source self``,
#: on a client of its own): no Upgrade or other guarded object is ever written with it,
#: and :data:`ALLOWED` refuses it (tests/kube/test_transport.py).
JSON_PATCH = "application/json-patch+json"
#: The keys of the webhook's certificate Secret (``--webhook-cert-source self``): the
#: kubernetes.io/tls pair, the CA certificate, and the CA key that renews the pair.
CERTIFICATE_KEYS = frozenset({"tls.crt", "tls.key", "ca.crt", "ca.key"})
_CA_BUNDLE_PATH = re.compile(r"/webhooks/(0|[1-9][0-9]{0,3})/clientConfig/caBundle")


def _is_certificate_secret(namespace: str, name: str, *, update: bool) -> Callable[[object], bool]:
    """That one Secret, of type kubernetes.io/tls, with the certificate keys and nothing else."""

    def check(body: object) -> bool:
        if not isinstance(body, dict) or not set(body) <= {"apiVersion", "kind", "metadata",
                                                           "type", "data"}:  # fmt: skip
            return False
        meta = body.get("metadata")
        data = body.get("data")
        if not isinstance(meta, dict) or not isinstance(data, dict):
            return False
        version = meta.get("resourceVersion")
        return (
            body.get("apiVersion") == "v1"
            and body.get("kind") == "Secret"
            and body.get("type") == "kubernetes.io/tls"
            and meta.get("name") == name
            and meta.get("namespace", namespace) == namespace
            and set(meta) <= {"name", "namespace", "labels", "resourceVersion"}
            and (isinstance(version, str) and bool(version) if update else version is None)
            and set(data) == CERTIFICATE_KEYS
            and all(isinstance(v, str) for v in data.values())
        )

    return check


def _is_ca_bundle_patch(body: object) -> bool:
    """A JSON patch that tests the resourceVersion, then sets webhooks' caBundles only
    (``add``: it sets the member whether or not the configuration had one)."""
    if not isinstance(body, list) or len(body) < 2:
        return False
    first, *rest = body
    if not isinstance(first, dict) or not isinstance(first.get("value"), str):
        return False
    if first != {"op": "test", "path": "/metadata/resourceVersion", "value": first["value"]}:
        return False
    if not first["value"]:
        return False
    paths = set()
    for op in rest:
        if not (
            isinstance(op, dict)
            and set(op) == {"op", "path", "value"}
            and op["op"] == "add"
            and isinstance(op["path"], str)
            and _CA_BUNDLE_PATH.fullmatch(op["path"])
            and isinstance(op["value"], str)
        ):
            return False
        paths.add(op["path"])
    return len(paths) == len(rest)


def certificate_allowlist(
    secret_namespace: str, secret_name: str, configuration: str
) -> tuple[Allowed, ...]:
    """What ``--webhook-cert-source self`` sends, and nothing more: GET, POST (create) and
    PUT of that one Secret in that namespace; GET, and a caBundle-only JSON patch, of that
    one MutatingWebhookConfiguration. The names are the checked flag values."""
    secrets = rf"/api/v1/namespaces/{re.escape(secret_namespace)}/secrets"
    secret = re.compile(rf"{secrets}/{re.escape(secret_name)}")
    webhooks = re.compile(
        r"/apis/admissionregistration\.k8s\.io/v1/mutatingwebhookconfigurations/"
        + re.escape(configuration)
    )
    return (
        Allowed("get the webhook's certificate Secret", "GET", secret),
        Allowed(
            "create the webhook's certificate Secret",
            "POST",
            re.compile(secrets),
            body=_is_certificate_secret(secret_namespace, secret_name, update=False),
            content_type="application/json",
        ),
        Allowed(
            "update the webhook's certificate Secret",
            "PUT",
            secret,
            body=_is_certificate_secret(secret_namespace, secret_name, update=True),
            content_type="application/json",
        ),
        Allowed("get the webhook's configuration", "GET", webhooks),
        Allowed(
            "set the webhook configuration's caBundles",
            "PATCH",
            webhooks,
            body=_is_ca_bundle_patch,
            content_type=JSON_PATCH,
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
    if DOT_SEGMENT.search(path) or "%2f" in path.lower():
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


def ssl_context(configuration: Any) -> ssl.SSLContext:
    """The TLS context a kubeconfig asks for: its CA, client certificate, and its
    ``insecure-skip-tls-verify`` and strict-verification choices (kubernetes-asyncio's own)."""
    context = ssl.create_default_context(cafile=configuration.ssl_ca_cert)
    if configuration.cert_file:
        context.load_cert_chain(configuration.cert_file, keyfile=configuration.key_file)
    if not configuration.verify_ssl:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if configuration.disable_strict_ssl_verification:
        context.verify_flags &= ~ssl.VERIFY_X509_STRICT
    return context


class RestClient(k8s_rest.RESTClientObject):
    """The one door to the API server: every request of every client passes here.

    It refuses, before a byte is sent, anything that :data:`ALLOWED` does not list.

    Its session never consults the environment (``trust_env=False``): the proxy
    was resolved once at startup (:func:`bff.proxy.for_server`) and is passed
    explicitly, so no request scans ``os.environ`` or reads ``~/.netrc``. It
    also sends a tuple header value as repeated headers (``Impersonate-Group``
    needs it). Answers given up on mid-stream are dropped through :attr:`dropped`,
    and :meth:`close` waits for them to be gone before it closes the pool.
    """

    def __init__(self, configuration: Any, allowed: tuple[Allowed, ...] = ALLOWED) -> None:
        # The library's constructor, but trust_env=False.
        context = ssl_context(configuration)
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
        self.allowed = allowed
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


async def api_client(configuration: Any) -> Any:
    """A Kubernetes API client whose every request passes the allowlist."""
    return await _client(configuration, ALLOWED)


async def certificate_client(
    configuration: Any, secret_namespace: str, secret_name: str, webhook_configuration: str
) -> Any:
    """A client for ``--webhook-cert-source self`` only: it may send what
    :func:`certificate_allowlist` lists for these names, and nothing of :data:`ALLOWED`."""
    allowed = certificate_allowlist(secret_namespace, secret_name, webhook_configuration)
    return await _client(configuration, allowed)


async def _client(configuration: Any, allowed: tuple[Allowed, ...]) -> Any:
    api = k8s.ApiClient(configuration)
    await api.rest_client.close()  # replaced by the guarded one below
    api.rest_client = RestClient(configuration, allowed)
    api.user_agent = "harvester-upgrade-bff"
    return api
