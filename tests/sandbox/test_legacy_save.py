"""bff/sandbox/legacy_save.py: the sandbox's v1.0.4 save equals the extension's real one.

The demo and the page build extension v1.0.4's bodies without Node; here the same
Steve items go through the extension's own ``save()`` (tests/support/shell.py) and
the two bodies must be equal, for the dismiss and for an edit of every resource
the guard covers.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from bff import captured
from bff.demo import ippool_saved_body, legacy_dismiss_body
from bff.sandbox.legacy_save import steve_item, v104_body
from bff.sandbox.seed import seed_objects
from tests.support import shell


@pytest.fixture(scope="module", autouse=True)
def _bundle() -> None:
    shell.built_or_skip()


OWNER = {
    "apiVersion": "harvesterhci.io/v1beta1",
    "kind": "Version",
    "name": "v1.5.0",
    "uid": "5d1c0f7e-0000-4000-8000-000000000002",
}


def _objects() -> list[dict[str, Any]]:
    return [*seed_objects(), *captured.guarded_objects()]


@pytest.mark.parametrize("obj", _objects(), ids=lambda o: f"{o['kind']}/{o['metadata']['name']}")
def test_the_sandbox_save_is_the_real_v104_save(obj: dict[str, Any]) -> None:
    steve_type = shell.TYPES[obj["kind"].lower()]
    # Everything cleanForSave drops, present whatever the seed carries.
    obj = copy.deepcopy(obj)
    meta = obj["metadata"]
    meta.setdefault("finalizers", ["example.com/cleanup"])
    meta.setdefault("ownerReferences", [OWNER])
    meta.update(uid="5d1c0f7e-0000-4000-8000-000000000001", generation=3)
    meta.setdefault("creationTimestamp", "2026-01-01T00:00:00Z")
    item = steve_item(obj, steve_type)
    item["metadata"].setdefault("labels", {})["example.com/edited"] = "yes"
    real = shell.saved_body(
        "v1.0.4", steve_type, steve_item(obj, steve_type),
        edit=(shell.label("example.com/edited", "yes"),),
    )  # fmt: skip
    assert v104_body(item) == real


def test_the_demos_dismiss_body_is_the_real_one() -> None:
    upgrade = next(o for o in seed_objects() if "status" in o)
    real = shell.saved_body(
        "v1.0.4", "upgrade", steve_item(upgrade, "harvesterhci.io.upgrade"), edit=shell.DISMISS
    )
    assert legacy_dismiss_body(upgrade) == real


def test_the_demos_ippool_edit_is_the_real_one() -> None:
    pool = captured.guarded_object("ippool")
    real = shell.saved_body(
        "v1.0.4", "ippool", steve_item(pool, shell.TYPES["ippool"]),
        edit=(shell.set_field("spec.description", "edited in the dashboard"),),
    )  # fmt: skip
    assert ippool_saved_body(pool, "edited in the dashboard") == real
