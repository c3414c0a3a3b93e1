"""What the BFF's own account needs (bff/kube/permissions.py), by mode.

Each entry names the code that makes the request needing it; a rename there
without this list following fails here. On a real API server, doctor's
``permissions`` check against deploy/'s RBAC (tests/doctor/test_doctor_real_apiserver.py)
shows deploy/ grants every entry, and a removed RoleBinding is reported.
"""

from __future__ import annotations

import importlib

import pytest

from bff.identities import AuthMode
from bff.kube.permissions import SelfCertificates, needed


def _resolves(used_by: str) -> bool:
    dotted = used_by.split(" ")[0]
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            target: object = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attribute in parts[cut:]:
            if not hasattr(target, attribute):
                return False
            target = getattr(target, attribute)
        return True
    return False


SELF = SelfCertificates("bff-ns", "bff-tls", "bff-hooks")


@pytest.mark.parametrize("mode", list(AuthMode))
@pytest.mark.parametrize("cache", [True, False])
@pytest.mark.parametrize("certificates", [None, SELF])
def test_each_entry_names_code_that_exists(
    mode: AuthMode, cache: bool, certificates: SelfCertificates | None
) -> None:
    for permission in needed(
        mode, read_cache=cache, rancher=False, namespace="ns", certificates=certificates
    ):
        assert _resolves(permission.used_by), permission


def test_by_mode() -> None:
    def names(mode: AuthMode, *, cache: bool, rancher: bool = False) -> list[str]:
        return [str(p) for p in needed(mode, read_cache=cache, rancher=rancher, namespace="ns")]

    discovery = "get /apis/harvesterhci.io/v1beta1"
    assert names(AuthMode.PASSTHROUGH, cache=False) == [discovery]
    assert names(AuthMode.PASSTHROUGH, cache=True, rancher=True) == [discovery]
    assert names(AuthMode.PASSTHROUGH, cache=True) == [
        discovery,
        "list upgrades.harvesterhci.io in ns",
        "watch upgrades.harvesterhci.io in ns",
    ]
    assert names(AuthMode.IMPERSONATE, cache=False)[1:] == [
        "create tokenreviews.authentication.k8s.io (cluster-wide)",
        "create subjectaccessreviews.authorization.k8s.io (cluster-wide)",
        "impersonate users (cluster-wide)",
        "impersonate groups (cluster-wide)",
        "impersonate serviceaccounts (cluster-wide)",
        "impersonate uids.authentication.k8s.io (cluster-wide)",
    ]


def test_self_mode_adds_its_secret_and_configuration_only() -> None:
    plain = needed(AuthMode.PASSTHROUGH, read_cache=False, rancher=False, namespace="ns")
    kept = needed(
        AuthMode.PASSTHROUGH, read_cache=False, rancher=False, namespace="ns", certificates=SELF
    )
    assert [str(p) for p in kept[len(plain) :]] == [
        "get secrets bff-tls in bff-ns",
        "create secrets in bff-ns",
        "update secrets bff-tls in bff-ns",
        "get mutatingwebhookconfigurations.admissionregistration.k8s.io bff-hooks (cluster-wide)",
        "patch mutatingwebhookconfigurations.admissionregistration.k8s.io bff-hooks (cluster-wide)",
    ]
