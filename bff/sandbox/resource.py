"""The one resource the emulator serves: ``upgrades.harvesterhci.io/v1beta1``, namespaced.

The names are the product's own (:mod:`bff.upgrade_resource`); this adds what only a server needs.
"""

from __future__ import annotations

from typing import Any

from bff.upgrade_resource import API_VERSION, GROUP, KIND, PLURAL, VERSION

__all__ = [
    "API_VERSION",
    "GROUP",
    "JSON",
    "KIND",
    "LIST_KIND",
    "NAMESPACES",
    "PLURAL",
    "QUALIFIED_KIND",
    "QUALIFIED_RESOURCE",
    "SINGULAR",
    "VERSION",
]

LIST_KIND = f"{KIND}List"
SINGULAR = "upgrade"
QUALIFIED_RESOURCE = f"{PLURAL}.{GROUP}"
QUALIFIED_KIND = f"{KIND}.{GROUP}"

JSON = dict[str, Any]

#: The namespaces that exist (read-only): objects can be created in these only.
NAMESPACES = ("default", "harvester-system", "kube-node-lease", "kube-public", "kube-system")
