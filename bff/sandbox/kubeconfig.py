"""Kubeconfig files for the sandbox, so every client takes the real-cluster code path."""

from __future__ import annotations

from pathlib import Path

import yaml


def write_kubeconfig(
    path: Path,
    server: str,
    *,
    token: str | None = None,
    ca_file: str | None = None,
    client_cert: str | None = None,
    client_key: str | None = None,
) -> Path:
    """Write a one-context kubeconfig for ``server`` and return its path (mode 0600)."""
    cluster: dict[str, object] = {"server": server}
    if ca_file:
        cluster["certificate-authority"] = ca_file
    user: dict[str, object] = {}
    if token:
        user["token"] = token
    if client_cert and client_key:
        user["client-certificate"] = client_cert
        user["client-key"] = client_key
    document = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "sandbox", "cluster": cluster}],
        "users": [{"name": "sandbox", "user": user}],
        "contexts": [{"name": "sandbox", "context": {"cluster": "sandbox", "user": "sandbox"}}],
        "current-context": "sandbox",
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path
