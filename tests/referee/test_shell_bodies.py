"""The bodies the extension's own ``save()`` sends, from its real code (``referee/shell``).

Covers ``tests/support/shell.py`` and what it shows about the two client generations:

* "Dismiss it" on an Upgrade as ``bff/steve.py`` renders it: v1.0.4 sends no
  status, finalizers or ownerReferences; v1.0.5 sends everything back, links too;
* the same from an Upgrade in real Steve's shape (``metadata.state``, ``fields``,
  ``relationships``, conditions with ``error``/``transitioning``): v1.0.4 also
  sends ``metadata.fields``; v1.0.5 sends every Steve addition and the absolute
  links, but not ``managedFields``: the dashboard's store GETs the item with
  ``exclude=metadata.managedFields``, which Steve honours. (A response saved
  from a running real Steve is not in the project yet: the objects in
  ``tests/fixtures/resources/`` are written in its shape.)
* the captured bodies in ``bff/captured/clients/`` are what the real code sends
  for the captured succeeded Upgrade rendered by ``bff/steve.py``;
* for each of the seven resources the cluster guard covers, a UI edit through the
  v1.0.4 model drops status, finalizers and ownerReferences, and through v1.0.5
  keeps them; both carry the edit;
* a runner whose ``SteveModel.cleanForSave`` is replaced is caught;
* ``run()`` sends the caller's headers over real HTTP and reports a refused PUT.

Every body comes from the bundled code over loopback HTTP; nothing here builds one.
"""

from __future__ import annotations

import contextlib
import copy
import http.server
import json
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from bff import captured
from bff.steve import STEVE, resource
from tests.support import shell

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "resources"
CRDS = Path(__file__).resolve().parents[2] / "bff" / "captured" / "crds"
#: The CRD file each fixture is written against.
CRD_FILES = {
    "ippool": "loadbalancer.harvesterhci.io_ippools.yaml",
    "loadbalancer": "loadbalancer.harvesterhci.io_loadbalancers.yaml",
    "schedulevmbackup": "harvesterhci.io_schedulevmbackups.yaml",
    "clusternetwork": "network.harvesterhci.io_clusternetworks.yaml",
    "setting": "harvesterhci.io_settings.yaml",
    "keypair": "harvesterhci.io_keypairs.yaml",
}
#: The Steve path the dashboard's Harvester store uses for Upgrades.
UPGRADES = "/v1/harvester/harvesterhci.io.upgrades"
READ_MESSAGE = "harvesterhci.io/read-message"
#: What each resource's UI does before it saves (issue 23's "UI action" column).
EDITS = {
    "upgrade": shell.DISMISS,
    "ippool": shell.annotation(shell.DESCRIPTION, "edited in the UI"),
    "loadbalancer": shell.annotation(shell.DESCRIPTION, "edited in the UI"),
    "schedulevmbackup": "action:resumeSchedule",
    "clusternetwork": shell.annotation(shell.DESCRIPTION, "edited in the UI"),
    "setting": shell.set_field("value", "bundled"),
    "keypair": shell.annotation(shell.DESCRIPTION, "edited in the UI"),
}
#: Server-owned metadata the shell's cleanForSave (v1.0.4) removes; v1.0.5 keeps it.
SERVER_METADATA = (
    "creationTimestamp",
    "generation",
    "uid",
    "managedFields",
    "state",
    "relationships",
)


@pytest.fixture(scope="module")
def bundles() -> dict[str, Path]:
    return shell.built_or_skip()


def fixture(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text())
    return loaded


def rendered_upgrade() -> dict[str, Any]:
    """The captured succeeded Upgrade as the BFF's own Steve rendering serves it."""
    return resource(captured.upgrade("succeeded"), STEVE.at(UPGRADES))


def edited(name: str, obj: dict[str, Any]) -> tuple[Any, ...]:
    """Where the edit ``EDITS[name]`` must show in a saved body, and its value."""
    meta = obj["metadata"]
    if name == "upgrade":
        return ("label", READ_MESSAGE, "true")
    if name == "schedulevmbackup":
        assert obj["spec"]["suspend"] is True, "the fixture must start suspended"
        return ("spec.suspend", False)
    if name == "setting":
        return ("value", "bundled")
    assert shell.DESCRIPTION not in meta.get("annotations", {})
    return ("annotation", shell.DESCRIPTION, "edited in the UI")


def assert_carries_edit(name: str, source: dict[str, Any], body: dict[str, Any]) -> None:
    want = edited(name, source)
    if want[0] == "label":
        assert body["metadata"]["labels"][want[1]] == want[2]
    elif want[0] == "annotation":
        assert body["metadata"]["annotations"][want[1]] == want[2]
    elif want[0] == "spec.suspend":
        assert body["spec"]["suspend"] is want[1]
    else:
        assert body[want[0]] == want[1]


def v104_problems(source: dict[str, Any], body: dict[str, Any]) -> list[str]:
    """How ``body`` differs from what v1.0.4's cleanForSave leaves of ``source``."""
    problems = []
    for top in ("status", "links"):
        if top in body:
            problems.append(f"sends {top}")
    meta = body.get("metadata", {})
    for field in ("finalizers", "ownerReferences", *SERVER_METADATA):
        if field in meta:
            problems.append(f"sends metadata.{field}")
    # What SteveModel's cleanForSave keeps on purpose (STEVE_ADD), when the source has it.
    for field in ("resourceVersion", "fields", "generateName"):
        if field in source["metadata"] and meta.get(field) != source["metadata"][field]:
            problems.append(f"metadata.{field} is not the source's")
    for top in ("apiVersion", "kind", "id", "type"):
        if body.get(top) != source.get(top):
            problems.append(f"{top} is not the source's")
    return problems


def kubernetes_part(steve_object: dict[str, Any]) -> dict[str, Any]:
    """The object as the API server stores it: without what Steve adds."""
    obj = copy.deepcopy(steve_object)
    for key in ("id", "type", "links"):
        obj.pop(key)
    for key in ("state", "fields", "relationships"):
        obj["metadata"].pop(key)
    for condition in obj.get("status", {}).get("conditions", []):
        condition.pop("error")
        condition.pop("transitioning")
    return obj


def unknown_fields(value: Any, schema: dict[str, Any], at: str = "") -> list[str]:
    """Fields the API server would prune: not in the structural schema."""
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        return []
    if isinstance(value, list):
        items = schema.get("items", {})
        return [p for i, v in enumerate(value) for p in unknown_fields(v, items, f"{at}[{i}]")]
    if not isinstance(value, dict) or schema.get("type") != "object":
        return []
    props, extra = schema.get("properties"), schema.get("additionalProperties")
    if props is None and isinstance(extra, dict):
        return [p for k, v in value.items() for p in unknown_fields(v, extra, f"{at}.{k}")]
    if props is None or at == ".metadata":
        return []
    out = []
    for key, v in value.items():
        if key not in props:
            out.append(f"{at}.{key}")
        else:
            out.extend(unknown_fields(v, props[key], f"{at}.{key}"))
    return out


@pytest.mark.parametrize("name", sorted(EDITS))
def test_each_fixture_is_valid_against_its_crd_and_loses_nothing_to_pruning(name: str) -> None:
    source = fixture(name)
    crd = (
        captured.crd()
        if name == "upgrade"
        else yaml.safe_load((CRDS / CRD_FILES[name]).read_text())
    )
    api_group, api_version = source["apiVersion"].split("/")
    assert crd["spec"]["group"] == api_group
    assert crd["spec"]["names"]["kind"] == source["kind"]
    served = {v["name"]: v for v in crd["spec"]["versions"]}
    schema = served[api_version]["schema"]["openAPIV3Schema"]
    # No status subresource: a whole-object PUT is what writes status (issue 23).
    assert "status" not in served[api_version].get("subresources", {})
    obj = kubernetes_part(source)
    jsonschema.validate(obj, schema)
    assert unknown_fields(obj, schema) == []
    assert (crd["spec"]["scope"] == "Namespaced") == ("namespace" in obj["metadata"])


def test_v104_dismiss_of_the_bff_rendering_drops_status_and_finalizers(
    bundles: dict[str, Path],
) -> None:
    source = rendered_upgrade()
    body = shell.saved_body("v1.0.4", "upgrade", source, edit=shell.DISMISS)
    assert v104_problems(source, body) == []
    assert "status" not in body
    assert "finalizers" not in body["metadata"]
    assert body["metadata"]["labels"] == {
        **source["metadata"]["labels"],
        READ_MESSAGE: "true",
    }
    assert body["metadata"]["resourceVersion"] == "123456"
    assert body["spec"] == source["spec"]
    assert body["id"] == "harvester-system/hvst-upgrade-7xn6v"
    assert body["type"] == "harvesterhci.io.upgrade"


def test_v105_dismiss_of_the_bff_rendering_sends_everything_back(
    bundles: dict[str, Path],
) -> None:
    source = rendered_upgrade()
    body = shell.saved_body("v1.0.5", "upgrade", source, edit=shell.DISMISS)
    expected = copy.deepcopy(source)
    expected["metadata"]["labels"][READ_MESSAGE] = "true"
    assert body == expected
    assert body["status"]["conditions"][0] == {
        "lastUpdateTime": "2025-03-10T10:58:02Z",
        "status": "True",
        "type": "Completed",
    }
    assert body["metadata"]["finalizers"] == ["wrangler.cattle.io/harvester-upgrade-controller"]
    assert body["links"] == {
        "self": f"{UPGRADES}/harvester-system/hvst-upgrade-7xn6v",
        "update": f"{UPGRADES}/harvester-system/hvst-upgrade-7xn6v",
    }


def test_v104_dismiss_of_a_real_steve_shape_also_sends_metadata_fields(
    bundles: dict[str, Path],
) -> None:
    source = fixture("upgrade")
    body = shell.saved_body("v1.0.4", "upgrade", source, edit=shell.DISMISS)
    assert v104_problems(source, body) == []
    assert_carries_edit("upgrade", source, body)
    assert body["metadata"]["fields"] == ["hvst-upgrade-7xn6v", "2d"]
    assert sorted(body["metadata"]) == [
        "annotations",
        "fields",
        "generateName",
        "labels",
        "name",
        "namespace",
        "resourceVersion",
    ]


def test_v105_dismiss_of_a_real_steve_shape_sends_every_steve_addition(
    bundles: dict[str, Path],
) -> None:
    source = fixture("upgrade")
    body = shell.saved_body("v1.0.5", "upgrade", source, edit=shell.DISMISS)
    assert_carries_edit("upgrade", source, body)
    meta = body["metadata"]
    assert meta["state"] == {
        "error": False,
        "message": "Resource is current",
        "name": "active",
        "transitioning": False,
    }
    assert meta["relationships"] == []
    assert meta["fields"] == ["hvst-upgrade-7xn6v", "2d"]
    # The one server field v1.0.5 does not send back: the dashboard's GET asks Steve
    # to leave managedFields out (exclude=metadata.managedFields), so its model never has them.
    assert "managedFields" not in meta
    assert meta["uid"] == source["metadata"]["uid"]
    assert meta["generation"] == 3
    assert meta["ownerReferences"] == source["metadata"]["ownerReferences"]
    assert all({"error", "transitioning"} <= set(c) for c in body["status"]["conditions"])
    # The links go back as Steve rendered them: absolute, on Steve's own origin.
    assert body["links"] == source["links"]
    assert body["links"]["update"].startswith("https://steve.invalid:9443/v1/")


@pytest.mark.parametrize("version", shell.VERSIONS)
def test_captured_client_bodies_are_what_the_real_code_sends(
    bundles: dict[str, Path], version: str
) -> None:
    # Same input as the capture (the captured succeeded Upgrade, Steve-rendered by
    # the BFF), so nothing needs normalising: resourceVersion and uid are the source's.
    body = shell.saved_body(version, "upgrade", rendered_upgrade(), edit=shell.DISMISS)
    assert body == captured.client_body(version)


@pytest.mark.parametrize("name", sorted(EDITS))
def test_v104_edit_drops_status_finalizers_and_owner_references(
    bundles: dict[str, Path], name: str
) -> None:
    source = fixture(name)
    assert source["status"]
    assert source["metadata"]["finalizers"]
    assert source["metadata"]["ownerReferences"]
    body = shell.saved_body("v1.0.4", name, source, edit=EDITS[name])
    assert v104_problems(source, body) == []
    assert_carries_edit(name, source, body)
    # Everything the user did not touch outside metadata and status goes back as loaded.
    for top in set(source) - {"metadata", "status", "links", "spec", "value"}:
        assert body[top] == source[top], top


@pytest.mark.parametrize("name", sorted(EDITS))
def test_v105_edit_keeps_status_finalizers_and_owner_references(
    bundles: dict[str, Path], name: str
) -> None:
    source = fixture(name)
    body = shell.saved_body("v1.0.5", name, source, edit=EDITS[name])
    assert body["status"] == source["status"]
    assert body["metadata"]["finalizers"] == source["metadata"]["finalizers"]
    assert body["metadata"]["ownerReferences"] == source["metadata"]["ownerReferences"]
    for field in set(SERVER_METADATA) - {"managedFields"}:
        assert body["metadata"][field] == source["metadata"][field], field
    assert "managedFields" not in body["metadata"]
    assert body["links"] == source["links"]
    assert_carries_edit(name, source, body)


def test_a_runner_without_the_shells_cleanforsave_is_caught(
    bundles: dict[str, Path], tmp_path: Path
) -> None:
    # The mutant: SteveModel.cleanForSave no longer deletes STEVE_NEVER_SAVE.
    real = bundles["v1.0.4"].read_text()
    loop = "    for (const field of STEVE_NEVER_SAVE) {\n      deleteProperty(val, field);\n    }\n"
    assert real.count(loop) == 1, "the bundle's SteveModel.cleanForSave changed shape"
    mutant = tmp_path / "shell-v1.0.4.cjs"
    mutant.write_text(real.replace(loop, ""))
    source = fixture("ippool")
    body = shell.saved_body("v1.0.4", "ippool", source, edit=EDITS["ippool"], bundle=mutant)
    problems = v104_problems(source, body)
    assert "sends status" in problems
    assert "sends metadata.finalizers" in problems
    assert body != shell.saved_body("v1.0.4", "ippool", source, edit=EDITS["ippool"])


class _Guarded(shell.JsonHandler):
    """A Steve item that wants a bearer token and refuses the PUT with a conflict."""

    server: _GuardedServer

    def do_GET(self) -> None:
        self.server.seen.append(("GET", self.headers.get("Authorization")))
        if self.headers.get("Authorization") != "Bearer t0ken":
            self._answer(401, {"type": "error", "status": 401, "code": "Unauthorized"})
        else:
            self._answer(200, self.server.item)

    def do_PUT(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.server.seen.append(("PUT", self.headers.get("Authorization")))
        self._answer(409, {"type": "error", "status": 409, "code": "Conflict"})

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _GuardedServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Guarded)
        self.seen: list[tuple[str, str | None]] = []
        self.item: dict[str, Any] = {}


@contextlib.contextmanager
def guarded() -> Iterator[_GuardedServer]:
    server = _GuardedServer()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def test_run_sends_the_callers_headers_and_reports_a_refused_put(
    bundles: dict[str, Path],
) -> None:
    with guarded() as server:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        server.item = resource(captured.upgrade("succeeded"), STEVE.at(f"{base}{UPGRADES}"))
        url = f"{base}{UPGRADES}/harvester-system/hvst-upgrade-7xn6v"
        result = shell.run(
            "v1.0.4", "upgrade", url, {"Authorization": "Bearer t0ken"}, edit=shell.DISMISS
        )
        assert server.seen == [("GET", "Bearer t0ken"), ("PUT", "Bearer t0ken")]
        assert result.status == 409
        assert result.response["code"] == "Conflict"
        assert (result.method, result.url, result.model) == ("PUT", url, "HciUpgrade")
        assert result.body["metadata"]["labels"][READ_MESSAGE] == "true"
        # Without the token the GET is refused, and there is nothing to save.
        with pytest.raises(shell.ShellRunError, match="401"):
            shell.run("v1.0.4", "upgrade", url, edit=shell.DISMISS)


def test_the_runner_refuses_bad_arguments_in_one_line(bundles: dict[str, Path]) -> None:
    with pytest.raises(ValueError, match="no extension model"):
        shell.run("v1.0.4", "pods", "http://127.0.0.1:1/v1/pods/x")
    with pytest.raises(ValueError, match="version must be one of"):
        shell.run("v1.0.3", "upgrade", "http://127.0.0.1:1/v1/x/y")
    with pytest.raises(ValueError, match=r"links\.update"):
        shell.saved_body("v1.0.4", "upgrade", captured.upgrade("succeeded"))
    assert shutil.which("node")
