"""``harvester-upgrade-bff doctor``: connect, find the release, run every check, print.

Exit status: 0 when no check found a problem, 1 when one did, 2 when doctor could
not check at all (no cluster configuration, the API server unreachable or refusing
doctor's credentials), with one line on stderr and never a traceback.
"""

from __future__ import annotations

import asyncio
import ssl
import sys
from typing import TextIO

from bff.doctor import crds, permissions, report, route, upgrades, webhook
from bff.doctor.client import ClusterUnreachable, DoctorClient, RequestRefused
from bff.doctor.release import discover
from bff.doctor.settings import DoctorSettings
from bff.kube.config import ClusterConfigNotFound, UpstreamOptions, load_configuration

PREFIX = "harvester-upgrade-bff: error:"


class CannotCheck(Exception):
    """Doctor could not check at all (exit status 2); the message is one line."""


async def _connect(client: DoctorClient) -> None:
    answer = await client.get("/version")
    if answer.status in (401, 403):
        raise CannotCheck(
            f"the API server at {client.server} refused doctor's credentials ({answer.status})"
        )
    if answer.status != 200:
        raise CannotCheck(f"the API server at {client.server} answered /version {answer.status}")


async def checks(settings: DoctorSettings) -> list[report.Check]:
    """Every check, in order; :class:`CannotCheck` when no check can run."""
    try:
        configuration = await load_configuration(
            UpstreamOptions(kubeconfig=settings.kubeconfig, context=settings.context, pool_size=4)
        )
    except ClusterConfigNotFound as exc:
        raise CannotCheck(
            f"{str(exc).rstrip('. ')}; give --kubeconfig FILE (or KUBECONFIG), or run doctor "
            "in a pod with a service account"
        ) from None
    try:
        doctor_client = DoctorClient(configuration)
    except (ssl.SSLError, OSError) as exc:
        raise CannotCheck(f"cannot use the kubeconfig's TLS files: {exc}") from None
    async with doctor_client as client:
        try:
            await _connect(client)
            release = await discover(client, settings)
            found = [
                await crds.check(client, release),
                webhook.registered(release),
                await webhook.ca_bundle(client, release),
                await webhook.called(client, release),
                await route.check(settings.doctor_url),
                await permissions.check(client, release),
                await upgrades.check(client, settings.doctor_upgrades_namespace),
            ]
        except ClusterUnreachable as exc:
            raise CannotCheck(str(exc)) from None
        except RequestRefused as exc:  # a path built from what the cluster holds
            raise CannotCheck(f"doctor did not send a request: {exc}") from None
    return found


def run(settings: DoctorSettings, out: TextIO | None = None, err: TextIO | None = None) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    try:
        found = asyncio.run(checks(settings))
    except CannotCheck as exc:
        print(f"{PREFIX} {exc}", file=err)
        return 2
    print(report.as_json(found) if settings.doctor_json else report.as_text(found), file=out)
    return report.exit_status(found)
