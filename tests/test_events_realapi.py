"""Live updates against a real kube-apiserver: a caller whose access is revoked while a
stream is open loses the stream within the re-check bound.

The stream's access is re-checked every ``--stream-recheck-interval`` seconds with an
allow no older than that, so a revoked caller is cut off within twice it, whether or
not anything changes meanwhile. The real server's RBAC decides: a ClusterRoleBinding
is deleted and the BFF's SelfSubjectAccessReview with the caller's token says no.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bff.app import create_app
from bff.keys import CACHE
from bff.server import start, stop
from bff.settings import Settings

pytestmark = pytest.mark.real_apiserver

RBAC = "rbac.authorization.k8s.io"
RECHECK = 0.5  # seconds: the interval under test
EVENTS = "/api/v1.0.5/upgrades/events"
BINDING: dict[str, Any] = {
    "apiVersion": f"{RBAC}/v1",
    "kind": "ClusterRoleBinding",
    "metadata": {"name": "test-events:nobody-reads"},
    "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": "harness:upgrade-viewer"},
    "subjects": [{"apiGroup": RBAC, "kind": "User", "name": "sandbox-nobody"}],
}


async def test_a_revoked_caller_loses_an_open_stream_within_the_recheck_bound(
    real_apiserver: Any, tmp_path: Path
) -> None:
    real = real_apiserver
    kubeconfig = real.kubeconfig(tmp_path / "bff.kubeconfig", token="sandbox-bff")
    settings = replace(
        Settings(kubeconfig=str(kubeconfig), namespace=real.namespace, port=0),
        stream_recheck_interval=RECHECK,
    )
    await asyncio.to_thread(real.apply, BINDING)  # waits until RBAC has it
    try:
        runner, url = await start(create_app(settings), settings, host="127.0.0.1", port=0)
        try:
            await asyncio.wait_for(runner.app[CACHE].wait_synced(), 20)
            headers = {"Authorization": "Bearer sandbox-nobody"}
            async with (
                aiohttp.ClientSession() as session,
                session.get(url + EVENTS, headers=headers) as response,
            ):
                assert response.status == 200
                head = await asyncio.wait_for(response.content.readuntil(b"\n\n"), 10)
                assert head.startswith(b"event: snapshot")
                # In a thread: the BFF serves from this event loop meanwhile.
                await asyncio.to_thread(real.delete, BINDING)
                revoked = time.monotonic()
                # Nothing changes in the namespace: only the re-check can end the stream.
                events = []
                async with asyncio.timeout(2 * RECHECK + 5):
                    while chunk := await response.content.readuntil(b"\n\n"):
                        events.append(chunk)
                        if chunk.startswith(b"event: error"):
                            break
                    assert await response.content.read() == b""  # and the stream ends
                took = time.monotonic() - revoked
            assert events, "nothing came after the snapshot"
            assert events[-1].startswith(b"event: error"), events
            assert b'"status":403' in events[-1]
            assert took < 2 * RECHECK + 5
        finally:
            await stop(runner)
    finally:
        await asyncio.to_thread(real.delete, BINDING)
