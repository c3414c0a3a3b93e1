"""Provider states for consumer-driven contract (Pact) verification. Sandbox only.

A pact names the state the provider must be in before each interaction ("a
finished upgrade exists", "the caller is a viewer"). The Pact verifier asks for
each state with ``POST {base}/_sandbox/provider-states`` and the body
``{"state": ..., "params": {...}, "action": "setup"|"teardown"}``.

* An **object state** rewrites one Upgrade in the emulator's store (created if
  absent) from a seed object, and answers its ``namespace``, ``name``, ``uid``
  and ``resourceVersion``.
* A **caller state** changes nothing and answers the ``token`` a caller in
  that role presents.

The answer is what the pact's ``fromProviderState`` templates read: a consumer
writes ``R_SESS=${token}`` or ``"uid": "${uid}"`` without knowing the sandbox's
tokens or the uid the emulator assigned.

Only :func:`bff.sandbox.runner.run` mounts this on the sandbox's BFF. ``serve``
never does: the product package never imports ``bff.sandbox``
(import-linter), and a test checks that ``serve`` answers the path with 404.
The state writes go straight to the emulator's store, as another writer on the
cluster would; they are not the BFF's writes.
"""

from __future__ import annotations

import copy
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from bff.names import is_dns1123_label, is_dns1123_subdomain
from bff.sandbox.seed import NAMESPACE, creatable, seed_objects
from bff.sandbox.status import StatusError
from bff.sandbox.store import Store

__all__ = ["PATH", "STATES", "mount"]

PATH = "/_sandbox/provider-states"
READ_MESSAGE = "harvesterhci.io/read-message"
UPGRADE_STATE = "harvesterhci.io/upgradeState"

JSON = dict[str, Any]
STORE = web.AppKey("provider_states_store", Store)


class StateError(Exception):
    """A state request this endpoint cannot satisfy (answered with 400)."""


def _seed(upgrade_state: str) -> JSON:
    for obj in seed_objects():
        if obj["metadata"].get("labels", {}).get(UPGRADE_STATE) == upgrade_state:
            return obj
    raise LookupError(f"no seed object with {UPGRADE_STATE}={upgrade_state}")


def _target(params: Mapping[str, Any], seed: JSON) -> tuple[str, str]:
    namespace = params.get("namespace", NAMESPACE)
    name = params.get("name", seed["metadata"]["name"])
    if not isinstance(namespace, str) or not is_dns1123_label(namespace):
        raise StateError(f"params.namespace must be a DNS-1123 label, got {namespace!r}")
    if not isinstance(name, str) or not is_dns1123_subdomain(name):
        raise StateError(f"params.name must be a DNS-1123 subdomain, got {name!r}")
    return namespace, name


def _put_object(store: Store, seed: JSON, params: Mapping[str, Any]) -> JSON:
    """Make ``namespace/name`` a copy of ``seed``, unread, whatever it was before."""
    namespace, name = _target(params, seed)
    wanted = creatable(seed)
    meta = wanted["metadata"]
    meta.pop("generateName", None)
    meta["name"], meta["namespace"] = name, namespace
    meta.setdefault("labels", {}).pop(READ_MESSAGE, None)
    live = store.get(namespace, name)
    if live is None:
        obj, _ = store.create(namespace, wanted)
    else:

        def replaced(current: JSON) -> JSON:
            body = copy.deepcopy(wanted)
            body["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
            return body

        obj, _, _ = store.update(namespace, name, replaced)
    meta = obj["metadata"]
    return {
        "namespace": meta["namespace"],
        "name": meta["name"],
        "uid": meta["uid"],
        "resourceVersion": meta["resourceVersion"],
    }


def _object_state(upgrade_state: str) -> Callable[[Store, Mapping[str, Any]], JSON]:
    def setup(store: Store, params: Mapping[str, Any]) -> JSON:
        return _put_object(store, _seed(upgrade_state), params)

    return setup


def _caller(token: Callable[[], str]) -> Callable[[Store, Mapping[str, Any]], JSON]:
    def setup(store: Store, params: Mapping[str, Any]) -> JSON:
        return {"token": token()}

    return setup


@dataclass(frozen=True)
class State:
    description: str
    setup: Callable[[Store, Mapping[str, Any]], JSON]


#: Every state a pact may name. A state not listed here is a 400 naming them all,
#: so a new interaction with a new state fails verification until the provider knows it.
STATES: Mapping[str, State] = {
    "a finished upgrade exists": State(
        "params.namespace/params.name (default: the succeeded seed) is the succeeded "
        "seed upgrade, its message not yet dismissed",
        _object_state("Succeeded"),
    ),
    "a failed upgrade exists": State(
        "params.namespace/params.name (default: the failed seed) is the failed seed "
        "upgrade, its message not yet dismissed",
        _object_state("Failed"),
    ),
    "an upgrade is in progress": State(
        "params.namespace/params.name (default: the in-progress seed) is the seed "
        "upgrade in state UpgradingNodes",
        _object_state("UpgradingNodes"),
    ),
    "the caller may dismiss upgrades": State(
        "token: a token with every verb on upgrades", _caller(lambda: "sandbox-admin")
    ),
    "the caller is a viewer": State(
        "token: a token that may get, list and watch upgrades, nothing else",
        _caller(lambda: "sandbox-viewer"),
    ),
    "the caller's session has expired": State(
        "token: a token the API server does not accept",
        _caller(lambda: "expired-" + secrets.token_hex(8)),
    ),
}


def _error(status: int, message: str) -> web.Response:
    return web.json_response(
        {"type": "error", "status": status, "code": "InvalidProviderState", "message": message},
        status=status,
    )


async def change_state(request: web.Request) -> web.Response:
    # JSON only: a cross-origin page cannot send that without a CORS preflight,
    # and the BFF answers a preflight only for --allowed-origin origins.
    if request.content_type != "application/json":
        return _error(415, "the state change body must be application/json")
    try:
        body = await request.json()
    except ValueError:
        return _error(400, "the state change body is not JSON")
    if not isinstance(body, dict) or not isinstance(body.get("state"), str):
        return _error(400, 'the body must be {"state": "...", "params": {...}, "action": "..."}')
    action = body.get("action", "setup")
    if action == "teardown":
        # Every setup rewrites what it needs, so there is nothing to undo.
        return web.json_response({})
    if action != "setup":
        return _error(400, f"unknown action {str(action)[:40]!r}; actions are setup, teardown")
    name = body["state"]
    params = body.get("params") or {}
    if not isinstance(params, dict):
        return _error(400, "params must be an object")
    if name == "":
        # Pact's generic "no state" setup.
        return web.json_response({})
    state = STATES.get(name)
    if state is None:
        known = "; ".join(STATES)
        return _error(400, f"unknown provider state {name[:100]!r}; known states: {known}")
    try:
        values = state.setup(request.app[STORE], params)
    except StateError as exc:
        return _error(400, str(exc))
    except StatusError as exc:
        return _error(409, f"the emulator refused the state change: {exc.message}")
    return web.json_response(values)


def mount(app: web.Application, store: Store, base_path: str = "") -> None:
    """Serve the state-change endpoint on ``app`` (the sandbox's BFF), over ``store``."""
    app[STORE] = store
    app.router.add_post(f"{base_path}{PATH}", change_state)
