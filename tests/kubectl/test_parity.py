"""kubectl parity: one table of stock kubectl invocations, run against the real
kube-apiserver and against the sandbox's emulator, each asserting the same outcome: the
exit code, the key part of the output, and the object afterwards.

The emulator runs as the sandbox runs it (HTTPS with a CA made at start, a kubeconfig
per token); the real server is the suite's kube-apiserver with the same tokens. Any case
that passes on one and fails on the other is an emulator bug.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import os
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from aiohttp.test_utils import TestServer

from bff.sandbox.emulator import create_emulator_app
from bff.sandbox.kubeconfig import write_kubeconfig
from bff.sandbox.tls import SandboxCA
from tests.support.backends import (
    FAILED,
    IN_PROGRESS,
    NAMESPACE,
    SUCCEEDED,
    Backend,
    EmulatorBackend,
    new_upgrade,
)

KUBECTL = shutil.which("kubectl")
pytestmark = pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed")

NS = ("-n", NAMESPACE)
READ = "harvesterhci.io/read-message"
STATE = "harvesterhci.io/upgradeState"
UPGRADE = "upgrade.harvesterhci.io"
# Bounds, in seconds: no case may hang the suite.
KUBECTL_TIMEOUT = 120.0
WATCH_LINE_TIMEOUT = 60.0
#: ``get -w`` is changed up to this many times, a second apart, until it shows a change.
WATCH_CHANGES = 30


@dataclass
class Result:
    rc: int
    out: str
    err: str


@dataclass
class Target:
    """One API server as kubectl sees it: a kubeconfig per token, and a backend to set
    state up and read objects afterwards (as sandbox-admin, over HTTP)."""

    name: str
    backend: Backend
    kubeconfig: Callable[[str], Path]
    home: Path

    def env(self, token: str) -> dict[str, str]:
        return {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.home),
            "KUBECONFIG": str(self.kubeconfig(token)),
        }

    def argv(self, args: tuple[str, ...]) -> list[str]:
        assert KUBECTL is not None
        return [KUBECTL, f"--cache-dir={self.home / 'cache'}", *args]

    async def kubectl(
        self, *args: str, token: str = "sandbox-admin", stdin: str | None = None
    ) -> Result:
        proc = await asyncio.create_subprocess_exec(
            *self.argv(args),
            stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=self.env(token),
        )
        try:
            out, err = await asyncio.wait_for(
                proc.communicate(stdin.encode() if stdin is not None else None), KUBECTL_TIMEOUT
            )
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        assert proc.returncode is not None
        return Result(proc.returncode, out.decode(), err.decode())

    async def read(self, name: str) -> dict[str, Any]:
        return await self.backend.read(name)


# --- the targets ---------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def emulator_target(
    aiohttp_server: Callable[..., Awaitable[TestServer]], http: aiohttp.ClientSession, tmp: Path
) -> AsyncIterator[Target]:
    ca = SandboxCA.create()
    server = await aiohttp_server(create_emulator_app(), ssl=ca.server_context(tmp))
    url = f"https://127.0.0.1:{server.port}"
    backend = EmulatorBackend("emulator", url, ca.client_context(), None, http, app=server.app)

    def kubeconfig(token: str) -> Path:
        return write_kubeconfig(
            tmp / f"{token}.kubeconfig", url, token=token, ca_pem=ca.ca_pem, user=token
        )

    yield Target("emulator", backend, kubeconfig, tmp)


@contextlib.asynccontextmanager
async def real_target(real: Any, http: aiohttp.ClientSession, tmp: Path) -> AsyncIterator[Target]:
    import ssl

    real.reset()
    context = ssl.create_default_context(cafile=str(real.ca_file))
    backend = Backend("real", real.url, context, str(real.ca_file), http)

    def kubeconfig(token: str) -> Path:
        path = tmp / f"{token}.kubeconfig"
        return path if path.exists() else real.kubeconfig(path, token=token)

    yield Target("real", backend, kubeconfig, tmp)


@pytest.fixture(params=["emulator", pytest.param("real", marks=pytest.mark.real_apiserver)])
async def target(
    request: pytest.FixtureRequest,
    aiohttp_server: Callable[..., Awaitable[TestServer]],
    http: aiohttp.ClientSession,
    tmp_path: Path,
) -> AsyncIterator[Target]:
    if request.param == "emulator":
        async with emulator_target(aiohttp_server, http, tmp_path) as t:
            yield t
    else:
        async with real_target(request.getfixturevalue("real_apiserver"), http, tmp_path) as t:
            yield t


# --- the table -----------------------------------------------------------------------------

Setup = Callable[[Target], Awaitable[Mapping[str, str]]]
After = Callable[[Target, Result], Awaitable[None]]


@dataclass(frozen=True)
class Case:
    """``args`` may name ``{file}`` (written by ``setup``); ``out``/``err`` are the lines or
    fragments the output must contain; ``after`` checks the objects afterwards."""

    id: str
    args: tuple[str, ...]
    rc: int = 0
    out: tuple[str, ...] = ()
    err: tuple[str, ...] = ()
    token: str = "sandbox-admin"
    setup: Setup | None = None
    after: After | None = None
    exact_out: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


def rows(text: str) -> list[list[str]]:
    return [line.split() for line in text.strip().splitlines()]


async def check_table_get(t: Target, r: Result) -> None:
    assert rows(r.out) == [["NAME", "AGE"], [SUCCEEDED, rows(r.out)[1][1]]]


async def check_table_list(t: Target, r: Result) -> None:
    table = rows(r.out)
    assert table[0] == ["NAME", "AGE"]
    assert [row[0] for row in table[1:]] == sorted([SUCCEEDED, IN_PROGRESS, FAILED])


async def check_all_namespaces(t: Target, r: Result) -> None:
    table = rows(r.out)
    assert table[0] == ["NAMESPACE", "NAME", "AGE"]
    assert [row[:2] for row in table[1:]] == [
        [NAMESPACE, n] for n in sorted([SUCCEEDED, IN_PROGRESS, FAILED])
    ]


async def check_label_column(t: Target, r: Result) -> None:
    table = rows(r.out)
    assert table[0] == ["NAME", "AGE", "UPGRADESTATE"]
    assert {row[0]: row[2:] for row in table[1:]} == {
        SUCCEEDED: ["Succeeded"],
        FAILED: ["Failed"],
        IN_PROGRESS: ["UpgradingNodes"],
    }


async def check_api_resources(t: Target, r: Result) -> None:
    assert rows(r.out) == [["upgrades", "harvesterhci.io/v1beta1", "true", "Upgrade"]]


async def check_server_version(t: Target, r: Result) -> None:
    server = json.loads(r.out)["serverVersion"]
    assert (server["major"], server["minor"], server["gitVersion"]) == ("1", "36", "v1.36.3")


async def check_json(t: Target, r: Result) -> None:
    obj = json.loads(r.out)
    live = await t.read(SUCCEEDED)
    live["metadata"].pop("managedFields", None)  # kubectl leaves them out by default
    assert obj == live


async def check_yaml_list(t: Target, r: Result) -> None:
    doc = yaml.safe_load(r.out)
    assert doc["kind"] == "List"
    assert [i["metadata"]["name"] for i in doc["items"]] == sorted([SUCCEEDED, IN_PROGRESS, FAILED])
    assert all(i["kind"] == "Upgrade" for i in doc["items"])


def label_is(name: str, key: str, value: str | None) -> After:
    async def check(t: Target, r: Result) -> None:
        labels = (await t.read(name))["metadata"].get("labels") or {}
        assert labels.get(key) == value

    return check


def unchanged(name: str) -> After:
    """The object is exactly as seeded (the reset leaves seeds untouched)."""

    async def check(t: Target, r: Result) -> None:
        obj = await t.read(name)
        assert obj["metadata"]["generation"] == 1
        assert READ not in (obj["metadata"].get("labels") or {})
        assert "parity" not in (obj["metadata"].get("annotations") or {})
        assert "parity" not in (obj["metadata"].get("labels") or {})

    return check


async def write_edited(t: Target, name: str, *, stale: bool = False, bogus: bool = False) -> Path:
    obj = await t.read(name)
    if stale:  # someone else writes after this copy was read
        await t.backend.merge_patch(name, {"metadata": {"labels": {"parity": "moved-on"}}})
    edited = copy.deepcopy(obj)
    edited["metadata"].setdefault("annotations", {})["parity"] = "replaced"
    if bogus:
        edited["spec"]["bogus"] = "yes"
    path = t.home / f"{name}.json"
    path.write_text(json.dumps(edited))
    return path


async def edited_file(t: Target) -> Mapping[str, str]:
    return {"file": str(await write_edited(t, SUCCEEDED))}


async def stale_file(t: Target) -> Mapping[str, str]:
    return {"file": str(await write_edited(t, SUCCEEDED, stale=True))}


async def bogus_file(t: Target) -> Mapping[str, str]:
    return {"file": str(await write_edited(t, SUCCEEDED, bogus=True))}


async def new_file(t: Target) -> Mapping[str, str]:
    path = t.home / "new.yaml"
    path.write_text(yaml.safe_dump(new_upgrade()))
    return {"file": str(path)}


async def check_created(t: Target, r: Result) -> None:
    kind, _, name = r.out.strip().partition("/")
    assert kind == UPGRADE
    assert name.startswith("hvst-upgrade-")
    assert len(name) == len("hvst-upgrade-") + 5
    created = await t.read(name)
    assert created["status"] == new_upgrade()["status"]
    assert created["spec"] == {**new_upgrade()["spec"], "logEnabled": True}  # defaulted


async def check_deleting(t: Target, r: Result) -> None:
    obj = await t.read(SUCCEEDED)  # a finalizer holds it
    assert obj["metadata"]["deletionTimestamp"]
    assert obj["metadata"]["deletionGracePeriodSeconds"] == 0
    assert obj["metadata"]["generation"] == 2


async def check_replaced(t: Target, r: Result) -> None:
    obj = await t.read(SUCCEEDED)
    assert obj["metadata"]["annotations"]["parity"] == "replaced"
    assert obj["status"]["conditions"], "a replace with status kept keeps it"


CASES: list[Case] = [
    Case("get-by-name", ("get", "upgrade", SUCCEEDED, *NS), after=check_table_get),
    Case("list", ("get", "upgrades", *NS), after=check_table_list),
    Case(
        "list-by-label",
        ("get", "upgrades", *NS, "-l", f"{STATE}=Succeeded", "-o", "name"),
        exact_out=f"{UPGRADE}/{SUCCEEDED}\n",
    ),
    Case(
        "list-by-set-label",
        ("get", "upgrades", *NS, "-l", f"{STATE} in (Succeeded,Failed)", "-o", "name"),
        exact_out=f"{UPGRADE}/{SUCCEEDED}\n{UPGRADE}/{FAILED}\n",
    ),
    Case("get-json", ("get", "upgrade", SUCCEEDED, *NS, "-o", "json"), after=check_json),
    Case("list-yaml", ("get", "upgrades", *NS, "-o", "yaml"), after=check_yaml_list),
    Case("all-namespaces", ("get", "upgrades", "-A"), after=check_all_namespaces),
    Case(
        "jsonpath",
        (
            "get",
            "upgrade",
            FAILED,
            *NS,
            "-o",
            r"jsonpath={.metadata.labels.harvesterhci\.io/upgradeState}",
        ),
        exact_out="Failed",
    ),
    Case(
        "label-overwrite",
        ("label", "upgrade", FAILED, *NS, f"{READ}=true", "--overwrite"),
        exact_out=f"{UPGRADE}/{FAILED} labeled\n",
        after=label_is(FAILED, READ, "true"),
    ),
    Case(
        "label-without-overwrite",
        ("label", "upgrade", SUCCEEDED, *NS, f"{STATE}=Failed"),
        rc=1,
        err=(f"error: '{STATE}' already has a value (Succeeded), and --overwrite is false",),
        after=label_is(SUCCEEDED, STATE, "Succeeded"),
    ),
    Case(
        "label-dry-run-server",
        ("label", "upgrade", SUCCEEDED, *NS, "parity=dry", "--dry-run=server"),
        exact_out=f"{UPGRADE}/{SUCCEEDED} labeled (server dry run)\n",
        after=unchanged(SUCCEEDED),
    ),
    Case(
        "label-invalid-value-client-side",
        ("label", "upgrade", SUCCEEDED, *NS, f"{READ}=not valid!", "--overwrite"),
        rc=1,
        err=(f'error: invalid label value: "{READ}=not valid!"',),
        after=unchanged(SUCCEEDED),
    ),
    Case(
        "bad-label-422",
        (
            "patch",
            "upgrade",
            SUCCEEDED,
            *NS,
            "--type=merge",
            "-p",
            '{"metadata":{"labels":{"bad key!":"x"}}}',
        ),
        rc=1,
        err=(
            f'The Upgrade "{SUCCEEDED}" is invalid: metadata.labels: Invalid value: "bad key!": '
            "name part must consist of alphanumeric characters",
        ),
        after=unchanged(SUCCEEDED),
    ),
    Case(
        "replace-validated",
        ("replace", "-f", "{file}", "--validate=strict"),
        setup=edited_file,
        exact_out=f"{UPGRADE}/{SUCCEEDED} replaced\n",
        after=check_replaced,
    ),
    Case(
        "replace-unknown-field-strict",
        ("replace", "-f", "{file}", "--validate=strict"),
        setup=bogus_file,
        rc=1,
        err=(
            'Error from server (BadRequest): error when replacing "{file}": Upgrade in version '
            '"v1beta1" cannot be handled as a Upgrade: strict decoding error: unknown field '
            '"spec.bogus"',
        ),
        after=unchanged(SUCCEEDED),
    ),
    Case(
        "replace-stale-409",
        ("replace", "-f", "{file}"),
        setup=stale_file,
        rc=1,
        err=(
            'Error from server (Conflict): error when replacing "{file}": Operation cannot be '
            f'fulfilled on upgrades.harvesterhci.io "{SUCCEEDED}": the object has been modified; '
            "please apply your changes to the latest version and try again",
        ),
        after=label_is(SUCCEEDED, "parity", "moved-on"),
    ),
    Case(
        "get-missing",
        ("get", "upgrade", "hvst-upgrade-nope", *NS),
        rc=1,
        err=(
            'Error from server (NotFound): upgrades.harvesterhci.io "hvst-upgrade-nope" not found',
        ),
    ),
    Case(
        "viewer-cannot-label",
        ("label", "upgrade", SUCCEEDED, *NS, f"{READ}=true"),
        token="sandbox-viewer",
        rc=1,
        err=(
            f'Error from server (Forbidden): upgrades.harvesterhci.io "{SUCCEEDED}" is forbidden: '
            'User "sandbox-viewer" cannot patch resource "upgrades" in API group '
            f'"harvesterhci.io" in the namespace "{NAMESPACE}"',
        ),
        after=unchanged(SUCCEEDED),
    ),
    Case(
        "can-i-admin",
        ("auth", "can-i", "patch", "upgrades.harvesterhci.io", *NS),
        exact_out="yes\n",
    ),
    Case(
        "can-i-viewer-patch",
        ("auth", "can-i", "patch", "upgrades.harvesterhci.io", *NS),
        token="sandbox-viewer",
        rc=1,
        exact_out="no\n",
    ),
    Case(
        "can-i-viewer-watch",
        ("auth", "can-i", "watch", "upgrades", *NS),
        token="sandbox-viewer",
        exact_out="yes\n",
    ),
    Case(
        "whoami-viewer",
        ("auth", "whoami", "-o", "jsonpath={.status.userInfo.username}"),
        token="sandbox-viewer",
        exact_out="sandbox-viewer",
    ),
    Case(
        "get-in-missing-namespace",
        ("get", "upgrade", SUCCEEDED, "-n", "no-such-namespace"),
        rc=1,
        err=('Error from server (NotFound): namespaces "no-such-namespace" not found',),
    ),
    Case(
        "list-in-empty-namespace",
        ("get", "upgrades", "-n", "default"),
        err=("No resources found in default namespace.",),
    ),
    Case(
        "field-selector",
        ("get", "upgrades", *NS, "--field-selector", f"metadata.name={FAILED}", "-o", "name"),
        exact_out=f"{UPGRADE}/{FAILED}\n",
    ),
    Case(
        "label-stale-resource-version-409",
        ("label", "upgrade", SUCCEEDED, *NS, "parity=late", "--resource-version=1"),
        rc=1,
        err=(
            "Error from server (Conflict): Operation cannot be fulfilled on "
            f'upgrades.harvesterhci.io "{SUCCEEDED}": the object has been modified; please apply '
            "your changes to the latest version and try again",
        ),
        after=unchanged(SUCCEEDED),
    ),
    Case(
        "json-patch-failed-test-422",
        (
            "patch",
            "upgrade",
            SUCCEEDED,
            *NS,
            "--type=json",
            "-p",
            '[{"op":"test","path":"/spec/version","value":"v9"}]',
        ),
        rc=1,
        err=(
            "The request is invalid: the server rejected our request due to an error in our "
            "request\n",
        ),
        after=unchanged(SUCCEEDED),
    ),
    Case(
        "strategic-merge-patch-415",
        ("patch", "upgrade", SUCCEEDED, *NS, "-p", '{"metadata":{"labels":{"parity":"x"}}}'),
        rc=1,
        err=(
            "error: application/strategic-merge-patch+json is not supported by "
            "harvesterhci.io/v1beta1, Kind=Upgrade: the body of the request was in an unknown "
            "format - accepted media types include: application/json-patch+json, "
            "application/merge-patch+json, application/apply-patch+yaml",
        ),
        after=unchanged(SUCCEEDED),
    ),
    Case(
        "annotate-dry-run-server",
        ("annotate", "upgrade", FAILED, *NS, "parity=dry", "--dry-run=server", "-o", "json"),
        after=unchanged(FAILED),
    ),
    Case(
        "explain",
        ("explain", "upgrades.spec"),
        out=("KIND:       Upgrade", "logEnabled\t<boolean>", "version\t<string>"),
    ),
    Case(
        "show-labels",
        ("get", "upgrade", FAILED, *NS, "--show-labels", "--no-headers"),
        out=(f"{STATE}=Failed",),
    ),
    Case(
        "label-columns",
        ("get", "upgrades", *NS, "-L", STATE),
        after=check_label_column,
    ),
    Case(
        "custom-columns",
        (
            "get",
            "upgrades",
            *NS,
            "--sort-by=.metadata.name",
            "-o",
            r"custom-columns=NAME:.metadata.name,STATE:.metadata.labels.harvesterhci\.io/upgradeState",
        ),
        exact_out=(
            "NAME                 STATE\n"
            f"{SUCCEEDED}   Succeeded\n"
            f"{FAILED}   Failed\n"
            f"{IN_PROGRESS}   UpgradingNodes\n"
        ),
    ),
    Case(
        "paged-list",
        ("get", "upgrades", *NS, "--chunk-size=1", "-o", "name"),
        exact_out="".join(f"{UPGRADE}/{n}\n" for n in sorted([SUCCEEDED, IN_PROGRESS, FAILED])),
    ),
    Case(
        "api-resources",
        ("api-resources", "--api-group=harvesterhci.io", "--no-headers"),
        after=check_api_resources,
    ),
    Case(
        "server-version",
        ("version", "-o", "json"),
        after=check_server_version,
    ),
    Case(
        "create-generated-name",
        ("create", "-f", "{file}", *NS, "-o", "name"),
        setup=new_file,
        after=check_created,
    ),
    Case(
        "create-in-missing-namespace",
        ("create", "-f", "{file}", "-n", "no-such-namespace"),
        setup=new_file,
        rc=1,
        err=(
            'Error from server (NotFound): error when creating "{file}": namespaces '
            '"no-such-namespace" not found',
        ),
    ),
    Case(
        "delete-waits-for-finalizers",
        ("delete", "upgrade", SUCCEEDED, *NS, "--wait=false"),
        exact_out=f'{UPGRADE} "{SUCCEEDED}" deleted\n',
        after=check_deleting,
    ),
    Case(
        "unknown-token",
        ("get", "upgrades", *NS),
        token="sandbox-unknown",
        rc=1,
        err=(
            "error: You must be logged in to the server (the server has asked for the client "
            "to provide credentials)",
        ),
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
async def test_kubectl(target: Target, case: Case) -> None:
    fields = dict(await case.setup(target)) if case.setup else {}
    args = tuple(a.format(**fields) if "{file}" in a else a for a in case.args)
    result = await target.kubectl(*args, token=case.token)
    context = f"{target.name}: kubectl {' '.join(args)}\n--- out\n{result.out}--- err\n{result.err}"
    assert result.rc == case.rc, context
    if case.exact_out is not None:
        assert result.out == case.exact_out, context
    for fragment in case.out:
        assert fragment.format(**fields) in result.out, context
    for fragment in case.err:
        assert fragment.format(**fields) in result.err, context
    if case.after is not None:
        await case.after(target, result)


@pytest.mark.parametrize("output", ["name", "table"])
async def test_kubectl_get_watch_sees_a_change(target: Target, output: str) -> None:
    """``get -w`` prints the object, then again when it changes; bounded by timeouts.

    ``table`` is kubectl's default human output (a header, then one row per event)."""
    wanted = ("-o", "name") if output == "name" else ()
    proc = await asyncio.create_subprocess_exec(
        *target.argv(("get", "upgrade", FAILED, *NS, "-w", *wanted, "--request-timeout=30s")),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=target.env("sandbox-viewer"),
    )
    assert proc.stdout is not None

    async def line(within: float = WATCH_LINE_TIMEOUT) -> str:
        assert proc.stdout is not None
        read = (await asyncio.wait_for(proc.stdout.readline(), within)).decode()
        if not read:  # kubectl ended its watch: say why
            assert proc.stderr is not None
            err = (await asyncio.wait_for(proc.stderr.read(), WATCH_LINE_TIMEOUT)).decode()
            raise AssertionError(f"kubectl stopped watching (exit {await proc.wait()}): {err}")
        return read

    try:
        if output == "name":
            assert await line() == f"{UPGRADE}/{FAILED}\n"
        else:
            assert (await line()).split() == ["NAME", "AGE"]
            assert (await line()).split()[0] == FAILED
        # kubectl prints the object, then watches from "0" and drops that watch's first
        # event (the object as it is then). A change made before its watch begins comes in
        # that event and is never shown, so the object is changed until a change is shown.
        for n in range(WATCH_CHANGES):
            labels = {READ: "true", "example.com/change": str(n)}
            await target.backend.merge_patch(FAILED, {"metadata": {"labels": labels}})
            with contextlib.suppress(TimeoutError):
                shown = await line(within=1.0)
                break
        else:
            raise AssertionError(f"kubectl showed none of {WATCH_CHANGES} changes")
        if output == "name":
            assert shown == f"{UPGRADE}/{FAILED}\n"
        else:
            assert shown.split()[0] == FAILED
        assert proc.returncode is None  # still watching
    finally:
        if proc.returncode is None:
            proc.kill()
        await proc.wait()
