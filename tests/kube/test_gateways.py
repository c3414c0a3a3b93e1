"""bff.kube.gateways (and its siblings' surfaces): what the product may call upstream,
and the caller each call carries (impersonation headers, every field)."""

from __future__ import annotations

from pathlib import Path

from bff import kube
from bff.identities import ImpersonatedCaller
from bff.kube import gateways, probes, reviewers, watcher
from bff.sandbox.kubeconfig import write_kubeconfig
from tests.kube.conftest import Arrivals
from tests.support.backends import NAMESPACE, SUCCEEDED


def _public(cls: type) -> set[str]:
    return {name for name in dir(cls) if not name.startswith("_")}


def test_the_gateways_public_surface() -> None:
    """Adding a method to the gateway is a decision this test makes visible."""
    assert _public(gateways.UpgradeGateway) == {"get", "list", "mark_read"}
    assert _public(probes.ClusterProbe) == {"problem"}
    assert _public(reviewers.TokenReviewer) == {"review"}
    # The read cache's list and watch, and the access reviews for reads from it.
    assert _public(watcher.UpgradeWatcher) == {"list", "watch", "WATCH_SECONDS"}
    assert _public(reviewers.AccessReviewer) == {"self_review", "subject_review"}
    assert set(kube.Upstream.__dataclass_fields__) == {
        "gateway", "probe", "reviewer", "watcher", "access"
    }  # fmt: skip


async def test_impersonation_sends_every_field_of_the_caller(
    arrivals: Arrivals, tmp_path: Path
) -> None:
    config = write_kubeconfig(tmp_path / "k", arrivals.url, token="sandbox-bff")
    caller = ImpersonatedCaller(
        username="alice",
        uid="u-1",
        groups=("g1", "g2"),
        extra={"scopes.example.com/x y": ("a", "b")},
    )
    async with kube.connect(kube.UpstreamOptions(kubeconfig=str(config)), impersonate=True) as up:
        await up.gateway.get(caller, NAMESPACE, SUCCEEDED)
    (headers,) = arrivals.headers
    impersonation = [(k.lower(), v) for k, v in headers if k.lower().startswith("impersonate-")]
    assert impersonation == [
        ("impersonate-user", "alice"),
        ("impersonate-uid", "u-1"),
        ("impersonate-group", "g1"),
        ("impersonate-group", "g2"),
        ("impersonate-extra-scopes.example.com%2fx%20y", "a"),
        ("impersonate-extra-scopes.example.com%2fx%20y", "b"),
    ]
    assert ("Authorization", "Bearer sandbox-bff") in headers
