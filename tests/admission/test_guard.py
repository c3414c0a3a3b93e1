"""The cluster guard's decision (:mod:`bff.admission.guard`), as pure functions, on
reviews built from the fixtures.

Covers: the v1.0.4 body (status and finalizers stripped) restored; the v1.0.5
body with a stale status restored to the live one; a JSON patch removing
status; edits, additions and emptying of status; unchanged writes and label,
spec and annotation changes passing untouched; the controller (and any
configured user or group) passing untouched; dry runs answered the same; the
validate answer; JSON (not Python) equality; finalizer multiplicity; owner
references; deletionTimestamp; a CREATE's status; the intended-change annotation;
every row of the default table with the v1.0.4 rules; and hypothesis properties:
whatever an untrusted write does, the stored object has the old status, finalizers
and owner references and the new everything else.
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

from bff import captured
from bff.admission import review as rv
from bff.admission.guard import (
    DEFAULT_TRUSTED_WRITER,
    INTENT_ANNOTATION,
    Reason,
    TrustedWriters,
    canonical,
    inspect,
    json_equal,
)
from bff.admission.resources import DEFAULT_TABLE, GuardTable, Mode, table_from
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
TABLE = GuardTable()
FINALIZER = "wrangler.cattle.io/harvester-upgrade-controller"


def parse(review: dict[str, Any], table: GuardTable = TABLE) -> rv.GuardReview:
    return rv.parse_review(review, table)


def answer(
    review: dict[str, Any], trusted: TrustedWriters = TRUSTED, table: GuardTable = TABLE
) -> dict[str, Any]:
    """What the mutate route answers (the same functions, without HTTP)."""
    parsed = parse(review, table)
    decision = inspect(parsed, trusted)
    if not decision.patch and not decision.intended:
        return rv.allowed(parsed.uid)
    patch = decision.json_patch().to_string() if decision.patch else ""
    return rv.allowed(parsed.uid, patch, decision.warnings(parsed))


def without(obj: dict[str, Any], *paths: str) -> dict[str, Any]:
    out = copy.deepcopy(obj)
    for path in paths:
        out = jsonpatch.JsonPatch([{"op": "remove", "path": path}]).apply(out)
    return out


def test_nobody_is_trusted_by_default_and_harvester_owns_upgrades() -> None:
    assert DEFAULT_TRUSTED_WRITER == "system:serviceaccount:harvester-system:harvester"
    assert not TRUSTED.users
    assert not TRUSTED.groups
    row = TABLE.find("harvesterhci.io", "upgrades")
    assert row is not None
    assert row.owners == (DEFAULT_TRUSTED_WRITER,)


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
    assert "removed its status (the upgrade's progress" in warnings[0]
    assert "kept the current status" in warnings[0]
    assert "Upgrade harvester-system/hvst-upgrade-7xn6v" in warnings[0]
    assert FINALIZER in warnings[1]
    assert all(len(w) <= rv.MAX_WARNING_CHARS and "\n" not in w for w in warnings)


def test_v104_decision_reasons() -> None:
    review = parse(
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
    assert "changed its status" in out["response"]["warnings"][0]


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
    decision = inspect(parse(review), TRUSTED)
    assert [r.reason for r in decision.restores] == [reason]
    assert admitted(review, answer(review)) == live


def test_status_added_to_an_object_without_one_is_taken_out() -> None:
    new = succeeded()
    old = without(new, "/status")
    review = update_review(old, new)
    out = answer(review)
    assert admitted(review, out) == old
    assert "added a status" in out["response"]["warnings"][0]


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
    assert inspect(parse(review), TRUSTED).trusted


def test_configured_users_and_groups_are_trusted_besides_the_owner() -> None:
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
        (CONTROLLER, SA_GROUPS, True),  # the owner stays trusted
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


@pytest.mark.parametrize("operation", ["DELETE", "CONNECT"])
def test_other_operations_pass(operation: str) -> None:
    live = succeeded()
    review = update_review(live, without(live, "/status"), operation=operation)
    if operation == "DELETE":
        review["request"]["object"] = None
    assert "patch" not in answer(review)["response"]


def test_validate_denies_with_a_clear_message() -> None:
    live = succeeded()
    new = decoded(fixture("clients/v1.0.4-dismiss-put-body.json"))
    parsed = parse(update_review(live, new, uid="u-2"))
    decision = inspect(parsed, TRUSTED)
    out = rv.denied(parsed.uid, decision.denial(parsed))
    assert out["response"]["uid"] == "u-2"
    assert out["response"]["allowed"] is False
    message = out["response"]["status"]["message"]
    assert "Upgrade harvester-system/hvst-upgrade-7xn6v" in message
    assert "removed its status" in message
    assert CONTROLLER in message
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


# --- the guard table's rows ------------------------------------------------------------

OWNER_REF = {
    "apiVersion": "v1",
    "kind": "ConfigMap",
    "name": "owner",
    "uid": "0b8e6a4e-7f0c-4d55-9f0e-1d7a2c3b4e5f",
}


def seed(kind: str) -> dict[str, Any]:
    """A guarded seed object as the API server stores it, with a finalizer and an owner."""
    obj = captured.guarded_object(kind) if kind != "upgrade" else succeeded()
    meta = obj["metadata"]
    meta.setdefault("finalizers", []).append("example.com/cleanup")
    meta["ownerReferences"] = [OWNER_REF]
    meta.setdefault("resourceVersion", "4711")
    return obj


KINDS = ["upgrade", *captured.GUARDED_KINDS]


def test_the_default_table_holds_a_row_for_each_seed_kind() -> None:
    assert len(DEFAULT_TABLE) == len(KINDS) == 7
    for kind in KINDS:
        review = parse(update_review(seed(kind), seed(kind)))
        assert review.row in DEFAULT_TABLE


@pytest.mark.parametrize("kind", KINDS)
def test_every_row_repairs_the_v104_save(kind: str) -> None:
    from tests.support.v104_save import form_edit, v104_saved_body

    live = seed(kind)
    body = v104_saved_body(kind, live, edit=form_edit(live, "true"))
    review = update_review(live, body)
    out = answer(review)
    stored = admitted(review, out)
    assert canonical(stored["status"]) == canonical(live["status"])
    assert stored["metadata"]["finalizers"] == live["metadata"]["finalizers"]
    assert stored["metadata"]["ownerReferences"] == [OWNER_REF]
    assert stored["metadata"]["labels"]["example.com/edited"] == "true"
    if "description" in (live.get("spec") or {}):
        assert stored["spec"]["description"] == "edited in the form"
    parsed = parse(review)
    warnings = out["response"]["warnings"]
    assert [w.split(": ")[1] for w in warnings] == [parsed.subject] * 3
    assert "removed its status" in warnings[0]
    assert parsed.row.status_means in warnings[0]
    assert "example.com/cleanup" in warnings[1]
    assert "owner reference to ConfigMap owner" in warnings[2]
    assert all(len(w) <= rv.MAX_WARNING_CHARS for w in warnings)


@pytest.mark.parametrize("kind", KINDS)
def test_each_rows_owner_passes_and_another_rows_owner_does_not(kind: str) -> None:
    live = seed(kind)
    new = without(live, "/status")
    row = parse(update_review(live, new)).row
    (owner,) = row.owners
    assert inspect(parse(update_review(live, new, user=owner, groups=SA_GROUPS)), TRUSTED).trusted
    others = {o for r in DEFAULT_TABLE for o in r.owners} - {owner}
    for other in others:
        decision = inspect(parse(update_review(live, new, user=other, groups=SA_GROUPS)), TRUSTED)
        assert not decision.trusted, other
        assert decision.changed, other
    # A differently spelt identity is somebody else.
    for spelt in (owner.upper(), owner + " ", owner.replace("system:", "system: ")):
        assert inspect(parse(update_review(live, new, user=spelt)), TRUSTED).changed, spelt


# --- JSON equality, multiplicity, owner references -------------------------------------


def test_json_equality_is_not_python_equality() -> None:
    assert (True == 1) is (1 == 1.0) is True
    assert not json_equal(True, 1)
    assert not json_equal(1, 1.0)
    assert not json_equal({"a": [1]}, {"a": [True]})
    assert json_equal({"a": 1, "b": [None, "x"]}, {"b": [None, "x"], "a": 1})


@pytest.mark.parametrize(
    ("before", "after"),
    [(True, 1), (1, True), (1, 1.0), (0, False), (1.5, 1.5000001)],
)
def test_a_status_value_of_another_json_type_is_a_change(before: Any, after: Any) -> None:
    live = captured.guarded_object("ippool")
    live["status"]["extra"] = before
    new = copy.deepcopy(live)
    new["status"]["extra"] = after
    review = update_review(live, new)
    decision = inspect(parse(review), TRUSTED)
    assert [r.reason for r in decision.restores] == [Reason.STATUS_CHANGED]
    assert canonical(admitted(review, answer(review))["status"]) == canonical(live["status"])


def test_a_dropped_duplicate_finalizer_comes_back() -> None:
    live = succeeded()
    live["metadata"]["finalizers"] = ["a/b", "a/b", FINALIZER]
    new = copy.deepcopy(live)
    new["metadata"]["finalizers"] = ["a/b", FINALIZER]
    review = update_review(live, new)
    decision = inspect(parse(review), TRUSTED)
    assert [r.reason for r in decision.restores] == [Reason.FINALIZERS_DROPPED]
    assert admitted(review, answer(review))["metadata"]["finalizers"] == [
        "a/b",
        FINALIZER,
        "a/b",
    ]


def test_owner_references_dropped_or_changed_come_back_and_added_ones_stay() -> None:
    live = seed("ippool")
    added = {**OWNER_REF, "name": "other", "uid": "11111111-2222-3333-4444-555555555555"}
    for refs, expected in [
        ([], [OWNER_REF]),
        ([added], [added, OWNER_REF]),
        ([{**OWNER_REF, "name": "renamed"}], [OWNER_REF]),
        ([OWNER_REF, added], [OWNER_REF, added]),
    ]:
        new = copy.deepcopy(live)
        new["metadata"]["ownerReferences"] = refs
        review = update_review(live, new)
        stored = admitted(review, answer(review))
        assert stored["metadata"]["ownerReferences"] == expected, refs


def test_a_row_keeps_only_what_it_names() -> None:
    table = table_from(["ippools.loadbalancer.harvesterhci.io/v1beta1;owner=x;keep=status"])
    live = seed("ippool")
    new = without(live, "/metadata/finalizers", "/metadata/ownerReferences")
    review = update_review(live, new)
    assert admitted(review, answer(review, table=table)) == new
    new = without(live, "/status")
    review = update_review(live, new)
    assert admitted(review, answer(review, table=table)) == live


# --- deletionTimestamp and CREATE ------------------------------------------------------


@pytest.mark.parametrize(
    ("old_value", "new_value"),
    [
        (None, "2030-01-01T00:00:00Z"),
        ("2025-04-17T09:12:44Z", "2030-01-01T00:00:00Z"),
        ("2025-04-17T09:12:44Z", None),
    ],
)
def test_deletion_timestamp_is_only_a_deletes(old_value: str | None, new_value: str | None) -> None:
    live = seed("ippool")
    if old_value:
        live["metadata"]["deletionTimestamp"] = old_value
        live["metadata"]["deletionGracePeriodSeconds"] = 0
    new = copy.deepcopy(live)
    for field, value in (("deletionTimestamp", new_value), ("deletionGracePeriodSeconds", 0)):
        if value is None:
            new["metadata"].pop(field, None)
        else:
            new["metadata"][field] = value
    review = update_review(live, new)
    decision = inspect(parse(review), TRUSTED)
    assert Reason.DELETION_CHANGED in {r.reason for r in decision.restores}
    assert admitted(review, answer(review)) == live
    owner = parse(review).row.owners[0]
    assert inspect(parse(update_review(live, new, user=owner)), TRUSTED).trusted


def test_a_create_with_a_status_of_its_own_is_created_without_it() -> None:
    obj = captured.guarded_object("ippool")
    review = update_review(None, obj, operation="CREATE")
    out = answer(review)
    assert admitted(review, out) == without(obj, "/status")
    assert "created it with a status of its own" in out["response"]["warnings"][0]
    assert [r.reason for r in inspect(parse(review), TRUSTED).restores] == [Reason.STATUS_ADDED]
    # Without a status, or by the owner, a CREATE passes as sent.
    review = update_review(None, without(obj, "/status"), operation="CREATE")
    assert answer(review)["response"] == {"uid": review["request"]["uid"], "allowed": True}
    owner = parse(review).row.owners[0]
    review = update_review(None, obj, operation="CREATE", user=owner)
    assert answer(review)["response"] == {"uid": review["request"]["uid"], "allowed": True}


def test_a_create_keeps_its_own_finalizers_and_owner_references() -> None:
    obj = without(seed("keypair"), "/status")
    review = update_review(None, obj, operation="CREATE")
    assert answer(review)["response"] == {"uid": review["request"]["uid"], "allowed": True}


# --- the operator's stated intent ------------------------------------------------------


def _intending(obj: dict[str, Any], value: str) -> dict[str, Any]:
    out = copy.deepcopy(obj)
    out["metadata"].setdefault("annotations", {})[INTENT_ANNOTATION] = value
    return out


def test_a_finalizer_removed_with_the_annotation_stays_removed() -> None:
    live = seed("schedulevmbackup")
    new = _intending(without(live, "/metadata/finalizers"), "finalizers")
    review = update_review(live, new)
    decision = inspect(parse(review), TRUSTED)
    assert not decision.changed
    assert decision.intended == ("finalizers",)
    assert decision.audit() == {"intended-change": "finalizers"}
    out = answer(review)
    assert "patch" not in out["response"]
    assert admitted(review, out) == new  # stored as sent, the annotation with it
    assert INTENT_ANNOTATION in out["response"]["warnings"][0]
    # A reinvoked review (another webhook changed the object afterwards) reads the
    # same intent again: nothing is put back on the second call either.
    again = update_review(live, new)
    assert admitted(again, answer(again)) == new


def test_the_annotation_releases_only_what_it_names() -> None:
    live = seed("ippool")
    new = _intending(without(live, "/status", "/metadata/finalizers"), "status")
    review = update_review(live, new)
    stored = admitted(review, answer(review))
    assert "status" not in stored
    assert stored["metadata"]["finalizers"] == live["metadata"]["finalizers"]


def test_a_note_lets_the_same_names_be_stated_again() -> None:
    live = _intending(seed("ippool"), "finalizers; INC-1")
    new = _intending(without(live, "/metadata/finalizers"), "finalizers; INC-2")
    decision = inspect(parse(update_review(live, new)), TRUSTED)
    assert decision.intended == ("finalizers",)
    assert not decision.changed


def test_an_annotation_carried_over_from_the_stored_object_is_no_intent() -> None:
    # Stored by a trusted writer, then sent back by a whole-object PUT: not a statement.
    live = _intending(seed("ippool"), "status,finalizers")
    new = without(live, "/status", "/metadata/finalizers")
    review = update_review(live, new)
    decision = inspect(parse(review), TRUSTED)
    assert not decision.intended
    assert {r.reason for r in decision.restores} == {
        Reason.STATUS_REMOVED,
        Reason.FINALIZERS_DROPPED,
    }
    assert admitted(review, answer(review)) == live


def test_a_put_that_merely_omits_fields_is_never_intent() -> None:
    from tests.support.v104_save import v104_saved_body

    live = seed("ippool")
    body = v104_saved_body("loadbalancer.harvesterhci.io.ippool", live)
    decision = inspect(parse(update_review(live, body)), TRUSTED)
    assert not decision.intended
    assert len(decision.restores) == 3


@pytest.mark.parametrize("value", ["everything", "status,spec", " , "])
def test_an_unusable_annotation_is_refused(value: str) -> None:
    live = seed("ippool")
    review = update_review(live, _intending(without(live, "/status"), value))
    decision = inspect(parse(review), TRUSTED)
    assert decision.bad_intent
    assert decision.deny
    assert INTENT_ANNOTATION in decision.denial(parse(review))


def test_a_create_may_state_its_status_on_purpose() -> None:
    obj = _intending(captured.guarded_object("keypair"), "status")
    review = update_review(None, obj, operation="CREATE")
    stored = admitted(review, answer(review))
    assert stored == obj


def test_a_row_in_deny_mode_refuses() -> None:
    table = table_from(["upgrades.harvesterhci.io/v1beta1;owner=x;mode=deny"])
    live = succeeded()
    decision = inspect(parse(update_review(live, without(live, "/status")), table), TRUSTED)
    assert decision.deny
    assert decision.changed
    row = table.find("harvesterhci.io", "upgrades")
    assert row is not None
    assert row.mode is Mode.DENY


@settings(max_examples=150, deadline=None)
@given(
    finalizers=st.lists(st.sampled_from(["a/b", "c/d", FINALIZER]), max_size=5),
    old_finalizers=st.lists(st.sampled_from(["a/b", "c/d", FINALIZER]), max_size=5),
    refs=st.lists(st.sampled_from(["x", "y", "z"]), unique=True, max_size=3),
    old_refs=st.lists(st.sampled_from(["x", "y", "z"]), unique=True, max_size=3),
)
def test_finalizers_keep_their_count_and_owner_references_stay(
    finalizers: list[str], old_finalizers: list[str], refs: list[str], old_refs: list[str]
) -> None:
    from collections import Counter

    def ref(name: str) -> dict[str, str]:
        return {"apiVersion": "v1", "kind": "ConfigMap", "name": name, "uid": f"uid-{name}"}

    live = captured.guarded_object("ippool")
    live["metadata"]["finalizers"] = old_finalizers
    live["metadata"]["ownerReferences"] = [ref(n) for n in old_refs]
    new = copy.deepcopy(live)
    new["metadata"]["finalizers"] = finalizers
    new["metadata"]["ownerReferences"] = [ref(n) for n in refs]
    review = update_review(live, new)
    stored = admitted(review, answer(review))
    kept = stored["metadata"]["finalizers"]
    assert Counter(kept) == Counter(finalizers) | Counter(old_finalizers)
    assert kept[: len(finalizers)] == finalizers
    names = [r["name"] for r in stored["metadata"]["ownerReferences"]]
    assert sorted(names) == sorted(set(refs) | set(old_refs))
