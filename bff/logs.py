"""Logging: text or JSON lines, each carrying the request id.

The request id lives in a context variable set by the request middleware, so
every line logged while serving a request carries it without being passed
around. Nothing here ever formats a header, a cookie or a token.
"""

from __future__ import annotations

import asyncio
import atexit
import contextvars
import enum
import logging
import sys
import threading
import time
from typing import Any

import orjson
from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.web import BaseRequest, StreamResponse


class LogFormat(enum.StrEnum):
    """The shape of each log line (``--log-format``)."""

    TEXT = "text"
    JSON = "json"


request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")

#: Set on a request aiohttp's HTTP parser refused: it has no route, method or path to log.
MALFORMED = web.RequestKey("malformed", bool)

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


class _RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = request_id.get()
        # Access lines still waiting to be written go first: the log stays in the
        # order things happened.
        if _pending:
            _flush_pending()
        return True


_second = -1
_second_text = ""


def _utc_second(created: float) -> str:
    """``YYYY-MM-DDTHH:MM:SS`` in UTC, formatted once per second rather than once per line."""
    global _second, _second_text
    whole = int(created)
    if whole != _second:
        _second_text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole))
        _second = whole
    return _second_text


def _dumps(value: object) -> str:
    return orjson.dumps(value, default=str).decode()


#: The longest a message or one field's text may be in a line; the rest is cut.
MAX_FIELD = 1024
#: C0 controls and DEL, which a terminal or a log shipper would act on (a CR/LF forges lines).
_CONTROLS = {c: f"\\x{c:02x}" for c in (*range(0x20), 0x7F)} | {
    0x0A: "\\n",
    0x0D: "\\r",
    0x09: "\\t",
}


def _cut(text: str, limit: int = MAX_FIELD) -> str:
    if len(text) <= limit:
        return text
    return f"{text[:limit]}...(+{len(text) - limit} chars)"


def safe_text(text: str, limit: int = MAX_FIELD) -> str:
    """``text`` on one line (controls escaped) and at most about ``limit`` characters.

    Messages quote what clients send (an object's name, a username): a CR/LF in it
    must not start a forged line, and a 100 KB value must not fill the log.
    """
    return _cut(text, limit).translate(_CONTROLS)


def _bounded(value: object) -> object:
    """A field's value with every string in it cut to :data:`MAX_FIELD` (JSON escapes them)."""
    if isinstance(value, str):
        return _cut(value)
    if isinstance(value, list | tuple):
        return [_bounded(v) for v in value[:64]]
    if isinstance(value, dict):
        return {_cut(str(k), 256): _bounded(v) for k, v in list(value.items())[:64]}
    return value


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": f"{_utc_second(record.created)}.{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": _cut(record.getMessage(), 4 * MAX_FIELD),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = _bounded(value)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return _dumps(entry)


class TextFormatter(logging.Formatter):
    """``time level logger [request-id] message key=<JSON value> ...``, in UTC."""

    def format(self, record: logging.LogRecord) -> str:
        line = (
            f"{_utc_second(record.created)}.{int(record.msecs):03d}Z {record.levelname:<7} "
            f"{record.name} [{getattr(record, 'request_id', '-')}] "
            f"{safe_text(record.getMessage(), 4 * MAX_FIELD)}"
        )
        extras = [
            f"{k}={_dumps(_bounded(v))}"
            for k, v in record.__dict__.items()
            if k not in _STANDARD and k != "request_id" and not k.startswith("_")
        ]
        if extras:
            line += " " + " ".join(extras)
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def configure(fmt: LogFormat, level: str, stream: Any = None) -> None:
    # Neither format uses the caller's file and line, thread or process: skip collecting them.
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    global _configured
    _flush_pending()  # lines meant for the handler being replaced go to it first
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt is LogFormat.JSON else TextFormatter())
    handler.addFilter(_RequestIdFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    _configured = handler


#: The handler :func:`configure` installed: access lines may be written to it directly.
_configured: logging.StreamHandler[Any] | None = None


def _direct_handler(logger: logging.Logger) -> logging.StreamHandler[Any] | None:
    """The configured handler, when it is the only one a line of ``logger`` would reach.

    Then an access line can be formatted and written without a LogRecord, exactly as
    the handler's formatter would have written it. Anything else attached on the way
    (a test's capture, another handler, a filter) and the line takes logging's path.
    Once found, the answer holds for the rest of this turn of the event loop (the
    batch its first line opened): nothing in the turn changes it.
    """
    if _pending and _pending_from is logger:
        return _pending_to
    handler = _configured
    if handler is None or len(handler.filters) != 1 or handler.level > logging.INFO:
        return None
    current: logging.Logger | None = logger
    while current is not None and current is not logging.root:
        if current.handlers or current.filters or current.disabled:
            return None
        if not current.propagate:
            return None
        current = current.parent
    root = logging.root
    if len(root.handlers) != 1 or root.handlers[0] is not handler or root.filters:
        return None
    return handler


def _stamp(created: float) -> str:
    """``created`` (a ``time.time()``) as the formatters write a record's time: made once
    per millisecond (under load many lines share one; formatting it costs more than the
    rest of the line)."""
    global _milli, _milli_text
    milli = created * 1000 // 1
    if milli != _milli:
        _milli_text = f"{_utc_second(created)}.{int((created - int(created)) * 1000):03d}Z"
        _milli = milli
    return _milli_text


_milli = -1.0
_milli_text = ""


def _access_line(handler: logging.Handler, logger: str, extra: dict[str, Any]) -> str:
    """The line ``handler``'s formatter makes of an INFO access record with ``extra``."""
    stamp = _stamp(time.time())
    message = f"{extra['method']} {extra['route']} {extra['status']}"
    if isinstance(handler.formatter, JsonFormatter):
        entry = {"time": stamp, "level": "info", "logger": logger, "message": message, **extra}
        return _dumps(entry)
    values = " ".join(f"{k}={_json_text(v)}" for k, v in extra.items() if k != "request_id")
    return f"{stamp} INFO    {logger} [{extra['request_id']}] {message} {values}"


#: JSON text of the strings access lines repeat (methods, route templates, client
#: addresses), made once each; bounded, past the bound strings are encoded each time.
_ENCODED: dict[str, str] = {}
_ENCODED_MAX = 4096


def _text_head(method: str, route: str, status: int) -> str:
    """An access line's text from the message to ``duration_ms=``, made once per route,
    method and status (bounded like :data:`_ENCODED`)."""
    key = (method, route, status)
    text = _HEADS.get(key)
    if text is None:
        text = (
            f" {method} {route} {status} method={_json_text(method)} route={_json_text(route)} "
            f"status={status} duration_ms="
        )
        if len(_HEADS) < _ENCODED_MAX:
            _HEADS[key] = text
    return text


_HEADS: dict[tuple[str, str, int], str] = {}


def _json_text(value: object) -> str:
    """``_dumps(value)``, remembered for strings and spelled directly for whole numbers."""
    if type(value) is str:
        text = _ENCODED.get(value)
        if text is None:
            text = _dumps(value)
            if len(_ENCODED) < _ENCODED_MAX:
                _ENCODED[value] = text
        return text
    if type(value) is int:  # not bool: type() is exact
        return str(value)
    return _dumps(value)


def route_template(request: BaseRequest) -> str:
    """The matched route's template (``/api/{version}/upgrades/{namespace}/{name}``).

    ``unmatched`` when no route was resolved: for a request the HTTP parser refused
    (a ``BaseRequest``, which has no match), or one asked before routing. Read from
    the request's match as aiohttp keeps it: its ``match_info`` property asserts there
    is one, and is twice the cost.
    """
    match_info = getattr(request, "_match_info", None)
    route = getattr(match_info, "route", None)
    resource = getattr(route, "resource", None)
    return resource.canonical if resource is not None else "unmatched"


#: Where access lines go: the app's middleware writes one per request it served, and
#: :class:`AccessLogger` one per request answered without it.
ACCESS_LOG = logging.getLogger("bff.access")


def access_line(
    client: str,
    method: str,
    route: str,
    status: int,
    seconds: float,
    rid: str,
    logger: logging.Logger = ACCESS_LOG,
) -> None:
    """Log one request's access line: ``METHOD route status`` and its fields.

    The fields are the request id, method, route template (never the raw path or
    query), status, duration in milliseconds and the client's address (``client``:
    the peer's, or a trusted proxy's client's). When the configured handler is the
    only one the line would reach, the line's fields are kept, with the time, and made
    into the text its formatter would make when the batch is written with the others
    of the next few milliseconds (:func:`_write_soon`): without a LogRecord, and out
    of the request's way. Otherwise the line takes logging's own path.
    """
    if (
        _pending
        and _pending_from is logger
        and _pending_end is not None
        and _pending_thread == threading.get_ident()
    ):
        # This turn's batch of the logger's text lines is open, on this thread's loop:
        # the logger was enabled and its handler direct when it opened, and nothing in
        # the turn changes that. The line joins it.
        _pending.append(
            (time.time(), logger.name, rid, method, route, status, seconds, client, _pending_end)
        )  # fmt: skip
        return
    if not logger.isEnabledFor(logging.INFO):
        return
    handler = _direct_handler(logger)
    if handler is not None and isinstance(handler.formatter, TextFormatter):
        line = (time.time(), logger.name, rid, method, route, status, seconds, client,
                handler.terminator)  # fmt: skip
        _write_soon(handler, line, logger)
        return
    extra = {"request_id": rid, "method": method, "route": route, "status": status,
             "duration_ms": _milliseconds(seconds), "client": client}  # fmt: skip
    if handler is not None and isinstance(handler.formatter, JsonFormatter):
        _write_soon(handler, _access_line(handler, logger.name, extra), logger)
        return
    logger.info("%s %s %s", method, route, status, extra=extra)


#: A text access line not made yet: its time, logger, request id, method, route,
#: status, seconds, client and line end (:func:`_text_access` makes it).
_Unmade = tuple[float, str, str, str, str, int, float, str, str]


def _text_access(
    created: float,
    logger: str,
    rid: str,
    method: str,
    route: str,
    status: int,
    seconds: float,
    client: str,
    end: str,
) -> str:
    """The access line :class:`TextFormatter` would write for a record made at
    ``created``, and ``end``: its fields in the order of ``extra`` in
    :func:`access_line`. Made without a LogRecord (about a third of what an access line
    costs through logging), when its batch is written."""
    return (
        f"{_stamp(created)} INFO    {logger} [{rid}]{_text_head(method, route, status)}"
        f"{orjson.dumps(_milliseconds(seconds)).decode()} client={_json_text(client)}{end}"
    )


def _milliseconds(seconds: float) -> float:
    """``seconds`` in milliseconds to two decimals, as ``round`` would make it (but for
    a tie, which may go up where ``round`` goes to even) at a quarter of its cost."""
    return (seconds * 100000 + 0.5) // 1 / 100


class AccessLogger(AbstractAccessLogger):
    """aiohttp's access logger writing :func:`access_line`: for an app without the BFF's
    middleware, and for what the server answers itself (a request the parser refused)."""

    def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
        route = route_template(request)
        # Only a request the parser refused is marked; it never reached the router.
        if route == "unmatched" and request.get(MALFORMED, False):
            method, route = "-", "malformed"
        else:
            method = request.method
        rid = response.headers.get("X-Request-ID", "-")
        client = request.remote or "-"  # no middleware: no trusted proxy's address
        access_line(client, method, route, response.status, time, rid, self.logger)


#: Access lines waiting to be written (a text access line as its fields, made into text
#: when written), and the handler they go to. While the loop's turn that opened the
#: batch lasts: the logger they were made for, that loop's thread, and the handler's
#: line end when they are text lines (which :func:`access_line` then adds to directly).
_pending: list[str | _Unmade] = []
_pending_to: logging.StreamHandler[Any] | None = None
_pending_from: logging.Logger | None = None
_pending_thread = 0
_pending_end: str | None = None
_pending_lock = threading.Lock()
#: Whether the turn that opened the batch is still on (its end is scheduled).
_turn_open = False
#: The write scheduled for the waiting lines, and its loop.
_timer: asyncio.TimerHandle | None = None
_timer_loop: asyncio.AbstractEventLoop | None = None

#: Waiting lines are written this many seconds after the end of the turn that made the
#: first of them, or at the end of any turn that leaves :data:`WRITE_AT` of them.
WRITE_AFTER = 0.01
WRITE_AT = 256


def _write_soon(
    handler: logging.StreamHandler[Any], line: str | _Unmade, logger: logging.Logger | None = None
) -> None:
    """Write ``line`` (a text access line may come as its fields, made when written)
    with the others of the next few milliseconds: one write for them all.

    Under load a turn of the loop answers a few requests and a write (a system call,
    and the stream's own work) per turn was a fiftieth of what a cached read costs.
    Lines are written :data:`WRITE_AFTER` seconds after the turn that made the first
    of them ends (sooner when :data:`WRITE_AT` wait), before any other line
    (:class:`_RequestIdFilter`), when the server stops, and at exit. Outside a running
    loop the line is written at once.
    """
    global _pending_to, _pending_from, _pending_thread, _pending_end, _turn_open
    entry = line + handler.terminator if isinstance(line, str) else line
    with _pending_lock:
        if _pending and _pending_to is handler and _pending_from is logger:
            # This turn's batch is open: join it. Asking for the running loop costs a
            # system call (``getpid``) per line.
            _pending.append(entry)
            return
        if _pending and _pending_to is not handler:
            _write_pending()
        _pending_to = handler
        _pending.append(entry)
        if _turn_open:
            return  # another logger's line, in a turn whose end is scheduled
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            _write_pending()
            return
        loop.call_soon(_turn_ended, loop)
        _turn_open = True
        _pending_from = logger
        _pending_thread = threading.get_ident()
        _pending_end = handler.terminator if isinstance(handler.formatter, TextFormatter) else None


def _turn_ended(loop: asyncio.AbstractEventLoop) -> None:
    """The turn that opened the batch is over: no line joins it directly any more (the
    next one decides again, the configuration may change between turns); the lines are
    written now if enough wait, else once :data:`WRITE_AFTER` has passed."""
    global _turn_open, _pending_from, _pending_end, _timer, _timer_loop
    with _pending_lock:
        _turn_open = False
        _pending_from = None
        _pending_end = None
        if len(_pending) >= WRITE_AT:
            _write_pending()
        elif _pending and (_timer is None or _timer_loop is not loop):
            # (A write scheduled on another loop, one that has stopped, may never run.)
            _timer = loop.call_later(WRITE_AFTER, _timer_fired)
            _timer_loop = loop


def _timer_fired() -> None:
    global _timer, _timer_loop
    _timer = _timer_loop = None
    _flush_pending()


def flush() -> None:
    """Write the access lines waiting, now (the server calls it once stopped)."""
    _flush_pending()


def _flush_pending() -> None:
    with _pending_lock:
        _write_pending()


def _write_pending() -> None:
    """Write the pending lines (the caller holds :data:`_pending_lock`).

    :func:`access_line` adds to an open batch without the lock, so the lines are taken
    and removed in two steps each atomic: one added in between stays, for the end of
    the turn already scheduled on the loop that opened the batch (its own thread's).
    """
    handler = _pending_to
    if not _pending or handler is None:
        return
    lines = _pending.copy()
    del _pending[: len(lines)]
    text = "".join([line if type(line) is str else _text_access(*line) for line in lines])
    with handler.lock:  # type: ignore[union-attr]
        handler.stream.write(text)
        handler.flush()


atexit.register(_flush_pending)
