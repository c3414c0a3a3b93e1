"""Who a request acts for upstream.

A caller is resolved once per request (``bff.auth``) and handed to the upstream
gateway, which turns it into the request's credentials. There is deliberately
no value that means "use the BFF's own identity": a caller's request can only
carry the caller's own token or an impersonation of the caller.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field


class AuthMode(enum.StrEnum):
    """How callers act upstream (``--auth-mode``): their own token, or impersonated."""

    PASSTHROUGH = "passthrough"
    IMPERSONATE = "impersonate"


@dataclass(frozen=True)
class TokenCaller:
    """Passthrough: the caller's bearer token goes upstream as it is."""

    token: str = field(repr=False)

    @property
    def audit_name(self) -> str:
        return "passthrough"


@dataclass(frozen=True)
class RancherCaller(TokenCaller):
    """Rancher mode: the caller's Rancher token, for Rancher's proxy of one cluster.

    Rancher authenticates the token and acts in ``cluster`` as that Rancher user.
    """

    cluster: str = ""

    @property
    def audit_name(self) -> str:
        return f"rancher/{self.cluster}"


@dataclass(frozen=True)
class ImpersonatedCaller:
    """Impersonation: a user the API server confirmed through a TokenReview."""

    username: str
    uid: str = ""
    groups: tuple[str, ...] = ()
    extra: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def audit_name(self) -> str:
        return self.username


Caller = TokenCaller | ImpersonatedCaller
