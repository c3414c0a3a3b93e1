"""Contract cases, replayed against the emulator and against a real API server.

Each case is a YAML file under ``cases/<client>/``: the client's request, the
upstream state before, the exact upstream writes expected (the one label
merge patch, or none), the response expected, and the state after. The runner
also checks, for every case, that the status of every Upgrade is
byte-identical afterwards, that nothing but the read-message label changed,
and that the simulated Harvester controller re-initialised nothing.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from bff import captured
from bff.patches import WARNINGS, Ignored, mark_read_patch
from bff.sandbox.patching import apply_merge_patch
from bff.upgrade_resource import READ_MESSAGE
from tests.conftest import Stack
from tests.support.backends import FAILED, IN_PROGRESS, NAMESPACE, SUCCEEDED

HERE = Path(__file__).parent
CASES = sorted((HERE / "cases").glob("*/*.yaml"))
TARGETS = {"succeeded": SUCCEEDED, "in-progress": IN_PROGRESS, "failed": FAILED}
STATE_LABELS = {"succeeded": "Succeeded", "in-progress": "UpgradingNodes", "failed": "Failed"}


def _substitute(value: Any, names: dict[str, str]) -> Any:
    if isinstance(value, str):
        for key, replacement in names.items():
            value = value.replace("{{" + key + "}}", replacement)
        return value
    if isinstance(value, list):
        return [_substitute(v, names) for v in value]
    if isinstance(value, dict):
        return {k: _substitute(v, names) for k, v in value.items()}
    return value


def _body(case: dict[str, Any], live: dict[str, Any], names: dict[str, str]) -> bytes | None:
    request = case["request"]
    if "raw_body" in request:
        return str(request["raw_body"]).encode()
    if "body_bytes" in request:
        return b'{"pad":"' + b"x" * int(request["body_bytes"]) + b'"}'
    if "body_fixture" in request:
        body = json.loads(captured.files().joinpath(request["body_fixture"]).read_text())
        if not request.get("keep_identity"):
            # Aim the captured body at the case's target, as the browser would.
            body["id"] = f"{NAMESPACE}/{names['name']}"
            body["metadata"]["name"] = names["name"]
            if "uid" in body["metadata"]:
                body["metadata"]["uid"] = live["metadata"]["uid"]
            if "links" in body:
                body["links"] = {
                    k: v.replace(SUCCEEDED, names["name"]) for k, v in body["links"].items()
                }
    elif "body" in request:
        body = _substitute(copy.deepcopy(request["body"]), names)
    else:
        return None
    if "body_edits" in request:
        body = apply_merge_patch(body, _substitute(request["body_edits"], names))
    return json.dumps(body).encode()


def _load(path: Path) -> dict[str, Any]:
    case: dict[str, Any] = yaml.safe_load(path.read_text())
    assert {"title", "target", "request", "expect", "writes"} <= case.keys(), path
    return case


@pytest.mark.parametrize("case_path", CASES, ids=[f"{p.parent.name}/{p.stem}" for p in CASES])
async def test_contract_case(case_path: Path, stack: Stack) -> None:
    case = _load(case_path)
    backend = stack.backend
    target = case["target"]
    name = TARGETS[target]

    given = case.get("given", {})
    if given.get("recreated"):
        stale = await backend.read(name)
        await backend.recreate(name)
    if given.get("labels"):
        await backend.merge_patch(name, {"metadata": {"labels": given["labels"]}})
    if given.get("recreated"):
        live_for_body = stale
    before_all = await backend.read_all()
    live = before_all[name]
    if not given.get("recreated"):
        live_for_body = live
    names = {
        "namespace": NAMESPACE,
        "name": name,
        "uid": live["metadata"]["uid"],
        "resourceVersion": live["metadata"]["resourceVersion"],
    }

    request = case["request"]
    headers = {"Authorization": "Bearer sandbox-admin"}
    body = _body(case, live_for_body, names)
    if body is not None:
        headers["Content-Type"] = "application/json"
    headers.update(request.get("headers") or {})
    headers = {k: v for k, v in headers.items() if v is not None}
    stack.recorder.writes.clear()
    stack.recorder.requests.clear()

    response = await stack.client.request(
        request["method"], _substitute(request["path"], names), data=body, headers=headers
    )
    payload = await response.json()
    expect = case["expect"]

    assert response.status == expect["status"], payload
    if "code" in expect:
        assert payload["type"] == "error"
        assert payload["code"] == expect["code"], payload
        assert payload["status"] == expect["status"]
    if "changed" in expect:
        assert response.headers["X-Upgrade-Bff-Changed"] == str(expect["changed"]).lower()
    if "warnings" in expect:
        sent = sorted(response.headers.getall("Warning", []))
        wanted = sorted(f'299 - "{WARNINGS[Ignored(c)]}"' for c in expect["warnings"])
        assert sent == wanted
    if "message_contains" in expect:
        assert expect["message_contains"] in payload["message"]
    if "count" in expect:
        assert payload["type"] == "collection"
        assert len(payload["data"]) == expect["count"]
    elif response.status == 200:
        assert payload["id"] == f"{NAMESPACE}/{name}"
        assert payload["type"] == "harvesterhci.io.upgrade"
        assert payload["status"] == live["status"], "the response must carry the live status"
    if "links_self" in expect:
        assert payload["links"]["self"] == _substitute(expect["links_self"], names)
    for key in expect.get("no_keys", []):
        assert key not in payload
    if expect.get("actions"):
        self_url = payload["links"]["self"]
        assert payload["actions"] == {
            "dismiss": f"{self_url}?action=dismiss",
            "cancel": f"{self_url}?action=cancel",
        }
    if "upstream_calls" in case:
        assert len(stack.recorder.requests) == case["upstream_calls"]

    writes = stack.upstream_writes()
    if case["writes"] == "read-message":
        assert len(writes) == 1, writes
        write = writes[0]
        assert write.method == "PATCH"
        assert write.content_type == "application/merge-patch+json"
        assert write.path.endswith(f"/namespaces/{NAMESPACE}/upgrades/{name}")
        assert write.body == mark_read_patch(live["metadata"]["resourceVersion"])
    elif case["writes"] == "refused":
        assert [(w.method, w.status) for w in writes] == [("PATCH", expect["status"])]
    else:
        assert case["writes"] == "none", case_path
        assert writes == []

    after_all = await backend.read_all()
    assert after_all.keys() == before_all.keys()
    for obj_name, before in before_all.items():
        after = after_all[obj_name]
        assert json.dumps(after.get("status"), sort_keys=True) == json.dumps(
            before.get("status"), sort_keys=True
        ), f"status of {obj_name} changed"
        assert after["spec"] == before["spec"]
        assert after["metadata"]["uid"] == before["metadata"]["uid"]
        labels_before = dict(before["metadata"].get("labels") or {})
        labels_after = dict(after["metadata"].get("labels") or {})
        if obj_name == name and case["writes"] == "read-message":
            labels_before[READ_MESSAGE] = "true"
        assert labels_after == labels_before, f"labels of {obj_name}"
        assert after["metadata"].get("annotations") == before["metadata"].get("annotations")
        assert after["metadata"].get("finalizers") == before["metadata"].get("finalizers")
    after = after_all[name]
    assert after["metadata"]["labels"]["harvesterhci.io/upgradeState"] == STATE_LABELS[target]
    if "read_message_after" in case:
        assert after["metadata"]["labels"].get(READ_MESSAGE) == case["read_message_after"]

    await stack.settle()
    assert stack.controller.reinitialisations == 0
