"""Typed application keys: everything the app shares between handlers.

Per-request keys are in :mod:`bff.request_keys`.
"""

from __future__ import annotations

from aiohttp import web

from bff.access import AccessChecker
from bff.admission.webhook import Listener
from bff.auth import Authenticator
from bff.cache import StreamBudget, UpgradeCache
from bff.metrics import Metrics
from bff.readiness import Readiness
from bff.settings import Settings
from bff.upgrades import UpgradeService

SETTINGS = web.AppKey("settings", Settings)
METRICS = web.AppKey("metrics", Metrics)
SERVICE = web.AppKey("service", UpgradeService)
AUTH = web.AppKey("auth", Authenticator)
READINESS = web.AppKey("readiness", Readiness)
CACHE = web.AppKey("cache", UpgradeCache)
#: Per-caller access reviews: the read cache's reads, and ``GET .../upgrades/access``.
ACCESS = web.AppKey("access", AccessChecker)
STREAMS = web.AppKey("streams", StreamBudget)
#: How the webhook port listens: set by :func:`bff.server.start`, bounded like the API port.
WEBHOOK_LISTENER = web.AppKey("webhook_listener", Listener)
