"""The benchmark's upstream: the sandbox's Kubernetes API emulator, in a process of its own.

It counts the requests it serves (by method, watches apart), so the bench can
report upstream requests per client request. Two bench-only paths, answered
before authentication and never counted:

* ``GET /_bench/counts``: the counters;
* ``POST /_bench/seed?namespace=NS&count=N&prefix=P``: create N finished, unread
  Upgrades straight in the store (no HTTP per object);
* ``POST /_bench/delete?namespace=NS&prefix=P``: delete the Upgrades whose names
  start with P (watchers see each deletion), answering how many.

``python -m bff.bench.upstream`` prints ``port N`` once listening.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import logging
from collections import Counter
from collections.abc import Awaitable, Callable

from aiohttp import web

from bff.bench.forwarder import _serve
from bff.sandbox.emulator import EMULATOR_STORE, create_emulator_app
from bff.sandbox.store import Store

SUCCEEDED = "hvst-upgrade-7xn6v"
TEMPLATE_NAMESPACE = "harvester-system"


def upstream_app() -> web.Application:
    app = create_emulator_app(store=Store(history_limit=1_000_000))
    counts: Counter[str] = Counter()
    store = app[EMULATOR_STORE]
    seeded = store.get(TEMPLATE_NAMESPACE, SUCCEEDED)
    assert seeded is not None, "the emulator's seed has the succeeded upgrade"
    template = copy.deepcopy(seeded)

    def seed(namespace: str, count: int, prefix: str) -> list[str]:
        names = []
        for index in range(count):
            meta = template["metadata"]
            labels = dict(meta["labels"])
            labels.pop("harvesterhci.io/read-message", None)
            body = {
                "apiVersion": template["apiVersion"],
                "kind": template["kind"],
                "metadata": {"name": f"{prefix}{index}", "labels": labels},
                "spec": template["spec"],
                "status": template["status"],
            }
            created, _ = store.create(namespace, body)
            names.append(created["metadata"]["name"])
        return names

    @web.middleware
    async def bench(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if request.path == "/_bench/counts":
            return web.json_response(dict(counts))
        if request.path == "/_bench/delete" and request.method == "POST":
            namespace, prefix = request.query["namespace"], request.query["prefix"]
            names = [o["metadata"]["name"] for o in store.list(namespace)
                     if o["metadata"]["name"].startswith(prefix)]  # fmt: skip
            for name in names:
                store.delete(namespace, name)
            return web.json_response({"deleted": len(names)})
        if request.path == "/_bench/seed" and request.method == "POST":
            names = seed(
                request.query["namespace"], int(request.query["count"]), request.query["prefix"]
            )
            return web.json_response({"names": names})
        kind = "WATCH" if request.query.get("watch") in ("1", "true") else request.method
        counts[kind] += 1
        counts["total" if kind != "WATCH" else "watches"] += 1
        return await handler(request)

    app.middlewares.insert(0, bench)
    return app


def main() -> None:
    argparse.ArgumentParser(description=__doc__).parse_args()
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(_serve(upstream_app()))


if __name__ == "__main__":
    main()
