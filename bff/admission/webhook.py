"""The webhook's HTTP side: two review routes on their own HTTPS port.

``POST /admission/upgrades/mutate`` answers an untrusted write that changes an
Upgrade's status or drops a finalizer with ``allowed: true`` and a JSONPatch
that puts them back; ``POST /admission/upgrades/validate`` refuses the same
writes instead. Handlers parse, call :mod:`bff.admission.guard`, and answer;
there is no user authentication (the API server is the only caller, and the
answer depends on the review alone) and no upstream call.

Limits: review bodies up to :data:`MAX_REVIEW_BYTES` (413 beyond) and
:data:`REVIEW_TIMEOUT` seconds to receive and answer one (408 beyond). Reviews are
decided off the event loop, :data:`REVIEW_WORKERS` at a time, so large ones cannot
stall the probes or the API port. The API
server's own ``timeoutSeconds`` is shorter still.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol

from aiohttp import web

from bff.admission import review as rv
from bff.admission.guard import Decision, Reason, TrustedWriters, inspect
from bff.admission.tls import DEFAULT_CHECK_INTERVAL, ReloadingCertificate

log = logging.getLogger("bff.admission")

MUTATE_PATH = "/admission/upgrades/mutate"
VALIDATE_PATH = "/admission/upgrades/validate"
# An AdmissionReview carries the object twice; etcd stores objects up to 1.5 MiB.
MAX_REVIEW_BYTES = 3 * 1024 * 1024 + 64 * 1024
REVIEW_TIMEOUT = 5.0
KEEPALIVE_TIMEOUT = 30.0

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
#: Reviews decided at once; more wait their turn (and their deadline) in the queue. One:
#: parsing is Python under the GIL, so a second thread adds no throughput and takes the
#: GIL from the event loop twice as often (measured: /healthz p90 40-70 ms during 20
#: reviews of 1.9 MB with one worker, 120-250 ms with two, 0.5-0.9 s on the loop).
REVIEW_WORKERS = 1
_WORKERS = ThreadPoolExecutor(REVIEW_WORKERS, thread_name_prefix="admission-review")


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
    """What the handlers share: who is trusted, and where restores are counted."""

    trusted: TrustedWriters
    on_restore: Callable[[Reason], None] = lambda _reason: None
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


def _log(review: rv.UpgradeReview, decision: Decision, action: str) -> None:
    log.warning(
        "%s %s on Upgrade %s by %s",
        action,
        decision.summary(),
        review.target,
        review.writer.username or "(no username)",
        extra={
            "user": review.writer.username,
            "groups": ",".join(review.writer.groups),
            "object": review.target,
            "operation": review.operation,
            "restored": [r.path for r in decision.restores],
            "reasons": [str(r.reason) for r in decision.restores],
            "dry_run": review.dry_run,
            "review_uid": review.uid,
        },
    )


async def _review(request: web.Request, *, repair: bool) -> web.Response:
    body = await request.read()
    # Parsing and comparing a review of megabytes is CPU work: off the event loop (the
    # probes and the API port share it), on a pool whose size bounds how many run at once.
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_WORKERS, _answer, request.app[GUARD], body, repair)


def _answer(guard: Guard, body: bytes, repair: bool) -> web.Response:
    try:
        review = rv.parse_review(rv.decode(body))
    except rv.ReviewError as exc:
        log.warning("bad admission review: %s", exc)
        return _error(400, str(exc))
    decision = inspect(review, guard.trusted)
    if not decision.changed:
        return web.json_response(rv.allowed(review.uid))
    if not review.dry_run:
        # A dry run gets the same answer; it is logged, but it restored nothing real.
        for restore in decision.restores:
            guard.on_restore(restore.reason)
    if repair:
        _log(review, decision, "dry run: would restore" if review.dry_run else "restored")
        return web.json_response(
            rv.allowed(
                review.uid,
                decision.json_patch().to_string(),
                decision.warnings(review.target),
            )
        )
    _log(review, decision, "dry run: refused" if review.dry_run else "refused")
    return web.json_response(rv.denied(review.uid, decision.denial(review.target)))


async def _mutate(request: web.Request) -> web.Response:
    return await _review(request, repair=True)


async def _validate(request: web.Request) -> web.Response:
    return await _review(request, repair=False)


def create_webhook_app(guard: Guard) -> web.Application:
    app = web.Application(middlewares=[_limits], client_max_size=MAX_REVIEW_BYTES)
    app[GUARD] = guard
    app.router.add_post(MUTATE_PATH, _mutate)
    app.router.add_post(VALIDATE_PATH, _validate)
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

    ``listen`` starts the runner: ``serve`` passes one that bounds connections.
    """
    certificate = ReloadingCertificate(cert, key, check_interval)
    runner = await listen(create_webhook_app(guard), host, port, certificate.context)
    try:
        bound = runner.addresses[0]
        shown = f"[{bound[0]}]" if ":" in bound[0] else bound[0]
        url = f"https://{shown}:{bound[1]}"
        watcher = asyncio.create_task(certificate.watch(), name="webhook-certificate")
        log.info(
            "admission webhook serving on %s (%s, %s); trusted writers: %s",
            url,
            MUTATE_PATH,
            VALIDATE_PATH,
            guard.trusted.describe(),
        )
        try:
            yield url
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
    finally:
        await runner.cleanup()
