"""Safe at the Ingress: every protection in "Who may do what", proven end to end.

Each test drives the real BFF (through the real kubernetes-asyncio client)
in front of the emulator or a real API server, with a recording proxy in
between, and fails if the protection it names is removed.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bff import kube
from bff.api.paths import STATIC_FILES
from bff.app import create_app
from bff.identities import AuthMode
from bff.keys import CACHE
from bff.kube.config import anonymous_copy, load_configuration
from bff.sandbox.emulator import EMULATOR_FAULTS, Fault
from bff.server import start, stop
from bff.settings import Settings
from tests.conftest import Stack
from tests.support.backends import IN_PROGRESS, NAMESPACE, SUCCEEDED, Backend
from tests.support.certs import make_server_certificate

StackFactory = Callable[..., Awaitable[Stack]]
COLLECTION = "/api/v1.0.5/upgrades"
API = f"{COLLECTION}/{NAMESPACE}"
DISMISS = f"{API}/{SUCCEEDED}?action=dismiss"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def upgrade_requests(stack: Stack) -> list[Any]:
    """Requests for Upgrades made for callers (the read cache's own list and watch apart)."""
    return [r for r in stack.caller_requests() if "/upgrades" in r.path]


#: Where a caller's read goes upstream: the object itself without the read cache, an
#: access review (sent with the caller's token) with it.
READ_UPSTREAM = {
    False: ("GET", f"/upgrades/{SUCCEEDED}"),
    True: ("POST", "/selfsubjectaccessreviews"),
}


# --- credentials -------------------------------------------------------------------------


async def test_no_credential_is_401_before_any_upstream_call(emulator_stack: Stack) -> None:
    for method, path in (("GET", f"{API}/{SUCCEEDED}"), ("POST", DISMISS), ("GET", COLLECTION)):
        response = await emulator_stack.client.request(method, path)
        assert response.status == 401
        assert (await response.json())["code"] == "Unauthorized"
    assert emulator_stack.caller_requests() == []


@pytest.mark.parametrize("read_cache", [False, True], ids=["read-cache-off", "read-cache-on"])
async def test_passthrough_sends_the_callers_token_and_never_the_bffs(
    backend: Backend, stack_factory: StackFactory, read_cache: bool
) -> None:
    stack = await stack_factory(backend, read_cache=read_cache)
    response = await stack.client.get(f"{API}/{SUCCEEDED}", headers=bearer("sandbox-viewer"))
    assert response.status == 200
    sent = stack.caller_requests()
    method, path = READ_UPSTREAM[read_cache]
    assert [(r.method, r.path.split("?")[0].endswith(path)) for r in sent] == [(method, True)]
    assert {r.headers.get("Authorization") for r in sent} == {"Bearer sandbox-viewer"}


async def test_passthrough_rights_are_the_callers_own(stack: Stack) -> None:
    """The BFF may patch; a viewer through the BFF may not. The API server says no, not us."""
    response = await stack.client.post(DISMISS, headers=bearer("sandbox-viewer"))
    assert response.status == 403
    assert (await stack.backend.read(SUCCEEDED))["metadata"]["labels"].get(
        "harvesterhci.io/read-message"
    ) is None


async def test_passthrough_client_carries_no_credentials_of_its_own(tmp_path: Path) -> None:
    """A request that lost the caller's token would reach the API server anonymous."""
    from bff.sandbox.kubeconfig import write_kubeconfig

    made = make_server_certificate(tmp_path / "tls")
    cert, key = made.cert_file, made.key_file
    config = write_kubeconfig(
        tmp_path / "k",
        "https://127.0.0.1:1",
        token="own-token",
        client_cert=str(cert),
        client_key=str(key),
    )
    own = await load_configuration(kube.UpstreamOptions(kubeconfig=str(config)))
    assert own.api_key
    assert own.cert_file
    anon = anonymous_copy(own)
    assert anon.api_key == {}
    assert anon.cert_file is None
    assert anon.key_file is None
    assert anon.refresh_api_key_hook is None
    assert anon.host == own.host
    assert own.api_key, "the original must be left alone"


@pytest.mark.parametrize("read_cache", [False, True], ids=["read-cache-off", "read-cache-on"])
async def test_many_concurrent_callers_never_mix_tokens(
    backend: Backend, stack_factory: StackFactory, read_cache: bool
) -> None:
    stack = await stack_factory(backend, read_cache=read_cache)
    expected = {"sandbox-admin": 200, "sandbox-viewer": 200, "sandbox-nobody": 403, "bogus": 401}
    tokens = list(expected) * 15

    async def call(token: str) -> tuple[str, int]:
        response = await stack.client.get(f"{API}/{SUCCEEDED}", headers=bearer(token))
        return token, response.status

    results = await asyncio.gather(*(call(t) for t in tokens))
    assert all(status == expected[token] for token, status in results), results
    upstream_tokens = [r.headers["Authorization"] for r in stack.caller_requests()]
    if not read_cache:  # every read went upstream, each with its own caller's token
        assert sorted(upstream_tokens) == sorted(f"Bearer {t}" for t in tokens)
    else:  # each caller's access review, with its own token (allows reused, refusals not)
        assert set(upstream_tokens) == {f"Bearer {t}" for t in expected}
        for token in ("sandbox-admin", "sandbox-viewer"):
            assert upstream_tokens.count(f"Bearer {token}") == 1, token


# --- impersonate mode --------------------------------------------------------------------


@pytest.mark.parametrize("read_cache", [False, True], ids=["read-cache-off", "read-cache-on"])
async def test_impersonate_mode_reviews_the_token_then_impersonates(
    backend: Backend, stack_factory: StackFactory, read_cache: bool
) -> None:
    stack = await stack_factory(backend, auth_mode=AuthMode.IMPERSONATE, read_cache=read_cache)
    response = await stack.client.get(f"{API}/{SUCCEEDED}", headers=bearer("sandbox-viewer"))
    assert response.status == 200
    reviews = [r for r in stack.recorder.requests if r.path.endswith("/tokenreviews")]
    assert len(reviews) == 1
    assert reviews[0].headers["Authorization"] == "Bearer sandbox-bff"
    assert reviews[0].body["spec"]["token"] == "sandbox-viewer"  # type: ignore[index]
    if read_cache:  # the read came from the cache, after a review of the reviewed user
        (access,) = [r for r in stack.recorder.requests if r.path.endswith("/subjectaccessreviews")]
        assert access.headers["Authorization"] == "Bearer sandbox-bff"
        assert not any(k.lower().startswith("impersonate-") for k in access.headers)
        assert access.body["spec"]["user"] == "sandbox-viewer"  # type: ignore[index]
        assert upgrade_requests(stack) == []
    else:
        get = upgrade_requests(stack)[-1]
        assert get.headers["Authorization"] == "Bearer sandbox-bff"
        assert get.headers["Impersonate-User"] == "sandbox-viewer"

    # The impersonated viewer may not patch, even though the BFF itself may.
    refused = await stack.client.post(DISMISS, headers=bearer("sandbox-viewer"))
    assert refused.status == 403
    allowed = await stack.client.post(DISMISS, headers=bearer("sandbox-admin"))
    assert allowed.status == 200


async def test_impersonation_carries_every_group_and_the_uid(
    backend: Backend, stack_factory: StackFactory
) -> None:
    # The controller's ServiceAccount: more than one group, and a uid, on either backend.
    caller = "sandbox-controller"
    stack = await stack_factory(backend, auth_mode=AuthMode.IMPERSONATE)
    dismissed = await stack.client.post(DISMISS, headers=bearer(caller))
    assert dismissed.status == 200, await dismissed.text()
    # Ask the same TokenReview endpoint the BFF used who the caller is.
    async with backend.session.post(
        f"{backend.url}/apis/authentication.k8s.io/v1/tokenreviews",
        json={"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
              "spec": {"token": caller}},
        headers=bearer("sandbox-bff"),
        ssl=False,
    ) as answer:  # fmt: skip
        assert answer.status in (200, 201)
        user = (await answer.json())["status"]["user"]
    assert len(user["groups"]) >= 2, "the point is more than one group"
    assert user["uid"], "the point is a uid"
    sent = stack.upstream_writes()[-1].header_items
    assert [v for k, v in sent if k.lower() == "impersonate-user"] == [user["username"]]
    assert [v for k, v in sent if k.lower() == "impersonate-group"] == user["groups"]
    assert [v for k, v in sent if k.lower() == "impersonate-uid"] == [user["uid"]]


async def test_token_reviews_are_cached_briefly_and_errors_never(
    emulator_backend: Backend, stack_factory: StackFactory
) -> None:
    # Expiry itself is tested on the cache with its clock (tests/test_auth.py).
    stack = await stack_factory(
        emulator_backend, auth_mode=AuthMode.IMPERSONATE, token_review_ttl=10
    )

    def reviews() -> int:
        return sum(1 for r in stack.recorder.requests if r.path.endswith("/tokenreviews"))

    url = f"{API}/{SUCCEEDED}"
    assert (await stack.client.get(url, headers=bearer("sandbox-viewer"))).status == 200
    assert (await stack.client.get(url, headers=bearer("sandbox-viewer"))).status == 200
    assert reviews() == 1, "the second request was answered from the cache"

    faults = emulator_backend.app[EMULATOR_FAULTS]  # type: ignore[attr-defined]
    faults.add(Fault("POST", "/tokenreviews", status=500))
    failed = await stack.client.get(url, headers=bearer("sandbox-admin"))
    assert failed.status == 502
    assert (await stack.client.get(url, headers=bearer("sandbox-admin"))).status == 200
    assert reviews() == 3, "a failed review must not be cached"


async def test_impersonate_mode_rejects_unknown_tokens(
    emulator_backend: Backend, stack_factory: StackFactory
) -> None:
    stack = await stack_factory(emulator_backend, auth_mode=AuthMode.IMPERSONATE)
    response = await stack.client.get(f"{API}/{SUCCEEDED}", headers=bearer("bogus"))
    assert response.status == 401
    assert upgrade_requests(stack) == []


# --- header hygiene ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "header",
    ["Impersonate-User", "impersonate-group", "IMPERSONATE-UID", "Impersonate_User",
     "Impersonate-Extra-Scopes"],
)  # fmt: skip
async def test_inbound_impersonation_headers_are_refused(
    emulator_stack: Stack, header: str
) -> None:
    response = await emulator_stack.client.post(
        DISMISS, headers={**bearer("sandbox-viewer"), header: "system:admin"}
    )
    assert response.status == 403
    assert (await response.json())["code"] == "ForbiddenHeader"
    assert emulator_stack.caller_requests() == []


async def test_upstream_headers_come_from_an_allowlist(emulator_stack: Stack) -> None:
    """Nothing the caller sends is copied upstream, Connection tricks included."""
    response = await emulator_stack.client.post(
        DISMISS,
        headers={
            **bearer("sandbox-admin"),
            "Connection": "keep-alive, Authorization, X-Smuggle",
            "X-Smuggle": "1",
            "X-Forwarded-For": "10.9.9.9",
            "X-Remote-User": "system:admin",
            "Cookie": "R_SESS=other",
        },
    )
    assert response.status == 200
    allowed = {
        "host", "accept", "accept-encoding", "content-type", "content-length",
        "authorization", "user-agent",
    }  # fmt: skip
    sent_upstream = emulator_stack.caller_requests()
    assert [r.method for r in sent_upstream if "/upgrades" in r.path] == ["PATCH"]
    for sent in sent_upstream:  # the patch, and the access review the guards' read needed
        names = {k.lower() for k in sent.headers}
        assert names <= allowed, names - allowed
        assert sent.headers["Authorization"] == "Bearer sandbox-admin"


# --- browser safety ----------------------------------------------------------------------


async def test_cookie_credentials_need_the_csrf_header_on_writes(emulator_stack: Stack) -> None:
    cookie = {"Cookie": "R_SESS=sandbox-admin; CSRF=tok-1"}
    assert (await emulator_stack.client.get(f"{API}/{SUCCEEDED}", headers=cookie)).status == 200
    for extra in ({}, {"X-API-CSRF": "tok-2"}):
        response = await emulator_stack.client.post(DISMISS, headers={**cookie, **extra})
        assert response.status == 403
    assert [w for w in emulator_stack.upstream_writes()] == []
    ok = await emulator_stack.client.post(DISMISS, headers={**cookie, "X-API-CSRF": "tok-1"})
    assert ok.status == 200


async def test_a_repeated_session_or_csrf_cookie_is_400_and_writes_nothing(
    emulator_stack: Stack,
) -> None:
    """``R_SESS=viewer; R_SESS=admin`` was dismissed as the admin (the last one won)."""
    for cookie in (
        "R_SESS=sandbox-viewer; R_SESS=sandbox-admin; CSRF=c",
        "R_SESS=sandbox-admin; CSRF=c; CSRF=d",
        "R_SESS=sandbox-admin;CSRF=c;R_SESS=sandbox-admin",
    ):
        response = await emulator_stack.client.post(
            DISMISS, headers={"Cookie": cookie, "X-API-CSRF": "c"}
        )
        assert response.status == 400, cookie
        assert (await response.json())["code"] == "AmbiguousRequest"
    assert emulator_stack.upstream_writes() == []


async def test_origin_must_be_own_or_allowed(
    emulator_backend: Backend, stack_factory: StackFactory
) -> None:
    stack = await stack_factory(emulator_backend, allowed_origins=("https://rancher.example.com",))
    headers = bearer("sandbox-admin")
    evil = await stack.client.post(DISMISS, headers={**headers, "Origin": "https://evil.test"})
    assert evil.status == 403
    assert stack.upstream_writes() == []
    good = await stack.client.post(
        DISMISS, headers={**headers, "Origin": "https://rancher.example.com"}
    )
    assert good.status == 200
    assert good.headers["Access-Control-Allow-Origin"] == "https://rancher.example.com"
    assert good.headers["Access-Control-Allow-Credentials"] == "true"
    preflight = await stack.client.options(
        DISMISS,
        headers={"Origin": "https://rancher.example.com", "Access-Control-Request-Method": "POST"},
    )
    assert preflight.status == 204
    assert "X-API-CSRF" in preflight.headers["Access-Control-Allow-Headers"]
    foreign = await stack.client.options(
        DISMISS, headers={"Origin": "https://evil.test", "Access-Control-Request-Method": "POST"}
    )
    assert foreign.status == 403
    assert "Access-Control-Allow-Origin" not in foreign.headers
    refused = await stack.client.post(
        f"{API}/{IN_PROGRESS}?action=dismiss",
        headers={**headers, "Origin": "https://rancher.example.com"},
    )
    assert refused.status == 409
    assert refused.headers["Access-Control-Allow-Origin"] == "https://rancher.example.com"


async def test_security_headers_on_every_answer(emulator_stack: Stack) -> None:
    for path, headers in (
        (f"{API}/{SUCCEEDED}", bearer("sandbox-admin")),
        (f"{API}/{SUCCEEDED}", {}),
        ("/no/such/route", {}),
        ("/healthz", {}),
        ("/", {}),
    ):
        response = await emulator_stack.client.get(path, headers=headers)
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["X-Frame-Options"] == "DENY"
        assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
        assert response.headers.get("Access-Control-Allow-Origin") is None


# --- limits ------------------------------------------------------------------------------


async def test_oversized_and_mistyped_bodies_never_reach_upstream(emulator_stack: Stack) -> None:
    url = f"/api/v1.0.4/upgrades/{NAMESPACE}/{SUCCEEDED}"
    big = await emulator_stack.client.put(
        url, data=b"{" + b" " * 70_000 + b"}", headers={**bearer("sandbox-admin"),
                                                         "Content-Type": "application/json"}
    )  # fmt: skip
    assert big.status == 413
    typed = await emulator_stack.client.put(
        url, data=b"{}", headers={**bearer("sandbox-admin"), "Content-Type": "text/json"}
    )
    assert typed.status == 415
    assert emulator_stack.upstream_writes() == []


@pytest.mark.parametrize("name", ["UPPER", "a..b", "a%2Fb", "-lead", "x" * 254, "a_b"])
async def test_names_are_checked_before_any_url_is_built(emulator_stack: Stack, name: str) -> None:
    response = await emulator_stack.client.get(f"{API}/{name}", headers=bearer("sandbox-admin"))
    assert response.status in (400, 404)
    assert upgrade_requests(emulator_stack) == []


@pytest.mark.parametrize("read_cache", [False, True], ids=["read-cache-off", "read-cache-on"])
async def test_slow_upstream_times_out_as_504(
    emulator_backend: Backend, stack_factory: StackFactory, read_cache: bool
) -> None:
    stack = await stack_factory(emulator_backend, upstream_read_timeout=0.3, read_cache=read_cache)
    faults = emulator_backend.app[EMULATOR_FAULTS]  # type: ignore[attr-defined]
    faults.add(Fault(*READ_UPSTREAM[read_cache], delay=1.5))
    response = await stack.client.get(f"{API}/{SUCCEEDED}", headers=bearer("sandbox-admin"))
    assert response.status == 504
    assert (await response.json())["code"] == "UpstreamUnavailable"


async def test_upstream_connection_pool_is_bounded(
    emulator_backend: Backend, stack_factory: StackFactory
) -> None:
    # Reads that go upstream: the uncached path (with the cache, reads make no upstream call).
    stack = await stack_factory(emulator_backend, upstream_pool_size=2, read_cache=False)
    faults = emulator_backend.app[EMULATOR_FAULTS]  # type: ignore[attr-defined]
    faults.add(Fault("GET", f"/upgrades/{SUCCEEDED}", delay=0.2, times=8))
    url = f"{API}/{SUCCEEDED}"
    responses = await asyncio.gather(
        *(stack.client.get(url, headers=bearer("sandbox-admin")) for _ in range(8))
    )
    assert [r.status for r in responses] == [200] * 8
    assert stack.recorder.max_in_flight == 2


@pytest.mark.parametrize("read_cache", [False, True], ids=["read-cache-off", "read-cache-on"])
@pytest.mark.parametrize(
    ("status", "headers", "expected", "code"),
    [
        (429, {"Retry-After": "7"}, 429, "TooManyRequests"),
        (500, {}, 502, "UpstreamUnavailable"),
        (503, {}, 503, "UpstreamUnavailable"),
        (504, {}, 504, "UpstreamUnavailable"),
    ],
)
async def test_upstream_failures_map_without_leaking(
    emulator_backend: Backend,
    stack_factory: StackFactory,
    status: int,
    headers: dict[str, str],
    expected: int,
    code: str,
    read_cache: bool,
) -> None:
    stack = await stack_factory(emulator_backend, read_cache=read_cache)
    faults = emulator_backend.app[EMULATOR_FAULTS]  # type: ignore[attr-defined]
    secret_body = {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "code": status,
        "reason": "X",
        "message": "short message",
        "details": {"causes": [{"message": "UPSTREAM-INTERNAL-DETAIL"}]},
    }
    faults.add(Fault(*READ_UPSTREAM[read_cache], status=status, body=secret_body, headers=headers))
    response = await stack.client.get(f"{API}/{SUCCEEDED}", headers=bearer("sandbox-admin"))
    text = await response.text()
    assert response.status == expected
    assert (await response.json())["code"] == code
    assert "UPSTREAM-INTERNAL-DETAIL" not in text
    assert "Traceback" not in text
    if "Retry-After" in headers:
        assert response.headers["Retry-After"] == "7"


async def test_unreachable_upstream_is_503(tmp_path: Path, aiohttp_client: Any) -> None:
    from bff.sandbox.kubeconfig import write_kubeconfig

    config = write_kubeconfig(tmp_path / "k", "http://127.0.0.1:9", token="sandbox-bff")
    client = await aiohttp_client(
        create_app(Settings(kubeconfig=str(config), upstream_connect_timeout=1))
    )
    response = await client.get(f"{API}/{SUCCEEDED}", headers=bearer("sandbox-admin"))
    assert response.status == 503
    assert (await response.json())["code"] == "UpstreamUnavailable"


# --- secrets and audit -------------------------------------------------------------------


async def test_tokens_and_cookies_never_reach_the_logs(
    emulator_stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    token = "tok-7f3c9e-very-secret"
    cookie = "sess-4b1d-very-secret"
    client = emulator_stack.client
    await client.get(f"{API}/{SUCCEEDED}", headers=bearer(token))
    await client.post(DISMISS, headers=bearer(token))
    await client.post(DISMISS, headers={"Cookie": f"R_SESS={cookie}; CSRF=c", "X-API-CSRF": "c"})
    await client.put(f"/api/v1.0.4/upgrades/{NAMESPACE}/{IN_PROGRESS}", headers=bearer(token),
                     json={"metadata": {"name": IN_PROGRESS}})  # fmt: skip
    text = caplog.text + "".join(repr(r.__dict__) for r in caplog.records)
    assert caplog.records, "something must have been logged"
    assert token not in text
    assert cookie not in text


async def test_one_audit_line_per_write_and_refused_write(
    emulator_stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bff.audit")
    client = emulator_stack.client
    await client.post(DISMISS, headers=bearer("sandbox-admin"))
    await client.post(f"{API}/{IN_PROGRESS}?action=dismiss", headers=bearer("sandbox-admin"))
    await client.put(f"/api/v1.0.4/upgrades/{NAMESPACE}/{SUCCEEDED}", json={})
    await client.get(f"{API}/{SUCCEEDED}", headers=bearer("sandbox-admin"))  # a read: no line
    entries = [r.audit for r in caplog.records if r.name == "bff.audit"]  # type: ignore[attr-defined]
    assert len(entries) == 3
    done, refused, anonymous = entries
    assert done["user"] == "passthrough"
    assert done["client_version"] == "v1.0.5"
    assert done["action"] == "dismiss"
    assert done["object"] == f"{NAMESPACE}/{SUCCEEDED}"
    assert done["result"] == "changed"
    assert done["labels_changed"] == ["harvesterhci.io/read-message"]
    assert done["upstream_status"] == 200
    assert refused["result"] == "refused"
    assert refused["code"] == "UpgradeInProgress"
    assert refused["status"] == 409
    assert anonymous["result"] == "refused"
    assert anonymous["user"] == "-"
    assert anonymous["action"] == "put"
    assert anonymous["client_version"] == "v1.0.4"
    assert anonymous["object"] == f"{NAMESPACE}/{SUCCEEDED}"
    assert anonymous["status"] == 401


async def test_the_page_and_its_files_allow_only_their_own_origin(emulator_stack: Stack) -> None:
    """No inline script, no CDN: every directive the page's files rely on is 'self' only."""
    for path in ("/", *(f"/static/{name}" for name in STATIC_FILES)):
        response = await emulator_stack.client.get(path)
        assert response.status == 200, path
        policy = dict(
            part.strip().split(" ", 1)
            for part in response.headers["Content-Security-Policy"].split(";")
        )
        for directive in ("default-src", "script-src", "style-src", "connect-src"):
            assert policy[directive] == "'self'", (path, directive, policy)
        assert policy["frame-ancestors"] == "'none'", path


# --- TLS ---------------------------------------------------------------------------------


async def test_serve_terminates_tls(tmp_path: Path, emulator_backend: Backend) -> None:
    from bff.sandbox.kubeconfig import write_kubeconfig

    made = make_server_certificate(tmp_path / "tls")
    cert, key = made.cert_file, made.key_file
    config = write_kubeconfig(tmp_path / "k", emulator_backend.url, token="sandbox-bff")
    settings = Settings(
        kubeconfig=str(config), port=0, tls_cert=str(cert), tls_key=str(key), shutdown_timeout=1
    )
    runner, url = await start(create_app(settings), settings)
    try:
        assert url.startswith("https://127.0.0.1:")
        context = ssl.create_default_context(cafile=str(made.ca_file))
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{url}/healthz", ssl=context) as response:
                assert response.status == 200
            with pytest.raises(aiohttp.ClientError):
                async with session.get(url.replace("https", "http") + "/healthz"):
                    pass
    finally:
        await stop(runner)


@pytest.mark.real_apiserver
async def test_passthrough_never_borrows_a_client_certificate_from_the_kubeconfig(
    real_apiserver: Any, tmp_path: Path, aiohttp_client: Callable[..., Awaitable[Any]]
) -> None:
    """Against a real API server, whose x509 authenticator runs before bearer tokens.

    The BFF's kubeconfig here holds a system:masters client certificate. If passthrough
    requests carried it, a viewer's dismiss would succeed as cluster admin.
    """
    real_apiserver.reset()
    config = real_apiserver.kubeconfig(tmp_path / "masters.kubeconfig", client_cert=True)
    client = await aiohttp_client(create_app(Settings(kubeconfig=str(config))))
    # The read cache lists and watches as the BFF's own identity; ready once it has synced.
    await asyncio.wait_for(client.app[CACHE].wait_synced(), 10)
    assert (await client.get("/readyz")).status == 200, "the BFF's own identity serves probes"
    viewer = await client.post(DISMISS, headers=bearer("sandbox-viewer"))
    assert viewer.status == 403
    assert (await client.post(DISMISS, headers=bearer("bogus"))).status == 401
    assert (await client.post(DISMISS)).status == 401
    live = real_apiserver.request("GET", real_apiserver.upgrades_path(SUCCEEDED)).body
    assert "harvesterhci.io/read-message" not in live["metadata"]["labels"]
    assert (await client.post(DISMISS, headers=bearer("sandbox-admin"))).status == 200
