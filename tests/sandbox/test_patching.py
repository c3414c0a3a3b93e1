"""bff.sandbox.patching: RFC 7396 merge patch, by the RFC's own examples and by properties,
and RFC 6902 JSON patch through the emulator, failures worded as the API server words them."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bff.sandbox.patching import apply_merge_patch, create_merge_patch
from tests.support.backends import BASE, JSON_PATCH, SUCCEEDED, EmulatorBackend

# RFC 7396 appendix A, verbatim.
RFC_EXAMPLES = [
    ({"a": "b"}, {"a": "c"}, {"a": "c"}),
    ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
    ({"a": "b"}, {"a": None}, {}),
    ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
    ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
    ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
    ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
    ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
    (["a", "b"], ["c", "d"], ["c", "d"]),
    ({"a": "b"}, ["c"], ["c"]),
    ({"a": "foo"}, None, None),
    ({"a": "foo"}, "bar", "bar"),
    ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
    ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
    ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
]


@pytest.mark.parametrize(("target", "patch", "result"), RFC_EXAMPLES)
def test_rfc7396_examples(target: Any, patch: Any, result: Any) -> None:
    assert apply_merge_patch(target, patch) == result


def test_inputs_are_not_modified() -> None:
    target = {"a": {"b": 1}}
    patch = {"a": {"b": None}}
    apply_merge_patch(target, patch)
    assert target == {"a": {"b": 1}}
    assert patch == {"a": {"b": None}}


def test_the_bff_label_patch_touches_only_the_label() -> None:
    live = {"metadata": {"labels": {"x": "y"}, "resourceVersion": "5"}, "status": {"s": 1}}
    patch = {
        "metadata": {"labels": {"harvesterhci.io/read-message": "true"}, "resourceVersion": "5"}
    }
    out = apply_merge_patch(live, patch)
    assert out["status"] == {"s": 1}
    assert out["metadata"]["labels"] == {"x": "y", "harvesterhci.io/read-message": "true"}


_SCALARS = st.one_of(st.booleans(), st.integers(-5, 5), st.text(max_size=3))
_DOCS = st.recursive(
    _SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=3), st.dictionaries(st.text(max_size=2), children, max_size=3)
    ),
    max_leaves=12,
)
_OBJECTS = st.dictionaries(st.text(max_size=2), _DOCS, max_size=4)


@given(_OBJECTS, _OBJECTS)
def test_create_then_apply_round_trips(original: dict[str, Any], modified: dict[str, Any]) -> None:
    assert apply_merge_patch(original, create_merge_patch(original, modified)) == modified


@given(_OBJECTS, _OBJECTS)
def test_applying_a_patch_twice_is_idempotent(
    target: dict[str, Any], patch: dict[str, Any]
) -> None:
    once = apply_merge_patch(target, patch)
    assert apply_merge_patch(once, patch) == once


@given(_OBJECTS)
def test_empty_patch_changes_nothing(target: dict[str, Any]) -> None:
    assert apply_merge_patch(target, {}) == target


READ = "harvesterhci.io/read-message"


async def test_json_patch_applies_operations(emu: EmulatorBackend) -> None:
    ops = [
        {"op": "test", "path": "/metadata/labels/harvesterhci.io~1upgradeState",
         "value": "Succeeded"},
        {"op": "add", "path": "/metadata/labels/harvesterhci.io~1read-message", "value": "true"},
    ]  # fmt: skip
    status, _, obj = await emu.request("PATCH", f"{BASE}/{SUCCEEDED}", ops, content_type=JSON_PATCH)
    assert status == 200
    assert obj["metadata"]["labels"][READ] == "true"


@pytest.mark.parametrize(
    "op",
    [
        {"op": "test", "path": "/spec/version", "value": "v9"},
        {"op": "remove", "path": "/spec/nope"},
        {"op": "replace", "path": "/spec/nope", "value": 1},
        {"op": "add", "path": "/nope/x", "value": 1},
        {"op": "bogus", "path": "/spec"},
    ],
    ids=["test", "remove", "replace", "add", "unknown-op"],
)
async def test_a_failed_json_patch_operation_is_the_generic_422(
    emu: EmulatorBackend, op: dict[str, object]
) -> None:
    before = emu.store.resource_version
    status, _, body = await emu.request(
        "PATCH", f"{BASE}/{SUCCEEDED}", [op], content_type=JSON_PATCH
    )
    assert status == 422
    # As kube-apiserver v1.36.3 answers: the failing operation is not named.
    assert body == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": "the server rejected our request due to an error in our request",
        "reason": "Invalid",
        "details": {},
        "code": 422,
    }
    assert emu.store.resource_version == before
