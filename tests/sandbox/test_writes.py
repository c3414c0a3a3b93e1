"""The emulator's one write path: every Upgrade write (create, PUT, merge and JSON patch)
consults admission between decoding and the store, honours ``dryRun=All``, and redoes a
patch whose object changed while admission ran."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from bff.sandbox.emulator import create_emulator_app
from bff.sandbox.resource import JSON
from bff.sandbox.status import StatusError
from bff.sandbox.writes import WriteRequest
from tests.support.backends import (
    BASE,
    JSON_PATCH,
    MERGE,
    NS,
    SUCCEEDED,
    EmulatorBackend,
    new_upgrade,
    served_emulator,
)

READ = "harvesterhci.io/read-message"


@dataclass
class Recording:
    """An admission step that records what it saw, adds a label, and can refuse or stall."""

    seen: list[tuple[str, str, str, bool, bool]] = field(default_factory=list)
    refuse: bool = False
    during_mutate: Callable[[], Any] | None = None

    async def mutate(
        self, request: WriteRequest, obj: JSON, old: JSON | None
    ) -> tuple[JSON, list[str]]:
        self.seen.append(
            (request.operation, request.name, request.user.username, old is None, request.dry_run)
        )
        if self.during_mutate is not None:
            action, self.during_mutate = self.during_mutate, None
            action()
            await asyncio.sleep(0)
        obj["metadata"].setdefault("labels", {})["admitted"] = "yes"
        return obj, ["admission saw it"]

    async def validate(self, request: WriteRequest, obj: JSON, old: JSON | None) -> list[str]:
        if self.refuse:
            raise StatusError(403, "Forbidden", 'admission webhook "guard" denied the request')
        return []


@pytest.fixture
async def guarded(
    aiohttp_server: Callable[..., Any],
) -> AsyncIterator[tuple[EmulatorBackend, Recording]]:
    admission = Recording()
    server: TestServer = await aiohttp_server(create_emulator_app(admission=admission))
    async with served_emulator(server) as backend:
        yield backend, admission


def label_patch(value: str = "true") -> dict[str, Any]:
    return {"metadata": {"labels": {READ: value}}}


@pytest.mark.parametrize("kind", ["create", "put", "merge", "json"])
async def test_every_upgrade_write_passes_admission(
    guarded: tuple[EmulatorBackend, Recording], kind: str
) -> None:
    emu, admission = guarded
    live = emu.live(SUCCEEDED)
    if kind == "create":
        status, headers, body = await emu.request("POST", BASE, new_upgrade())
    elif kind == "put":
        status, headers, body = await emu.request("PUT", f"{BASE}/{SUCCEEDED}", live)
    elif kind == "merge":
        status, headers, body = await emu.request(
            "PATCH", f"{BASE}/{SUCCEEDED}", label_patch(), content_type=MERGE
        )
    else:
        ops = [{"op": "add", "path": f"/metadata/labels/{READ.replace('/', '~1')}", "value": "x"}]
        status, headers, body = await emu.request(
            "PATCH", f"{BASE}/{SUCCEEDED}", ops, content_type=JSON_PATCH
        )
    assert status in (200, 201), body
    operation = "CREATE" if kind == "create" else "UPDATE"
    name = "" if kind == "create" else SUCCEEDED
    assert admission.seen == [(operation, name, "sandbox-admin", kind == "create", False)]
    # The mutation is stored, and its warning reaches the client.
    assert body["metadata"]["labels"]["admitted"] == "yes"
    assert emu.live(body["metadata"]["name"])["metadata"]["labels"]["admitted"] == "yes"
    assert '299 - "admission saw it"' in headers.getall("Warning")


async def test_a_refusal_writes_nothing(guarded: tuple[EmulatorBackend, Recording]) -> None:
    emu, admission = guarded
    admission.refuse = True
    before = emu.store.resource_version
    status, _, body = await emu.request(
        "PATCH", f"{BASE}/{SUCCEEDED}", label_patch(), content_type=MERGE
    )
    assert status == 403
    assert body["message"] == 'admission webhook "guard" denied the request'
    assert emu.store.resource_version == before
    assert READ not in emu.live(SUCCEEDED)["metadata"].get("labels", {})


async def test_the_store_rules_run_before_validating_admission(
    guarded: tuple[EmulatorBackend, Recording],
) -> None:
    emu, admission = guarded
    admission.refuse = True
    status, _, body = await emu.request(
        "PATCH", f"{BASE}/{SUCCEEDED}", label_patch("not valid!"), content_type=MERGE
    )
    assert status == 422, body


async def test_a_patch_is_redone_when_the_object_changes_during_admission(
    guarded: tuple[EmulatorBackend, Recording],
) -> None:
    emu, admission = guarded
    admission.during_mutate = lambda: emu.store.bump(NS, SUCCEEDED)
    before = emu.store.resource_version
    status, _, body = await emu.request(
        "PATCH", f"{BASE}/{SUCCEEDED}", label_patch(), content_type=MERGE
    )
    assert status == 200, body
    assert len(admission.seen) == 2  # once on the old object, once on the new
    assert int(body["metadata"]["resourceVersion"]) == before + 2  # the bump, then the patch


async def test_a_put_whose_object_changes_during_admission_is_a_conflict(
    guarded: tuple[EmulatorBackend, Recording],
) -> None:
    emu, admission = guarded
    admission.during_mutate = lambda: emu.store.bump(NS, SUCCEEDED)
    status, _, body = await emu.request("PUT", f"{BASE}/{SUCCEEDED}", emu.live(SUCCEEDED))
    assert status == 409, body
    assert body["reason"] == "Conflict"


@pytest.mark.parametrize("kind", ["create", "merge"])
async def test_dry_run_checks_everything_and_stores_nothing(
    emu: EmulatorBackend, kind: str
) -> None:
    before = emu.store.resource_version
    live = emu.live(SUCCEEDED)
    if kind == "create":
        status, _, body = await emu.request("POST", f"{BASE}?dryRun=All", new_upgrade())
        assert status == 201, body
        assert "resourceVersion" not in body["metadata"]
        assert body["metadata"]["uid"]
    else:
        status, _, body = await emu.request(
            "PATCH", f"{BASE}/{SUCCEEDED}?dryRun=All", label_patch(), content_type=MERGE
        )
        assert status == 200, body
        assert body["metadata"]["labels"][READ] == "true"
        assert body["metadata"]["resourceVersion"] == live["metadata"]["resourceVersion"]
    assert emu.store.resource_version == before
    assert emu.live(SUCCEEDED) == live
    # A dry run is still validated.
    status, _, body = await emu.request(
        "PATCH", f"{BASE}/{SUCCEEDED}?dryRun=All", label_patch("not valid!"), content_type=MERGE
    )
    assert status == 422


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("dryRun=Nope",
         'PatchOptions.meta.k8s.io "" is invalid: dryRun: Unsupported value: ["Nope"]: '
         'supported values: "All"'),
        ("fieldValidation=Nope",
         'PatchOptions.meta.k8s.io "" is invalid: fieldValidation: Unsupported value: "Nope": '
         'supported values: "", "Ignore", "Strict", "Warn"'),
    ],
)  # fmt: skip
async def test_bad_options_are_refused_as_kube_apiserver_words_it(
    emu: EmulatorBackend, query: str, message: str
) -> None:
    status, _, body = await emu.request(
        "PATCH", f"{BASE}/{SUCCEEDED}?{query}", label_patch(), content_type=MERGE
    )
    assert (status, body["message"]) == (422, message)
    assert READ not in emu.live(SUCCEEDED)["metadata"].get("labels", {})


async def test_strict_field_validation(emu: EmulatorBackend) -> None:
    live = emu.live(SUCCEEDED)
    live["spec"]["bogus"] = "yes"
    status, _, body = await emu.request("PUT", f"{BASE}/{SUCCEEDED}?fieldValidation=Strict", live)
    assert (status, body["message"]) == (
        400,
        'Upgrade in version "v1beta1" cannot be handled as a Upgrade: strict decoding error: '
        'unknown field "spec.bogus"',
    )
    patch = {"spec": {"a": 1, "b": 2}}
    status, _, body = await emu.request(
        "PATCH", f"{BASE}/{SUCCEEDED}?fieldValidation=Strict", patch, content_type=MERGE
    )
    assert status == 422
    assert body["message"].startswith(' "" is invalid: patch: Invalid value: "{')
    assert body["message"].endswith(
        'strict decoding error: unknown field "spec.a", unknown field "spec.b"'
    )
    assert "bogus" not in emu.live(SUCCEEDED)["spec"]


@pytest.mark.parametrize(("validation", "warned"), [("Warn", True), ("Ignore", False)])
async def test_unknown_fields_warn_or_are_ignored(
    emu: EmulatorBackend, validation: str, warned: bool
) -> None:
    status, headers, body = await emu.request(
        "PATCH", f"{BASE}/{SUCCEEDED}?fieldValidation={validation}",
        {"spec": {"bogus": 1}}, content_type=MERGE,
    )  # fmt: skip
    assert status == 200, body
    assert ('299 - "unknown field \\"spec.bogus\\""' in headers.getall("Warning", [])) is warned
    assert "bogus" not in body["spec"]
