"""Test support: every non-GET request as it arrived, and one log line per request.

The journal is reachable only through the emulator's ``EMULATOR_JOURNAL`` key; the BFF
never sees it. Tests read it to prove what the BFF wrote upstream.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from bff.sandbox.httpio import Handler, as_status
from bff.sandbox.keys import JOURNAL_BODY, USER

__all__ = ["EMULATOR_JOURNAL", "Journal", "JournalEntry", "log_and_journal"]

log = logging.getLogger("bff.sandbox.emulator")


@dataclass(frozen=True)
class JournalEntry:
    """One non-GET request as it arrived, and the status it got."""

    method: str
    path: str
    query: Mapping[str, str]
    content_type: str
    body: Any
    user: str
    status: int


@dataclass
class Journal:
    entries: list[JournalEntry] = field(default_factory=list)

    def writes(self, method: str | None = None) -> list[JournalEntry]:
        return [e for e in self.entries if method is None or e.method == method.upper()]

    def clear(self) -> None:
        self.entries.clear()


EMULATOR_JOURNAL = web.AppKey("emulator_journal", Journal)


@web.middleware
async def log_and_journal(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Outermost: one log line per request, the journal, and errors as Status objects."""
    started = time.monotonic()
    status = 500
    try:
        if request.method not in ("GET", "HEAD") and request.can_read_body:
            request[JOURNAL_BODY] = _journal_body(await request.read())
        response = await as_status(request, handler)
        status = response.status
        return response
    except asyncio.CancelledError:
        status = 499  # the server stopped while the request (a watch) was open
        raise
    finally:
        user = request.get(USER)
        who = user.username if user else "-"
        log.info(
            "%s %s user=%s -> %d (%.0f ms)",
            request.method,
            request.path,
            who,
            status,
            (time.monotonic() - started) * 1000,
        )
        if request.method not in ("GET", "HEAD"):
            journal = request.app[EMULATOR_JOURNAL]
            journal.entries.append(
                JournalEntry(
                    method=request.method,
                    path=request.path,
                    query=dict(request.query),
                    content_type=request.headers.get("Content-Type", ""),
                    body=request.get(JOURNAL_BODY),
                    user=who,
                    status=status,
                )
            )


def _journal_body(raw: bytes) -> Any:
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return raw.decode("utf-8", "replace")
