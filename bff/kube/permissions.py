"""What the BFF's own account must be allowed, in each mode: the one list of it.

Each :class:`Permission` names the module whose requests need it. ``doctor`` asks
a SubjectAccessReview for each; ``deploy/`` and the chart grant them (their RBAC
is what the real-API-server tests give the BFF's ServiceAccount, and doctor's
check passes there). Callers' own requests (reads, the label patch) need the
callers' rights, not these: in passthrough mode they carry the caller's token,
in impersonate mode they are made as the caller.
"""

from __future__ import annotations

from dataclasses import dataclass

from bff.identities import AuthMode
from bff.upgrade_resource import GROUP, PLURAL, VERSION


@dataclass(frozen=True)
class Permission:
    verb: str
    group: str = ""
    resource: str = ""
    namespace: str = ""
    #: A non-resource URL (``resource`` is then empty).
    path: str = ""
    #: One object's name, where the request names it (the grant may list only that name).
    name: str = ""
    #: Where the product makes the request that needs it.
    used_by: str = ""

    def __str__(self) -> str:
        if self.path:
            return f"{self.verb} {self.path}"
        what = f"{self.resource}.{self.group}" if self.group else self.resource
        if self.name:
            what += f" {self.name}"
        where = f" in {self.namespace}" if self.namespace else " (cluster-wide)"
        return f"{self.verb} {what}{where}"


@dataclass(frozen=True)
class SelfCertificates:
    """``--webhook-cert-source self``: the Secret and the configuration it keeps."""

    secret_namespace: str
    secret_name: str
    configuration: str


def needed(
    auth_mode: AuthMode,
    *,
    read_cache: bool,
    rancher: bool,
    namespace: str,
    certificates: SelfCertificates | None = None,
) -> tuple[Permission, ...]:
    """What ``serve`` with these settings asks the API server as itself."""
    out = [
        Permission("get", path=f"/apis/{GROUP}/{VERSION}", used_by="bff.kube.probes (readiness)")
    ]
    if read_cache and not rancher:
        for verb in ("list", "watch"):
            out.append(
                Permission(verb, GROUP, PLURAL, namespace, used_by="bff.kube.watcher (read cache)")
            )
    if auth_mode is AuthMode.IMPERSONATE:
        out += [
            Permission("create", "authentication.k8s.io", "tokenreviews",
                       used_by="bff.kube.reviewers.TokenReviewer"),
            Permission("create", "authorization.k8s.io", "subjectaccessreviews",
                       used_by="bff.kube.reviewers.AccessReviewer.subject_review"),
        ]  # fmt: skip
        # bff.kube.calls.credentials: Impersonate-User (a service account's name is
        # checked as serviceaccounts), Impersonate-Group, Impersonate-Uid.
        for group, resource in (("", "users"), ("", "groups"), ("", "serviceaccounts"),
                                ("authentication.k8s.io", "uids")):  # fmt: skip
            out.append(
                Permission("impersonate", group, resource, used_by="bff.kube.calls.credentials")
            )
    if certificates is not None:
        keeper = "bff.kube.webhook_certs.CertificateKeeper"
        ns, secret = certificates.secret_namespace, certificates.secret_name
        out += [
            Permission("get", "", "secrets", ns, name=secret, used_by=f"{keeper}.sync_secret"),
            # A create names no object when it is authorised: the grant cannot list a name.
            Permission("create", "", "secrets", ns, used_by=f"{keeper}.sync_secret"),
            Permission("update", "", "secrets", ns, name=secret, used_by=f"{keeper}.sync_secret"),
        ]
        for verb in ("get", "patch"):
            out.append(Permission(
                verb, "admissionregistration.k8s.io", "mutatingwebhookconfigurations",
                name=certificates.configuration, used_by=f"{keeper}.sync_ca_bundle",
            ))  # fmt: skip
    return tuple(out)
