"""The sandbox's other guarded resources (:mod:`bff.sandbox.guarded`): the six CRDs
served with one seed object each, and their writes consulting the cluster guard.

Through the sandbox as ``running()`` builds it: every seed is served with its
status; a v1.0.4 save of each, PUT straight to the emulator, keeps status,
finalizers and owner references with the guard on and loses them without it (the
bug); the owner's write (impersonated) passes; a stale resourceVersion is a 409; a
merge patch and a dry run go through the same admission.
"""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import pytest

from bff import captured
from bff.sandbox.guarded import kinds
from bff.sandbox.runner import Sandbox, running
from bff.settings import Settings
from tests.support.backends import sandbox_emulator
from tests.support.shell import label
from tests.support.v104_save import v104_saved_body

SETTINGS = Settings(port=0)
KINDS = {k.kind: k for k in kinds()}


@pytest.fixture
async def guarded() -> AsyncIterator[Sandbox]:
    async with running(replace(SETTINGS, webhook_port=0), kube_port=0, interval=0) as sandbox:
        yield sandbox


@pytest.fixture
async def unguarded() -> AsyncIterator[Sandbox]:
    async with running(SETTINGS, kube_port=0, interval=0) as sandbox:
        yield sandbox


def path_of(obj: dict[str, Any]) -> str:
    kind = KINDS[obj["kind"]]
    meta = obj["metadata"]
    ns = f"namespaces/{meta['namespace']}/" if kind.namespaced else ""
    return f"/apis/{kind.group}/{kind.version}/{ns}{kind.plural}/{meta['name']}"


async def call(
    sandbox: Sandbox,
    method: str,
    path: str,
    body: Any = None,
    *,
    content_type: str = "application/json",
    headers: dict[str, str] | None = None,
) -> tuple[int, Any, list[str]]:
    async with sandbox_emulator(sandbox) as cluster:
        status, answer_headers, obj = await cluster.request(
            method, path, body, token="sandbox-admin", content_type=content_type,
            headers=headers,
        )  # fmt: skip
    return status, obj, [w for w in answer_headers.getall("Warning", []) if "guard" in w]


@pytest.mark.parametrize("seed", captured.guarded_objects(), ids=lambda o: o["kind"])
async def test_a_v104_save_keeps_what_it_strips_with_the_guard(
    guarded: Sandbox, seed: dict[str, Any]
) -> None:
    path = path_of(seed)
    status, before, _ = await call(guarded, "GET", path)
    assert status == 200
    assert before["status"] == seed["status"]
    body = v104_saved_body(seed["kind"].lower(), before, edit=(label("example.com/edited", "yes"),))
    status, after, warnings = await call(guarded, "PUT", path, body)
    assert status == 200, after
    assert after["status"] == before["status"]
    assert after["metadata"].get("finalizers") == before["metadata"].get("finalizers")
    assert after["metadata"]["labels"]["example.com/edited"] == "yes"
    assert any(f"{seed['kind']} " in w and "removed its status" in w for w in warnings)
    _, stored, _ = await call(guarded, "GET", path)
    assert stored == after


async def test_without_the_guard_an_ippool_save_loses_its_allocations(
    unguarded: Sandbox,
) -> None:
    seed = captured.guarded_object("ippool")
    path = path_of(seed)
    _, before, _ = await call(unguarded, "GET", path)
    status, after, _ = await call(unguarded, "PUT", path, v104_saved_body("ippool", before))
    assert status == 200
    assert "status" not in after


async def test_the_owner_writes_status_and_others_go_through_the_guard(
    guarded: Sandbox,
) -> None:
    seed = captured.guarded_object("clusternetwork")
    path = path_of(seed)
    _, live, _ = await call(guarded, "GET", path)
    changed = copy.deepcopy(live)
    changed["status"]["conditions"][0]["status"] = "False"
    owner = "system:serviceaccount:harvester-system:harvester-network-controller"
    status, after, warnings = await call(
        guarded,
        "PUT",
        path,
        changed,
        headers={"Impersonate-User": owner, "Impersonate-Group": "system:masters"},
    )
    assert status == 200, after
    assert after["status"]["conditions"][0]["status"] == "False"
    assert warnings == []
    # A merge patch by someone else: repaired.
    status, after, warnings = await call(
        guarded, "PATCH", path, {"status": None}, content_type="application/merge-patch+json"
    )
    assert status == 200
    assert after["status"]["conditions"][0]["status"] == "False"
    assert warnings
    # A stale resourceVersion is a conflict, as kube-apiserver answers.
    status, _, _ = await call(guarded, "PUT", path, live)
    assert status == 409


async def test_a_dry_run_is_answered_the_same_and_stores_nothing(guarded: Sandbox) -> None:
    seed = captured.guarded_object("schedulevmbackup")
    path = path_of(seed)
    _, before, _ = await call(guarded, "GET", path)
    body = v104_saved_body("schedulevmbackup", before)
    status, answer, warnings = await call(guarded, "PUT", path + "?dryRun=All", body)
    assert status == 200
    assert answer["status"] == before["status"]
    assert len(warnings) == 2  # status and the wrangler finalizer
    _, after, _ = await call(guarded, "GET", path)
    assert after == before
