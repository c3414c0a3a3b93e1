"""``harvester-upgrade-bff sandbox``, run as a user would: start, use, stop with SIGTERM.

Also the defaults a newcomer meets: the controller does not advance upgrades unless
``--controller-interval`` says so, and the banner's examples can be tried in any order.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from tests.support.processes import banner_urls, command, started


def test_sandbox_starts_prints_urls_and_tokens_and_stops_cleanly() -> None:
    with started(command("sandbox", "--port", "0", "--kube-port", "0")) as child:
        text = child.banner()
        bff_url, kube_url = banner_urls(text)
        assert "sandbox-admin" in text
        assert "sandbox-viewer" in text
        # By default the controller leaves the in-progress upgrade where it is.
        assert "advancing off (--controller-interval 5" in text

        request = urllib.request.Request(  # noqa: S310 - http from the banner
            f"{bff_url}/api/v1.0.5/upgrades",
            headers={"Authorization": "Bearer sandbox-viewer"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            assert len(json.load(response)["data"]) == 3
        assert kube_url.startswith("https://127.0.0.1:")

        # The banner's dismiss example is refused, and so can be tried any number of times.
        dismiss = next(line for line in child.lines if "?action=dismiss" in line)
        dismiss = dismiss.strip().strip("'")
        refused = urllib.request.Request(  # noqa: S310
            dismiss, method="POST", headers={"Authorization": "Bearer sandbox-admin"}
        )
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(refused, timeout=10)  # noqa: S310
        assert caught.value.code == 409
        assert json.load(caught.value)["code"] == "UpgradeInProgress"
        caught.value.close()

        assert child.stop() == 0
