"""A tiny Kubernetes API on loopback that serves only the Upgrade API's discovery.

Enough for ``serve`` to become ready where the sandbox (an extra) is not installed:
a venv without the extra, or the runtime image. It runs in a thread of its own, so
synchronous tests can start a process against it.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path

from aiohttp import web

from bff.upgrade_resource import GROUP, PLURAL, VERSION


async def _discovery(request: web.Request) -> web.Response:
    return web.json_response({
        "kind": "APIResourceList", "apiVersion": "v1", "groupVersion": f"{GROUP}/{VERSION}",
        "resources": [{"name": PLURAL, "singularName": "upgrade", "namespaced": True,
                       "kind": "Upgrade", "verbs": ["get", "list", "watch"]}],
    })  # fmt: skip


@contextlib.contextmanager
def serving_upgrade_api(host: str = "127.0.0.1") -> Iterator[str]:
    """The API's URL while it serves; stopped (and its thread joined) on exit."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    app = web.Application()
    app.router.add_get(f"/apis/{GROUP}/{VERSION}", _discovery)
    runner = web.AppRunner(app)

    async def start() -> int:
        await runner.setup()
        site = web.TCPSite(runner, host, 0)
        await site.start()
        port: int = runner.addresses[0][1]
        return port

    try:
        port = asyncio.run_coroutine_threadsafe(start(), loop).result(timeout=10)
        yield f"http://{host}:{port}"
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()


def write_token_kubeconfig(path: Path, server: str) -> Path:
    """A kubeconfig for ``server`` with a bearer token, readable by any user."""
    path.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        f"clusters: [{{name: c, cluster: {{server: '{server}'}}}}]\n"
        "users: [{name: u, user: {token: t}}]\n"
        "contexts: [{name: c, context: {cluster: c, user: u}}]\n"
    )
    path.chmod(0o644)
    return path
