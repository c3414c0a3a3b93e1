"""Kubeconfig files for the sandbox, so every client takes the real-cluster code path."""

from __future__ import annotations

import base64
from pathlib import Path

import yaml


def write_kubeconfig(
    path: Path,
    server: str,
    *,
    token: str | None = None,
    ca_file: str | None = None,
    ca_pem: bytes | None = None,
    client_cert: str | None = None,
    client_key: str | None = None,
    user: str = "sandbox",
) -> Path:
    """Write a one-context kubeconfig for ``server`` and return its path (mode 0600).

    The CA is a file (``ca_file``) or carried inline (``ca_pem``, as
    ``certificate-authority-data``); ``user`` names the user entry.
    """
    cluster: dict[str, object] = {"server": server}
    if ca_file:
        cluster["certificate-authority"] = ca_file
    if ca_pem:
        cluster["certificate-authority-data"] = base64.b64encode(ca_pem).decode()
    credentials: dict[str, object] = {}
    if token:
        credentials["token"] = token
    if client_cert and client_key:
        credentials["client-certificate"] = client_cert
        credentials["client-key"] = client_key
    document = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "sandbox", "cluster": cluster}],
        "users": [{"name": user, "user": credentials}],
        "contexts": [{"name": "sandbox", "context": {"cluster": "sandbox", "user": user}}],
        "current-context": "sandbox",
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.chmod(0o600)
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path
