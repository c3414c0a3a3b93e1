"""The webhook's HTTP side: two review routes on their own HTTPS port.

``POST /admission/guard/mutate`` answers an untrusted write that changes the status
of a resource of the guard table, or drops a finalizer or an owner reference it keeps,
with ``allowed: true`` and a JSONPatch that puts them back (or refuses it, for a row
in ``deny`` mode); ``POST /admission/guard/validate`` refuses the same writes instead,
for a ValidatingWebhookConfiguration. The paths of the Upgrade-only guard
(``/admission/upgrades/...``) answer the same, so a configuration applied before
the table existed keeps working. Handlers parse, call :mod:`bff.admission.guard`, and answer;
there is no user authentication (the API server is the only caller, and the
answer depends on the review alone) and no upstream call.

Limits: review bodies up to :data:`MAX_REVIEW_BYTES` (413 beyond) and
:data:`REVIEW_TIMEOUT` seconds to receive and answer one (408 beyond). The API
server's own ``timeoutSeconds`` is shorter still.

Isolation: :func:`serving` runs the whole webhook (its listening socket, TLS
handshakes and decryption, the body read, the JSON parse, the decision and the
answer, and the certificate reload) on an event loop of its own, on a thread of
its own (:class:`WebhookLoop`). The API port's loop never runs a line of it, so
a review that is slow to arrive or large to decide cannot hold ``/healthz`` or
an API request, and a stalled API handler cannot hold a review. Reviews are
decided on that loop, one at a time. What the two still share is the
interpreter's lock: the longest single step of a review (parsing its body in
one C call) is the most it can delay the API's loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from aiohttp import web

from bff.admission import review as rv
from bff.admission.configuration import MUTATE_PATH as MUTATE_PATH
from bff.admission.guard import Decision, Reason, TrustedWriters, inspect
from bff.admission.resources import GuardTable
from bff.admission.tls import DEFAULT_CHECK_INTERVAL, ReloadingCertificate

log = logging.getLogger("bff.admission")

VALIDATE_PATH = "/admission/guard/validate"
# The Upgrade-only guard's paths, still served: the same answers.
LEGACY_MUTATE_PATH = "/admission/upgrades/mutate"
LEGACY_VALIDATE_PATH = "/admission/upgrades/validate"
# An AdmissionReview carries the object twice; etcd stores objects up to 1.5 MiB.
MAX_REVIEW_BYTES = 3 * 1024 * 1024 + 64 * 1024
REVIEW_TIMEOUT = 5.0
KEEPALIVE_TIMEOUT = 30.0

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
#: The webhook's thread, as log records and thread dumps name it.
THREAD_NAME = "admission-webhook"
#: Seconds the webhook's thread is given to end once its loop is stopped.
THREAD_JOIN_TIMEOUT = 5.0

T = TypeVar("T")


class WebhookLoop:
    """An event loop on a thread of its own, where the webhook lives while it serves.

    Everything of the webhook is started, run and cleaned up on :attr:`loop` through
    :meth:`run`, awaited from the caller's loop; nothing of it runs on the caller's.
    """

    def __init__(self, name: str = THREAD_NAME) -> None:
        self.loop = asyncio.new_event_loop()
        self._started = threading.Event()
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.thread.start()
        self._started.wait()

    def _run(self) -> None:
        loop = self.loop
        asyncio.set_event_loop(loop)
        loop.call_soon(self._started.set)
        try:
            loop.run_forever()
        finally:
            # Anything still running (a review past the drain) ends with the loop.
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            if pending:
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
            loop.close()

    async def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the webhook's loop; its result (or exception) comes back here.

        Cancelling the caller cancels ``coro`` on the webhook's loop."""
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self.loop))

    async def close(self) -> None:
        """Stop the loop and wait (off the caller's loop) for the thread to end.

        A thread that does not end within :data:`THREAD_JOIN_TIMEOUT` is a daemon: it is
        left behind rather than waited for forever."""
        if not self.thread.is_alive():
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        await asyncio.get_running_loop().run_in_executor(
            None, self.thread.join, THREAD_JOIN_TIMEOUT
        )


class Listener(Protocol):
    """Serves the webhook app on ``host:port`` over TLS; returns the started runner."""

    async def __call__(
        self, app: web.Application, host: str, port: int, context: ssl.SSLContext
    ) -> web.BaseRunner: ...


async def plain_listener(
    app: web.Application, host: str, port: int, context: ssl.SSLContext
) -> web.BaseRunner:
    runner = web.AppRunner(
        app, handle_signals=False, access_log=None,
        keepalive_timeout=KEEPALIVE_TIMEOUT, shutdown_timeout=REVIEW_TIMEOUT,
    )  # fmt: skip
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port, ssl_context=context).start()
    except BaseException:
        await runner.cleanup()
        raise
    return runner


@dataclass(frozen=True)
class Guard:
    """What the handlers share: the table, who else is trusted, where restores are counted
    (``on_restore(resource, reason)``, resource as ``ippools.loadbalancer.harvesterhci.io``)."""

    trusted: TrustedWriters
    table: GuardTable = field(default_factory=GuardTable)
    on_restore: Callable[[str, Reason], None] = lambda _resource, _reason: None
    #: Seconds to receive and answer one review.
    review_timeout: float = REVIEW_TIMEOUT


GUARD = web.AppKey("admission_guard", Guard)


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"code": status, "message": message}, status=status)


@web.middleware
async def _limits(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A short deadline per review, and aiohttp's own errors (404, 405, 413) as JSON."""
    timeout = request.app[GUARD].review_timeout
    try:
        async with asyncio.timeout(timeout):
            return await handler(request)
    except TimeoutError:
        log.warning("admission review not received within %ss", timeout)
        return _error(408, f"the review was not received within {timeout:g}s")
    except web.HTTPRequestEntityTooLarge:
        return _error(413, f"an AdmissionReview is at most {MAX_REVIEW_BYTES} bytes")
    except web.HTTPException as exc:
        return _error(exc.status, exc.reason)


def _log(review: rv.GuardReview, decision: Decision, action: str) -> None:
    what = decision.summary()
    if decision.intended:
        what = ", ".join(filter(None, [what, "intended change of " + ", ".join(decision.intended)]))
    log.warning(
        "%s %s on %s %s (%s) by %s",
        action,
        what,
        review.kind,
        review.target,
        review.row.key,
        review.writer.username or "(no username)",
        extra={
            "user": review.writer.username,
            "groups": ",".join(review.writer.groups),
            "resource": review.row.key,
            "object": review.target,
            "operation": review.operation,
            "restored": [r.path for r in decision.restores],
            "reasons": [str(r.reason) for r in decision.restores],
            "intended": [str(k) for k in decision.intended],
            "dry_run": review.dry_run,
            "review_uid": review.uid,
        },
    )


def _parse(guard: Guard, raw: bytes) -> tuple[rv.GuardReview, Decision]:
    review = rv.parse_review(rv.decode(raw), guard.table)
    return review, inspect(review, guard.trusted)


async def _review(request: web.Request, *, repair: bool) -> web.Response:
    body = await request.read()
    # Decided right here, on the webhook's own loop (see WebhookLoop): one review at a
    # time, and never on the loop that answers the probes and the API.
    return _answer(request.app[GUARD], body, repair)


def _answer(guard: Guard, body: bytes, repair: bool) -> web.Response:
    try:
        review, decision = _parse(guard, body)
    except rv.ReviewError as exc:
        log.warning("bad admission review: %s", exc)
        return _error(400, str(exc))
    except RecursionError:
        # Nested just under the parser's limit, then too deep to compare: still the client's.
        log.warning("bad admission review: JSON nested too deeply")
        return _error(400, "the body is JSON nested too deeply to be an AdmissionReview")
    refuse = decision.bad_intent or (decision.changed and (decision.deny or not repair))
    if refuse:
        _log(review, decision, "dry run: refused" if review.dry_run else "refused")
        return web.json_response(
            rv.denied(review.uid, decision.denial(review), audit=decision.audit())
        )
    if not decision.patch and not decision.intended:
        return web.json_response(rv.allowed(review.uid))
    if decision.changed and not review.dry_run:
        # A dry run gets the same answer; it is logged, but it restored nothing real.
        for restore in decision.restores:
            guard.on_restore(review.row.key, restore.reason)
    action = "restored" if decision.changed else "let through on stated intent:"
    _log(review, decision, f"dry run: {action}" if review.dry_run else action)
    return web.json_response(
        rv.allowed(
            review.uid,
            # The validating path cannot patch: the intent annotation stays stored there.
            decision.json_patch().to_string() if repair and decision.patch else "",
            decision.warnings(review),
            audit=decision.audit(),
        )
    )


async def _mutate(request: web.Request) -> web.Response:
    return await _review(request, repair=True)


async def _validate(request: web.Request) -> web.Response:
    return await _review(request, repair=False)


def create_webhook_app(guard: Guard) -> web.Application:
    app = web.Application(middlewares=[_limits], client_max_size=MAX_REVIEW_BYTES)
    app[GUARD] = guard
    for path in (MUTATE_PATH, LEGACY_MUTATE_PATH):
        app.router.add_post(path, _mutate)
    for path in (VALIDATE_PATH, LEGACY_VALIDATE_PATH):
        app.router.add_post(path, _validate)
    return app


@contextlib.asynccontextmanager
async def serving(
    guard: Guard,
    *,
    host: str,
    port: int,
    cert: str,
    key: str,
    check_interval: float = DEFAULT_CHECK_INTERVAL,
    listen: Listener = plain_listener,
) -> AsyncIterator[str]:
    """Serve the webhook over HTTPS on ``host:port`` until the block exits; yield its URL.

    The webhook runs on a :class:`WebhookLoop` of its own, started here and stopped when
    the block exits, after the listener has stopped and in-flight reviews have had
    their drain (the runner's shutdown timeout). ``listen`` starts the runner, on that
    loop: ``serve`` passes one that bounds connections. A failure to start (the
    certificate, the bind) is raised here, with the thread already ended.
    """
    # Loaded here, so a pair that does not load is the caller's error at once.
    certificate = ReloadingCertificate(cert, key, check_interval)
    own = WebhookLoop()
    try:
        runner = await own.run(listen(create_webhook_app(guard), host, port, certificate.context))
    except BaseException:
        await own.close()
        raise
    try:
        bound = runner.addresses[0]
        shown = f"[{bound[0]}]" if ":" in bound[0] else bound[0]
        url = f"https://{shown}:{bound[1]}"
        watcher = asyncio.run_coroutine_threadsafe(certificate.watch(), own.loop)
        log.info(
            "admission webhook serving on %s (%s, %s); guarding %s; trusted writers: %s",
            url,
            MUTATE_PATH,
            VALIDATE_PATH,
            guard.table.describe(),
            guard.trusted.describe(),
        )
        try:
            yield url
        finally:
            watcher.cancel()
    finally:
        try:
            await own.run(runner.cleanup())
        finally:
            await own.close()
