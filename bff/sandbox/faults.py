"""Test support: injected answers, delays, or store actions for matching requests.

Reachable only through the emulator's ``EMULATOR_FAULTS`` key; the BFF never sees it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from bff.sandbox.httpio import Handler, json_response
from bff.sandbox.keys import EMULATOR_STORE
from bff.sandbox.status import StatusError
from bff.sandbox.store import Store

__all__ = ["EMULATOR_FAULTS", "FAULT_REASONS", "Fault", "Faults", "inject_faults"]


@dataclass
class Fault:
    """An injected behaviour for requests with ``method`` (and a path ending in ``path_suffix``).

    Applied ``times`` times, in this order: run ``action`` on the store, sleep ``delay``
    seconds, then answer ``status`` (with ``body`` or a matching Status, and ``headers``)
    instead of handling the request. Without ``status`` the request is handled normally.
    """

    method: str
    path_suffix: str | None = None
    status: int | None = None
    body: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)
    delay: float = 0.0
    action: Callable[[Store], object] | None = None
    times: int = 1

    def matches(self, method: str, path: str) -> bool:
        return self.method.upper() in (method.upper(), "*") and (
            self.path_suffix is None or path.endswith(self.path_suffix)
        )


@dataclass
class Faults:
    pending: list[Fault] = field(default_factory=list)

    def add(self, fault: Fault) -> Fault:
        self.pending.append(fault)
        return fault

    def clear(self) -> None:
        self.pending.clear()

    def take(self, method: str, path: str) -> Fault | None:
        for fault in self.pending:
            if fault.matches(method, path):
                fault.times -= 1
                if fault.times <= 0:
                    self.pending.remove(fault)
                return fault
        return None


FAULT_REASONS = {
    400: ("BadRequest", "injected bad request"),
    401: ("Unauthorized", "Unauthorized"),
    403: ("Forbidden", "forbidden: injected"),
    404: ("NotFound", "the server could not find the requested resource"),
    409: ("Conflict", "Operation cannot be fulfilled: injected conflict"),
    410: ("Expired", "injected expiry"),
    422: ("Invalid", "injected invalid"),
    429: ("TooManyRequests", "Too many requests, please try again later."),
    500: ("InternalError", "Internal error occurred: injected fault"),
    503: ("ServiceUnavailable", "the server is currently unable to handle the request"),
    504: ("Timeout", "the server was unable to return a response in the time allotted"),
}


EMULATOR_FAULTS = web.AppKey("emulator_faults", Faults)


@web.middleware
async def inject_faults(request: web.Request, handler: Handler) -> web.StreamResponse:
    fault = request.app[EMULATOR_FAULTS].take(request.method, request.path)
    if fault is None:
        return await handler(request)
    if fault.action is not None:
        fault.action(request.app[EMULATOR_STORE])
    if fault.delay:
        await asyncio.sleep(fault.delay)
    if fault.status is None:
        return await handler(request)
    body = fault.body
    if body is None:
        reason, message = FAULT_REASONS.get(fault.status, ("Unknown", "injected fault"))
        body = StatusError(fault.status, reason, message).status
    response = json_response(body, status=fault.status)
    for name, value in fault.headers.items():
        response.headers[name] = value
    return response
