"""The page (static/) in a real headless Chromium, against the whole sandbox stack.

The BFF runs in front of the Kubernetes API emulator with the simulated Harvester
controller watching; Playwright drives Debian's Chromium through the page as a
person would: enter the sandbox-admin token, see the three seed upgrades, dismiss
the succeeded one, be refused on the in-progress one, send the legacy v1.0.4 PUT
for the failed one. After each step the emulator's store is read directly:
status is never touched, and the controller never re-initialises anything.

Also: the page works under a base path (relative URLs only), survives its strict
CSP with no console error, keeps the token for the session, shows the error for
a read-only token, and the API description page renders every operation.

Skipped with one line when /usr/bin/chromium is missing, unless
BFF_REQUIRE_BROWSER=1 (CI), which makes that a failure.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from bff import captured, openapi
from bff.sandbox.emulator import EMULATOR_STORE
from tests.support.backends import FAILED, IN_PROGRESS, NAMESPACE, SUCCEEDED, Backend

CHROMIUM = Path("/usr/bin/chromium")
HAVE_CHROMIUM = CHROMIUM.exists()
REQUIRE = os.environ.get("BFF_REQUIRE_BROWSER") == "1"
ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
READ = "harvesterhci.io/read-message"
STATE = "harvesterhci.io/upgradeState"
SCREENSHOT = Path("/tmp/harvester-upgrade-bff-page.png")
TIMEOUT_MS = 10_000

pytestmark = pytest.mark.browser

if not HAVE_CHROMIUM and not REQUIRE:
    pytest.skip("Debian's /usr/bin/chromium is not installed", allow_module_level=True)

from playwright.async_api import Browser, ConsoleMessage, Page, async_playwright, expect  # noqa: E402


def seed(name: str) -> dict[str, Any]:
    files = {SUCCEEDED: "succeeded", IN_PROGRESS: "in-progress", FAILED: "failed"}
    return captured.upgrade(files[name])


def upstream(backend: Backend, name: str) -> dict[str, Any]:
    """The object as the emulator holds it, read from its store, not through the BFF."""
    obj = backend.app[EMULATOR_STORE].get(NAMESPACE, name)  # type: ignore[attr-defined]
    assert obj is not None, name
    return obj  # type: ignore[no-any-return]


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    assert HAVE_CHROMIUM, "BFF_REQUIRE_BROWSER=1 but /usr/bin/chromium is missing"
    async with async_playwright() as pw:
        launched = await pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    opened = await context.new_page()
    opened.set_default_timeout(TIMEOUT_MS)
    problems: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        # A CSP violation or a script error shows up here as an error.
        if message.type == "error" and "Failed to load resource" not in message.text:
            problems.append(message.text)

    opened.on("console", on_console)
    opened.on("pageerror", lambda exc: problems.append(str(exc)))
    yield opened
    await context.close()
    assert problems == [], "console errors on the page"


def row(page: Page, name: str) -> Any:
    return page.locator(f'#upgrades tbody tr[data-name="{name}"]')


async def sign_in(page: Page, url: str, token: str = "sandbox-admin") -> None:
    await page.goto(url)
    await page.get_by_label("Bearer token").fill(token)
    await page.get_by_role("button", name="Use token").click()


async def test_dismiss_cancel_and_legacy_put_through_the_page(
    emulator_stack: Any, page: Page
) -> None:
    stack = emulator_stack
    backend: Backend = stack.backend
    url = str(stack.client.make_url("/"))
    response = await page.goto(url)
    assert response is not None
    assert "script-src 'self'" in response.headers["content-security-policy"]

    await sign_in(page, url)
    rows = page.locator("#upgrades tbody tr")
    await expect(rows).to_have_count(3)
    await expect(row(page, SUCCEEDED).locator('[data-field="state"]')).to_have_text("Succeeded")
    await expect(row(page, IN_PROGRESS).locator('[data-field="state"]')).to_have_text(
        "UpgradingNodes"
    )
    await expect(row(page, FAILED).locator('[data-field="state"]')).to_have_text("Failed")
    await expect(row(page, SUCCEEDED)).to_contain_text("Completed: True")
    await expect(row(page, FAILED)).to_contain_text("RepoReady: False")
    await expect(row(page, IN_PROGRESS)).to_contain_text("NodesUpgraded: Unknown")
    for name in (SUCCEEDED, IN_PROGRESS, FAILED):
        await expect(row(page, name).locator('[data-field="read"]')).to_have_text("not read")

    result = page.locator("#result")

    # Dismiss the succeeded upgrade: one label patch, status untouched.
    await row(page, SUCCEEDED).get_by_role("button", name="Dismiss").click()
    await expect(result.locator('[data-field="changed"]')).to_have_text("true")
    await expect(result.locator('[data-field="response"]')).to_contain_text("200")
    await expect(result.locator('[data-field="labels"]')).to_contain_text(f'+ {READ} = "true"')
    await expect(result.locator('[data-field="status-diff"]')).to_have_text("unchanged")
    await expect(row(page, SUCCEEDED).locator('[data-field="read"]')).to_have_text("read")
    live = upstream(backend, SUCCEEDED)
    assert live["metadata"]["labels"][READ] == "true"
    assert live["metadata"]["labels"][STATE] == "Succeeded"
    assert live["status"] == seed(SUCCEEDED)["status"]

    # Dismiss again: idempotent, nothing written.
    await row(page, SUCCEEDED).get_by_role("button", name="Dismiss").click()
    await expect(result.locator('[data-field="changed"]')).to_have_text("false")
    await expect(result.locator('[data-field="labels"]')).to_have_text("unchanged")

    # Dismiss the in-progress upgrade: refused, with the BFF's message, and no write.
    await row(page, IN_PROGRESS).get_by_role("button", name="Dismiss").click()
    error = result.locator('[data-field="error"]')
    await expect(error).to_be_visible()
    await expect(error).to_contain_text("409 UpgradeInProgress")
    await expect(error).to_contain_text("still in progress")
    await expect(result.locator('[data-field="response"]')).to_contain_text("409")
    await expect(row(page, IN_PROGRESS).locator('[data-field="read"]')).to_have_text("not read")
    live = upstream(backend, IN_PROGRESS)
    assert READ not in live["metadata"]["labels"]
    assert live["status"] == seed(IN_PROGRESS)["status"]

    # Cancel on the in-progress upgrade: never fails, writes nothing.
    await row(page, IN_PROGRESS).get_by_role("button", name="Cancel").click()
    await expect(result.locator('[data-field="changed"]')).to_have_text("false")
    await expect(error).to_be_hidden()

    # The legacy v1.0.4 PUT (no status in the body) on the failed upgrade.
    await row(page, FAILED).get_by_role("button", name="Legacy v1.0.4 PUT").click()
    await expect(result.locator('[data-field="request"]')).to_contain_text(
        f"PUT api/v1.0.4/upgrades/{NAMESPACE}/{FAILED}"
    )
    await expect(result.locator('[data-field="changed"]')).to_have_text("true")
    await expect(result.locator('[data-field="warnings"]')).to_contain_text(
        "status in the request body was ignored"
    )
    await expect(result.locator('[data-field="status-diff"]')).to_have_text("unchanged")
    await expect(row(page, FAILED).locator('[data-field="read"]')).to_have_text("read")
    await expect(row(page, FAILED).locator('[data-field="state"]')).to_have_text("Failed")

    await page.screenshot(path=str(SCREENSHOT), full_page=True)

    # The controller has seen every write and re-initialised nothing.
    await stack.settle()
    for name in (SUCCEEDED, IN_PROGRESS, FAILED):
        live = upstream(backend, name)
        assert live["status"] == seed(name)["status"], name
        assert live["metadata"]["labels"][STATE] == seed(name)["metadata"]["labels"][STATE]
    assert upstream(backend, FAILED)["metadata"]["labels"][READ] == "true"

    # Every upstream write was the one label merge patch.
    writes = stack.upstream_writes()
    assert len(writes) == 2
    for write in writes:
        assert write.method == "PATCH"
        assert write.content_type.startswith("application/merge-patch+json")
        assert set(write.body) == {"metadata"}
        assert set(write.body["metadata"]) == {"labels", "resourceVersion"}
        assert write.body["metadata"]["labels"] == {READ: "true"}


async def test_page_works_under_a_base_path_and_keeps_the_token(
    emulator_backend: Backend,
    stack_factory: Callable[..., Awaitable[Any]],
    page: Page,
) -> None:
    base = "/harvester-upgrade-bff"
    stack = await stack_factory(emulator_backend, base_path=base)
    url = str(stack.client.make_url(f"{base}/"))
    await sign_in(page, url)
    await expect(page.locator("#upgrades tbody tr")).to_have_count(3)

    # The token lives in sessionStorage: a reload lists again without asking.
    await page.reload()
    await expect(page.locator("#upgrades tbody tr")).to_have_count(3)

    await row(page, SUCCEEDED).get_by_role("button", name="Dismiss").click()
    await expect(page.locator('#result [data-field="changed"]')).to_have_text("true")
    assert upstream(emulator_backend, SUCCEEDED)["metadata"]["labels"][READ] == "true"

    # Forgetting the token leaves nothing to list with.
    await page.get_by_role("button", name="Forget token").click()
    await expect(page.locator("#upgrades tbody tr")).to_have_count(0)
    await expect(page.locator("#notice")).to_contain_text("Enter a bearer token")
    assert await page.evaluate("sessionStorage.length") == 0


async def test_read_only_token_sees_the_refusal(emulator_stack: Any, page: Page) -> None:
    await sign_in(page, str(emulator_stack.client.make_url("/")), token="sandbox-viewer")
    await expect(page.locator("#upgrades tbody tr")).to_have_count(3)
    await row(page, SUCCEEDED).get_by_role("button", name="Dismiss").click()
    error = page.locator('#result [data-field="error"]')
    await expect(error).to_contain_text("403 Forbidden")
    assert READ not in upstream(emulator_stack.backend, SUCCEEDED)["metadata"]["labels"]


async def test_unknown_token_is_reported(emulator_stack: Any, page: Page) -> None:
    await sign_in(page, str(emulator_stack.client.make_url("/")), token="not-a-token")
    await expect(page.locator("#notice")).to_contain_text("401")
    await expect(page.locator("#upgrades tbody tr")).to_have_count(0)


async def test_api_page_renders_every_operation(emulator_stack: Any, page: Page) -> None:
    await page.goto(str(emulator_stack.client.make_url("/static/api.html")))
    operations = page.locator("section.op[data-operation]")
    expected = {
        f"{method.upper()} {path}"
        for path, item in openapi.document()["paths"].items()
        for method in item
        if method in ("get", "put", "post")
    }
    await expect(operations).to_have_count(len(expected))
    shown = set(await operations.evaluate_all("els => els.map(e => e.dataset.operation)"))
    assert shown == expected
    put = page.locator(
        'section.op[data-operation="PUT /api/{version}/upgrades/{namespace}/{name}"]'
    )
    await expect(put).to_contain_text("UpgradeInProgress")
    await expect(put).to_contain_text("Example v1.0.4")
    await expect(page.locator("#schema-UpgradeResource")).to_be_visible()
