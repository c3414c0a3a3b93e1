"""bff.keys: every application key holds a value of the type it declares once the app
has started (aiohttp does not check the type of an ``AppKey`` at run time), and every
key the module declares is listed here, so a new one comes with its check."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from aiohttp import web

from bff import keys, server
from bff.access import AccessChecker
from bff.app import create_app
from bff.auth import Authenticator
from bff.cache import StreamBudget, UpgradeCache
from bff.metrics import Metrics
from bff.readiness import Readiness
from bff.sandbox.kubeconfig import write_kubeconfig
from bff.settings import Settings
from bff.upgrades import UpgradeService
from tests.conftest import Stack

#: What each key holds on the served app once it has started (the read cache on).
STARTED: dict[web.AppKey[Any], type] = {
    keys.SETTINGS: Settings,
    keys.METRICS: Metrics,
    keys.SERVICE: UpgradeService,
    keys.AUTH: Authenticator,
    keys.READINESS: Readiness,
    keys.CACHE: UpgradeCache,
    keys.ACCESS: AccessChecker,
    keys.STREAMS: StreamBudget,
}


def test_every_key_the_module_declares_is_checked_here() -> None:
    declared = {v for v in vars(keys).values() if isinstance(v, web.AppKey)}
    assert declared == set(STARTED) | {keys.WEBHOOK_LISTENER}


async def test_each_key_holds_its_declared_type_once_the_app_has_started(
    emulator_stack: Stack,
) -> None:
    app = emulator_stack.client.app
    for key, kind in STARTED.items():
        assert isinstance(app[key], kind), key


async def test_the_webhook_listener_is_set_by_start_when_the_webhook_port_is(
    tmp_path: Path,
) -> None:
    config = write_kubeconfig(tmp_path / "k", "http://127.0.0.1:9", token="sandbox-bff")
    # No certificate files: the webhook's context does not listen, the key is still set.
    settings = replace(Settings(kubeconfig=str(config), read_cache=False), webhook_port=0)
    app = create_app(settings)
    assert keys.WEBHOOK_LISTENER not in app
    runner, _ = await server.start(app, settings, host="127.0.0.1", port=0)
    try:
        assert isinstance(app[keys.WEBHOOK_LISTENER], server.WebhookListener)
    finally:
        await server.stop(runner)
