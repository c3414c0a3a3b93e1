"""A Kubernetes API server for one custom resource, ``upgrades.harvesterhci.io/v1beta1``.

:func:`create_emulator_app` builds an aiohttp application that answers the REST paths a
client (kubernetes-asyncio, kubectl, the BFF) uses, with kube-apiserver's semantics. The
parts, each in its own module:

- :mod:`~bff.sandbox.access`: authentication, impersonation, RBAC, TokenReview;
- :mod:`~bff.sandbox.discovery`: ``/version``, health, the group documents;
- :mod:`~bff.sandbox.openapiv3`: the OpenAPI v3 documents kubectl validates with;
- :mod:`~bff.sandbox.namespaces`: the few namespaces that exist, read-only;
- :mod:`~bff.sandbox.crud` and :mod:`~bff.sandbox.watch`: the Upgrade handlers;
- :mod:`~bff.sandbox.writes`: the one path every Upgrade write takes, with admission;
- :mod:`~bff.sandbox.store`: the objects and the registry's write rules, built on
  :mod:`~bff.sandbox.schema`, :mod:`~bff.sandbox.objectmeta` and
  :mod:`~bff.sandbox.status`;
- :mod:`~bff.sandbox.guarded`: the six other resources the cluster guard protects
  (IPPool, LoadBalancer, ...), served simply, their writes through the same admission;
- :mod:`~bff.sandbox.journal` and :mod:`~bff.sandbox.faults`: test support.

Test support, reachable only through the emulator's own AppKeys (the BFF never sees it):

- ``EMULATOR_STORE``: the :class:`~bff.sandbox.store.Store` (``get``, ``list``,
  ``compact``, ``bump``);
- ``EMULATOR_JOURNAL``: every non-GET request as it arrived, with the answer's status;
- ``EMULATOR_FAULTS``: injected answers, delays, or store actions for matching requests;
- ``EMULATOR_ADMISSION``: the admission every Upgrade write consults.
"""

from __future__ import annotations

from aiohttp import web

from bff.sandbox import access, crud, discovery, guarded, namespaces, openapiv3
from bff.sandbox.faults import EMULATOR_FAULTS, Fault, Faults, inject_faults
from bff.sandbox.journal import EMULATOR_JOURNAL, Journal, JournalEntry, log_and_journal
from bff.sandbox.keys import BOOKMARK_INTERVAL, EMULATOR_ADMISSION, EMULATOR_STORE
from bff.sandbox.resource import GROUP, PLURAL, VERSION
from bff.sandbox.seed import seed_store
from bff.sandbox.store import Store
from bff.sandbox.writes import Admission, NoAdmission

__all__ = [
    "EMULATOR_ADMISSION",
    "EMULATOR_FAULTS",
    "EMULATOR_JOURNAL",
    "EMULATOR_STORE",
    "Fault",
    "Faults",
    "Journal",
    "JournalEntry",
    "create_emulator_app",
]


def create_emulator_app(
    *,
    seed: bool = True,
    store: Store | None = None,
    bookmark_interval: float = 60.0,
    admission: Admission | None = None,
) -> web.Application:
    """The emulator, seeded with the three sample Upgrades unless ``seed`` is False."""
    app = web.Application(middlewares=[log_and_journal, access.authenticate, inject_faults])
    app[EMULATOR_STORE] = store if store is not None else Store()
    app[EMULATOR_JOURNAL] = Journal()
    app[EMULATOR_FAULTS] = Faults()
    app[EMULATOR_ADMISSION] = admission if admission is not None else NoAdmission()
    app[BOOKMARK_INTERVAL] = bookmark_interval
    if seed:
        seed_store(app[EMULATOR_STORE])

    async def close_watches(app: web.Application) -> None:
        app[EMULATOR_STORE].close_watchers()

    app.on_shutdown.append(close_watches)

    router = app.router
    discovery.add_routes(router)
    openapiv3.add_routes(router)
    namespaces.add_routes(app)
    router.add_post("/apis/authentication.k8s.io/v1/tokenreviews", access.token_review)
    router.add_post("/apis/authentication.k8s.io/v1/selfsubjectreviews", access.self_subject_review)
    router.add_post(
        "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
        access.self_subject_access_review,
    )
    router.add_post(
        "/apis/authorization.k8s.io/v1/subjectaccessreviews", access.subject_access_review
    )

    collection = f"/apis/{GROUP}/{VERSION}/namespaces/{{namespace}}/{PLURAL}"
    router.add_get(f"/apis/{GROUP}/{VERSION}/{PLURAL}", crud.list_all)
    router.add_get(collection, crud.list_namespaced)
    router.add_post(collection, crud.create)
    router.add_delete(collection, crud.delete_collection)
    router.add_get(collection + "/{name}", crud.get)
    router.add_put(collection + "/{name}", crud.replace)
    router.add_patch(collection + "/{name}", crud.patch)
    router.add_delete(collection + "/{name}", crud.delete)
    # IPPools, LoadBalancers, ... : the other resources the cluster guard protects.
    guarded.add_routes(app, seed=seed)
    return app
