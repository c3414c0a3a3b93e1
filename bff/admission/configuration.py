"""The MutatingWebhookConfiguration the guard table calls for, as data.

One webhook, one rule per row of the table, and one CEL ``matchConditions`` entry
per owner: the API server evaluates them itself, before it calls anything, so an
owner's writes to its own resources never wait for (nor depend on) the webhook,
even with ``failurePolicy: Fail``. Each owner's condition names only the resources
it owns: Harvester's service account writing an IPPool is still reviewed. One
more condition leaves out the operator's trusted writers (``--trusted-writer``),
on every resource.

The Helm chart's ``templates/webhook.yaml`` (and ``deploy/manifests/``, rendered
from it) is this document for the default table (tests compare
them); the sandbox applies it with a loopback URL.
"""

from __future__ import annotations

import base64
import re
from typing import Any

from bff.admission.guard import TrustedWriters
from bff.admission.resources import GuardTable

JSON = dict[str, Any]

WEBHOOK_NAME = "guard.harvester-upgrade-bff.harvesterhci.io"
CONFIGURATION_NAME = "harvester-upgrade-bff"
MUTATE_PATH = "/admission/guard/mutate"
# kube-apiserver allows at most 64 matchConditions per webhook.
MAX_MATCH_CONDITIONS = 64
# The API server waits this long for an answer. A review is answered from the review
# alone (no upstream call), in milliseconds; 5 s leaves room for a busy node without
# holding a client's write for the 10 s default.
TIMEOUT_SECONDS = 5


def _quoted(name: str) -> str:
    return "'" + name.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _slug(owner: str) -> str:
    return re.sub(r"[^a-z0-9-]", "-", owner.rsplit(":", 1)[-1].lower()).strip("-")


def owner_conditions(table: GuardTable) -> list[JSON]:
    """One matchCondition per owner: false (webhook skipped) for its own resources."""
    conditions = []
    owners = table.owners()
    for index, owner in enumerate(sorted(owners)):
        owned = ", ".join(_quoted(f"{r.group}/{r.resource}") for r in owners[owner])
        conditions.append(
            {
                "name": f"not-owner-{index}-{_slug(owner)}"[:63].rstrip("-"),
                "expression": (
                    f"!(request.userInfo.username == {_quoted(owner)} && "
                    f"(request.resource.group + '/' + request.resource.resource) in [{owned}])"
                ),
            }
        )
    return conditions


def trusted_condition(trusted: TrustedWriters) -> JSON | None:
    """The condition that leaves the operator's trusted writers out, if there are any."""
    parts = []
    if trusted.users:
        names = ", ".join(_quoted(u) for u in sorted(trusted.users))
        parts.append(f"!(request.userInfo.username in [{names}])")
    if trusted.groups:
        names = ", ".join(_quoted(g) for g in sorted(trusted.groups))
        parts.append(f"!request.userInfo.groups.exists(g, g in [{names}])")
    if not parts:
        return None
    return {"name": "not-a-trusted-writer", "expression": " && ".join(parts)}


def match_conditions(table: GuardTable, trusted: TrustedWriters) -> list[JSON]:
    conditions = owner_conditions(table)
    extra = trusted_condition(trusted)
    if extra is not None:
        conditions.append(extra)
    if len(conditions) > MAX_MATCH_CONDITIONS:
        raise ValueError(
            f"the guard table has {len(conditions)} owners and trusted-writer conditions; "
            f"the API server takes at most {MAX_MATCH_CONDITIONS}"
        )
    return conditions


def rules(table: GuardTable) -> list[JSON]:
    """One rule per row: CREATE (a forged status) and UPDATE, cluster or namespace scope."""
    return [
        {
            "apiGroups": [row.group],
            "apiVersions": [row.version],
            "operations": ["CREATE", "UPDATE"],
            "resources": [row.resource],
            "scope": "*",
        }
        for row in table.rows
    ]


def webhook(
    table: GuardTable,
    trusted: TrustedWriters,
    client_config: JSON,
    *,
    failure_policy: str = "Fail",
    timeout_seconds: int = TIMEOUT_SECONDS,
) -> JSON:
    return {
        "name": WEBHOOK_NAME,
        "admissionReviewVersions": ["v1"],
        "clientConfig": client_config,
        "rules": rules(table),
        "matchPolicy": "Equivalent",
        # No selectors: guarded objects live in any namespace (or none), and a label
        # selector would let unlabelled objects through.
        "namespaceSelector": {},
        "objectSelector": {},
        "matchConditions": match_conditions(table, trusted),
        "failurePolicy": failure_policy,
        "sideEffects": "None",
        "timeoutSeconds": timeout_seconds,
        "reinvocationPolicy": "IfNeeded",
    }


def configuration(
    table: GuardTable,
    trusted: TrustedWriters,
    client_config: JSON,
    *,
    failure_policy: str = "Fail",
    timeout_seconds: int = TIMEOUT_SECONDS,
) -> JSON:
    """The whole MutatingWebhookConfiguration."""
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": CONFIGURATION_NAME},
        "webhooks": [
            webhook(
                table,
                trusted,
                client_config,
                failure_policy=failure_policy,
                timeout_seconds=timeout_seconds,
            )
        ],
    }


def url_client_config(url: str, ca_pem: bytes) -> JSON:
    """``clientConfig`` for a webhook at ``url`` (its base), trusting ``ca_pem``."""
    return {
        "url": url.rstrip("/") + MUTATE_PATH,
        "caBundle": base64.b64encode(ca_pem).decode("ascii"),
    }


def service_client_config(namespace: str = "harvester-system") -> JSON:
    return {
        "service": {
            "name": "harvester-upgrade-bff",
            "namespace": namespace,
            "port": 443,
            "path": MUTATE_PATH,
        }
    }
