"""The screenshot of the page in docs/page.md (docs/page.png) is not stale.

Staleness is judged by the page's structure, not its pixels: a fresh sandbox is
driven to the pictured state by ``scripts/screenshot.py``'s own steps, and the outline
of the page (elements, ids, fields, actions, states, texts; no times, no
resourceVersions) must equal the one stored beside the PNG in
docs/page.structure.json. The PNG must also be the one that outline was stored with.
Regenerate both with ``.venv/bin/python scripts/screenshot.py``.

Needs Debian's /usr/bin/chromium (marked ``browser``; BFF_REQUIRE_BROWSER=1 makes a
skip a failure).
"""

from __future__ import annotations

import difflib
import hashlib
import importlib.util
import json
import os
import struct
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "screenshot.py"
REGENERATE = ".venv/bin/python scripts/screenshot.py"

pytestmark = pytest.mark.browser

if not Path("/usr/bin/chromium").exists() and os.environ.get("BFF_REQUIRE_BROWSER") != "1":
    pytest.skip("Debian's /usr/bin/chromium is not installed", allow_module_level=True)


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("screenshot_script", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_stored_screenshot_and_structure_belong_together() -> None:
    script = load_script()
    record = json.loads(script.STRUCTURE.read_text())
    png = script.PNG.read_bytes()
    assert hashlib.sha256(png).hexdigest() == record["png_sha256"], (
        f"docs/page.png is not the picture docs/page.structure.json describes: run {REGENERATE}"
    )
    assert record["digest"] == script.digest(record["outline"])
    width, height = png_size(png)
    assert width == record["viewport"]["width"]
    assert height >= record["viewport"]["height"]


async def test_screenshot_shows_the_page_as_it_is_now() -> None:
    script = load_script()
    stored = json.loads(script.STRUCTURE.read_text())
    fresh = await script.outline_of_fresh_sandbox()
    if fresh != stored["outline"]:
        changes = "\n".join(
            difflib.unified_diff(stored["outline"], fresh, "stored", "now", lineterm="", n=1)
        )
        pytest.fail(f"the page changed since docs/page.png was taken; run {REGENERATE}\n{changes}")
    assert script.digest(fresh) == stored["digest"]
