"""The cluster guard's decision, as pure functions, on reviews built from the fixtures.

Covers: the v1.0.4 body (status and finalizers stripped) restored; the v1.0.5
body with a stale status restored to the live one; a JSON patch removing
status; edits, additions and emptying of status; unchanged writes and label,
spec and annotation changes passing untouched; the controller (and any
configured user or group) passing untouched; dry runs answered the same; the
validate answer; and a hypothesis property: whatever an untrusted write does,
the stored object has the old status and finalizers and the new everything else.
"""

from __future__ import annotations

import base64
import copy
import json
from typing import Any

import jsonpatch
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bff.admission import review as rv
from bff.admission.guard import (
    DEFAULT_TRUSTED_WRITER,
    Reason,
    TrustedWriters,
    inspect,
)
from tests.admission.reviews import (
    CONTROLLER,
    SA_GROUPS,
    admitted,
    decoded,
    fixture,
    succeeded,
    update_review,
)

TRUSTED = TrustedWriters()
FINALIZER = "wrangler.cattle.io/harvester-upgrade-controller"


def answer(review: dict[str, Any], trusted: TrustedWriters = TRUSTED) -> dict[str, Any]:
    """What the mutate route answers (the same functions, without HTTP)."""
    parsed = rv.parse_review(review)
    decision = inspect(parsed, trusted)
    if not decision.changed:
        return rv.allowed(parsed.uid)
    return rv.allowed(
        parsed.uid, decision.json_patch().to_string(), decision.warnings(parsed.target)
    )


def without(obj: dict[str, Any], *paths: str) -> dict[str, Any]:
    out = copy.deepcopy(obj)
    for path in paths:
        out = jsonpatch.JsonPatch([{"op": "remove", "path": path}]).apply(out)
    return out


def test_default_trusted_writer_is_harvesters_controller() -> None:
    assert DEFAULT_TRUSTED_WRITER == "system:serviceaccount:harvester-system:harvester"
    assert TRUSTED.users == {DEFAULT_TRUSTED_WRITER}
    assert not TRUSTED.groups


def test_v104_body_gets_status_and_finalizers_back() -> None:
    live = succeeded()
    body = decoded(fixture("clients/v1.0.4-dismiss-put-body.json"))
    assert "status" not in body
    assert "finalizers" not in body["metadata"]
    review = update_review(live, body)
    out = answer(review)
    stored = admitted(review, out)
    assert stored["status"] == live["status"]
    assert stored["metadata"]["finalizers"] == [FINALIZER]
    # Everything else is the client's: the label it set arrives untouched.
    assert stored["metadata"]["labels"]["harvesterhci.io/read-message"] == "true"
    assert without(stored, "/status", "/metadata/finalizers") == body
    warnings = out["response"]["warnings"]
    assert len(warnings) == 2
    assert "remove its status" in warnings[0]
    assert "harvester-system/hvst-upgrade-7xn6v" in warnings[0]
    assert FINALIZER in warnings[1]
    assert all(len(w) <= rv.MAX_WARNING_CHARS and "\n" not in w for w in warnings)


def test_v104_decision_reasons() -> None:
    review = rv.parse_review(
        update_review(succeeded(), decoded(fixture("clients/v1.0.4-dismiss-put-body.json")))
    )
    decision = inspect(review, TRUSTED)
    assert [r.reason for r in decision.restores] == [
        Reason.STATUS_REMOVED,
        Reason.FINALIZERS_DROPPED,
    ]
    assert decision.summary() == "status (status_removed), finalizers (finalizers_dropped)"


def test_v105_stale_status_restored_to_the_live_one() -> None:
    # What the browser saw: status with the upgrade log. Since then Harvester's
    # upgradelog controller deleted the log and cleared status.upgradeLog.
    body = decoded(fixture("clients/v1.0.5-dismiss-put-body.json"))
    live = succeeded()
    assert "upgradeLog" in live["status"]
    del live["status"]["upgradeLog"]
    live["metadata"]["resourceVersion"] = body["metadata"]["resourceVersion"]
    review = update_review(live, body)
    out = answer(review)
    stored = admitted(review, out)
    assert stored["status"] == live["status"]
    assert "upgradeLog" not in stored["status"]
    assert stored["metadata"] == body["metadata"]  # finalizers were kept: nothing to add
    assert stored["spec"] == body["spec"]
    assert len(out["response"]["warnings"]) == 1
    assert "change its status" in out["response"]["warnings"][0]


def test_v105_body_with_current_status_passes_untouched() -> None:
    body = decoded(fixture("clients/v1.0.5-dismiss-put-body.json"))
    review = update_review(succeeded(), body)
    out = answer(review)
    assert out["response"] == {"uid": review["request"]["uid"], "allowed": True}
    assert admitted(review, out) == body


def test_json_patch_remove_status_restored() -> None:
    live = succeeded()
    new = jsonpatch.JsonPatch([{"op": "remove", "path": "/status"}]).apply(live)
    review = update_review(live, new)
    stored = admitted(review, answer(review))
    assert stored == live


@pytest.mark.parametrize(
    ("ops", "reason"),
    [
        ([{"op": "replace", "path": "/status", "value": {}}], Reason.STATUS_REMOVED),
        ([{"op": "replace", "path": "/status", "value": None}], Reason.STATUS_REMOVED),
        (
            [{"op": "replace", "path": "/status/conditions/0/status", "value": "Unknown"}],
            Reason.STATUS_CHANGED,
        ),
        ([{"op": "remove", "path": "/status/conditions"}], Reason.STATUS_CHANGED),
        ([{"op": "add", "path": "/status/extra", "value": 1}], Reason.STATUS_CHANGED),
        ([{"op": "remove", "path": "/metadata/finalizers"}], Reason.FINALIZERS_DROPPED),
        (
            [{"op": "replace", "path": "/metadata/finalizers", "value": []}],
            Reason.FINALIZERS_DROPPED,
        ),
    ],
)
def test_every_kind_of_change_is_undone(ops: list[dict[str, Any]], reason: Reason) -> None:
    live = succeeded()
    new = jsonpatch.JsonPatch(ops).apply(live)
    review = update_review(live, new)
    decision = inspect(rv.parse_review(review), TRUSTED)
    assert [r.reason for r in decision.restores] == [reason]
    assert admitted(review, answer(review)) == live


def test_status_added_to_an_object_without_one_is_taken_out() -> None:
    new = succeeded()
    old = without(new, "/status")
    review = update_review(old, new)
    out = answer(review)
    assert admitted(review, out) == old
    assert "add a status" in out["response"]["warnings"][0]


def test_added_finalizer_is_kept_and_dropped_one_comes_back() -> None:
    live = succeeded()
    new = copy.deepcopy(live)
    new["metadata"]["finalizers"] = ["example.com/mine"]
    review = update_review(live, new)
    stored = admitted(review, answer(review))
    assert stored["metadata"]["finalizers"] == ["example.com/mine", FINALIZER]


@pytest.mark.parametrize(
    "ops",
    [
        [{"op": "add", "path": "/metadata/labels/harvesterhci.io~1read-message", "value": "true"}],
        [{"op": "replace", "path": "/spec/version", "value": "v1.6.0"}],
        [{"op": "remove", "path": "/metadata/annotations"}],
        [{"op": "replace", "path": "/metadata/labels", "value": {}}],
        [],
    ],
)
def test_labels_spec_annotations_and_no_change_pass_untouched(ops: list[Any]) -> None:
    live = succeeded()
    new = jsonpatch.JsonPatch(ops).apply(live)
    review = update_review(live, new)
    out = answer(review)
    assert out["response"] == {"uid": review["request"]["uid"], "allowed": True}


def test_controller_rewrites_status_untouched() -> None:
    live = fixture("upgrades/upgrade-in-progress.json")
    new = copy.deepcopy(live)
    new["status"] = {"conditions": [{"type": "Completed", "status": "Unknown"}]}
    new["metadata"]["finalizers"] = []
    review = update_review(live, new, user=CONTROLLER, groups=SA_GROUPS)
    out = answer(review)
    assert out["response"] == {"uid": review["request"]["uid"], "allowed": True}
    assert inspect(rv.parse_review(review), TRUSTED).trusted


def test_configured_users_and_groups_are_trusted_and_replace_the_default() -> None:
    trusted = TrustedWriters.parse(["user:alice", "bob", "group:upgrade-operators"])
    assert trusted.users == {"alice", "bob"}
    assert trusted.groups == {"upgrade-operators"}
    live = succeeded()
    new = without(live, "/status")
    for user, groups, passes in [
        ("alice", [], True),
        ("bob", [], True),
        ("carol", ["upgrade-operators"], True),
        ("carol", ["system:authenticated"], False),
        (CONTROLLER, SA_GROUPS, False),  # the default is replaced, not extended
    ]:
        review = update_review(live, new, user=user, groups=groups)
        assert ("patch" not in answer(review, trusted)["response"]) is passes, user


@pytest.mark.parametrize("entry", ["", "group:", "user:", "  "])
def test_empty_writer_names_are_refused(entry: str) -> None:
    with pytest.raises(ValueError, match="names no user or group"):
        TrustedWriters.parse([entry])


def test_dry_run_gets_the_same_answer() -> None:
    live = succeeded()
    new = decoded(fixture("clients/v1.0.4-dismiss-put-body.json"))
    real = answer(update_review(live, new, uid="u-1"))
    dry = answer(update_review(live, new, uid="u-1", dry_run=True))
    assert dry == real


@pytest.mark.parametrize("operation", ["CREATE", "DELETE"])
def test_other_operations_pass(operation: str) -> None:
    live = succeeded()
    review = update_review(live, without(live, "/status"), operation=operation)
    if operation == "DELETE":
        review["request"]["object"] = None
    assert "patch" not in answer(review)["response"]


def test_validate_denies_with_a_clear_message() -> None:
    live = succeeded()
    new = decoded(fixture("clients/v1.0.4-dismiss-put-body.json"))
    parsed = rv.parse_review(update_review(live, new, uid="u-2"))
    decision = inspect(parsed, TRUSTED)
    out = rv.denied(parsed.uid, decision.denial(parsed.target))
    assert out["response"]["uid"] == "u-2"
    assert out["response"]["allowed"] is False
    message = out["response"]["status"]["message"]
    assert "Upgrade harvester-system/hvst-upgrade-7xn6v" in message
    assert "remove its status" in message
    assert FINALIZER in message
    assert out["response"]["status"]["code"] == 403


def test_patch_is_base64_json_patch() -> None:
    live = succeeded()
    review = update_review(live, without(live, "/status"))
    response = answer(review)["response"]
    ops = json.loads(base64.b64decode(response["patch"]))
    assert ops == [{"op": "add", "path": "/status", "value": live["status"]}]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=8,
)


@settings(max_examples=200, deadline=None)
@given(
    status=st.none() | json_values,
    finalizers=st.none() | st.lists(st.sampled_from([FINALIZER, "a/b", "c/d"]), unique=True),
    labels=st.dictionaries(
        st.sampled_from(["x", "y", "harvesterhci.io/read-message"]), st.text(max_size=3)
    ),
    spec=json_values,
)
def test_any_untrusted_write_keeps_status_and_finalizers_and_nothing_else(
    status: Any, finalizers: list[str] | None, labels: dict[str, str], spec: Any
) -> None:
    live = succeeded()
    new = copy.deepcopy(live)
    if status is None:
        del new["status"]
    else:
        new["status"] = status
    if finalizers is None:
        del new["metadata"]["finalizers"]
    else:
        new["metadata"]["finalizers"] = finalizers
    new["metadata"]["labels"] = labels
    new["spec"] = spec
    review = update_review(live, new)
    stored = admitted(review, answer(review))
    assert stored["status"] == live["status"]
    kept = stored["metadata"]["finalizers"]
    assert set(kept) == set(finalizers or []) | {FINALIZER}
    assert kept[: len(finalizers or [])] == (finalizers or [])
    assert stored["metadata"]["labels"] == labels
    assert stored["spec"] == spec


def _mangle(review: dict[str, Any], path: list[str], value: Any) -> dict[str, Any]:
    out = copy.deepcopy(review)
    node: Any = out
    for key in path[:-1]:
        if not isinstance(node, dict) or not isinstance(node.get(key), dict):
            return out
        node = node[key]
    if isinstance(node, dict):
        node[path[-1]] = value
    return out


REVIEW_PATHS = [
    ["apiVersion"], ["kind"], ["request"], ["request", "uid"], ["request", "resource"],
    ["request", "subResource"], ["request", "operation"], ["request", "userInfo"],
    ["request", "userInfo", "username"], ["request", "userInfo", "groups"],
    ["request", "dryRun"], ["request", "object"], ["request", "oldObject"],
    ["request", "object", "metadata"], ["request", "object", "status"],
    ["request", "oldObject", "status"], ["request", "object", "metadata", "finalizers"],
    ["request", "oldObject", "metadata", "finalizers"], ["request", "namespace"],
    ["request", "name"],
]  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(
    changes=st.lists(st.tuples(st.sampled_from(range(len(REVIEW_PATHS))), json_values), max_size=4)
)
def test_no_review_raises_anything_but_a_review_error(changes: list[tuple[int, Any]]) -> None:
    """Whatever arrives, the answer is an AdmissionReview or a ReviewError (a 400)."""
    review = update_review(succeeded(), decoded(fixture("clients/v1.0.4-dismiss-put-body.json")))
    for index, value in changes:
        review = _mangle(review, REVIEW_PATHS[index], value)
    try:
        out = answer(review)
    except rv.ReviewError as exc:
        message = str(exc)
    else:
        message = ""
    if message:
        return
    assert out["response"]["uid"] == review["request"]["uid"]
    if "patch" in out["response"]:
        admitted(review, out)  # the patch applies to the object it was made for
