"""The one resource the emulator serves: ``upgrades.harvesterhci.io/v1beta1``, namespaced."""

from __future__ import annotations

from typing import Any

__all__ = [
    "API_VERSION",
    "GROUP",
    "JSON",
    "KIND",
    "LIST_KIND",
    "PLURAL",
    "QUALIFIED_KIND",
    "QUALIFIED_RESOURCE",
    "SINGULAR",
    "VERSION",
]

GROUP = "harvesterhci.io"
VERSION = "v1beta1"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "Upgrade"
LIST_KIND = "UpgradeList"
PLURAL = "upgrades"
SINGULAR = "upgrade"
QUALIFIED_RESOURCE = f"{PLURAL}.{GROUP}"
QUALIFIED_KIND = f"{KIND}.{GROUP}"

JSON = dict[str, Any]
