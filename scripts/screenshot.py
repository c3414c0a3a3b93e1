"""Regenerate the page's screenshot in docs/page.md, and the structure it is checked by.

    .venv/bin/python scripts/screenshot.py

Starts the sandbox in this process on free ports, opens the page in Debian's headless
Chromium (/usr/bin/chromium, driven by Playwright; no browser is downloaded), signs
in with the sandbox-admin token offered on the page, sends the legacy v1.0.4 PUT for
the succeeded upgrade through the BFF, and writes

- ``docs/page.png``: the page at 1280 px wide, and
- ``docs/page.structure.json``: an outline of the page's elements (tags, ids, fields,
  actions, states and texts, without anything that depends on the clock or on
  resourceVersions), its digest, and the PNG's digest.

``tests/test_screenshot.py`` builds the same outline from a fresh sandbox and fails
when it differs from the stored one, or when the PNG is not the one stored beside it:
the screenshot is stale when the page's structure changed, whatever the pixels say.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PNG = DOCS / "page.png"
STRUCTURE = DOCS / "page.structure.json"
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--hide-scrollbars"]
VIEWPORT = {"width": 1280, "height": 800}
TIMEOUT_MS = 15_000

# One line per element: what it is and what it says, never when (times are relative to
# now) or which version of an object it shows (resourceVersions differ run to run).
OUTLINE_JS = """
() => {
  const KEEP = ["id", "class", "type", "role", "hidden", "disabled", "href", "src", "rel",
                "data-field", "data-action", "data-target", "data-name", "data-token",
                "data-label", "aria-label", "aria-live", "aria-describedby", "placeholder",
                "for", "scope", "content", "name"];
  const lines = [];
  function walk(node, depth) {
    for (const child of node.children) {
      const tag = child.tagName.toLowerCase();
      if (tag === "script" || tag === "style") continue;
      const attrs = KEEP.filter((a) => child.hasAttribute(a))
        .map((a) => `${a}=${JSON.stringify(child.getAttribute(a))}`);
      let text = "";
      if (tag === "time") text = "<time>";
      else if (!child.children.length) text = child.textContent.replace(/\\s+/g, " ").trim();
      if (tag === "meta" && child.getAttribute("name") === "harvester-upgrade-bff-sandbox") {
        attrs.push("(sandbox marker)");
      }
      const shown = `${tag} ${attrs.join(" ")}${text ? " | " + text : ""}`.trimEnd();
      lines.push("  ".repeat(depth) + shown);
      if (tag !== "time") walk(child, depth + 1);
    }
  }
  walk(document.documentElement, 0);
  return lines;
}
"""


async def capture(page: Any, url: str) -> list[str]:
    """Drive ``page`` at ``url`` (the sandbox's page) to the pictured state; return its outline."""
    from playwright.async_api import expect

    await page.goto(url)
    await page.get_by_role("button", name="Use sandbox-admin").click()
    rows = page.locator("#upgrades tbody tr")
    await expect(rows).to_have_count(3)
    succeeded = page.locator('#upgrades tbody tr[data-name="hvst-upgrade-7xn6v"]')
    await succeeded.get_by_role("button", name="Legacy v1.0.4 PUT").click()
    await expect(page.locator('#result [data-field="changed"]')).to_have_text("true")
    await expect(succeeded.locator('[data-field="read"]')).to_have_text("read")
    await page.mouse.move(0, 0)
    outline: list[str] = await page.evaluate(OUTLINE_JS)
    return outline


def digest(lines: list[str]) -> str:
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


async def outline_of_fresh_sandbox(screenshot: Path | None = None) -> list[str]:
    """Start a sandbox, capture the page (and optionally a full-page PNG), stop it all."""
    from playwright.async_api import async_playwright

    from bff.sandbox.runner import running
    from bff.settings import Settings

    async with (
        running(Settings(port=0), kube_port=0, interval=0) as sandbox,
        async_playwright() as pw,
    ):
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            context = await browser.new_context(viewport=VIEWPORT, color_scheme="light")
            page = await context.new_page()
            page.set_default_timeout(TIMEOUT_MS)
            outline = await capture(page, sandbox.bff_url + "/")
            if screenshot is not None:
                await page.screenshot(path=str(screenshot), full_page=True)
            await context.close()
        finally:
            await browser.close()
    return outline


def main() -> int:
    import logging

    logging.basicConfig(level=logging.WARNING)
    DOCS.mkdir(exist_ok=True)
    outline = asyncio.run(outline_of_fresh_sandbox(PNG))
    record = {
        "about": "Outline of the page in docs/page.png; regenerate both with "
        "'.venv/bin/python scripts/screenshot.py'.",
        "viewport": VIEWPORT,
        "digest": digest(outline),
        "png_sha256": hashlib.sha256(PNG.read_bytes()).hexdigest(),
        "outline": outline,
    }
    STRUCTURE.write_text(json.dumps(record, indent=1) + "\n")
    print(f"wrote {PNG.relative_to(ROOT)} and {STRUCTURE.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    raise SystemExit(main())
