"""bff.kube.transport's certificate client (``--webhook-cert-source self``): it sends GET,
POST and PUT of that one Secret in that namespace and GET and a caBundle-only JSON
patch of that one MutatingWebhookConfiguration, and refuses everything else (other
names, namespaces, verbs, bodies, and every request the product's own clients make);
the product's clients still refuse the Secret and the configuration.

Refused requests are sent at a server that records whatever reaches it, to show that
nothing did; allowed ones arrive there.
"""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from typing import Any

import pytest
from kubernetes_asyncio import client as k8s

from bff import errors
from bff.kube import transport
from tests.kube.conftest import JSON, MERGE, ONE, Arrivals

NS, NAME, HOOKS = "cattle-system", "bff-webhook-tls", "harvester-upgrade-bff"
SECRETS = f"/api/v1/namespaces/{NS}/secrets"
SECRET = f"{SECRETS}/{NAME}"
MWC = f"/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/{HOOKS}"
JSON_PATCH = "application/json-patch+json"
DATA = {"tls.crt": "Y2VydA==", "tls.key": "a2V5", "ca.crt": "Y2E=", "ca.key": "Y2FrZXk="}
NEW_SECRET: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "Secret",
    "metadata": {"name": NAME, "namespace": NS, "labels": {"a": "b"}},
    "type": "kubernetes.io/tls",
    "data": DATA,
}
UPDATED_SECRET = copy.deepcopy(NEW_SECRET)
UPDATED_SECRET["metadata"]["resourceVersion"] = "42"
TEST = {"op": "test", "path": "/metadata/resourceVersion", "value": "7"}
SET = {"op": "add", "path": "/webhooks/0/clientConfig/caBundle", "value": "Y2E="}
SET_1 = {**SET, "path": "/webhooks/1/clientConfig/caBundle"}


def _with(base: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    changed = copy.deepcopy(base)
    *parents, last = path.split("/")
    where = changed
    for key in parents:
        where = where[key]
    if value is None:
        del where[last]
    else:
        where[last] = value
    return changed


ALLOWED: list[tuple[str, str, str, str | None, object]] = [
    ("GET of the Secret", "GET", SECRET, None, None),
    ("POST (create) of the Secret", "POST", SECRETS, JSON, NEW_SECRET),
    ("PUT of the Secret", "PUT", SECRET, JSON, UPDATED_SECRET),
    ("GET of the configuration", "GET", MWC, None, None),
    ("caBundle patch", "PATCH", MWC, JSON_PATCH, [TEST, SET]),
    ("caBundle patch of two webhooks", "PATCH", MWC, JSON_PATCH, [TEST, SET, SET_1]),
]

REFUSED: list[tuple[str, str, str, str | None, object]] = [
    # Other names, other namespaces.
    ("GET of another Secret", "GET", f"{SECRETS}/other", None, None),
    ("GET of the name in another namespace", "GET",
     f"/api/v1/namespaces/kube-system/secrets/{NAME}", None, None),
    ("PUT of another Secret", "PUT", f"{SECRETS}/other", JSON,
     _with(UPDATED_SECRET, "metadata/name", "other")),
    ("POST of another Secret", "POST", SECRETS, JSON, _with(NEW_SECRET, "metadata/name", "x")),
    ("POST into another namespace", "POST", "/api/v1/namespaces/kube-system/secrets", JSON,
     _with(NEW_SECRET, "metadata/namespace", "kube-system")),
    ("POST naming another namespace in the body", "POST", SECRETS, JSON,
     _with(NEW_SECRET, "metadata/namespace", "kube-system")),
    ("GET of another configuration", "GET",
     "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/other", None, None),
    ("GET of the validating configuration of that name", "GET",
     f"/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/{HOOKS}", None,
     None),
    # Other verbs.
    ("LIST of the Secrets", "GET", SECRETS, None, None),
    ("DELETE of the Secret", "DELETE", SECRET, JSON, None),
    ("PATCH of the Secret", "PATCH", SECRET, MERGE, {"data": DATA}),
    ("POST to the Secret", "POST", SECRET, JSON, NEW_SECRET),
    ("DELETE of the configuration", "DELETE", MWC, JSON, None),
    ("PUT of the configuration", "PUT", MWC, JSON, {"metadata": {"name": HOOKS}}),
    ("POST of a configuration", "POST",
     "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations", JSON,
     {"metadata": {"name": HOOKS}}),
    ("LIST of the configurations", "GET",
     "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations", None, None),
    # Bodies that say more than the certificate.
    ("POST of an Opaque Secret", "POST", SECRETS, JSON, _with(NEW_SECRET, "type", "Opaque")),
    ("POST with another data key", "POST", SECRETS, JSON,
     _with(NEW_SECRET, "data/extra", "eA==")),
    ("POST without the CA key", "POST", SECRETS, JSON, _with(NEW_SECRET, "data/ca.key", None)),
    ("POST with owner references", "POST", SECRETS, JSON,
     _with(NEW_SECRET, "metadata/ownerReferences", [{"name": "x"}])),
    ("POST with a resourceVersion", "POST", SECRETS, JSON, UPDATED_SECRET),
    ("PUT without a resourceVersion", "PUT", SECRET, JSON, NEW_SECRET),
    ("PUT with stringData", "PUT", SECRET, JSON, _with(UPDATED_SECRET, "stringData", {"a": "b"})),
    ("POST as YAML", "POST", SECRETS, "application/yaml", NEW_SECRET),
    # Patches that change more than caBundles, or without the test.
    ("patch without the test", "PATCH", MWC, JSON_PATCH, [SET]),
    ("patch with the test only", "PATCH", MWC, JSON_PATCH, [TEST]),
    ("patch of the URL", "PATCH", MWC, JSON_PATCH,
     [TEST, {**SET, "path": "/webhooks/0/clientConfig/url", "value": "https://x"}]),
    ("patch of the failure policy", "PATCH", MWC, JSON_PATCH,
     [TEST, {**SET, "path": "/webhooks/0/failurePolicy", "value": "Ignore"}]),
    ("patch removing the caBundle", "PATCH", MWC, JSON_PATCH, [TEST, {**SET, "op": "remove"}]),
    ("patch moving into the caBundle", "PATCH", MWC, JSON_PATCH,
     [TEST, {"op": "copy", "from": "/webhooks/1/clientConfig/caBundle", "path": SET["path"]}]),
    ("patch adding a webhook", "PATCH", MWC, JSON_PATCH,
     [TEST, {**SET, "path": "/webhooks/-", "value": {"name": "x"}}]),
    ("patch testing something else", "PATCH", MWC, JSON_PATCH,
     [{**TEST, "path": "/metadata/name"}, SET]),
    ("patch setting one caBundle twice", "PATCH", MWC, JSON_PATCH, [TEST, SET, SET]),
    ("merge patch of the caBundle", "PATCH", MWC, MERGE,
     {"webhooks": [{"clientConfig": {"caBundle": "Y2E="}}]}),
    ("strategic merge patch", "PATCH", MWC, "application/strategic-merge-patch+json",
     {"webhooks": [{"name": "x", "clientConfig": {"caBundle": "Y2E="}}]}),
    # Nothing the product's own clients send.
    ("GET of an Upgrade", "GET", ONE, None, None),
    ("a TokenReview", "POST", "/apis/authentication.k8s.io/v1/tokenreviews", JSON,
     {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview"}),
    ("/version", "GET", "/version", None, None),
]  # fmt: skip


@pytest.fixture
async def certificates(arrivals: Arrivals) -> AsyncIterator[Any]:
    configuration = k8s.Configuration(host=arrivals.url)
    configuration.api_key = {"BearerToken": "sandbox-admin"}
    configuration.api_key_prefix = {"BearerToken": "Bearer"}
    api = await transport.certificate_client(configuration, NS, NAME, HOOKS)
    yield api
    await api.close()


async def _send(api: Any, url: str, method: str, path: str, ct: str | None, body: object) -> Any:
    headers = {"Content-Type": ct} if ct else {}
    return await api.rest_client.request(method, url + path, headers=headers, body=body)


@pytest.mark.parametrize(
    ("method", "path", "content_type", "body"),
    [pytest.param(*case[1:], id=case[0]) for case in ALLOWED],
)
async def test_the_certificate_requests_pass(
    certificates: Any, arrivals: Arrivals, method: str, path: str, content_type: str | None,
    body: object,
) -> None:  # fmt: skip
    await _send(certificates, arrivals.url, method, path, content_type, body)
    assert [(m, p) for m, p, _ in arrivals.seen] == [(method, path)]


@pytest.mark.parametrize(
    ("method", "path", "content_type", "body"),
    [pytest.param(*case[1:], id=case[0]) for case in REFUSED],
)
async def test_everything_else_is_refused_before_sending(
    certificates: Any, arrivals: Arrivals, method: str, path: str, content_type: str | None,
    body: object,
) -> None:  # fmt: skip
    with pytest.raises(errors.UpstreamRequestRefused):
        await _send(certificates, arrivals.url, method, path, content_type, body)
    assert arrivals.seen == [], "nothing reached the server"


async def test_queries_are_refused(certificates: Any, arrivals: Arrivals) -> None:
    for path in (SECRET, SECRETS, MWC):
        with pytest.raises(errors.UpstreamRequestRefused):
            await certificates.rest_client.request(
                "GET", arrivals.url + path, query_params={"watch": "true"}
            )
    assert arrivals.seen == []


@pytest.mark.parametrize(
    ("method", "path", "content_type", "body"),
    [pytest.param(*case[1:], id=case[0]) for case in ALLOWED],
)
async def test_the_products_clients_still_refuse_them(
    guarded: Any, arrivals: Arrivals, method: str, path: str, content_type: str | None,
    body: object,
) -> None:  # fmt: skip
    """Nothing widened: the client every other request uses refuses the certificate's."""
    with pytest.raises(errors.UpstreamRequestRefused):
        await _send(guarded, arrivals.url, method, path, content_type, body)
    assert arrivals.seen == []


async def test_the_generated_client_sends_what_the_allowlist_expects(
    certificates: Any, arrivals: Arrivals
) -> None:
    """The keeper's calls through kubernetes-asyncio's generated API are the allowed shapes."""
    core = k8s.CoreV1Api(certificates)
    admission = k8s.AdmissionregistrationV1Api(certificates)
    await core.read_namespaced_secret(NAME, NS)
    await core.create_namespaced_secret(NS, NEW_SECRET)  # type: ignore[arg-type]
    await core.replace_namespaced_secret(NAME, NS, UPDATED_SECRET)  # type: ignore[arg-type]
    await admission.patch_mutating_webhook_configuration(HOOKS, [TEST, SET])
    assert [(m, p) for m, p, _ in arrivals.seen] == [
        ("GET", SECRET), ("POST", SECRETS), ("PUT", SECRET), ("PATCH", MWC),
    ]  # fmt: skip
    with pytest.raises(errors.UpstreamRequestRefused):
        await core.delete_namespaced_secret(NAME, NS)
    with pytest.raises(errors.UpstreamRequestRefused):
        await core.read_namespaced_secret("other", NS)
