"""The extension's own "Dismiss it" (``referee/shell``) against the BFF, over real HTTP.

The runner loads the Upgrade from the BFF's Steve item path with the dashboard's
store, sets the label and calls the real ``save()``, which PUTs to the item's
``links.update``: the BFF's Steve path. Behind the BFF is the sandbox's API
emulator (a simulation; the real API server and real Steve are other tests'
referees). Covers, for v1.0.4 and v1.0.5 bodies alike: the BFF answers the real
PUT, the only write upstream is one merge patch of the label, and the stored
status and finalizers are untouched.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from bff.api.paths import STEVE_COLLECTION
from tests.conftest import Stack
from tests.support import shell
from tests.support.backends import NAMESPACE, SUCCEEDED

ADMIN = {"Authorization": "Bearer sandbox-admin"}
READ_MESSAGE = "harvesterhci.io/read-message"


@pytest.fixture(scope="module")
def bundles() -> dict[str, Path]:
    try:
        return shell.build()
    except shell.ShellUnavailable as e:
        if os.environ.get("BFF_REQUIRE_SHELL") == "1":
            pytest.fail(f"BFF_REQUIRE_SHELL=1 but {e}")
        pytest.skip(str(e))


@pytest.mark.parametrize("version", shell.VERSIONS)
async def test_the_real_dismiss_through_the_bff_writes_only_the_label(
    bundles: dict[str, Path], emulator_stack: Stack, version: str
) -> None:
    before = await emulator_stack.backend.read(SUCCEEDED)
    assert READ_MESSAGE not in before["metadata"].get("labels", {})
    url = str(emulator_stack.client.make_url(f"{STEVE_COLLECTION}/{NAMESPACE}/{SUCCEEDED}"))
    # The runner is a blocking subprocess; the BFF serves it from this event loop.
    result = await asyncio.to_thread(shell.run, version, "upgrade", url, ADMIN, edit=shell.DISMISS)
    assert (result.method, result.url, result.status) == ("PUT", url, 200)
    # What the real code sent: v1.0.4 without status, v1.0.5 with it.
    assert ("status" in result.body) is (version == "v1.0.5")
    assert result.body["metadata"]["labels"][READ_MESSAGE] == "true"
    writes = emulator_stack.upstream_writes()
    assert [(w.method, w.content_type) for w in writes] == [
        ("PATCH", "application/merge-patch+json")
    ]
    assert writes[0].body == {
        "metadata": {
            "labels": {READ_MESSAGE: "true"},
            "resourceVersion": before["metadata"]["resourceVersion"],
        }
    }
    after = await emulator_stack.backend.read(SUCCEEDED)
    assert after["metadata"]["labels"][READ_MESSAGE] == "true"
    assert after["status"] == before["status"]
    assert after["metadata"]["finalizers"] == before["metadata"]["finalizers"]
