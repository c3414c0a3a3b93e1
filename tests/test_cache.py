"""The watch-backed read cache (``--read-cache on``), through the BFF and on its own.

Everything goes over HTTP through the real kubernetes-asyncio client; the
recorder in front of the API server shows every upstream request. The
authorisation, selector and write tests run on the emulator and on the real
kube-apiserver (``backend``): a caller the API server refuses is refused by
the cache too.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import generate_latest

from bff import kube
from bff.cache import JSONObject, UpgradeCache, newer
from bff.identities import AuthMode
from bff.keys import CACHE, METRICS
from bff.label_selectors import parse_selector
from bff.sandbox.emulator import EMULATOR_FAULTS, EMULATOR_STORE, Fault
from bff.sandbox.kubeconfig import write_kubeconfig
from tests.conftest import Stack
from tests.support.backends import FAILED, IN_PROGRESS, NAMESPACE, SUCCEEDED, Backend

READ = "harvesterhci.io/read-message"
ADMIN = {"Authorization": "Bearer sandbox-admin"}
BFF_TOKEN = "Bearer sandbox-bff"


async def _cached_stack(backend: Backend, factory: Callable[..., Awaitable[Stack]]) -> Stack:
    stack = await factory(backend, read_cache=True)
    cache = stack.client.app[CACHE]
    await asyncio.wait_for(cache.wait_synced(), 10)
    return stack


def _callers(stack: Stack) -> list[Any]:
    """Upstream requests made for callers (not the cache's own list and watch)."""
    return [r for r in stack.recorder.requests if r.headers.get("Authorization") != BFF_TOKEN]


async def _eventually(check: Callable[[], bool], attempts: int = 250) -> None:
    for _ in range(attempts):
        if check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not reached")


async def test_reads_are_served_from_the_cache_after_one_access_review(
    emulator_backend: Backend, stack_factory: Callable[..., Awaitable[Stack]]
) -> None:
    stack = await _cached_stack(emulator_backend, stack_factory)
    for _ in range(3):
        got = await stack.client.get(f"/api/v1.0.5/upgrades/{NAMESPACE}/{SUCCEEDED}",
                                     headers=ADMIN)  # fmt: skip
        assert got.status == 200
        body = await got.json()
        assert body["id"] == f"{NAMESPACE}/{SUCCEEDED}"
        assert body["actions"]["dismiss"].endswith("?action=dismiss")
        listed = await stack.client.get("/api/v1.0.5/upgrades", headers=ADMIN)
        assert (await listed.json())["count"] == 3
    calls = _callers(stack)
    # One SelfSubjectAccessReview per verb, with the caller's own token; no read upstream.
    assert [(r.method, r.path) for r in calls] == [
        ("POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"),
        ("POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"),
    ]
    assert all(r.headers["Authorization"] == "Bearer sandbox-admin" for r in calls)
    verbs = [r.body["spec"]["resourceAttributes"]["verb"] for r in calls]
    assert verbs == ["get", "list"]


@pytest.mark.parametrize(
    ("token", "status"),
    [("sandbox-viewer", 200), ("no-such-token", 401), ("sandbox-nobody", 403)],
)
async def test_a_caller_upstream_would_refuse_is_refused_by_the_cache_too(
    token: str,
    status: int,
    backend: Backend,
    stack_factory: Callable[..., Awaitable[Stack]],
) -> None:
    stack = await _cached_stack(backend, stack_factory)
    headers = {"Authorization": f"Bearer {token}"}
    for path in (f"/api/v1.0.5/upgrades/{NAMESPACE}/{SUCCEEDED}", "/api/v1.0.5/upgrades"):
        for _ in range(2):  # a denial is never reused as an allow
            response = await stack.client.get(path, headers=headers)
            assert response.status == status, await response.text()
    direct, _ = await backend.call("GET", backend.path(SUCCEEDED), token=token)
    assert direct == status


async def test_impersonate_mode_asks_a_subject_access_review_for_the_reviewed_user(
    backend: Backend, stack_factory: Callable[..., Awaitable[Stack]]
) -> None:
    stack = await stack_factory(backend, read_cache=True, auth_mode=AuthMode.IMPERSONATE)
    await asyncio.wait_for(stack.client.app[CACHE].wait_synced(), 10)
    viewer = {"Authorization": "Bearer sandbox-viewer"}
    nobody = {"Authorization": "Bearer sandbox-nobody"}
    path = f"/api/v1.0.5/upgrades/{NAMESPACE}/{SUCCEEDED}"
    assert (await stack.client.get(path, headers=viewer)).status == 200
    assert (await stack.client.get(path, headers=nobody)).status == 403
    assert (await stack.client.get(path, headers=nobody)).status == 403
    reviews = [r for r in stack.recorder.requests if "subjectaccessreviews" in r.path]
    assert [r.path.rsplit("/", 1)[1] for r in reviews] == ["subjectaccessreviews"] * 3
    assert [r.body["spec"]["user"] for r in reviews] == [  # type: ignore[index]
        "sandbox-viewer", "sandbox-nobody", "sandbox-nobody"
    ]  # fmt: skip
    assert all(r.headers["Authorization"] == BFF_TOKEN for r in reviews)


async def test_each_review_and_each_reuse_is_counted_once(
    emulator_backend: Backend, stack_factory: Callable[..., Awaitable[Stack]]
) -> None:
    """A cached GET is answered without a coroutine when the caller's TokenReview and
    allow are kept and the object is cached; otherwise the full path runs. Either way
    each review and each reuse of one is counted once: a read of an object the cache
    does not have reuses both once, then asks upstream."""
    stack = await stack_factory(emulator_backend, read_cache=True, auth_mode=AuthMode.IMPERSONATE)
    await asyncio.wait_for(stack.client.app[CACHE].wait_synced(), 10)
    viewer = {"Authorization": "Bearer sandbox-viewer"}
    for _ in range(3):
        got = await stack.client.get(
            f"/api/v1.0.5/upgrades/{NAMESPACE}/{SUCCEEDED}", headers=viewer
        )
        assert got.status == 200
    missing = await stack.client.get(f"/api/v1.0.5/upgrades/{NAMESPACE}/no-such", headers=viewer)
    assert missing.status == 404
    exposed = generate_latest(stack.client.app[METRICS].registry).decode()
    counted = {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in exposed.splitlines()
        if line.startswith(("bff_token_reviews_total", "bff_access_reviews_total"))
    }
    assert counted == {
        'bff_token_reviews_total{result="accepted"}': 1.0,
        'bff_token_reviews_total{result="hit"}': 3.0,
        'bff_access_reviews_total{result="allowed"}': 1.0,
        'bff_access_reviews_total{result="hit"}': 3.0,
    }


async def test_a_write_is_one_upstream_call_and_an_idempotent_one_none(
    backend: Backend, stack_factory: Callable[..., Awaitable[Stack]]
) -> None:
    stack = await _cached_stack(backend, stack_factory)
    cached = stack.client.app[CACHE].get(SUCCEEDED)
    assert cached is not None
    path = f"/api/v1.0.5/upgrades/{NAMESPACE}/{SUCCEEDED}?action=dismiss"
    first = await stack.client.post(path, headers=ADMIN)
    assert first.status == 200
    assert first.headers["X-Upgrade-Bff-Changed"] == "true"
    calls = [r for r in _callers(stack) if "accessreviews" not in r.path]
    assert [(r.method, r.body) for r in calls] == [
        ("PATCH", {"metadata": {"labels": {READ: "true"},
                                "resourceVersion": cached["metadata"]["resourceVersion"]}})
    ]  # fmt: skip
    before = len(stack.recorder.requests)
    again = await stack.client.post(path, headers=ADMIN)
    assert again.status == 200
    assert again.headers["X-Upgrade-Bff-Changed"] == "false"
    assert [r for r in stack.recorder.requests[before:] if r.headers.get("Authorization")
            != BFF_TOKEN] == []  # fmt: skip
    # The in-progress guard reads the cache too, and refuses without any upstream call.
    refused = await stack.client.post(
        f"/api/v1.0.5/upgrades/{NAMESPACE}/{IN_PROGRESS}?action=dismiss", headers=ADMIN
    )
    assert refused.status == 409
    assert stack.upstream_writes()[1:] == []


async def test_a_stale_cache_meets_409_then_a_fresh_get_and_a_bounded_retry(
    backend: Backend, stack_factory: Callable[..., Awaitable[Stack]]
) -> None:
    stack = await _cached_stack(backend, stack_factory)
    backend = stack.backend
    touches = 0

    async def someone_else_writes() -> None:
        nonlocal touches
        if touches < 1:
            touches += 1
            await backend.merge_patch(FAILED, {"metadata": {"annotations": {"touched": "1"}}})

    stack.recorder.before_patch = someone_else_writes
    response = await stack.client.post(
        f"/api/v1.0.5/upgrades/{NAMESPACE}/{FAILED}?action=dismiss", headers=ADMIN
    )
    assert response.status == 200
    upgrade_calls = [(r.method, r.status) for r in _callers(stack) if "/upgrades" in r.path]
    assert upgrade_calls == [("PATCH", 409), ("GET", 200), ("PATCH", 200)]


async def test_label_selectors_on_the_cache_match_the_api_server(
    backend: Backend, stack_factory: Callable[..., Awaitable[Stack]]
) -> None:
    stack = await _cached_stack(backend, stack_factory)
    selectors = [
        "", "harvesterhci.io/upgradeState=Succeeded", "harvesterhci.io/upgradeState!=Succeeded",
        "harvesterhci.io/upgradeState in (Failed,Succeeded)", "harvesterhci.io/read-message",
        "!harvesterhci.io/read-message", "harvesterhci.io/upgradeState notin (Failed)",
        "harvesterhci.io/upgradeState,harvesterhci.io/upgradeState!=Failed",
    ]  # fmt: skip
    for selector in selectors:
        status, listed = await backend.call(
            "GET", backend.path() + (f"?labelSelector={selector}" if selector else "")
        )
        assert status == 200
        upstream = sorted(i["metadata"]["name"] for i in listed["items"])
        cached = stack.client.app[CACHE]
        names = sorted(e.obj["metadata"]["name"] for e in cached.items(parse_selector(selector)))
        assert names == upstream, selector
        through = await stack.client.get(
            "/api/v1.0.5/upgrades", params={"labelSelector": selector}, headers=ADMIN
        )
        assert sorted(d["metadata"]["name"] for d in (await through.json())["data"]) == upstream


@pytest.fixture
async def own_cache(emulator_backend: Backend, tmp_path: Path) -> Any:
    config = write_kubeconfig(tmp_path / "c.kubeconfig", emulator_backend.url, token="sandbox-bff")
    async with kube.connect(kube.UpstreamOptions(kubeconfig=str(config)), impersonate=False) as up:
        cache = UpgradeCache(up.watcher, NAMESPACE, max_stale=0.3, backoff=(0.01, 0.05))
        assert cache.problem() is not None  # not ready before the first list
        cache.start()
        await asyncio.wait_for(cache.wait_synced(), 10)
        yield cache
        await cache.stop()


async def test_a_refused_list_is_not_taken_for_a_list_and_is_logged_with_the_apis_reason(
    emulator_backend: Backend, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    faults = emulator_backend.app[EMULATOR_FAULTS]  # type: ignore[attr-defined]
    faults.add(Fault("GET", path_suffix="/upgrades", status=403))
    config = write_kubeconfig(tmp_path / "c.kubeconfig", emulator_backend.url, token="sandbox-bff")
    caplog.set_level(logging.DEBUG, logger="bff.cache")
    async with kube.connect(kube.UpstreamOptions(kubeconfig=str(config)), impersonate=False) as up:
        cache = UpgradeCache(up.watcher, NAMESPACE, backoff=(0.01, 0.05))
        cache.start()
        try:
            await asyncio.wait_for(cache.wait_synced(), 10)  # the second list is answered
        finally:
            await cache.stop()
    assert cache.stats["reconnects"] == 1
    assert len(cache) == 3
    (line,) = [r.getMessage() for r in caplog.records if "lost the API server" in r.getMessage()]
    assert "403" in line or "forbidden" in line.lower(), line


async def test_the_cache_follows_changes_relists_on_410_and_readiness_tracks_staleness(
    own_cache: UpgradeCache, emulator_backend: Backend
) -> None:
    cache = own_cache
    app = emulator_backend.app  # type: ignore[attr-defined]
    store = app[EMULATOR_STORE]
    assert cache.problem() is None
    assert len(cache) == 3
    await emulator_backend.merge_patch(SUCCEEDED, {"metadata": {"labels": {"x": "1"}}})
    await _eventually(lambda: (cache.get(SUCCEEDED) or {})["metadata"]["labels"].get("x") == "1")
    store.create(NAMESPACE, {"apiVersion": "harvesterhci.io/v1beta1", "kind": "Upgrade",
                             "metadata": {"name": "short-lived"}, "spec": {}})  # fmt: skip
    await _eventually(lambda: cache.get("short-lived") is not None)
    status, _ = await emulator_backend.call("DELETE", emulator_backend.path("short-lived"))
    assert status == 200
    await _eventually(lambda: cache.get("short-lived") is None)

    # The watch drops; before it is back, more changes than the server keeps history for.
    def churn(store: Any) -> None:
        for index in range(5):
            body = {"apiVersion": "harvesterhci.io/v1beta1", "kind": "Upgrade",
                    "metadata": {"name": f"churn-{index}"}, "spec": {}}  # fmt: skip
            store.create(NAMESPACE, body)
        store.compact()

    app[EMULATOR_FAULTS].add(Fault("GET", path_suffix="/upgrades", action=churn))
    store.close_watchers()
    await _eventually(lambda: cache.stats["gone"] >= 1 and len(cache) == 8)

    # Unreachable for longer than max_stale: not ready; back again: ready.
    faults = app[EMULATOR_FAULTS]
    faults.add(Fault("GET", path_suffix="/upgrades", status=503, times=10_000))
    store.close_watchers()
    await _eventually(lambda: cache.problem() is not None)
    assert "has not reached the API server" in (cache.problem() or "")
    faults.clear()
    await _eventually(lambda: cache.problem() is None)


async def test_concurrent_reads_share_one_access_review(
    emulator_backend: Backend, stack_factory: Callable[..., Awaitable[Stack]]
) -> None:
    stack = await _cached_stack(emulator_backend, stack_factory)
    path = f"/api/v1.0.5/upgrades/{NAMESPACE}/{SUCCEEDED}"
    responses = await asyncio.gather(*(stack.client.get(path, headers=ADMIN) for _ in range(10)))
    assert [r.status for r in responses] == [200] * 10
    reviews = [r for r in _callers(stack) if "accessreviews" in r.path]
    assert len(reviews) == 1


def test_resource_versions_are_compared_as_numbers() -> None:
    """etcd's versions are integers: "10" is later than "9" (as strings it is not)."""
    assert newer("10", "9")
    assert not newer("9", "10")
    assert not newer("10", "10")
    assert newer("100000", "99999")


class _NoUpstream:
    """A watcher the test never starts: the cache is fed by :meth:`UpgradeCache.observe`."""

    async def list(self, namespace: str) -> JSONObject:
        raise AssertionError("not started")

    def watch(self, namespace: str, resource_version: str, on_open: Any) -> Any:
        raise AssertionError("not started")


async def test_observe_keeps_only_the_cached_namespace() -> None:
    cache = UpgradeCache(_NoUpstream(), NAMESPACE)
    other = {"metadata": {"name": SUCCEEDED, "namespace": "elsewhere", "resourceVersion": "7"}}
    cache.observe(other)
    assert cache.get(SUCCEEDED) is None
    assert len(cache) == 0
    own = {"metadata": {"name": SUCCEEDED, "namespace": NAMESPACE, "resourceVersion": "7"}}
    cache.observe(own)
    assert cache.get(SUCCEEDED) == own


def test_a_kept_rendering_is_only_reused_for_the_same_client_version_and_collection() -> None:
    """Each entry keeps its last rendering; a GET by another version or through another
    collection (v1.0.4 at Steve's path, v1.0.5, a base path) is rendered anew, and every
    answer is byte for byte what :func:`bff.steve.resource` makes of the object."""
    import json

    import orjson

    from bff import captured
    from bff.cache import Entry
    from bff.steve import STEVE, V104, V105, resource

    obj = json.loads(
        (Path(str(captured.files())) / "upgrades" / "upgrade-succeeded.json").read_text()
    )
    entry = Entry(obj)
    readers = [
        V105.at("/api/v1.0.5/upgrades"),
        V104.at("/api/v1.0.4/upgrades"),
        STEVE.at("/v1/harvester/harvesterhci.io.upgrades"),
        V105.at("/base/api/v1.0.5/upgrades"),
    ]
    for reader in readers + readers[::-1]:
        for _ in range(2):  # rendered, then reused
            assert entry.render(reader) == orjson.dumps(resource(obj, reader)), reader
