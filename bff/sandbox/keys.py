"""The emulator's shared application and request keys.

The test-support keys live with their data: ``EMULATOR_JOURNAL`` in
:mod:`bff.sandbox.journal`, ``EMULATOR_FAULTS`` in :mod:`bff.sandbox.faults`.
"""

from __future__ import annotations

from aiohttp import web

from bff.sandbox.store import Store
from bff.sandbox.users import UserInfo
from bff.sandbox.writes import Admission

__all__ = [
    "BOOKMARK_INTERVAL",
    "EMULATOR_ADMISSION",
    "EMULATOR_STORE",
    "JOURNAL_BODY",
    "USER",
]

EMULATOR_STORE = web.AppKey("emulator_store", Store)
#: What every Upgrade write consults between the store's checks (see bff.sandbox.writes).
EMULATOR_ADMISSION = web.AppKey("emulator_admission", Admission)
BOOKMARK_INTERVAL = web.AppKey("emulator_bookmark_interval", float)

#: The user the request acts as (after impersonation).
USER = web.RequestKey("emulator_user", UserInfo)
#: The request body as it arrived, for the journal.
JOURNAL_BODY = web.RequestKey("emulator_journal_body", object)
