"""Kubernetes name rules, checked before any upstream URL is built.

A name that reaches the API server has already been proven a DNS-1123
subdomain (object names) or label (namespaces), so nothing a client puts in a
path segment (``..``, ``%2F``, upper case) can change which URL is called.
The rules themselves are apimachinery's, in :mod:`bff.label_selectors`.
"""

from __future__ import annotations

import functools

from bff.errors import BadRequest, Code
from bff.label_selectors import dns1123_label_errors, dns1123_subdomain_errors


def is_dns1123_label(value: str) -> bool:
    return not dns1123_label_errors(value)


def is_dns1123_subdomain(value: str) -> bool:
    return not dns1123_subdomain_errors(value)


def _check(kind: str, value: str, errors: list[str]) -> str:
    if errors:
        raise BadRequest(
            f"{kind} {value[:80]!r} is invalid: {'; '.join(errors)}", code=Code.INVALID_NAME
        )
    return value


# Valid names are remembered (a few thousand at most): every request checks one or two,
# and the rules cost more than the rest of a cached read. An invalid name raises, and
# lru_cache keeps no exception, so it is checked again each time.
@functools.lru_cache(maxsize=4096)
def check_namespace(value: str) -> str:
    return _check("namespace", value, dns1123_label_errors(value))


@functools.lru_cache(maxsize=4096)
def check_name(value: str) -> str:
    return _check("name", value, dns1123_subdomain_errors(value))
