"""Check ``crds``: every guarded resource is served by a CRD that lacks a status subresource.

The guard exists because a whole-object PUT of a CRD without ``subresources.status``
replaces status. A CRD that has one (a later Harvester may add it) ignores status in
a PUT on the main resource, so the guard is no longer needed for it: reported in
the summary, not as a problem. A guarded resource with no CRD is a problem: the
webhook's rule names something this cluster does not serve.

The resources are the webhook configuration's rules (what the API server sends to
the guard); without a configuration, the default guard table.
"""

from __future__ import annotations

from dataclasses import dataclass

from bff.admission.resources import GuardTable
from bff.doctor import report
from bff.doctor.client import DoctorClient
from bff.doctor.release import Release

ID = "crds"
CRDS = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"


@dataclass(frozen=True)
class Guarded:
    group: str
    version: str
    resource: str

    @property
    def name(self) -> str:
        return f"{self.resource}.{self.group}"


def guarded(release: Release) -> list[Guarded]:
    hook = release.webhook
    if hook is None:
        return [Guarded(r.group, r.version, r.resource) for r in GuardTable().rows]
    out = []
    for rule in hook.get("rules") or []:
        for group in rule.get("apiGroups") or []:
            for version in rule.get("apiVersions") or []:
                for resource in rule.get("resources") or []:
                    out.append(Guarded(group, version, resource.split("/")[0]))
    return list(dict.fromkeys(out))


async def check(client: DoctorClient, release: Release) -> report.Check:
    if not release.serves_crds:
        return report.skipped(
            ID,
            "skipped: this API server serves no CustomResourceDefinitions "
            "(apiextensions.k8s.io/v1), so it is no real cluster (the sandbox's emulator?)",
        )
    missing, not_needed, details = [], [], []
    wanted = guarded(release)
    for g in wanted:
        answer = await client.get(f"{CRDS}/{g.name}")
        if answer.status == 404:
            missing.append(g.name)
            details.append(f"{g.name}: no such CRD")
            continue
        if answer.status != 200:
            details.append(f"{g.name}: the API server answered {answer.status}")
            missing.append(g.name)
            continue
        versions = {v.get("name"): v for v in answer.body.get("spec", {}).get("versions") or []}
        served = versions.get(g.version)
        if served is None or not served.get("served"):
            missing.append(f"{g.name}/{g.version}")
            details.append(f"{g.name}: version {g.version} is not served")
        elif "status" in (served.get("subresources") or {}):
            not_needed.append(g.name)
            details.append(f"{g.name}/{g.version}: has a status subresource")
        else:
            details.append(f"{g.name}/{g.version}: no status subresource (a PUT replaces status)")
    note = "".join(f"; guard not needed for {n}" for n in not_needed)
    if missing:
        return report.problem(
            ID,
            f"{len(missing)} guarded resource(s) not served by this cluster: "
            + ", ".join(missing)
            + note,
            "Check that Harvester (and its load-balancer and network charts) is installed at "
            "the version the guard table names, or take the resource out of the chart's "
            "webhook.guardedResources.",
            details,
        )
    return report.ok(
        ID,
        f"the {len(wanted)} guarded CRDs exist and "
        + ("each lacks a status subresource, so the guard is needed" if not not_needed else
           f"{len(wanted) - len(not_needed)} lack a status subresource")
        + note,
        details,
    )  # fmt: skip
