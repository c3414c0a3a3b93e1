"""bff.identities: who a request acts for upstream, and the name its audit line carries."""

from __future__ import annotations

from bff.identities import ImpersonatedCaller, TokenCaller


def test_a_token_caller_is_audited_as_passthrough_and_never_shows_its_token() -> None:
    caller = TokenCaller("tok-7f3c9e-very-secret")
    assert caller.audit_name == "passthrough"
    assert "tok-7f3c9e" not in repr(caller)


def test_an_impersonated_caller_is_audited_by_the_name_the_review_gave() -> None:
    caller = ImpersonatedCaller(
        "system:serviceaccount:harvester-system:harvester",
        uid="8d1e3f7a",
        groups=("system:serviceaccounts",),
        extra={"scopes": ("a",)},
    )
    assert caller.audit_name == "system:serviceaccount:harvester-system:harvester"
