"""Questions to the API server: who a token belongs to, and whether a caller may read.

Reviews are questions, not changes: the API server stores nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kubernetes_asyncio import client as k8s

from bff import errors
from bff.identities import ImpersonatedCaller, RancherCaller, TokenCaller
from bff.kube.calls import Calls, Observer, credentials
from bff.kube.config import UpstreamOptions
from bff.upgrade_resource import GROUP, PLURAL, VERSION


class TokenReviewer(Calls):
    """Asks the API server who a token belongs to (impersonate mode only).

    A TokenReview is a question, not a change: the API server stores nothing.
    """

    async def review(self, token: str) -> ImpersonatedCaller | None:
        auth = k8s.AuthenticationV1Api(self._api)
        body = k8s.V1TokenReview(
            api_version="authentication.k8s.io/v1",
            kind="TokenReview",
            spec=k8s.V1TokenReviewSpec(token=token),
        )
        result = await self._call("create", auth.create_token_review, body)
        status = result.status
        if status is None or not status.authenticated or status.user is None:
            return None
        user = status.user
        _check_header_safe(user)
        return ImpersonatedCaller(
            username=user.username or "",
            uid=user.uid or "",
            groups=tuple(user.groups or ()),
            extra={k: tuple(v or ()) for k, v in (user.extra or {}).items()},
        )


def _check_header_safe(user: Any) -> None:
    """Every part of the reviewed identity becomes an Impersonate-* header: no control chars."""
    values = [user.username or "", user.uid or "", *(user.groups or ())]
    for key, extra in (user.extra or {}).items():
        values.extend([key, *(extra or ())])
    if any(ord(c) < 0x20 or ord(c) == 0x7F for value in values for c in value):
        raise errors.Forbidden(
            "the Kubernetes API named a user for this token that cannot be impersonated "
            "(control characters in the user name, uid, groups or extra)",
            code=errors.Code.UNUSABLE_IDENTITY,
        )


class AccessReviewer(Calls):
    """Asks the API server whether a caller may read Upgrades (for reads from the cache).

    Reviews are questions, not changes: the API server stores nothing.
    """

    def __init__(
        self, callers: Any, own: Any, options: UpstreamOptions, observer: Observer
    ) -> None:
        super().__init__(callers, options, observer)
        self._callers = k8s.AuthorizationV1Api(callers)
        self._own = k8s.AuthorizationV1Api(own)

    @staticmethod
    def _attributes(verb: str, namespace: str) -> Any:
        return k8s.V1ResourceAttributes(
            group=GROUP, version=VERSION, resource=PLURAL, verb=verb, namespace=namespace
        )

    async def self_review(self, caller: TokenCaller, verb: str, namespace: str) -> bool:
        """SelfSubjectAccessReview, sent with the caller's own token."""
        body = k8s.V1SelfSubjectAccessReview(
            api_version="authorization.k8s.io/v1",
            kind="SelfSubjectAccessReview",
            spec=k8s.V1SelfSubjectAccessReviewSpec(
                resource_attributes=self._attributes(verb, namespace)
            ),
        )
        result = await self._call(
            "review", self._callers.create_self_subject_access_review, body, **credentials(caller)
        )
        return bool(result.status and result.status.allowed)

    async def subject_review(self, caller: ImpersonatedCaller, verb: str, namespace: str) -> bool:
        """SubjectAccessReview for the reviewed user, sent with the BFF's identity."""
        body = k8s.V1SubjectAccessReview(
            api_version="authorization.k8s.io/v1",
            kind="SubjectAccessReview",
            spec=k8s.V1SubjectAccessReviewSpec(
                user=caller.username,
                uid=caller.uid or None,
                groups=list(caller.groups) or None,
                extra={k: list(v) for k, v in caller.extra.items()} or None,
                resource_attributes=self._attributes(verb, namespace),
            ),
        )
        result = await self._call("review", self._own.create_subject_access_review, body)
        return bool(result.status and result.status.allowed)


class ClusterAccessReviewers:
    """Rancher mode: a SelfSubjectAccessReview through the proxy of the caller's cluster.

    Sent with the caller's Rancher token, so Rancher asks the cluster as that Rancher
    user: the answer is the permission the caller's own writes would meet there.
    """

    def __init__(self, reviewers: Mapping[str, AccessReviewer]) -> None:
        self._reviewers = dict(reviewers)

    async def self_review(self, caller: TokenCaller, verb: str, namespace: str) -> bool:
        reviewer = (
            self._reviewers.get(caller.cluster) if isinstance(caller, RancherCaller) else None
        )
        if reviewer is None:
            raise errors.UpstreamRequestRefused("a request for no served cluster")
        return await reviewer.self_review(caller, verb, namespace)

    async def subject_review(self, caller: ImpersonatedCaller, verb: str, namespace: str) -> bool:
        # Rancher mode never impersonates: Rancher's proxy acts as the caller.
        raise errors.UpstreamRequestRefused("no SubjectAccessReview in Rancher mode")
