"""The pure reduction of a client PUT body to the one allowed patch (bff.patches).

Tables for the contract's rules, and hypothesis for the invariants: whatever a
body says, the only write it can lead to is the read-message label, and only
when it asks for ``"true"``.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import find, given
from hypothesis import strategies as st

from bff import captured, errors
from bff.patches import (
    Ignored,
    check_body,
    mark_read_patch,
    reduce_put,
)
from bff.upgrade_resource import READ_MESSAGE, UPGRADE_STATE

NS, NAME = "harvester-system", "hvst-upgrade-7xn6v"


LIVE = captured.upgrade("succeeded")
V104 = captured.client_body("v1.0.4")
V105 = captured.client_body("v1.0.5")


def test_the_one_patch_body_is_exactly_labels_and_resource_version() -> None:
    assert mark_read_patch("42") == {
        "metadata": {"labels": {READ_MESSAGE: "true"}, "resourceVersion": "42"}
    }


def test_a_patch_without_resource_version_is_impossible() -> None:
    with pytest.raises(ValueError, match="resourceVersion"):
        mark_read_patch("")


def test_v104_body_asks_to_dismiss_and_would_have_wiped_status() -> None:
    reduction = reduce_put(check_body(V104, namespace=NS, name=NAME), LIVE)
    assert reduction.dismiss
    assert reduction.status_wipe
    assert Ignored.STATUS in reduction.ignored
    # v1.0.4 leaves finalizers out of the body: that is not a change to report.
    assert Ignored.FINALIZERS not in reduction.ignored


def test_finalizers_are_reported_only_when_the_body_carries_different_ones() -> None:
    without = copy.deepcopy(LIVE)
    del without["metadata"]["finalizers"]
    assert Ignored.FINALIZERS not in reduce_put(without, LIVE).ignored
    same = copy.deepcopy(LIVE)
    assert Ignored.FINALIZERS not in reduce_put(same, LIVE).ignored
    other = copy.deepcopy(LIVE)
    other["metadata"]["finalizers"] = ["example.com/other"]
    assert Ignored.FINALIZERS in reduce_put(other, LIVE).ignored


def test_v105_body_with_current_status_is_not_a_status_wipe() -> None:
    body = copy.deepcopy(V105)
    body["metadata"]["resourceVersion"] = LIVE["metadata"]["resourceVersion"]
    body["metadata"]["generation"] = LIVE["metadata"]["generation"]
    reduction = reduce_put(check_body(body, namespace=NS, name=NAME), LIVE)
    assert reduction.dismiss
    assert not reduction.status_wipe
    assert reduction.ignored == frozenset()


def test_v105_body_with_stale_status_is_reported() -> None:
    body = copy.deepcopy(V105)
    body["status"]["conditions"][0]["status"] = "Unknown"
    reduction = reduce_put(body, LIVE)
    assert reduction.status_wipe
    assert Ignored.STATUS in reduction.ignored


@pytest.mark.parametrize(
    ("edit", "category"),
    [
        (lambda b: b["spec"].update(version="v9.9.9"), Ignored.SPEC),
        (lambda b: b["metadata"]["labels"].update({"evil": "x"}), Ignored.LABELS),
        (lambda b: b["metadata"]["labels"].pop("harvesterhci.io/upgradeState"), Ignored.LABELS),
        (lambda b: b["metadata"]["annotations"].update({"a": "b"}), Ignored.ANNOTATIONS),
        (lambda b: b["metadata"].update(finalizers=[]), Ignored.FINALIZERS),
        (lambda b: b["metadata"].update(resourceVersion="1"), Ignored.METADATA),
        (lambda b: b["metadata"].update(ownerReferences=[{"kind": "X"}]), Ignored.METADATA),
        (lambda b: b.update(extra={"x": 1}), Ignored.OTHER),
        (lambda b: b.pop("status"), Ignored.STATUS),
    ],
)
def test_each_ignored_category_is_reported(edit: Any, category: Ignored) -> None:
    body = copy.deepcopy(LIVE)
    edit(body)
    assert category in reduce_put(body, LIVE).ignored


def test_identical_body_ignores_nothing_and_writes_nothing() -> None:
    reduction = reduce_put(copy.deepcopy(LIVE), LIVE)
    assert reduction.ignored == frozenset()
    assert not reduction.dismiss
    assert not reduction.status_wipe


def test_missing_read_message_never_removes_it() -> None:
    live = copy.deepcopy(LIVE)
    live["metadata"]["labels"][READ_MESSAGE] = "true"
    body = copy.deepcopy(LIVE)  # the browser's stale view without the label
    reduction = reduce_put(body, live)
    assert not reduction.dismiss
    assert Ignored.LABELS in reduction.ignored


def test_second_dismiss_is_idempotent() -> None:
    live = copy.deepcopy(LIVE)
    live["metadata"]["labels"][READ_MESSAGE] = "true"
    reduction = reduce_put(copy.deepcopy(V104), live)
    assert reduction.wants_read
    assert not reduction.dismiss


def test_read_message_other_than_true_is_ignored() -> None:
    body = copy.deepcopy(LIVE)
    body["metadata"]["labels"][READ_MESSAGE] = "false"
    reduction = reduce_put(body, LIVE)
    assert not reduction.wants_read
    assert Ignored.LABELS in reduction.ignored


def test_labels_null_is_no_intent() -> None:
    body = copy.deepcopy(V104)
    body["metadata"]["labels"] = None
    reduction = reduce_put(check_body(body, namespace=NS, name=NAME), LIVE)
    assert not reduction.dismiss
    assert Ignored.LABELS in reduction.ignored


def test_uid_mismatch_is_a_conflict() -> None:
    body = copy.deepcopy(V105)
    body["metadata"]["uid"] = "another-incarnation"
    with pytest.raises(errors.Conflict) as info:
        reduce_put(body, LIVE)
    assert info.value.code == "UidMismatch"


@pytest.mark.parametrize(
    ("edit", "code"),
    [
        (lambda b: b["metadata"].update(name="other"), "IdentityMismatch"),
        (lambda b: b["metadata"].pop("name"), "IdentityMismatch"),
        (lambda b: b["metadata"].update(namespace="default"), "IdentityMismatch"),
        (lambda b: b.update(id="default/x"), "IdentityMismatch"),
        (lambda b: b.update(apiVersion="v1"), "InvalidBody"),
        (lambda b: b.update(kind="Pod"), "InvalidBody"),
        (lambda b: b.update(metadata=[]), "InvalidBody"),
        (lambda b: b["metadata"].update(labels=["a"]), "InvalidLabels"),
        (lambda b: b["metadata"].update(labels={"a": 1}), "InvalidLabels"),
        (lambda b: b["metadata"].update(uid=5), "InvalidBody"),
    ],
)
def test_body_checks(edit: Any, code: str) -> None:
    body = copy.deepcopy(V104)
    edit(body)
    with pytest.raises(errors.BadRequest) as info:
        check_body(body, namespace=NS, name=NAME)
    assert info.value.code == code


@pytest.mark.parametrize("body", [[], "x", 1, None])
def test_body_must_be_an_object(body: object) -> None:
    with pytest.raises(errors.BadRequest):
        check_body(body, namespace=NS, name=NAME)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=10,
)


#: Label keys and values: the ones that matter, spelled right and nearly right, and any text.
label_keys = st.sampled_from(
    [READ_MESSAGE, UPGRADE_STATE, "harvesterhci.io/latestUpgrade", "harvesterhci.io/read-Message"]
) | st.text(max_size=20)
label_values = st.sampled_from(["true", "false", "True", "", "Succeeded"]) | st.text(max_size=10)
label_maps = st.dictionaries(label_keys, label_values, max_size=5)


def test_the_label_strategy_reaches_the_dismiss_branch() -> None:
    """Without this, the property below could pass with the dismiss branch never drawn."""
    assert find(label_maps, lambda labels: labels.get(READ_MESSAGE) == "true")
    assert find(
        label_maps, lambda labels: READ_MESSAGE in labels and labels[READ_MESSAGE] != "true"
    )


@given(
    labels=label_maps,
    live_read=st.booleans(),
    spec=json_values,
    status=json_values,
    extra=st.dictionaries(st.text(max_size=8), json_values, max_size=2),
)
def test_only_read_message_true_ever_leads_to_a_write(
    labels: dict[str, str],
    live_read: bool,
    spec: object,
    status: object,
    extra: dict[str, object],
) -> None:
    live = copy.deepcopy(LIVE)
    live["metadata"]["labels"].pop(READ_MESSAGE, None)
    if live_read:
        live["metadata"]["labels"][READ_MESSAGE] = "true"
    body: dict[str, Any] = {
        "metadata": {"name": NAME, "namespace": NS, "labels": labels},
        "spec": spec,
        "status": status,
        **{k: v for k, v in extra.items() if k not in ("metadata", "id", "apiVersion", "kind")},
    }
    reduction = reduce_put(check_body(body, namespace=NS, name=NAME), live)
    wants = labels.get(READ_MESSAGE) == "true"
    assert reduction.wants_read == wants
    assert reduction.dismiss == (wants and not live_read)
    if status != LIVE["status"]:
        assert reduction.status_wipe
        assert Ignored.STATUS in reduction.ignored
