"""The Pact provider-state endpoint: what each state does, and that only the sandbox has it.

The states are exercised on ``harvester-upgrade-bff sandbox`` run as a user runs
it, and checked through the BFF's own API with the tokens they hand out.
``serve`` is started as an operator starts it and must answer the same path
with 404.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bff.app import create_app
from bff.sandbox.kubeconfig import write_kubeconfig
from bff.sandbox.provider_states import PATH
from bff.settings import Settings
from tests.consumer_contracts.sandbox_process import running_sandbox

NS = "harvester-system"
READ = "harvesterhci.io/read-message"


def call(
    method: str, url: str, body: Any = None, *, token: str | None = None, raw: bytes | None = None
) -> tuple[int, Any]:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    request = urllib.request.Request(url, data=data, method=method, headers=headers)  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, json.loads(exc.read() or b"null")


@pytest.fixture(scope="module")
def sandbox() -> Iterator[str]:
    with running_sandbox() as url:
        yield url


def state(sandbox: str, which: str, **params: str) -> dict[str, Any]:
    status, values = call(
        "POST", sandbox + PATH, {"state": which, "params": params, "action": "setup"}
    )
    assert status == 200, values
    assert isinstance(values, dict)
    return values


def test_a_finished_upgrade_is_created_unread_and_reset_after_a_dismiss(sandbox: str) -> None:
    values = state(sandbox, "a finished upgrade exists", namespace=NS, name="hvst-upgrade-pact1")
    assert values["namespace"] == NS
    assert values["name"] == "hvst-upgrade-pact1"
    url = f"{sandbox}/api/v1.0.5/upgrades/{NS}/hvst-upgrade-pact1"
    status, obj = call("GET", url, token="sandbox-admin")
    assert status == 200
    assert obj["metadata"]["uid"] == values["uid"]
    assert obj["metadata"]["resourceVersion"] == values["resourceVersion"]
    assert obj["metadata"]["labels"]["harvesterhci.io/upgradeState"] == "Succeeded"
    assert READ not in obj["metadata"]["labels"]
    assert {c["type"]: c["status"] for c in obj["status"]["conditions"]}["Completed"] == "True"

    status, obj = call("POST", url + "?action=dismiss", token="sandbox-admin")
    assert (status, obj["metadata"]["labels"][READ]) == (200, "true")

    again = state(sandbox, "a finished upgrade exists", namespace=NS, name="hvst-upgrade-pact1")
    assert again["uid"] == values["uid"]  # the same object, rewritten
    assert int(again["resourceVersion"]) > int(values["resourceVersion"])
    status, obj = call("GET", url, token="sandbox-admin")
    assert READ not in obj["metadata"]["labels"]


def test_an_upgrade_in_progress_refuses_a_dismiss(sandbox: str) -> None:
    state(sandbox, "an upgrade is in progress", namespace=NS, name="hvst-upgrade-pact2")
    url = f"{sandbox}/api/v1.0.5/upgrades/{NS}/hvst-upgrade-pact2"
    status, obj = call("GET", url, token="sandbox-admin")
    assert obj["metadata"]["labels"]["harvesterhci.io/upgradeState"] == "UpgradingNodes"
    status, error = call("POST", url + "?action=dismiss", token="sandbox-admin")
    assert (status, error["code"]) == (409, "UpgradeInProgress")


def test_a_failed_upgrade_defaults_to_the_failed_seed(sandbox: str) -> None:
    values = state(sandbox, "a failed upgrade exists")
    status, obj = call(
        "GET", f"{sandbox}/api/v1.0.4/upgrades/{NS}/{values['name']}", token="sandbox-admin"
    )
    assert status == 200
    assert obj["metadata"]["labels"]["harvesterhci.io/upgradeState"] == "Failed"


def test_caller_states_hand_out_tokens_with_those_rights(sandbox: str) -> None:
    target = state(sandbox, "a finished upgrade exists", namespace=NS, name="hvst-upgrade-pact3")
    url = f"{sandbox}/api/v1.0.5/upgrades/{NS}/{target['name']}"
    admin = state(sandbox, "the caller may dismiss upgrades")["token"]
    viewer = state(sandbox, "the caller is a viewer")["token"]
    expired = state(sandbox, "the caller's session has expired")["token"]
    assert len({admin, viewer, expired}) == 3

    assert call("GET", url, token=viewer)[0] == 200
    status, error = call("POST", url + "?action=dismiss", token=viewer)
    assert (status, error["type"], error["code"]) == (403, "error", "Forbidden")
    status, error = call("GET", url, token=expired)
    assert (status, error["type"], error["code"]) == (401, "error", "Unauthorized")
    status, obj = call("POST", url + "?action=dismiss", token=admin)
    assert (status, obj["metadata"]["labels"][READ]) == (200, "true")


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        ({"state": "a unicorn exists", "action": "setup"}, 400, "known states: a finished"),
        ({"state": "a finished upgrade exists", "params": {"name": "Not_A_Name"}}, 400, "name"),
        ({"state": "a finished upgrade exists", "action": "explode"}, 400, "unknown action"),
        ({"params": {}}, 400, '{"state"'),
        (["a finished upgrade exists"], 400, '{"state"'),
    ],
)
def test_a_bad_state_request_is_refused_and_says_why(
    sandbox: str, body: Any, status: int, says: str
) -> None:
    got, error = call("POST", sandbox + PATH, body)
    assert (got, error["type"], error["code"]) == (status, "error", "InvalidProviderState")
    assert says in error["message"]


def test_teardown_and_the_empty_state_change_nothing(sandbox: str) -> None:
    before = call("GET", f"{sandbox}/api/v1.0.5/upgrades", token="sandbox-admin")[1]
    for body in (
        {"state": "a finished upgrade exists", "action": "teardown"},
        {"state": "", "action": "setup"},
    ):
        assert call("POST", sandbox + PATH, body) == (200, {})
    after = call("GET", f"{sandbox}/api/v1.0.5/upgrades", token="sandbox-admin")[1]
    assert after["revision"] == before["revision"]


def test_only_json_is_accepted_so_a_cross_origin_form_cannot_reset_the_sandbox(
    sandbox: str,
) -> None:
    request = urllib.request.Request(  # noqa: S310
        sandbox + PATH,
        data=b"state=an+upgrade+is+in+progress",
        method="POST",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=10)  # noqa: S310
    with caught.value as response:
        assert response.code == 415
    assert call("POST", sandbox + PATH, raw=b"{not json")[0] == 400


def test_serve_has_no_state_change_route(tmp_path: Path) -> None:
    # The app `serve` builds, in-process: no route under /_sandbox at all.
    for base in ("", "/harvester-upgrade-bff"):
        app = create_app(Settings(base_path=base))
        paths = [r.canonical for r in app.router.resources()]
        assert paths, "the app has no routes at all"
        assert not [p for p in paths if "_sandbox" in p]

    # And `serve` itself, started as an operator starts it: the path is a 404.
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", "http://127.0.0.1:9", token="t")
    env = {k: v for k, v in os.environ.items() if not k.startswith("BFF_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "bff", "serve", "--kubeconfig", str(kubeconfig), "--port", "0"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    try:
        assert proc.stderr is not None
        url = None
        deadline = time.monotonic() + 30
        while url is None and time.monotonic() < deadline:
            line = proc.stderr.readline()
            if not line:
                break
            match = re.search(r"serving on (http://\S+)", line)
            url = match.group(1) if match else None
        assert url is not None, "serve did not say where it listens"
        status, error = call("POST", url + PATH, {"state": "an upgrade is in progress"})
        assert (status, error["type"], error["code"]) == (404, "error", "NotFound")
        assert call("GET", url + "/healthz")[0] == 200  # it is serving, just not that
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        if proc.stderr is not None:
            proc.stderr.close()
