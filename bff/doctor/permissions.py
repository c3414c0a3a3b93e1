"""Check ``permissions``: the BFF's ServiceAccount may do what ``serve`` needs in its mode.

The list is :func:`bff.kube.permissions.needed` for the mode the Deployment runs
(auth mode, read cache, Rancher); each entry is one SubjectAccessReview for
``system:serviceaccount:<namespace>:<account>`` with the service-account groups,
as the API server would see the pods' token.
"""

from __future__ import annotations

from typing import Any

from bff.doctor import report
from bff.doctor.client import DoctorClient
from bff.doctor.release import Release
from bff.kube.permissions import Permission, needed

ID = "permissions"
REVIEWS = "/apis/authorization.k8s.io/v1/subjectaccessreviews"


def _review(user: str, groups: list[str], permission: Permission) -> dict[str, Any]:
    spec: dict[str, Any] = {"user": user, "groups": groups}
    if permission.path:
        spec["nonResourceAttributes"] = {"path": permission.path, "verb": permission.verb}
    else:
        spec["resourceAttributes"] = {
            "verb": permission.verb,
            "group": permission.group,
            "resource": permission.resource,
            "namespace": permission.namespace,
            "name": permission.name,
        }
    return {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "spec": spec}


async def check(client: DoctorClient, release: Release) -> report.Check:
    namespace = release.served_namespace or release.upgrades_namespace
    wanted = needed(
        release.auth_mode, read_cache=release.read_cache, rancher=release.rancher,
        namespace=namespace, certificates=release.certificates,
    )  # fmt: skip
    user = f"system:serviceaccount:{release.namespace}:{release.service_account}"
    groups = ["system:serviceaccounts", f"system:serviceaccounts:{release.namespace}",
              "system:authenticated"]  # fmt: skip
    mode = (
        f"{release.auth_mode} mode, read cache {'on' if release.read_cache else 'off'}"
        + (", Rancher" if release.rancher else "")
        + (", webhook certificate kept by the BFF" if release.certificates else "")
        + ("" if release.deployment else "; no Deployment found, the chart's defaults assumed")
    )
    denied, details = [], [f"account: {user}", f"mode: {mode}"]
    for permission in wanted:
        answer = await client.request("POST", REVIEWS, body=_review(user, groups, permission))
        if answer.status != 201:
            return report.skipped(
                ID,
                f"skipped: doctor's user may not ask SubjectAccessReviews ({answer.status})",
                details,
            )
        allowed = bool((answer.body.get("status") or {}).get("allowed"))
        details.append(f"{'allowed' if allowed else 'DENIED'}: {permission} "
                       f"(for {permission.used_by})")  # fmt: skip
        if not allowed:
            denied.append(str(permission))
    if denied:
        return report.problem(
            ID,
            f"the BFF's ServiceAccount {release.namespace}/{release.service_account} may not: "
            + "; ".join(denied),
            "Install the chart's RBAC for this mode (role.yaml with readCache, impersonate.yaml "
            "with authMode impersonate, webhook.yaml's webhook-cert Role and ClusterRole with "
            "webhook.certificates.source self), or the matching deploy/manifests file.",
            details,
        )
    return report.ok(
        ID,
        f"the BFF's ServiceAccount {release.namespace}/{release.service_account} has the "
        f"{len(wanted)} permissions serve needs ({mode})",
        details,
    )
