"""Fixtures for the reliability suite: the BFF served the way ``serve`` serves it.

``served`` runs the real app through :func:`bff.server.start` (the same runner,
request handler and timeouts as production) on a loopback port, in front of
the sandbox's emulator, and captures every log line any logger writes, fully
formatted with tracebacks, so a test can prove a secret never reaches a log.
"""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from bff.app import create_app
from bff.keys import CACHE
from bff.sandbox.emulator import EMULATOR_FAULTS, EMULATOR_JOURNAL, Faults, Journal
from bff.sandbox.kubeconfig import write_kubeconfig
from bff.server import start, stop
from bff.settings import Settings
from tests.support.backends import NAMESPACE


class LogCapture(logging.Handler):
    """Every record, formatted in full with its traceback, and nothing redacted."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.stream = io.StringIO()
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
        self.stream.write(self.format(record) + "\n")

    @property
    def text(self) -> str:
        return self.stream.getvalue()


@dataclass
class Served:
    url: str
    host: str
    port: int
    runner: web.AppRunner
    emulator: TestServer
    logs: LogCapture
    settings: Settings

    @property
    def journal(self) -> Journal:
        return self.emulator.app[EMULATOR_JOURNAL]

    @property
    def faults(self) -> Faults:
        return self.emulator.app[EMULATOR_FAULTS]

    def upgrade_writes(self) -> list[Any]:
        return [e for e in self.journal.writes() if "/upgrades" in e.path]


@pytest.fixture
def log_capture() -> Any:
    capture = LogCapture()
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(capture)
    root.setLevel(logging.DEBUG)
    try:
        yield capture
    finally:
        root.removeHandler(capture)
        root.setLevel(old_level)


ServeFactory = Callable[..., Any]


@pytest.fixture
async def serve_factory(
    aiohttp_server: Callable[..., Any], tmp_path: Path, log_capture: LogCapture
) -> AsyncIterator[ServeFactory]:
    """Start the BFF through bff.server with settings overrides; stopped at teardown."""
    from bff.sandbox.emulator import create_emulator_app

    runners: list[web.AppRunner] = []

    async def build(
        *, upstream: Callable[[TestServer], Any] | None = None, **overrides: Any
    ) -> Served:
        """``upstream``, given the emulator, may return the URL the BFF uses instead of it."""
        emulator: TestServer = await aiohttp_server(create_emulator_app())
        url = str(emulator.make_url("")).rstrip("/")
        if upstream is not None:
            url = await upstream(emulator)
        kubeconfig = write_kubeconfig(
            tmp_path / f"bff-{len(runners)}.kubeconfig", url, token="sandbox-bff"
        )
        settings = replace(
            Settings(kubeconfig=str(kubeconfig), namespace=NAMESPACE, port=0), **overrides
        )
        runner, url = await start(create_app(settings), settings, host="127.0.0.1", port=0)
        runners.append(runner)
        cache = runner.app.get(CACHE)
        if cache is not None:  # the read cache (on by default) has synced
            await asyncio.wait_for(cache.wait_synced(), 10)
        parts = urlsplit(url)
        assert parts.hostname is not None
        assert parts.port is not None
        return Served(url, parts.hostname, parts.port, runner, emulator, log_capture, settings)

    yield build
    for runner in runners:
        await stop(runner)


@pytest.fixture
async def served(serve_factory: ServeFactory) -> Served:
    return await serve_factory()  # type: ignore[no-any-return]
