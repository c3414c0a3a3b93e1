"""bff.names: the name checks made before any upstream URL is built. A namespace is a
DNS-1123 label, an object name a DNS-1123 subdomain; anything else is a 400 that
quotes at most 80 characters of what was sent."""

from __future__ import annotations

import pytest

from bff import errors, names


@pytest.mark.parametrize("value", ["harvester-system", "a", "a1", "x" * 63])
def test_namespaces_that_are_dns_labels_pass(value: str) -> None:
    assert names.check_namespace(value) == value


@pytest.mark.parametrize(
    "value", ["", "Harvester", "-a", "a-", "a.b", "..", "a%2Fb", "a/b", "x" * 64, "ä"]
)
def test_other_namespaces_are_refused(value: str) -> None:
    with pytest.raises(errors.BadRequest) as refused:
        names.check_namespace(value)
    assert refused.value.code == errors.Code.INVALID_NAME
    assert refused.value.message.startswith(f"namespace {value[:80]!r} is invalid: ")


@pytest.mark.parametrize("value", ["hvst-upgrade-7xn6v", "a.b.c", "x" * 253])
def test_names_that_are_dns_subdomains_pass(value: str) -> None:
    assert names.check_name(value) == value
    assert names.is_dns1123_subdomain(value)


@pytest.mark.parametrize("value", ["", "..", ".a", "a..b", "A", "a_b", "a/b", "x" * 254])
def test_other_names_are_refused_and_quoted_short(value: str) -> None:
    with pytest.raises(errors.BadRequest) as refused:
        names.check_name(value)
    assert refused.value.status == 400
    # At most 80 characters of what was sent are quoted back.
    assert refused.value.message.startswith(f"name {value[:80]!r} is invalid: ")


def test_a_subdomain_is_not_always_a_label() -> None:
    assert names.is_dns1123_subdomain("a.b")
    assert not names.is_dns1123_label("a.b")
