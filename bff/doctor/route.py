"""Check ``route``: the operator's own URL (``--url``, the Ingress) reaches the BFF.

``GET <url>/api/v1.0.5/upgrades`` without credentials: a path the chart's Ingress
sends to the BFF, answered by it (401 without a token, which is fine) with its
``X-Served-By`` header (:data:`bff.middleware.SERVED_BY`). Rancher or a default
backend answering the same path has no such header. The request goes to the
operator's URL only, never to the API server, so it is outside the API door; it
carries no credentials and follows no redirect.
"""

from __future__ import annotations

import ssl

import aiohttp

from bff.doctor import report
from bff.middleware import SERVED_BY

ID = "route"
PROBE_PATH = "/api/v1.0.5/upgrades"


#: Seconds the Ingress has to answer.
TIMEOUT = 10.0


async def check(url: str | None) -> report.Check:
    if url is None:
        return report.skipped(ID, "skipped: no --url given (the Ingress in front of the BFF)")
    target = url + PROBE_PATH
    try:
        async with (
            aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=TIMEOUT), trust_env=False
            ) as session,
            session.get(target, allow_redirects=False, ssl=ssl.create_default_context()) as r,
        ):
            status, served_by = r.status, r.headers.get(SERVED_BY[0])
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        return report.problem(
            ID,
            f"{target} cannot be reached: {str(exc) or exc.__class__.__name__}",
            "Check the Ingress (kubectl get ingress -A), its controller and the URL's host name.",
        )
    details = [f"GET {target}: {status}", f"{SERVED_BY[0]}: {served_by or 'absent'}"]
    if served_by == SERVED_BY[1]:
        return report.ok(ID, f"{url} reaches the BFF ({PROBE_PATH} answered {status})", details)
    return report.problem(
        ID,
        f"{target} answered {status} without the BFF's {SERVED_BY[0]} header: the Ingress "
        "does not send this path to the BFF",
        "Check that the chart's Ingress exists with the class of your ingress controller "
        "(values ingress.className) and that its backend Service has ready endpoints.",
        details,
    )
