"""bff.kube.watcher: a watch given up on is dropped, and gone once the client is closed."""

from __future__ import annotations

from pathlib import Path

from bff import kube
from bff.sandbox.kubeconfig import write_kubeconfig
from tests.support.backends import NAMESPACE
from tests.support.silent_tls import SilentTlsUpstream, sockets_to


async def test_a_watch_given_up_on_is_gone_once_the_client_is_closed(tmp_path: Path) -> None:
    # The upstream never answers a TLS close: only a dropped connection ends, and only a
    # close that waits for it sees it gone (this pool holds nothing else to wait on).
    with SilentTlsUpstream(tmp_path, {}) as upstream:
        config = write_kubeconfig(
            tmp_path / "k",
            upstream.url,
            token="sandbox-bff",
            ca_file=str(upstream.certificate.ca_file),
        )
        options = kube.UpstreamOptions(kubeconfig=str(config))
        async with kube.connect(options, impersonate=False) as up:
            events = up.watcher.watch(NAMESPACE, "1", lambda: None)
            assert (await anext(events))["type"] == "BOOKMARK"
            assert sockets_to(upstream.port) == 1
            await events.aclose()
        assert sockets_to(upstream.port) == 0
