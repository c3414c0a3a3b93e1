"""bff.kube.upstream: connect() opens the upstream once. In passthrough mode a caller's
request carries the caller's token and only it; in Rancher mode each served
cluster has its own client under Rancher's URL, a request naming another is refused
unsent, and there are no access reviews. A recording server stands upstream."""

from __future__ import annotations

from pathlib import Path

import pytest

from bff import errors, kube
from bff.identities import RancherCaller, TokenCaller
from bff.kube.reviewers import ClusterAccessReviewers
from bff.sandbox.kubeconfig import write_kubeconfig
from tests.kube.conftest import Arrivals
from tests.support.backends import NAMESPACE, SUCCEEDED


async def test_a_passthrough_request_carries_only_the_callers_token(
    arrivals: Arrivals, tmp_path: Path
) -> None:
    config = write_kubeconfig(tmp_path / "k", arrivals.url, token="sandbox-bff")
    options = kube.UpstreamOptions(kubeconfig=str(config))
    async with kube.connect(options, impersonate=False) as up:
        await up.gateway.get(TokenCaller("the-callers-token"), NAMESPACE, SUCCEEDED)
        assert up.access is not None
    (headers,) = arrivals.headers
    authorization = [v for k, v in headers if k.lower() == "authorization"]
    assert authorization == ["Bearer the-callers-token"]


async def test_rancher_mode_has_a_client_per_served_cluster(
    arrivals: Arrivals, tmp_path: Path
) -> None:
    config = write_kubeconfig(tmp_path / "k", arrivals.url, token="sandbox-bff")
    rancher = kube.RancherUpstream(arrivals.url, None, ("local", "c-m-1"))
    options = kube.UpstreamOptions(kubeconfig=str(config), rancher=rancher)
    async with kube.connect(options, impersonate=False) as up:
        # Access reviews go through the caller's cluster too; no other is asked.
        assert isinstance(up.access, ClusterAccessReviewers)
        for stranger in (RancherCaller("r-token", cluster="c-m-2"), TokenCaller("k8s-token")):
            with pytest.raises(errors.UpstreamRequestRefused):
                await up.access.self_review(stranger, "patch", NAMESPACE)
        await up.gateway.get(RancherCaller("r-token", cluster="c-m-1"), NAMESPACE, SUCCEEDED)
        with pytest.raises(errors.UpstreamRequestRefused):
            await up.gateway.get(RancherCaller("r-token", cluster="c-m-2"), NAMESPACE, SUCCEEDED)
        with pytest.raises(errors.UpstreamRequestRefused):
            await up.gateway.get(TokenCaller("k8s-token"), NAMESPACE, SUCCEEDED)
    ((method, path, _),) = arrivals.seen
    assert method == "GET"
    assert path.startswith("/k8s/clusters/c-m-1/apis/harvesterhci.io/v1beta1/")
    (headers,) = arrivals.headers
    assert ("Authorization", "Bearer r-token") in headers
