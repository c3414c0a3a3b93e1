"""AdmissionReviews built from the captured data (:mod:`bff.captured`), and what the API
server does with an answer.

``update_review`` builds the review kube-apiserver sends for an UPDATE: the
stored object as ``oldObject`` and the decoded request (unknown top-level fields
pruned, as the CRD's structural schema does before admission) as ``object``.
``admitted`` applies a mutating answer's base64 JSONPatch the way the API server
does, so tests compare the object that would be stored.
"""

from __future__ import annotations

import base64
import copy
import json
import uuid
from pathlib import Path
from typing import Any

import jsonpatch

from bff import captured

# The captured Upgrades and client bodies, as the package ships them.
FIXTURES = Path(str(captured.files()))
CONTROLLER = "system:serviceaccount:harvester-system:harvester"
SA_GROUPS = ["system:serviceaccounts", "system:serviceaccounts:harvester-system"]
ADMIN = "kubernetes-admin"
ADMIN_GROUPS = ["kubeadm:cluster-admins", "system:authenticated"]
# Top-level fields of a Steve resource that the Upgrade schema does not know.
STEVE_FIELDS = ("id", "type", "links", "actions")

JSON = dict[str, Any]


def fixture(relative: str) -> JSON:
    data: JSON = json.loads((FIXTURES / relative).read_text())
    return data


def succeeded() -> JSON:
    return fixture("upgrades/upgrade-succeeded.json")


def decoded(body: JSON) -> JSON:
    """A request body as admission sees it: Steve's own fields pruned by the schema."""
    return {k: copy.deepcopy(v) for k, v in body.items() if k not in STEVE_FIELDS}


#: The guard table's kinds and their resources (request.resource in a review).
PLURALS = {
    "Upgrade": "upgrades",
    "IPPool": "ippools",
    "LoadBalancer": "loadbalancers",
    "ScheduleVMBackup": "schedulevmbackups",
    "Setting": "settings",
    "KeyPair": "keypairs",
    "ClusterNetwork": "clusternetworks",
}


def update_review(
    old: JSON | None,
    new: JSON | None,
    *,
    user: str = ADMIN,
    groups: list[str] | None = None,
    dry_run: bool = False,
    uid: str | None = None,
    operation: str = "UPDATE",
) -> JSON:
    """The review kube-apiserver sends for ``operation`` of ``old`` into ``new`` (the kind
    and resource are the objects')."""
    either: JSON = old if old is not None else new or {}
    meta = either.get("metadata", {})
    group, _, version = str(either.get("apiVersion", "harvesterhci.io/v1beta1")).partition("/")
    kind = {"group": group, "version": version, "kind": either.get("kind", "Upgrade")}
    resource = {"group": group, "version": version, "resource": PLURALS.get(kind["kind"], "")}
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": uid or str(uuid.uuid4()),
            "kind": kind,
            "resource": resource,
            "requestKind": kind,
            "requestResource": resource,
            "name": meta.get("name", ""),
            "namespace": meta.get("namespace", ""),
            "operation": operation,
            "userInfo": {
                "username": user,
                "uid": "3c0b4f0e-0000-4000-8000-000000000001",
                "groups": ADMIN_GROUPS if groups is None else groups,
                # A bound token's credential id travels here: it must never be logged.
                "extra": {"authentication.kubernetes.io/credential-id": ["JTI=secret-jti-1234"]},
            },
            "object": new,
            "oldObject": old,
            "dryRun": dry_run,
            "options": {
                "apiVersion": "meta.k8s.io/v1",
                "kind": "CreateOptions" if operation == "CREATE" else "UpdateOptions",
            },
        },
    }


def admitted(review: JSON, answer: JSON) -> JSON:
    """The object the API server stores after this mutating answer."""
    response = answer["response"]
    assert response["uid"] == review["request"]["uid"]
    assert response["allowed"] is True
    obj: JSON = copy.deepcopy(review["request"]["object"])
    if "patch" not in response:
        assert "patchType" not in response
        return obj
    assert response["patchType"] == "JSONPatch"
    ops = json.loads(base64.b64decode(response["patch"], validate=True))
    assert isinstance(ops, list)
    result: JSON = jsonpatch.JsonPatch(ops).apply(obj)
    return result
