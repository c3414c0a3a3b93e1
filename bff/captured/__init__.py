"""Data captured from a real Harvester cluster and the real dashboard extension, one copy each.

* ``upgrades.harvesterhci.io.crd.yaml``: Harvester's Upgrade CRD. The emulator
  serves and validates with it, the real API server in the tests installs it,
  and ``/openapi.json`` takes the Upgrade schema from its ``openAPIV3Schema``.
* ``upgrades/``: three real Upgrades as read from a cluster (succeeded, in
  progress, failed), server-owned fields included. The sandbox and the real
  API server in the tests are seeded with them.
* ``clients/``: the bodies the extension's ``save()`` PUTs on "Dismiss it",
  per client version, for the succeeded Upgrade as ``bff/steve.py`` renders it.
  ``tests/referee/test_shell_bodies.py`` checks each equals what the extension's
  own code sends (``referee/shell``). The OpenAPI examples and the tests use them.
* ``dashboard/requests.json``: every request the extension (v1.0.2-v1.0.5)
  makes under the Steve Upgrade paths (method, path, query, body), each with
  the source file it was read from. The Ingress tests route each one.
* ``crds/``: the CRDs of the other resources the cluster guard protects (IPPool,
  LoadBalancer, ScheduleVMBackup, Setting, KeyPair, ClusterNetwork), copied
  unchanged from Harvester v1.5.0 and its component charts (``crds/SOURCES``,
  Apache License 2.0 in ``crds/LICENSE``).
* ``guarded/``: one object of each of those six kinds with a status as its
  controller writes it. Unlike the Upgrades these were not read from a cluster:
  they are composed from the CRDs' schemas and the controllers' code (condition
  types, finalizer names), for the sandbox's seeds and the guard's tests.

Everything here is read-only package data; :func:`crd` and friends return
fresh copies, so a caller may change what it gets.
"""

from __future__ import annotations

import json
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Any

import yaml

from bff.upgrade_resource import VERSION

CRD_FILE = "upgrades.harvesterhci.io.crd.yaml"
#: The seed Upgrades, by what they show.
UPGRADE_FILES = {
    "failed": "upgrade-failed.json",
    "in-progress": "upgrade-in-progress.json",
    "succeeded": "upgrade-succeeded.json",
}
#: Client versions whose "Dismiss it" PUT body was captured.
CLIENT_VERSIONS = ("v1.0.4", "v1.0.5")


def files() -> Traversable:
    """The package's folder (in a wheel or a source tree)."""
    return resources.files(__name__)


def crd_text() -> str:
    return files().joinpath(CRD_FILE).read_text()


def crd() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(crd_text())
    return loaded


def upgrade_schema(version: str = VERSION) -> dict[str, Any]:
    """The CRD's ``openAPIV3Schema`` for ``version``."""
    loaded = crd()
    for served in loaded["spec"]["versions"]:
        if served["name"] == version:
            schema: dict[str, Any] = served["schema"]["openAPIV3Schema"]
            return schema
    raise KeyError(f"the CRD has no version {version}")


def upgrade(which: str) -> dict[str, Any]:
    """One seed Upgrade: ``"succeeded"``, ``"in-progress"`` or ``"failed"``."""
    obj: dict[str, Any] = json.loads(files().joinpath("upgrades", UPGRADE_FILES[which]).read_text())
    return obj


def upgrades() -> list[dict[str, Any]]:
    """Every seed Upgrade, in a fixed order (failed, in progress, succeeded)."""
    return [upgrade(which) for which in UPGRADE_FILES]


DASHBOARD_REQUESTS = ("dashboard", "requests.json")


def dashboard_requests() -> dict[str, Any]:
    """What the dashboard sends under the Upgrade paths (``dashboard/requests.json``)."""
    loaded: dict[str, Any] = json.loads(files().joinpath(*DASHBOARD_REQUESTS).read_text())
    return loaded


def client_body_path(version: str) -> Traversable:
    return files().joinpath("clients", f"{version}-dismiss-put-body.json")


def client_body(version: str) -> dict[str, Any]:
    """What extension ``version`` PUTs on "Dismiss it"."""
    body: dict[str, Any] = json.loads(client_body_path(version).read_text())
    return body


GUARDED_KINDS = (
    "ippool", "loadbalancer", "schedulevmbackup", "setting", "keypair", "clusternetwork"
)  # fmt: skip


def guarded_crds() -> list[dict[str, Any]]:
    """The six CRDs of ``crds/``, in a fixed order (by file name)."""
    folder = files().joinpath("crds")
    names = sorted(e.name for e in folder.iterdir() if e.name.endswith(".yaml"))
    return [yaml.safe_load(folder.joinpath(name).read_text()) for name in names]


def guarded_object(kind: str) -> dict[str, Any]:
    """One seed object of ``guarded/`` by its lowercase kind (``"ippool"``)."""
    obj: dict[str, Any] = json.loads(files().joinpath("guarded", f"{kind}.json").read_text())
    return obj


def guarded_objects() -> list[dict[str, Any]]:
    return [guarded_object(kind) for kind in GUARDED_KINDS]
