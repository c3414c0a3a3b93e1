"""Readiness: whether the BFF should get traffic.

``/healthz`` answers from the process alone. ``/readyz`` asks the API server,
each time, whether it serves Upgrades, so it recovers by itself when the
upstream comes back; it turns false first thing on shutdown so load balancers
stop sending new requests while in-flight ones finish.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable


class Readiness:
    def __init__(self, probe: Callable[[], Awaitable[str | None]], timeout: float = 5.0) -> None:
        self._probe = probe
        self._timeout = timeout
        self.shutting_down = False

    async def problem(self) -> str | None:
        """Why the BFF is not ready, or None when it is."""
        if self.shutting_down:
            return "shutting down"
        try:
            return await asyncio.wait_for(self._probe(), self._timeout)
        except TimeoutError:
            return "the Kubernetes API did not answer the readiness check in time"
