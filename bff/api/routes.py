"""The route table, mountable under a base path.

The collections are named routes (:data:`UPGRADES_ROUTE`, :data:`STEVE_ROUTE`,
:data:`RANCHER_STEVE_ROUTE`): the links in answers are built from them with
``url_for``, so a link always matches a route the app serves.
"""

from __future__ import annotations

from aiohttp import web

from bff.api import events, handlers, page, probes
from bff.api.paths import (
    RANCHER_PREFIX,
    RANCHER_STEVE_ROUTE,
    STEVE_COLLECTION,
    STEVE_ROUTE,
    UPGRADE,
    UPGRADE_EVENTS,
    UPGRADES,
    UPGRADES_ROUTE,
)


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

    r.add_get(f"{b}{UPGRADES}", handlers.list_upgrades, allow_head=False, name=UPGRADES_ROUTE)
    r.add_get(f"{b}{UPGRADE_EVENTS}", events.upgrade_events, allow_head=False)
    r.add_get(f"{b}{UPGRADE}", handlers.get_upgrade, allow_head=False)
    r.add_put(f"{b}{UPGRADE}", handlers.put_upgrade)
    r.add_post(f"{b}{UPGRADE}", handlers.post_action)

    for prefix, name in ((b, STEVE_ROUTE), (f"{b}{RANCHER_PREFIX}", RANCHER_STEVE_ROUTE)):
        steve = f"{prefix}{STEVE_COLLECTION}"
        r.add_get(steve, handlers.list_upgrades, allow_head=False, name=name)
        r.add_get(f"{steve}/{{namespace}}", handlers.list_upgrades, allow_head=False)
        r.add_get(f"{steve}/{{namespace}}/{{name}}", handlers.get_upgrade, allow_head=False)
        r.add_put(f"{steve}/{{namespace}}/{{name}}", handlers.put_upgrade)
