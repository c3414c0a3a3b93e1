"""The three Upgrade objects the sandbox starts with, and how they are loaded.

The objects (in :mod:`bff.captured`) are real Harvester objects as read from a cluster, so
they carry server-owned fields (uid, resourceVersion, creationTimestamp, generation). A
client creating them would have to drop those, and so does :func:`seed_store`: it posts
each object through the same create path as the API, so the server assigns them, exactly
as a real API server seeded the same way would.
"""

from __future__ import annotations

import copy
from typing import Any

from bff import captured
from bff.sandbox.store import Store

__all__ = ["NAMESPACE", "seed_objects", "seed_store"]

NAMESPACE = "harvester-system"
_SERVER_OWNED = ("uid", "resourceVersion", "creationTimestamp", "generation", "managedFields")


def seed_objects() -> list[dict[str, Any]]:
    """The seed objects as shipped, server-owned fields included."""
    return captured.upgrades()


def creatable(obj: dict[str, Any]) -> dict[str, Any]:
    """``obj`` without the fields a create request may not carry."""
    out = copy.deepcopy(obj)
    for key in _SERVER_OWNED:
        out.get("metadata", {}).pop(key, None)
    return out


def seed_store(store: Store) -> list[dict[str, Any]]:
    """Create every seed object in ``store``; returns them as stored."""
    return [store.create(NAMESPACE, creatable(obj))[0] for obj in seed_objects()]
