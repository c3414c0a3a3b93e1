"""The API's route table, at the root of the app it is added to.

Under ``--base-path`` that app is mounted as a sub-application (``bff.app``), so
these templates never carry the base path and ``url_for`` adds it.

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
    UPGRADE_ACCESS,
    UPGRADE_EVENTS,
    UPGRADES,
    UPGRADES_ROUTE,
)
from bff.keys import SETTINGS


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/healthz", probes.healthz, allow_head=False)
    r.add_get("/readyz", probes.readyz, allow_head=False)
    if app[SETTINGS].metrics_port is None:  # else served on its own port (bff.server)
        r.add_get("/metrics", probes.metrics, allow_head=False)
    r.add_get("/openapi.json", page.openapi, allow_head=False)
    r.add_get("/", page.index, allow_head=False)
    r.add_get("/static/{file}", page.static, allow_head=False)

    # The router tries the routes under /api in this order (a coroutine each): the item,
    # the most read, first. No two of these templates match the same path.
    r.add_get(UPGRADE, handlers.get_upgrade, allow_head=False)
    r.add_put(UPGRADE, handlers.put_upgrade)
    r.add_post(UPGRADE, handlers.post_action)
    r.add_get(UPGRADES, handlers.list_upgrades, allow_head=False, name=UPGRADES_ROUTE)
    r.add_get(UPGRADE_EVENTS, events.upgrade_events, allow_head=False)
    r.add_get(UPGRADE_ACCESS, handlers.upgrade_access, allow_head=False)

    for prefix, name in (("", STEVE_ROUTE), (RANCHER_PREFIX, RANCHER_STEVE_ROUTE)):
        steve = f"{prefix}{STEVE_COLLECTION}"
        r.add_get(steve, handlers.list_upgrades, allow_head=False, name=name)
        r.add_get(f"{steve}/{{namespace}}", handlers.list_upgrades, allow_head=False)
        r.add_get(f"{steve}/{{namespace}}/{{name}}", handlers.get_upgrade, allow_head=False)
        r.add_put(f"{steve}/{{namespace}}/{{name}}", handlers.put_upgrade)
