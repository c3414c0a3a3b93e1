"""Route templates and the page's files, shared by the router and the API description."""

from __future__ import annotations

UPGRADES = "/api/{version}/upgrades"
UPGRADE = UPGRADES + "/{namespace}/{name}"
#: Server-sent events from the read cache (bff.api.events).
UPGRADE_EVENTS = UPGRADES + "/events"
#: What the caller may do to the Upgrades in the BFF's namespace (access reviews).
UPGRADE_ACCESS = UPGRADES + "/access"
RANCHER_PREFIX = "/k8s/clusters/{cluster}"
STEVE_COLLECTION = "/v1/harvester/harvesterhci.io.upgrades"

# The collections' route names: answers link to them with ``url_for``.
#: The versioned collection, ``/api/{version}/upgrades``.
UPGRADES_ROUTE = "upgrades"
#: Steve's collection, at the root and under Rancher's cluster proxy prefix.
STEVE_ROUTE = "steve-upgrades"
RANCHER_STEVE_ROUTE = "rancher-steve-upgrades"

#: The files of the page besides ``index.html``; ``/static/{file}`` serves exactly these.
STATIC_FILES = ("app.js", "app.css", "api.html", "api.js", "favicon.svg")
