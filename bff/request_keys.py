"""What one request is about: the keys handlers set and the metrics, logs and audit read.

Kept apart from the application keys (:mod:`bff.keys`) so that logging, which
reads the client address, depends on nothing but aiohttp.
"""

from __future__ import annotations

import enum

from aiohttp import web


class Action(enum.StrEnum):
    """What a request asks for: the ``action`` of its metrics and of its audit line."""

    LIST = "list"
    GET = "get"
    WATCH = "watch"
    #: What the caller may do (``GET /api/{version}/upgrades/access``).
    ACCESS = "access"
    PUT = "put"
    #: A v1.0.5 action request whose action is not known (yet, or at all).
    ACTION = "action"
    DISMISS = "dismiss"
    CANCEL = "cancel"


#: The actions a v1.0.5 client may ask for with ``?action=``.
ACTIONS = (Action.DISMISS, Action.CANCEL)

CLIENT_VERSION = web.RequestKey("client_version", str)
ACTION = web.RequestKey("action", Action)
