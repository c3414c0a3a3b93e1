"""AdmissionReview parsing and answers (:mod:`bff.admission.review`), as pure functions:
deep JSON is a ReviewError (the webhook's 400), a review of any row of the guard table
is read with its row and kind, anything else names what is wrong, and answers carry
warnings and audit annotations."""

from __future__ import annotations

import copy

import pytest

from bff import captured
from bff.admission import review as rv
from bff.admission.resources import GuardTable, table_from
from tests.admission.reviews import update_review

TABLE = GuardTable()


@pytest.mark.parametrize(
    "raw",
    [b"[" * 100_000 + b"]" * 100_000, b'{"a":' * 100_000 + b"1" + b"}" * 100_000],
    ids=["arrays", "objects"],
)
def test_json_nested_100000_deep_is_a_review_error(raw: bytes) -> None:
    with pytest.raises(rv.ReviewError, match="nested too deeply"):
        rv.decode(raw)


def test_a_review_of_each_row_is_read_with_its_row_and_kind() -> None:
    for kind in captured.GUARDED_KINDS:
        obj = captured.guarded_object(kind)
        review = rv.parse_review(update_review(obj, obj), TABLE)
        assert review.kind == obj["kind"]
        assert review.row.group == obj["apiVersion"].split("/")[0]
        assert review.subject.startswith(f"{obj['kind']} ")
        assert review.subject.endswith(obj["metadata"]["name"])


def test_a_resource_the_table_left_out_is_refused() -> None:
    obj = captured.guarded_object("keypair")
    table = table_from(["-keypairs.harvesterhci.io"])
    with pytest.raises(rv.ReviewError, match="which the guard table does not hold"):
        rv.parse_review(update_review(obj, obj), table)


def test_an_object_of_another_kind_than_the_request_says_is_refused() -> None:
    obj = captured.guarded_object("ippool")
    other = copy.deepcopy(obj)
    other["kind"] = "LoadBalancer"
    with pytest.raises(rv.ReviewError, match=r"but request\.kind says"):
        rv.parse_review(update_review(obj, other), TABLE)


def test_a_create_names_its_object_from_the_object() -> None:
    obj = captured.guarded_object("setting")
    body = update_review(None, obj, operation="CREATE")
    body["request"]["name"] = ""
    assert rv.parse_review(body, TABLE).target == "ui-pl"


def test_answers_carry_warnings_cut_to_size_and_audit_annotations() -> None:
    out = rv.allowed("u", "[]", ["x" * 1000], {"restored": "status_removed"})
    response = out["response"]
    assert response["warnings"] == ["x" * rv.MAX_WARNING_CHARS]
    assert response["auditAnnotations"] == {"restored": "status_removed"}
    denied = rv.denied("u", "no", audit={"restored": "status_removed"})["response"]
    assert denied["auditAnnotations"] == {"restored": "status_removed"}
    assert "auditAnnotations" not in rv.allowed("u")["response"]
