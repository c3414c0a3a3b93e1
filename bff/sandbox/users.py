"""Who is who in the sandbox: bearer tokens, users, impersonation and a small RBAC table.

Authorisation works on the *user info* (name and groups), never on the token, so a user
that the BFF impersonates is judged by the same table as one who presents a token. The
rules follow kube-apiserver's defaults where they matter:

- ``system:masters`` may do anything (as the real authorizer's superuser group);
- ``system:authenticated`` may read discovery and the version (``system:discovery``);
- everyone, even without a token, may read ``/healthz``, ``/livez``, ``/readyz`` and
  ``/version`` (``system:public-info-viewer``).

Forbidden messages are built like ``responsewriters.forbiddenMessage`` and
``apierrors.NewForbidden``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import unquote

__all__ = [
    "ALL_AUTHENTICATED",
    "TOKENS",
    "Attributes",
    "ImpersonationError",
    "Rule",
    "UserInfo",
    "authenticate",
    "authorize",
    "forbidden_message",
    "impersonate",
]

ALL_AUTHENTICATED = "system:authenticated"
ALL_UNAUTHENTICATED = "system:unauthenticated"
ANONYMOUS = "system:anonymous"
MASTERS = "system:masters"
SA_PREFIX = "system:serviceaccount:"

BFF_SERVICE_ACCOUNT = "system:serviceaccount:harvester-system:harvester-upgrade-bff"
CONTROLLER_SERVICE_ACCOUNT = "system:serviceaccount:harvester-system:harvester"
#: The simulated Rancher's own identity on the cluster it proxies (bff.sandbox.rancher).
RANCHER_SERVICE_ACCOUNT = "system:serviceaccount:cattle-system:rancher"
#: Rancher users as Rancher impersonates them (user ids, as Rancher names local users).
RANCHER_ADMIN = "user-sbadm"
RANCHER_VIEWER = "user-sbvwr"


@dataclass(frozen=True)
class UserInfo:
    username: str
    uid: str = ""
    groups: tuple[str, ...] = ()
    extra: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def as_token_review_user(self) -> dict[str, object]:
        out: dict[str, object] = {"username": self.username}
        if self.uid:
            out["uid"] = self.uid
        if self.groups:
            out["groups"] = list(self.groups)
        if self.extra:
            out["extra"] = {k: list(v) for k, v in self.extra.items()}
        return out


def _service_account(name: str, uid: str) -> UserInfo:
    namespace = name.removeprefix(SA_PREFIX).split(":", 1)[0]
    return UserInfo(
        username=name,
        uid=uid,
        groups=("system:serviceaccounts", f"system:serviceaccounts:{namespace}", ALL_AUTHENTICATED),
    )


TOKENS: Mapping[str, UserInfo] = {
    "sandbox-admin": UserInfo("sandbox-admin", "", (MASTERS, ALL_AUTHENTICATED)),
    "sandbox-viewer": UserInfo("sandbox-viewer", "", (ALL_AUTHENTICATED,)),
    "sandbox-bff": _service_account(BFF_SERVICE_ACCOUNT, "5b0c4a8e-2a76-4d3b-9a62-6f1f3c1a0b01"),
    "sandbox-controller": _service_account(
        CONTROLLER_SERVICE_ACCOUNT, "8d1e3f7a-4b2c-4e9d-8f60-2c7b9e5d1a02"
    ),
    "sandbox-nobody": UserInfo("sandbox-nobody", "", (ALL_AUTHENTICATED,)),
    "sandbox-rancher": _service_account(
        RANCHER_SERVICE_ACCOUNT, "3f9a6c2e-7d41-4b8a-9e15-0c4d2b7a6e03"
    ),
}


def authenticate(token: str) -> UserInfo | None:
    """The user a bearer token stands for, or None for an unknown token."""
    return TOKENS.get(token)


@dataclass(frozen=True)
class Attributes:
    """What a request wants to do, as the authorizer sees it."""

    user: UserInfo
    verb: str
    resource_request: bool = True
    api_group: str = ""
    api_version: str = ""
    resource: str = ""
    subresource: str = ""
    namespace: str = ""
    name: str = ""
    path: str = ""


@dataclass(frozen=True)
class Rule:
    """One row of the RBAC table: who, which verbs, on what."""

    verbs: frozenset[str]
    api_groups: frozenset[str] = frozenset()
    resources: frozenset[str] = frozenset()
    non_resource_urls: frozenset[str] = frozenset()
    users: frozenset[str] = frozenset()
    groups: frozenset[str] = frozenset()

    def applies_to(self, user: UserInfo) -> bool:
        return user.username in self.users or any(g in self.groups for g in user.groups)

    def allows(self, attrs: Attributes) -> bool:
        if "*" not in self.verbs and attrs.verb not in self.verbs:
            return False
        if not attrs.resource_request:
            return any(
                url == attrs.path or (url.endswith("*") and attrs.path.startswith(url[:-1]))
                for url in self.non_resource_urls
            )
        resource = attrs.resource + (f"/{attrs.subresource}" if attrs.subresource else "")
        return ("*" in self.api_groups or attrs.api_group in self.api_groups) and (
            "*" in self.resources or resource in self.resources
        )


def _rule(
    verbs: str,
    group: str,
    resources: str,
    *,
    users: tuple[str, ...] = (),
    groups: tuple[str, ...] = (),
) -> Rule:
    return Rule(
        verbs=frozenset(verbs.split()),
        api_groups=frozenset([group]),
        resources=frozenset(resources.split()),
        users=frozenset(users),
        groups=frozenset(groups),
    )


RULES: tuple[Rule, ...] = (
    Rule(verbs=frozenset({"*"}), api_groups=frozenset({"*"}), resources=frozenset({"*"}),
         non_resource_urls=frozenset({"*"}), groups=frozenset({MASTERS})),
    # system:public-info-viewer and system:discovery
    Rule(verbs=frozenset({"get"}), groups=frozenset({ALL_AUTHENTICATED, ALL_UNAUTHENTICATED}),
         non_resource_urls=frozenset({"/healthz", "/livez", "/readyz", "/version", "/version/"})),
    Rule(verbs=frozenset({"get"}), groups=frozenset({ALL_AUTHENTICATED}),
         non_resource_urls=frozenset({"/api", "/api/*", "/apis", "/apis/*", "/openapi/*"})),
    # system:basic-user: everyone signed in may ask who they are and what they may do.
    _rule("create", "authorization.k8s.io", "selfsubjectaccessreviews selfsubjectrulesreviews",
          groups=(ALL_AUTHENTICATED,)),
    _rule("create", "authentication.k8s.io", "selfsubjectreviews", groups=(ALL_AUTHENTICATED,)),
    _rule("get list watch", "harvesterhci.io", "upgrades", users=("sandbox-viewer",)),
    _rule("get list watch patch", "harvesterhci.io", "upgrades", users=(BFF_SERVICE_ACCOUNT,)),
    _rule("create", "authentication.k8s.io", "tokenreviews", users=(BFF_SERVICE_ACCOUNT,)),
    # An authorising proxy asks about others (the BFF's read cache, impersonate mode).
    _rule("create", "authorization.k8s.io", "subjectaccessreviews", users=(BFF_SERVICE_ACCOUNT,)),
    _rule("impersonate", "", "users groups serviceaccounts", users=(BFF_SERVICE_ACCOUNT,)),
    _rule("impersonate", "authentication.k8s.io", "uids userextras/*",
          users=(BFF_SERVICE_ACCOUNT,)),
    _rule("get list watch update patch", "harvesterhci.io", "upgrades",
          users=(CONTROLLER_SERVICE_ACCOUNT,)),
    # Rancher's cluster proxy acts as its users (Impersonate-User, -Group, -Extra-*).
    _rule("impersonate", "", "users groups", users=(RANCHER_SERVICE_ACCOUNT,)),
    _rule("impersonate", "authentication.k8s.io", "userextras/*",
          users=(RANCHER_SERVICE_ACCOUNT,)),
    # Rancher's admin is bound to cluster-admin; its read-only user may read Upgrades.
    Rule(verbs=frozenset({"*"}), api_groups=frozenset({"*"}), resources=frozenset({"*"}),
         non_resource_urls=frozenset({"*"}), users=frozenset({RANCHER_ADMIN})),
    _rule("get list watch", "harvesterhci.io", "upgrades", users=(RANCHER_VIEWER,)),
)  # fmt: skip


def _resource_matches(rule: Rule, attrs: Attributes) -> bool:
    # "userextras/*" grants every extra key, as RBAC's subresource wildcard does.
    if attrs.subresource and f"{attrs.resource}/*" in rule.resources:
        return ("*" in rule.api_groups or attrs.api_group in rule.api_groups) and (
            "*" in rule.verbs or attrs.verb in rule.verbs
        )
    return rule.allows(attrs)


def authorize(attrs: Attributes, rules: tuple[Rule, ...] = RULES) -> bool:
    """True when some rule for the user (or one of their groups) allows the request."""
    return any(r.applies_to(attrs.user) and _resource_matches(r, attrs) for r in rules)


def _group_resource(group: str, resource: str) -> str:
    return f"{resource}.{group}" if group else resource


def forbidden_message(attrs: Attributes) -> str:
    """The ``message`` of the 403 Status, exactly as kube-apiserver words it."""
    who = attrs.user.username
    if not attrs.resource_request:
        return f'forbidden: User "{who}" cannot {attrs.verb} path "{attrs.path}"'
    resource = attrs.resource + (f"/{attrs.subresource}" if attrs.subresource else "")
    if attrs.namespace:
        why = (
            f'User "{who}" cannot {attrs.verb} resource "{resource}" in API group '
            f'"{attrs.api_group}" in the namespace "{attrs.namespace}"'
        )
    else:
        why = (
            f'User "{who}" cannot {attrs.verb} resource "{resource}" in API group '
            f'"{attrs.api_group}" at the cluster scope'
        )
    gr = _group_resource(attrs.api_group, attrs.resource)
    if attrs.name:
        return f'{gr} "{attrs.name}" is forbidden: {why}'
    return f"{gr} is forbidden: {why}"


class ImpersonationError(Exception):
    """Impersonation was refused; ``attributes`` is what was checked, or None for a bad request."""

    def __init__(self, message: str, attributes: Attributes | None = None) -> None:
        super().__init__(message)
        self.attributes = attributes


def impersonate(
    requester: UserInfo, headers: Mapping[str, str] | list[tuple[str, str]]
) -> UserInfo | None:
    """Apply ``Impersonate-*`` headers the way the impersonation filter does.

    ``headers`` is every request header as (name, value) pairs (names case-insensitive).
    Returns None when the request impersonates nobody, else the user to act as. Raises
    :class:`ImpersonationError` when the requester may not impersonate what it asks for.
    """
    pairs = list(headers.items()) if isinstance(headers, Mapping) else list(headers)
    username = ""
    uid = ""
    groups: list[str] = []
    extra: dict[str, list[str]] = {}
    seen_uid = False
    for name, value in pairs:
        lname = name.lower()
        if lname == "impersonate-user":
            username = value
        elif lname == "impersonate-group":
            groups.append(value)
        elif lname == "impersonate-uid":
            uid = value
            seen_uid = True
        elif lname.startswith("impersonate-extra-"):
            key = unquote(lname.removeprefix("impersonate-extra-"))
            extra.setdefault(key, []).append(value)
    if not username:
        if groups or extra or seen_uid:
            raise ImpersonationError("requested impersonation without impersonating a user")
        return None

    checks: list[Attributes] = []
    if username.startswith(SA_PREFIX) and username.count(":") == 3:
        namespace, sa_name = username.removeprefix(SA_PREFIX).split(":", 1)
        checks.append(
            Attributes(
                requester,
                "impersonate",
                resource="serviceaccounts",
                namespace=namespace,
                name=sa_name,
            )
        )
        if not groups:
            groups = ["system:serviceaccounts", f"system:serviceaccounts:{namespace}"]
    else:
        checks.append(Attributes(requester, "impersonate", resource="users", name=username))
    checks.extend(Attributes(requester, "impersonate", resource="groups", name=g) for g in groups)
    for key, values in extra.items():
        checks.extend(
            Attributes(
                requester,
                "impersonate",
                api_group="authentication.k8s.io",
                resource="userextras",
                subresource=key,
                name=v,
            )
            for v in values
        )
    if seen_uid:
        checks.append(
            Attributes(
                requester,
                "impersonate",
                api_group="authentication.k8s.io",
                resource="uids",
                name=uid,
            )
        )
    for attrs in checks:
        if not authorize(attrs):
            raise ImpersonationError(forbidden_message(attrs), attrs)

    if username != ANONYMOUS and not any(
        g in (ALL_AUTHENTICATED, ALL_UNAUTHENTICATED) for g in groups
    ):
        groups.append(ALL_AUTHENTICATED)
    return UserInfo(
        username=username,
        uid=uid,
        groups=tuple(groups),
        extra={k: tuple(v) for k, v in extra.items()},
    )
