"""bff.sandbox.protobuf: the review bodies kubectl 1.32 really sends (captured with -v=8
against kube-apiserver), decoded to what their JSON would be."""

from __future__ import annotations

import pytest

from bff.sandbox.protobuf import ProtobufError, decode_review

# kubectl auth can-i patch upgrades.harvesterhci.io -n harvester-system
CAN_I = bytes.fromhex(
    "6b3873000a320a17617574686f72697a6174696f6e2e6b38732e696f2f7631121753656c665375626a6563"
    "74416363657373526576696577125a0a100a0012001a0022002a00320038004200123c0a3a0a1068617276"
    "65737465722d73797374656d120570617463681a0f6861727665737465726863692e696f22002a08757067"
    "726164657332003a001a08080012001a0020001a002200"
)
# kubectl auth whoami
WHOAMI = bytes.fromhex(
    "6b3873000a2d0a1861757468656e7469636174696f6e2e6b38732e696f2f7631121153656c665375626a65"
    "6374526576696577121a0a100a0012001a0022002a0032003800420012060a040a0012001a002200"
)


def test_can_i_body() -> None:
    assert decode_review(CAN_I) == {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SelfSubjectAccessReview",
        "metadata": {},
        "spec": {
            "resourceAttributes": {
                "namespace": "harvester-system",
                "verb": "patch",
                "group": "harvesterhci.io",
                "resource": "upgrades",
            }
        },
    }


def test_whoami_body() -> None:
    assert decode_review(WHOAMI) == {
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "SelfSubjectReview",
        "metadata": {},
    }


@pytest.mark.parametrize(
    "body",
    [b'{"kind": "SelfSubjectReview"}', CAN_I[:40], CAN_I.replace(b"Access", b"Excess")],
    ids=["not-protobuf", "truncated", "unknown-kind"],
)
def test_what_it_cannot_read_is_an_error(body: bytes) -> None:
    with pytest.raises(ProtobufError):
        decode_review(body)
