"""The page (static/) in a real headless Chromium, against the whole sandbox stack.

The BFF runs in front of the Kubernetes API emulator with the simulated Harvester
controller watching; Playwright drives Debian's Chromium through the page as a
person would: enter the sandbox-admin token, see the three seed upgrades, dismiss
the succeeded one, then find its actions disabled (already read) and those of the
in-progress one too, each with the reason shown (Harvester cannot cancel an upgrade
in progress; a stale page's Cancel says it wrote nothing, and why), send the legacy
v1.0.4 PUT for the failed one. After each step the emulator's store is read
directly: status is never touched, and the controller never re-initialises anything.

Also: a read-only token finds every action disabled, with the reason (the BFF's
access review); the first load says how to sign in, or which sandbox token to
choose; the list follows changes made outside the page by itself; the page works at
360 px wide, under a base path (relative URLs only), keeps the token for the session,
and the API description page renders every operation. In the sandbox
(``harvester-upgrade-bff sandbox``'s own stack) the page offers the sandbox tokens
and the "Direct PUT to the cluster (the bug)" button; in ``serve`` it offers neither
and never asks for them.

Every console error fails a test, failed resource loads included: a test that makes
a request fail on purpose says which (status and URL) with ``expect_failed_load``,
and it must then happen.

Skipped with one line when /usr/bin/chromium is missing, unless
BFF_REQUIRE_BROWSER=1 (CI), which makes that a failure.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bff import captured, openapi
from bff.sandbox.emulator import EMULATOR_STORE
from bff.sandbox.runner import Sandbox, running
from bff.settings import Settings
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
TIMEOUT_MS = 10_000

pytestmark = pytest.mark.browser

if not HAVE_CHROMIUM and not REQUIRE:
    pytest.skip("Debian's /usr/bin/chromium is not installed", allow_module_level=True)

from playwright.async_api import (  # noqa: E402
    Browser,
    ConsoleMessage,
    Page,
    Request,
    async_playwright,
    expect,
)


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


FAILED_LOAD = re.compile(r"Failed to load resource: the server responded with a status of (\d+)")


@dataclass
class Console:
    """Every console error of a page, and the failed loads a test expects (each once)."""

    errors: list[str] = field(default_factory=list)
    pending: list[tuple[int, str]] = field(default_factory=list)

    def on_message(self, message: ConsoleMessage) -> None:
        # A CSP violation, a script error or a failed resource load shows up as an error.
        if message.type != "error":
            return
        url = message.location.get("url", "")
        failed = FAILED_LOAD.search(message.text)
        if failed is not None:
            for expected in self.pending:
                if expected[0] == int(failed.group(1)) and expected[1] in url:
                    self.pending.remove(expected)
                    return
        self.errors.append(f"{message.text} [{url}]")

    def on_request_failed(self, request: Request) -> None:
        # A load that failed on the network (refused, reset, blocked) is an error.
        # ERR_ABORTED is the browser cancelling a request itself, as it does with a
        # lazily fetched favicon when the test navigates or closes the page; an
        # answer with an error status is not that, and on_message catches it.
        if request.failure == "net::ERR_ABORTED":
            return
        self.errors.append(f"request failed: {request.url} ({request.failure})")

    def check(self) -> None:
        assert self.errors == [], "console errors on the page"
        assert self.pending == [], "expected failed loads did not happen"


CONSOLES: dict[int, Console] = {}


def expect_failed_load(page: Page, status: int, url_part: str) -> None:
    """Declare that ``page`` will log one failed load with ``status`` for a URL."""
    CONSOLES[id(page)].pending.append((status, url_part))


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    opened = await context.new_page()
    opened.set_default_timeout(TIMEOUT_MS)
    console = CONSOLES[id(opened)] = Console()
    opened.on("console", console.on_message)
    opened.on("pageerror", lambda exc: console.errors.append(str(exc)))
    opened.on("requestfailed", console.on_request_failed)
    try:
        yield opened
    finally:
        await context.close()
        del CONSOLES[id(opened)]
    console.check()


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

    # Already read: a second Dismiss (or Cancel) would change nothing, so both are
    # disabled and say so; forced, they send nothing.
    done = row(page, SUCCEEDED)
    await expect(done.locator('[data-field="why"]')).to_have_text(
        "Already read: Dismiss and Cancel would change nothing."
    )
    for name in ("Dismiss", "Cancel", "Legacy v1.0.4 PUT"):
        await expect(done.get_by_role("button", name=name)).to_be_disabled()
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.method + " " + request.url))
    await done.get_by_role("button", name="Dismiss").click(force=True)
    await done.get_by_role("button", name="Cancel").click(force=True)

    # Mid-upgrade, Dismiss and the legacy PUT (which dismisses) cannot succeed, and
    # Cancel would change nothing: all are disabled, and the reason is shown and tied
    # to them.
    in_progress = row(page, IN_PROGRESS)
    dismiss = in_progress.get_by_role("button", name="Dismiss")
    cancel = in_progress.get_by_role("button", name="Cancel")
    await expect(dismiss).to_be_disabled()
    await expect(in_progress.get_by_role("button", name="Legacy v1.0.4 PUT")).to_be_disabled()
    await expect(cancel).to_be_disabled()
    why = in_progress.locator('[data-field="why"]')
    await expect(why).to_have_text(
        "Dismiss once the upgrade has Succeeded or Failed; it is UpgradingNodes. "
        "Cancel would change nothing: Harvester cannot cancel an upgrade in progress."
    )
    why_id = await why.get_attribute("id")
    await expect(dismiss).to_have_attribute("aria-describedby", why_id)
    await expect(cancel).to_have_attribute("aria-describedby", why_id)
    # The unread finished one: every action is possible.
    for name in ("Dismiss", "Cancel", "Legacy v1.0.4 PUT"):
        await expect(row(page, FAILED).get_by_role("button", name=name)).to_be_enabled()
    await expect(row(page, FAILED).locator('[data-field="why"]')).to_have_count(0)
    await dismiss.click(force=True)  # a disabled button does nothing, even when forced
    await cancel.click(force=True)
    await expect(result.locator('[data-field="request"]')).to_contain_text(SUCCEEDED)
    assert [r for r in requests if "/api/" in r] == [], "a disabled button sent a request"
    live = upstream(backend, IN_PROGRESS)
    assert READ not in live["metadata"]["labels"]
    assert live["status"] == seed(IN_PROGRESS)["status"]

    # A page that last saw the upgrade finished can still send Cancel mid-upgrade (a
    # stale page): the BFF writes nothing, and the page says so and why.
    await cancel.evaluate("button => { button.disabled = false; }")
    await cancel.click()
    await expect(result.locator('[data-field="request"]')).to_contain_text(
        f"{IN_PROGRESS}?action=cancel"
    )
    await expect(result.locator('[data-field="changed"]')).to_have_text(
        "false: nothing was written; Harvester cannot cancel an upgrade in progress (it is "
        "UpgradingNodes); Cancel marks the message read only once the upgrade has Succeeded "
        "or Failed."
    )
    await expect(result.locator('[data-field="error"]')).to_be_hidden()
    await expect(result.locator('[data-field="labels"]')).to_have_text("unchanged")
    assert len(stack.upstream_writes()) == 1, "Cancel mid-upgrade wrote upstream"
    assert upstream(backend, IN_PROGRESS) == live

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

    # Forgetting the token leaves nothing to list with, and says what to do.
    await page.get_by_role("button", name="Forget token").click()
    await expect(page.locator("#upgrades tbody tr")).to_have_count(0)
    await expect(page.locator("#upgrades")).to_be_hidden()
    await expect(page.locator("#signin")).to_be_visible()
    await expect(page.locator("#signin-how")).to_contain_text("Paste a bearer token above")
    assert await page.evaluate("sessionStorage.length") == 0


async def test_a_read_only_token_finds_every_action_disabled_and_why(
    emulator_stack: Any, page: Page
) -> None:
    """The BFF asks the API server (an access review) whether the viewer may patch: no."""
    stack = emulator_stack
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.method + " " + request.url))
    await sign_in(page, str(stack.client.make_url("/")), token="sandbox-viewer")
    await expect(page.locator("#upgrades tbody tr")).to_have_count(3)
    reason = (
        f"You may only read Upgrades in {NAMESPACE}: your credential may not patch them, "
        "so Dismiss and Cancel would be refused (403)."
    )
    for name in (SUCCEEDED, IN_PROGRESS, FAILED):
        why = row(page, name).locator('[data-field="why"]')
        await expect(why).to_have_text(reason)
        await expect(why).to_have_attribute("data-reason", "permission")
        for label in ("Dismiss", "Cancel", "Legacy v1.0.4 PUT"):
            button = row(page, name).get_by_role("button", name=label)
            await expect(button).to_be_disabled()
            why_id = await why.get_attribute("id")
            await expect(button).to_have_attribute("aria-describedby", why_id)
    await row(page, SUCCEEDED).get_by_role("button", name="Dismiss").click(force=True)
    # The viewer still reads the list: the state and the read column are as stored.
    await expect(row(page, SUCCEEDED).locator('[data-field="read"]')).to_have_text("not read")
    assert [r for r in requests if "?action=" in r or r.startswith("PUT ")] == []
    assert READ not in upstream(stack.backend, SUCCEEDED)["metadata"]["labels"]
    assert stack.upstream_writes() == []
    # The decision came from the API server, asked with the viewer's own token.
    reviews = [r for r in stack.caller_requests() if "selfsubjectaccessreviews" in r.path]
    patch = [r for r in reviews if r.body["spec"]["resourceAttributes"]["verb"] == "patch"]
    assert patch
    assert all(r.headers["Authorization"] == "Bearer sandbox-viewer" for r in patch)


async def test_an_admin_token_gets_the_actions_of_a_finished_unread_upgrade(
    emulator_stack: Any, page: Page
) -> None:
    await sign_in(page, str(emulator_stack.client.make_url("/")))
    failed = row(page, FAILED)
    for label in ("Dismiss", "Cancel", "Legacy v1.0.4 PUT"):
        await expect(failed.get_by_role("button", name=label)).to_be_enabled()
    await expect(failed.locator('[data-field="why"]')).to_have_count(0)
    await failed.get_by_role("button", name="Cancel").click()
    await expect(page.locator('#result [data-field="changed"]')).to_have_text("true")
    await expect(failed.locator('[data-field="read"]')).to_have_text("read")
    await expect(failed.locator('[data-field="why"]')).to_have_attribute("data-reason", "read")
    assert upstream(emulator_stack.backend, FAILED)["metadata"]["labels"][READ] == "true"
    assert len(emulator_stack.upstream_writes()) == 1


async def test_unknown_token_is_reported(emulator_stack: Any, page: Page) -> None:
    expect_failed_load(page, 401, "/api/v1.0.5/upgrades")
    await sign_in(page, str(emulator_stack.client.make_url("/")), token="not-a-token")
    await expect(page.locator("#notice")).to_contain_text("401")
    await expect(page.locator("#upgrades tbody tr")).to_have_count(0)


async def test_api_page_renders_every_operation(emulator_stack: Any, page: Page) -> None:
    await page.goto(str(emulator_stack.client.make_url("/static/api.html")))
    operations = page.locator("section.op[data-operation]")
    expected = {
        f"{method.upper()} {path}"
        for path, item in openapi.document()["paths"].items()  # type: ignore[attr-defined]
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


async def _change_two_upgrades_upstream(backend: Backend, page: Page) -> None:
    """Someone dismisses one upgrade, Harvester finishes another; the page shows both."""
    in_progress = row(page, IN_PROGRESS)
    await expect(in_progress.get_by_role("button", name="Dismiss")).to_be_disabled()

    # Someone else (kubectl, another browser) dismisses the failed upgrade ...
    await backend.merge_patch(FAILED, {"metadata": {"labels": {READ: "true"}}})
    await expect(row(page, FAILED).locator('[data-field="read"]')).to_have_text("read")

    # ... and Harvester finishes the one in progress: its Dismiss becomes possible.
    finished = seed(IN_PROGRESS)["status"]
    for condition in finished["conditions"]:
        if condition["type"] in ("Completed", "NodesUpgraded"):
            condition["status"] = "True"
            condition["lastUpdateTime"] = "2025-05-02T10:20:00Z"
    await backend.merge_patch(
        IN_PROGRESS,
        {
            "metadata": {"labels": {STATE: "Succeeded"}},
            "status": {"conditions": finished["conditions"]},
        },
    )
    await expect(in_progress.locator('[data-field="state"]')).to_have_text("Succeeded")
    await expect(in_progress.get_by_role("button", name="Dismiss")).to_be_enabled()
    await expect(in_progress.locator('[data-field="why"]')).to_have_count(0)
    await expect(in_progress.locator("time")).to_have_attribute("title", "2025-05-02 10:20:00 UTC")


def _api_requests(requests: list[str]) -> list[str]:
    return [url.split("/api/v1.0.5/", 1)[1] for url in requests if "/api/v1.0.5/" in url]


async def test_the_list_follows_changes_made_outside_the_page(
    emulator_stack: Any, page: Page
) -> None:
    """With the read cache (the default): changes arrive on the stream, with no request."""
    backend: Backend = emulator_stack.backend
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    await sign_in(page, str(emulator_stack.client.make_url("/")))
    live = page.locator("#live")
    await expect(live).to_have_text("Updates by itself")
    await expect(live).to_have_attribute("data-source", "events")
    opened = ["upgrades", "upgrades/access", "upgrades/events"]
    assert sorted(_api_requests(requests)) == opened

    await _change_two_upgrades_upstream(backend, page)
    # Nobody pressed Refresh, no reload, no polling: the one stream brought both changes.
    await page.wait_for_timeout(2500)  # longer than the polling interval
    assert sorted(_api_requests(requests)) == opened
    assert await page.evaluate("performance.getEntriesByType('navigation').length") == 1


async def test_without_a_stream_the_page_polls(
    emulator_backend: Backend, stack_factory: Callable[..., Awaitable[Any]], page: Page
) -> None:
    """Without the read cache the stream is a 404: the page asks for the list instead."""
    stack = await stack_factory(emulator_backend, read_cache=False)
    expect_failed_load(page, 404, "/api/v1.0.5/upgrades/events")
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    await sign_in(page, str(stack.client.make_url("/")))
    await expect(page.locator("#live")).to_have_attribute("data-source", "polling")
    await _change_two_upgrades_upstream(emulator_backend, page)
    api = _api_requests(requests)
    assert api.count("upgrades/events") == 1, "a 404 stream is not asked for again"
    assert api.count("upgrades") >= 2, "the page did not ask for the list again"
    assert api.count("upgrades/access") == 1, "the caller's permission is asked once, not per poll"
    assert set(api) == {"upgrades", "upgrades/access", "upgrades/events"}


async def test_rows_show_versions_times_and_a_real_placeholder(
    emulator_stack: Any, page: Page
) -> None:
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    url = str(emulator_stack.client.make_url("/"))
    await page.goto(url)
    token = page.get_by_label("Bearer token")
    await expect(token).to_have_attribute("placeholder", "Paste a bearer token")
    await expect(token).to_have_value("")
    # Signed out, the first load says what to do instead of an empty table, and asks
    # the API for nothing (so nothing fails with 401).
    signin = page.locator("#signin")
    await expect(signin).to_be_visible()
    await expect(signin.get_by_role("heading")).to_have_text("Sign in to see the upgrades")
    await expect(page.locator("#signin-how")).to_contain_text(
        "Paste a bearer token above and press “Use token”: a Kubernetes token, or a "
        "Rancher API key."
    )
    await expect(page.locator("#signin-how")).to_contain_text("sign in to Rancher")
    await expect(page.locator("#upgrades")).to_be_hidden()
    assert not [r for r in requests if "/api/" in r]

    await sign_in(page, url)
    await expect(signin).to_be_hidden()
    succeeded = row(page, SUCCEEDED)
    await expect(succeeded.locator('[data-field="versions"]')).to_have_text("v1.4.2 → v1.5.0")
    stamp = succeeded.locator("time")
    await expect(stamp).to_have_attribute("datetime", "2025-03-10T10:58:02Z")
    await expect(stamp).to_have_attribute("title", "2025-03-10 10:58:02 UTC")
    await expect(stamp).to_have_text(re.compile(r"^\d+ (years?|months?|weeks?|days?) ago$"))
    await expect(succeeded.locator(".when")).to_contain_text("finished")
    await expect(row(page, IN_PROGRESS).locator(".when")).to_contain_text("last step")

    # The favicon is the page's own file, served with its type.
    icon = await page.locator('link[rel="icon"]').get_attribute("href")
    assert icon == "static/favicon.svg"
    answer = await page.request.get(url + icon)
    assert answer.status == 200
    assert answer.headers["content-type"].startswith("image/svg+xml")

    # Not the sandbox: no token choices, no direct PUT, and no request for either.
    await expect(page.locator("#sandbox-tokens")).to_be_hidden()
    await expect(
        page.get_by_role("button", name="Direct PUT to the cluster (the bug)")
    ).to_have_count(0)
    assert not [r for r in requests if "/sandbox/" in r]


@pytest.mark.parametrize("width", [360, 420])
async def test_the_page_fits_a_phone(emulator_stack: Any, page: Page, width: int) -> None:
    await page.set_viewport_size({"width": width, "height": 740})
    await sign_in(page, str(emulator_stack.client.make_url("/")))
    await expect(page.locator("#upgrades tbody tr")).to_have_count(3)
    await row(page, FAILED).get_by_role("button", name="Legacy v1.0.4 PUT").click()
    await expect(page.locator('#result [data-field="changed"]')).to_have_text("true")
    # Once the action is over (the row is shown read), measure everything in one go.
    await expect(row(page, FAILED).locator('[data-field="why"]')).to_have_attribute(
        "data-reason", "read"
    )
    await expect(row(page, SUCCEEDED).get_by_role("button", name="Cancel")).to_be_enabled()
    scroll = await page.evaluate("document.documentElement.scrollWidth")
    assert scroll <= width, f"the page is {scroll} px wide in a {width} px window"
    boxes = await page.evaluate(
        """() => [...document.querySelectorAll("#upgrades button")].map((b) => {
             const r = b.getBoundingClientRect();
             return [b.textContent, r.left, r.right, r.width];
           })"""
    )
    assert len(boxes) == 9
    for text, left, right, box_width in boxes:
        assert box_width > 0, text
        assert left >= 0, text
        assert right <= width, text
    # Each card still says what each value is.
    label = (
        await row(page, SUCCEEDED)
        .locator('[data-field="state"]')
        .evaluate("td => getComputedStyle(td, '::before').content")
    )
    assert label == '"State"'


# --- the sandbox's own stack: what only ``harvester-upgrade-bff sandbox`` offers ------------


@pytest.fixture
async def sandbox() -> AsyncIterator[Sandbox]:
    # The sandbox command logs at INFO by default; the controller's lines are shown from there.
    logger = logging.getLogger("bff.sandbox.controller")
    level = logger.level
    logger.setLevel(logging.INFO)
    try:
        async with running(Settings(port=0), kube_port=0, interval=0) as started:
            yield started
    finally:
        logger.setLevel(level)


async def cluster_object(sandbox: Sandbox, name: str) -> dict[str, Any]:
    url = f"{sandbox.kube_url}/apis/harvesterhci.io/v1beta1/namespaces/{NAMESPACE}/upgrades/{name}"
    async with (
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=sandbox.client_ssl)) as session,
        session.get(url, headers={"Authorization": "Bearer sandbox-admin"}) as response,
    ):
        assert response.status == 200
        return await response.json()  # type: ignore[no-any-return]


async def test_sandbox_offers_its_tokens_and_shows_the_bug(sandbox: Sandbox, page: Page) -> None:
    await page.goto(sandbox.bff_url + "/")
    choices = page.locator("#sandbox-tokens")
    await expect(choices).to_be_visible()
    await expect(choices.get_by_role("button")).to_have_text(["sandbox-admin", "sandbox-viewer"])
    # The first load says which token to choose, and what each may do.
    await expect(page.locator("#signin")).to_be_visible()
    await expect(page.locator("#signin-how")).to_have_text(
        "Choose a sandbox token above: sandbox-admin (every verb) or sandbox-viewer "
        "(get, list and watch only). Or paste a bearer token."
    )
    await expect(page.locator("#upgrades")).to_be_hidden()
    await page.get_by_role("button", name="Use sandbox-admin").click()
    await expect(page.locator("#upgrades tbody tr")).to_have_count(3)
    await expect(page.locator("#signin")).to_be_hidden()
    await expect(page.get_by_role("button", name="Forget token")).to_be_visible()

    result = page.locator("#result")
    await (
        row(page, SUCCEEDED)
        .get_by_role("button", name="Direct PUT to the cluster (the bug)")
        .click()
    )
    await expect(result.locator('[data-field="request"]')).to_contain_text(
        f"PUT /apis/harvesterhci.io/v1beta1/namespaces/{NAMESPACE}/upgrades/{SUCCEEDED}"
    )
    await expect(result.locator('[data-field="request"]')).to_contain_text("bypassing the BFF")
    controller = result.locator('[data-field="controller"]')
    await expect(controller).to_be_visible()
    await expect(controller).to_contain_text("The PUT wiped status")
    await expect(controller).to_contain_text(
        "Re-initialised the upgrade: it starts over (re-initialisations 0 → 1)."
    )
    await expect(controller).to_contain_text(f"log: re-initialised upgrade {SUCCEEDED} (1 so far)")
    await expect(result.locator('[data-field="status-diff"]')).to_contain_text(
        '~ conditions.0.status: "True" → "Unknown"'
    )
    await expect(row(page, SUCCEEDED).locator('[data-field="state"]')).to_have_text(
        "PreparingLoggingInfra"
    )
    await expect(row(page, SUCCEEDED).get_by_role("button", name="Dismiss")).to_be_disabled()

    # What the cluster now holds, read from the emulator, not through the page or the BFF.
    live = await cluster_object(sandbox, SUCCEEDED)
    assert live["metadata"]["labels"][STATE] == "PreparingLoggingInfra"
    assert [c["type"] for c in live["status"]["conditions"]] == ["Completed", "LogReady"]
    assert sandbox.controller.reinitialised == [SUCCEEDED]

    # The BFF's own legacy PUT on the failed one still changes nothing but the label.
    await row(page, FAILED).get_by_role("button", name="Legacy v1.0.4 PUT").click()
    await expect(result.locator('[data-field="status-diff"]')).to_have_text("unchanged")
    await expect(controller).to_be_hidden()
    assert sandbox.controller.reinitialised == [SUCCEEDED]


async def test_sandbox_viewer_token_cannot_make_the_direct_put(
    sandbox: Sandbox, page: Page
) -> None:
    expect_failed_load(page, 403, f"/sandbox/direct-put/{NAMESPACE}/{FAILED}")
    await page.goto(sandbox.bff_url + "/")
    await page.get_by_role("button", name="Use sandbox-viewer").click()
    await (
        row(page, FAILED).get_by_role("button", name="Direct PUT to the cluster (the bug)").click()
    )
    await expect(page.locator('#result [data-field="error"]')).to_contain_text("403 Forbidden")
    live = await cluster_object(sandbox, FAILED)
    assert live["status"] == seed(FAILED)["status"]
    assert sandbox.controller.reinitialisations == 0


async def test_with_the_guard_on_the_page_shows_the_repair(page: Page) -> None:
    settings = replace(Settings(port=0), webhook_port=0)
    async with running(settings, kube_port=0, interval=0) as guarded:
        await page.goto(guarded.bff_url + "/")
        await page.get_by_role("button", name="Use sandbox-admin").click()
        result = page.locator("#result")
        await (
            row(page, SUCCEEDED)
            .get_by_role("button", name="Direct PUT to the cluster (the bug)")
            .click()
        )
        controller = result.locator('[data-field="controller"]')
        await expect(controller).to_contain_text(
            "The cluster guard restored status in the PUT: nothing was wiped."
        )
        await expect(controller).to_contain_text(
            "Re-initialised nothing (re-initialisations 0 → 0)."
        )
        await expect(result.locator('[data-field="warnings"]')).to_contain_text(
            "the cluster guard kept the current status"
        )
        await expect(result.locator('[data-field="status-diff"]')).to_have_text("unchanged")
        await expect(row(page, SUCCEEDED).locator('[data-field="state"]')).to_have_text("Succeeded")
        assert guarded.controller.reinitialised == []
        # The v1.0.4 IPPool edit: the guard keeps the pool's allocations.
        await page.get_by_role("button", name="v1.0.4 IPPool edit, straight to the cluster").click()
        await expect(controller).to_contain_text(
            "The cluster guard kept the pool's IP allocations; the description changed."
        )
        await expect(result.locator('[data-field="warnings"]')).to_contain_text("IPPool vip-pool")
        await expect(result.locator('[data-field="status-diff"]')).to_have_text("unchanged")


async def test_without_the_guard_the_ippool_edit_loses_the_allocations(
    sandbox: Sandbox, page: Page
) -> None:
    await page.goto(sandbox.bff_url + "/")
    await page.get_by_role("button", name="Use sandbox-admin").click()
    await page.get_by_role("button", name="v1.0.4 IPPool edit, straight to the cluster").click()
    result = page.locator("#result")
    await expect(result.locator('[data-field="controller"]')).to_contain_text(
        "The save wiped the pool's IP allocations"
    )
    await expect(result.locator('[data-field="status-diff"]')).to_contain_text(
        "- allocated.192.168.100.10"
    )
