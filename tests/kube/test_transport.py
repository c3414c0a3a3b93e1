"""bff.kube.transport: the allowlist, and the REST client every request passes.

Every request below goes through the real kubernetes-asyncio client object the
BFF builds (``api_client``). Refused requests are sent at a server that records
whatever reaches it, to show that nothing did; allowed ones are sent at the
emulator (or, for the access reviews it does not serve, at the recorder) to show
that they arrive.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer
from kubernetes_asyncio import client as k8s

from bff import errors, kube
from bff.identities import TokenCaller
from bff.kube import transport
from bff.sandbox.emulator import create_emulator_app
from bff.sandbox.kubeconfig import write_kubeconfig
from bff.upgrade_resource import GROUP, PLURAL, READ_MESSAGE, VERSION
from tests.kube.conftest import JSON, MERGE, ONE, PATCH_BODY, UPGRADES, Arrivals, client_for
from tests.support.backends import FAILED, NAMESPACE, SUCCEEDED

# (what, method, path, content type, body, query)
REFUSED: list[tuple[str, str, str, str | None, object, dict[str, str] | None]] = [
    ("PUT of an Upgrade", "PUT", ONE, JSON, {"metadata": {"name": SUCCEEDED}}, None),
    ("DELETE of an Upgrade", "DELETE", ONE, JSON, None, None),
    ("DELETE of the collection", "DELETE", UPGRADES, JSON, None, None),
    ("POST (create) of an Upgrade", "POST", UPGRADES, JSON, {"kind": "Upgrade"}, None),
    ("POST to an Upgrade", "POST", ONE, JSON, PATCH_BODY, None),
    ("HEAD", "HEAD", ONE, JSON, None, None),
    ("OPTIONS", "OPTIONS", ONE, JSON, None, None),
    ("GET with a body", "GET", ONE, JSON, {"a": 1}, None),
    ("JSON patch", "PATCH", ONE, "application/json-patch+json", PATCH_BODY, None),
    ("JSON-patch operations", "PATCH", ONE, "application/json-patch+json",
     [{"op": "add", "path": f"/metadata/labels/{READ_MESSAGE}", "value": "true"}], None),
    ("strategic merge patch", "PATCH", ONE, "application/strategic-merge-patch+json",
     PATCH_BODY, None),
    ("server-side apply", "PATCH", ONE, "application/apply-patch+yaml", PATCH_BODY, None),
    ("patch as application/json", "PATCH", ONE, JSON, PATCH_BODY, None),
    ("merge patch with a charset", "PATCH", ONE, f"{MERGE}; charset=utf-8", PATCH_BODY, None),
    ("merge patch of the collection", "PATCH", UPGRADES, MERGE, PATCH_BODY, None),
    ("merge patch of the status subresource", "PATCH", f"{ONE}/status", MERGE, PATCH_BODY, None),
    ("merge patch of another resource", "PATCH",
     f"/api/v1/namespaces/{NAMESPACE}/configmaps/x", MERGE, PATCH_BODY, None),
    ("merge patch of an Upgrade in another group", "PATCH",
     f"/apis/example.com/{VERSION}/namespaces/{NAMESPACE}/{PLURAL}/{SUCCEEDED}", MERGE,
     PATCH_BODY, None),
    ("merge patch of a path that is not a name", "PATCH", f"{UPGRADES}/..", MERGE,
     PATCH_BODY, None),
    ("merge patch with a query (dry run)", "PATCH", ONE, MERGE, PATCH_BODY, {"dryRun": "All"}),
    ("merge patch without a body", "PATCH", ONE, MERGE, None, None),
    ("merge patch of another label", "PATCH", ONE, MERGE,
     {"metadata": {"labels": {"other": "x"}, "resourceVersion": "1"}}, None),
    ("merge patch with a second label", "PATCH", ONE, MERGE,
     {"metadata": {"labels": {READ_MESSAGE: "true", "other": "x"}, "resourceVersion": "1"}},
     None),
    ("merge patch setting read-message false", "PATCH", ONE, MERGE,
     {"metadata": {"labels": {READ_MESSAGE: "false"}, "resourceVersion": "1"}}, None),
    ("merge patch removing read-message", "PATCH", ONE, MERGE,
     {"metadata": {"labels": {READ_MESSAGE: None}, "resourceVersion": "1"}}, None),
    ("merge patch without a resourceVersion", "PATCH", ONE, MERGE,
     {"metadata": {"labels": {READ_MESSAGE: "true"}}}, None),
    ("merge patch with an empty resourceVersion", "PATCH", ONE, MERGE,
     {"metadata": {"labels": {READ_MESSAGE: "true"}, "resourceVersion": ""}}, None),
    ("merge patch with a numeric resourceVersion", "PATCH", ONE, MERGE,
     {"metadata": {"labels": {READ_MESSAGE: "true"}, "resourceVersion": 1}}, None),
    ("merge patch touching status", "PATCH", ONE, MERGE, {**PATCH_BODY, "status": {}}, None),
    ("merge patch touching spec", "PATCH", ONE, MERGE, {**PATCH_BODY, "spec": {}}, None),
    ("merge patch touching annotations", "PATCH", ONE, MERGE,
     {"metadata": {**PATCH_BODY["metadata"], "annotations": {"a": "b"}}}, None),  # type: ignore[dict-item]
    ("merge patch touching finalizers", "PATCH", ONE, MERGE,
     {"metadata": {**PATCH_BODY["metadata"], "finalizers": None}}, None),  # type: ignore[dict-item]
    ("merge patch as a string", "PATCH", ONE, MERGE, '{"metadata":{}}', None),
    ("merge patch as bytes", "PATCH", ONE, MERGE, b"{}", None),
    ("TokenReview of the wrong kind", "POST", "/apis/authentication.k8s.io/v1/tokenreviews",
     JSON, {"apiVersion": "v1", "kind": "ConfigMap"}, None),
    ("TokenReview with extra fields", "POST", "/apis/authentication.k8s.io/v1/tokenreviews",
     JSON, {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "status": {}},
     None),
    ("TokenReview as a merge patch", "POST", "/apis/authentication.k8s.io/v1/tokenreviews",
     MERGE, {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview"}, None),
    ("SubjectAccessReview to the TokenReview path", "POST",
     "/apis/authentication.k8s.io/v1/tokenreviews", JSON,
     {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview"}, None),
    ("POST of a ConfigMap", "POST", f"/api/v1/namespaces/{NAMESPACE}/configmaps", JSON,
     {"apiVersion": "v1", "kind": "ConfigMap"}, None),
    # Reads: only the paths the product reads, nothing else of the cluster.
    ("GET of a Secret", "GET", f"/api/v1/namespaces/{NAMESPACE}/secrets/x", None, None, None),
    ("GET of every Secret", "GET", "/api/v1/secrets", None, None, None),
    ("GET of the ConfigMaps", "GET", f"/api/v1/namespaces/{NAMESPACE}/configmaps", None, None,
     None),
    ("GET of a pod's log", "GET", f"/api/v1/namespaces/{NAMESPACE}/pods/p/log", None, None,
     None),
    ("GET of every namespace's Upgrades", "GET", f"/apis/{GROUP}/{VERSION}/{PLURAL}", None,
     None, None),
    ("GET of an Upgrade's status subresource", "GET", f"{ONE}/status", None, None, None),
    ("GET of Upgrades of another group", "GET",
     f"/apis/example.com/{VERSION}/namespaces/{NAMESPACE}/{PLURAL}", None, None, None),
    ("GET of another version's Upgrades", "GET",
     f"/apis/{GROUP}/v1/namespaces/{NAMESPACE}/{PLURAL}", None, None, None),
    ("GET of the group list", "GET", "/apis", None, None, None),
    ("GET of the core API", "GET", "/api/v1", None, None, None),
    ("GET of the OpenAPI document", "GET", "/openapi/v2", None, None, None),
    ("GET of the API server's metrics", "GET", "/metrics", None, None, None),
    ("GET of Rancher's users", "GET", "/v3/users", None, None, None),
    ("GET of Steve's users", "GET", "/v1/management.cattle.io.users", None, None, None),
    ("GET below /ping", "GET", "/ping/x", None, None, None),
    ("GET of one Upgrade with a query", "GET", ONE, None, None, {"fieldSelector": "x"}),
    ("GET of discovery with a query", "GET", f"/apis/{GROUP}/{VERSION}", None, None,
     {"timeout": "1s"}),
    ("POST of a LocalSubjectAccessReview", "POST",
     f"/apis/authorization.k8s.io/v1/namespaces/{NAMESPACE}/localsubjectaccessreviews", JSON,
     {"apiVersion": "authorization.k8s.io/v1", "kind": "LocalSubjectAccessReview"}, None),
]  # fmt: skip


@pytest.mark.parametrize(
    ("method", "path", "content_type", "body", "query"),
    [pytest.param(*case[1:], id=case[0]) for case in REFUSED],
)
async def test_the_transport_refuses_before_sending(
    guarded: Any,
    arrivals: Arrivals,
    method: str,
    path: str,
    content_type: str | None,
    body: object,
    query: dict[str, str] | None,
) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    with pytest.raises(errors.UpstreamRequestRefused) as refused:
        await guarded.rest_client.request(
            method, arrivals.url + path, query_params=query, headers=headers, body=body
        )
    assert refused.value.status == 500
    assert refused.value.code == "UpstreamRequestRefused"
    assert arrivals.seen == [], "nothing reached the server"


async def test_a_request_to_another_host_is_refused(guarded: Any, arrivals: Arrivals) -> None:
    for url in ("http://elsewhere.invalid/api/v1/pods", arrivals.url + "x/apis", "/apis"):
        with pytest.raises(errors.UpstreamRequestRefused):
            await guarded.rest_client.request("GET", url)
    assert arrivals.seen == []


async def test_the_generated_client_cannot_write_past_the_allowlist(
    guarded: Any, arrivals: Arrivals
) -> None:
    """What code reaching past the gateway to the generated API would get: refusals."""
    objects = k8s.CustomObjectsApi(guarded)
    core = k8s.CoreV1Api(guarded)
    attempts = [
        objects.replace_namespaced_custom_object(
            GROUP, VERSION, NAMESPACE, PLURAL, SUCCEEDED, {"metadata": {"name": SUCCEEDED}}
        ),
        objects.create_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, {}),
        objects.delete_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, SUCCEEDED),
        objects.delete_collection_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL),
        # A dict body without a content type is sent as a JSON patch by this client.
        objects.patch_namespaced_custom_object(
            GROUP, VERSION, NAMESPACE, PLURAL, SUCCEEDED, PATCH_BODY
        ),
        objects.patch_namespaced_custom_object_status(  # type: ignore[call-arg]
            GROUP, VERSION, NAMESPACE, PLURAL, SUCCEEDED, PATCH_BODY, _content_type=MERGE
        ),
        objects.replace_namespaced_custom_object_status(
            GROUP, VERSION, NAMESPACE, PLURAL, SUCCEEDED, {}
        ),
        core.create_namespaced_config_map(NAMESPACE, k8s.V1ConfigMap(data={"a": "b"})),
        core.delete_namespace(NAMESPACE),
    ]
    for attempt in attempts:
        with pytest.raises(errors.UpstreamRequestRefused):
            await attempt
    assert arrivals.seen == []


async def test_the_review_posts_pass(guarded: Any, arrivals: Arrivals) -> None:
    """The emulator serves no access reviews, so these go to the recording server."""
    authorization = k8s.AuthorizationV1Api(guarded)
    await authorization.create_subject_access_review(
        k8s.V1SubjectAccessReview(
            api_version="authorization.k8s.io/v1",
            kind="SubjectAccessReview",
            spec=k8s.V1SubjectAccessReviewSpec(user="u", non_resource_attributes=None),
        )
    )
    await authorization.create_self_subject_access_review(
        k8s.V1SelfSubjectAccessReview(
            api_version="authorization.k8s.io/v1",
            kind="SelfSubjectAccessReview",
            spec=k8s.V1SelfSubjectAccessReviewSpec(),
        )
    )
    await k8s.AuthenticationV1Api(guarded).create_token_review(
        k8s.V1TokenReview(
            api_version="authentication.k8s.io/v1",
            kind="TokenReview",
            spec=k8s.V1TokenReviewSpec(token="t"),
        )
    )
    assert [(m, p) for m, p, _ in arrivals.seen] == [
        ("POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews"),
        ("POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"),
        ("POST", "/apis/authentication.k8s.io/v1/tokenreviews"),
    ]


async def test_the_reads_the_product_makes_pass(guarded: Any, arrivals: Arrivals) -> None:
    """Each GET of the allowlist reaches the server: exactly these, and nothing else reads."""
    reads: list[tuple[str, dict[str, str] | None]] = [
        (ONE, None),
        (UPGRADES, None),
        (UPGRADES, {"labelSelector": "harvesterhci.io/upgradeState"}),
        (UPGRADES, {"watch": "true", "resourceVersion": "1"}),
        (f"/apis/{GROUP}/{VERSION}", None),
        ("/version/", None),
        ("/version", None),
        ("/ping", None),
    ]
    for path, query in reads:
        await guarded.rest_client.request("GET", arrivals.url + path, query_params=query)
    assert [(m, p.split("?")[0]) for m, p, _ in arrivals.seen] == [
        ("GET", path) for path, _ in reads
    ]
    assert [a.method for a in transport.ALLOWED] == ["GET"] * 5 + ["PATCH", "POST", "POST", "POST"]


@dataclass
class Connected:
    emulator_url: str
    upstream: kube.Upstream


@pytest.fixture
async def connected(aiohttp_server: Callable[..., Any], tmp_path: Path) -> AsyncIterator[Connected]:
    emulator: TestServer = await aiohttp_server(create_emulator_app())
    url = str(emulator.make_url("")).rstrip("/")
    config = write_kubeconfig(tmp_path / "k", url, token="sandbox-bff")
    options = kube.UpstreamOptions(kubeconfig=str(config))
    async with kube.connect(options, impersonate=True) as upstream:
        yield Connected(url, upstream)


ADMIN = TokenCaller("sandbox-admin")


async def test_the_allowed_requests_pass_against_the_emulator(connected: Connected) -> None:
    """GET, list, watch, discovery, TokenReview and the one patch all reach the emulator."""
    upstream = connected.upstream
    listed = await upstream.gateway.list(ADMIN, NAMESPACE, "harvesterhci.io/upgradeState")
    assert {item["metadata"]["name"] for item in listed["items"]} >= {SUCCEEDED, FAILED}
    live = await upstream.gateway.get(ADMIN, NAMESPACE, SUCCEEDED)
    patched = await upstream.gateway.mark_read(
        ADMIN, NAMESPACE, SUCCEEDED, live["metadata"]["resourceVersion"]
    )
    assert patched["metadata"]["labels"][READ_MESSAGE] == "true"
    assert patched["status"] == live["status"]
    assert await upstream.probe.problem() is None
    reviewed = await upstream.reviewer.review("sandbox-viewer")
    assert reviewed is not None
    assert reviewed.username
    # A watch is a GET with a query: it passes the same client too.
    api = await client_for(connected.emulator_url)
    try:
        watch = await api.rest_client.request(
            "GET",
            connected.emulator_url + UPGRADES,
            query_params={"watch": "true", "timeoutSeconds": "1"},
            headers={"Authorization": "Bearer sandbox-admin"},
            _preload_content=False,
        )
        try:
            assert b'"ADDED"' in await watch.content.readline()
        finally:
            watch.release()
    finally:
        await api.close()


@pytest.mark.parametrize("method", ["GET", "PATCH", "POST"])
@pytest.mark.parametrize(
    "path",
    ["/apis/../api/v1/secrets", "/apis/%2E%2E/api/v1/secrets", "/apis/./x", "/a/%2e/b",
     "/..", "/apis/a%2Fb"],
)  # fmt: skip
def test_a_dot_segment_is_refused_whatever_the_allowlist_says(method: str, path: str) -> None:
    """The refusal does not lean on today's path patterns (none of which admits a dot
    segment): an entry that matched anything would still not let one through."""
    anything = (transport.Allowed("anything", method, re.compile(r"/.*")),)
    base = "https://cluster.example:6443"

    def check(p: str) -> transport.Allowed:
        return transport.check_request(
            anything, base, method, base + p, query=None, headers=None, body=None,
            post_params=None,
        )  # fmt: skip

    assert check("/apis/plain/path") is anything[0]
    with pytest.raises(errors.UpstreamRequestRefused):
        check(path)


# --- the certificate client's own door (``--webhook-cert-source self``) -------------------

_BASE = "https://cluster.example:6443"
_SECRETS = "/api/v1/namespaces/harvester-system/secrets"
_SECRET = f"{_SECRETS}/bff-webhook-tls"
_CONFIG = "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/bff-guard"
_JSON_PATCH = "application/json-patch+json"
_DATA = {"tls.crt": "Yw==", "tls.key": "aw==", "ca.crt": "Yw==", "ca.key": "aw=="}


def _secret(**meta: object) -> dict[str, object]:
    return {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
            "metadata": {"name": "bff-webhook-tls", **meta}, "data": dict(_DATA)}  # fmt: skip


def _bundle(*ops: dict[str, str]) -> list[dict[str, str]]:
    return [{"op": "test", "path": "/metadata/resourceVersion", "value": "7"}, *ops]


_SET_0 = {"op": "add", "path": "/webhooks/0/clientConfig/caBundle", "value": "Y2E="}

# (what, method, path, content type, body)
CERTIFICATE_PASSES: list[tuple[str, str, str, str, object]] = [
    ("read the Secret", "GET", _SECRET, JSON, None),
    ("create the Secret", "POST", _SECRETS, JSON, _secret()),
    ("update the Secret", "PUT", _SECRET, JSON, _secret(resourceVersion="7")),
    ("read the configuration", "GET", _CONFIG, JSON, None),
    ("set two caBundles", "PATCH", _CONFIG, _JSON_PATCH,
     _bundle(_SET_0, {**_SET_0, "path": "/webhooks/1/clientConfig/caBundle"})),
]  # fmt: skip
CERTIFICATE_REFUSED: list[tuple[str, str, str, str, object]] = [
    ("a caBundle patch without its resourceVersion test", "PATCH", _CONFIG, _JSON_PATCH,
     [_SET_0]),
    ("a patch of the webhook's rules", "PATCH", _CONFIG, _JSON_PATCH,
     _bundle({"op": "add", "path": "/webhooks/0/rules", "value": "[]"})),
    ("a caBundle removed", "PATCH", _CONFIG, _JSON_PATCH,
     _bundle({"op": "remove", "path": "/webhooks/0/clientConfig/caBundle", "value": ""})),
    ("one caBundle set twice", "PATCH", _CONFIG, _JSON_PATCH, _bundle(_SET_0, _SET_0)),
    ("a merge patch of the configuration", "PATCH", _CONFIG, MERGE,
     {"webhooks": [{"name": "x", "clientConfig": {"caBundle": "Y2E="}}]}),
    ("a caBundle patch of another configuration", "PATCH", f"{_CONFIG}-other", _JSON_PATCH,
     _bundle(_SET_0)),
    ("a JSON patch of an Upgrade", "PATCH", ONE, _JSON_PATCH, _bundle(_SET_0)),
    ("the label merge patch of an Upgrade", "PATCH", ONE, MERGE, PATCH_BODY),
    ("a Secret of another name", "POST", _SECRETS, JSON, {**_secret(), "metadata": {"name": "x"}}),
    ("a Secret with another key", "POST", _SECRETS, JSON,
     {**_secret(), "data": {**_DATA, "x": ""}}),
    ("an Opaque Secret", "POST", _SECRETS, JSON, {**_secret(), "type": "Opaque"}),
    ("an update without a resourceVersion", "PUT", _SECRET, JSON, _secret()),
    ("a DELETE of the Secret", "DELETE", _SECRET, JSON, None),
    ("a read of another Secret", "GET", f"{_SECRETS}/other", JSON, None),
]  # fmt: skip


def _check_certificate(method: str, path: str, content_type: str, body: object) -> object:
    allowed = transport.certificate_allowlist("harvester-system", "bff-webhook-tls", "bff-guard")
    return transport.check_request(
        allowed, _BASE, method, _BASE + path, query=None,
        headers={"Content-Type": content_type}, body=body, post_params=None,
    )  # fmt: skip


@pytest.mark.parametrize(("what", "method", "path", "content_type", "body"), CERTIFICATE_PASSES)
def test_the_certificate_client_may_send_what_self_managed_certificates_need(
    what: str, method: str, path: str, content_type: str, body: object
) -> None:
    assert _check_certificate(method, path, content_type, body) is not None


@pytest.mark.parametrize(("what", "method", "path", "content_type", "body"), CERTIFICATE_REFUSED)
def test_the_certificate_client_refuses_anything_else(
    what: str, method: str, path: str, content_type: str, body: object
) -> None:
    with pytest.raises(errors.UpstreamRequestRefused):
        _check_certificate(method, path, content_type, body)


@pytest.mark.parametrize(("what", "method", "path", "content_type", "body"), CERTIFICATE_PASSES)
def test_the_products_door_refuses_every_certificate_request(
    what: str, method: str, path: str, content_type: str, body: object
) -> None:
    """The JSON patch, the Secret and the configuration pass only the certificate
    client's own door: the client that speaks for callers can send none of them."""
    with pytest.raises(errors.UpstreamRequestRefused):
        transport.check_request(
            transport.ALLOWED, _BASE, method, _BASE + path, query=None,
            headers={"Content-Type": content_type}, body=body, post_params=None,
        )  # fmt: skip
