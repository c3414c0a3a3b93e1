"""The route table, mountable under a base path."""

from __future__ import annotations

from aiohttp import web

from bff.api import events, handlers, page, probes
from bff.api.paths import RANCHER_PREFIX, STEVE_COLLECTION, UPGRADE, UPGRADE_EVENTS, UPGRADES


def add_routes(app: web.Application, base_path: str = "") -> None:
    r = app.router
    b = base_path
    r.add_get(f"{b}/healthz", probes.healthz, allow_head=False)
    r.add_get(f"{b}/readyz", probes.readyz, allow_head=False)
    r.add_get(f"{b}/metrics", probes.metrics, allow_head=False)
    r.add_get(f"{b}/openapi.json", page.openapi, allow_head=False)
    r.add_get(f"{b}/", page.index, allow_head=False)
    if b:
        r.add_get(b, page.to_index, allow_head=False)
    r.add_get(f"{b}/static/{{file}}", page.static, allow_head=False)

    r.add_get(f"{b}{UPGRADES}", handlers.list_upgrades, allow_head=False)
    r.add_get(f"{b}{UPGRADE_EVENTS}", events.upgrade_events, allow_head=False)
    r.add_get(f"{b}{UPGRADE}", handlers.get_upgrade, allow_head=False)
    r.add_put(f"{b}{UPGRADE}", handlers.put_upgrade)
    r.add_post(f"{b}{UPGRADE}", handlers.post_action)

    for prefix in (b, f"{b}{RANCHER_PREFIX}"):
        steve = f"{prefix}{STEVE_COLLECTION}"
        r.add_get(steve, handlers.list_upgrades, allow_head=False)
        r.add_get(f"{steve}/{{namespace}}", handlers.list_upgrades, allow_head=False)
        r.add_get(f"{steve}/{{namespace}}/{{name}}", handlers.get_upgrade, allow_head=False)
        r.add_put(f"{steve}/{{namespace}}/{{name}}", handlers.put_upgrade)
