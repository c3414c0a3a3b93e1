"""Kubernetes name rules, checked before any upstream URL is built.

A name that reaches the API server has already been proven a DNS-1123
subdomain (object names) or label (namespaces), so nothing a client puts in a
path segment (``..``, ``%2F``, upper case) can change which URL is called.
"""

from __future__ import annotations

import re

from bff.errors import BadRequest

_DNS1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_DNS1123_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")


def is_dns1123_label(value: str) -> bool:
    return len(value) <= 63 and _DNS1123_LABEL.fullmatch(value) is not None


def is_dns1123_subdomain(value: str) -> bool:
    return len(value) <= 253 and _DNS1123_SUBDOMAIN.fullmatch(value) is not None


def check_namespace(value: str) -> str:
    if not is_dns1123_label(value):
        raise BadRequest(
            f"namespace {value[:80]!r} is not a valid DNS-1123 label "
            "(lower-case alphanumerics and '-', at most 63 characters)",
            code="InvalidName",
        )
    return value


def check_name(value: str) -> str:
    if not is_dns1123_subdomain(value):
        raise BadRequest(
            f"name {value[:80]!r} is not a valid DNS-1123 subdomain "
            "(lower-case alphanumerics, '-' and '.', at most 253 characters)",
            code="InvalidName",
        )
    return value
