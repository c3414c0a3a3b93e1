"""Each Harvester referee's wrapper module builds what Harvester at that version ships.

A dependency's ``replace`` directives do not apply to the module that requires
it, so each wrapper's go.mod (``referee/harvester``, ``referee/harvester-v1.5.0``)
copies them from github.com/harvester/harvester's go.mod at its version. Here
each wrapper's ``replace`` block is held equal, line for line (comments and
blank lines aside), to that go.mod as the Go module proxy serves it, and its
``require`` names that version. Needs Go (and the module, downloaded by the
build); skipped without Go unless BFF_REQUIRE_REAL_APISERVER=1.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.support.gotool import find_go
from tests.support.harvester import HARVESTER_MODULE, REFEREES, VERSIONS, required_version


def replace_lines(go_mod: str) -> list[str]:
    """The directives of a go.mod's ``replace (...)`` block, comments and blanks left out."""
    block = re.search(r"^replace \($(.*?)^\)$", go_mod, re.M | re.S)
    assert block is not None, "no replace block"
    lines = (line.split("//", 1)[0].strip() for line in block.group(1).splitlines())
    return [line for line in lines if line]


def module_go_mod(version: str) -> str:
    go = find_go()
    if go is None:
        if os.environ.get("BFF_REQUIRE_REAL_APISERVER") == "1":
            pytest.fail("Go is required to read Harvester's go.mod")
        pytest.skip("Go is not installed")
    out = subprocess.run(
        [go, "mod", "download", "-json", f"{HARVESTER_MODULE}@{version}"],
        capture_output=True, text=True, check=True, timeout=300,
        env={**os.environ, "GOWORK": "off", "GOFLAGS": ""}, cwd="/",
    )  # fmt: skip
    return Path(json.loads(out.stdout)["GoMod"]).read_text()


@pytest.mark.parametrize("version", VERSIONS)
def test_wrapper_copies_harvesters_replace_lines(version: str) -> None:
    wrapper = REFEREES[version].wrapper
    assert required_version(wrapper) == version
    ours = replace_lines((wrapper / "go.mod").read_text())
    theirs = replace_lines(module_go_mod(version))
    assert ours == theirs
