"""The dashboard's recorded requests (``bff/captured/dashboard/requests.json``) and where
the design sends each: the routing tests on the Ingress spec (tests/test_dashboard_routes.py)
and through real Traefik (tests/test_ingress_traefik.py) read the same list."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bff import captured

#: Where each recorded request must go (docs/routing.md): to the BFF, or to Steve
#: (Rancher's, or Harvester's behind Rancher's proxy). A newly recorded request fails
#: the routing tests until it is decided here.
DESIGN = {"list": "steve", "create": "steve", "dismiss": "bff"}
#: The Steve prefix the standalone Harvester UI calls (no Rancher cluster prefix).
UNPREFIXED = "/v1/harvester"


@dataclass(frozen=True)
class Request:
    name: str
    method: str
    path: str
    query: str
    body: Any

    @property
    def target(self) -> str:
        return self.path + (f"?{self.query}" if self.query else "")

    @property
    def id(self) -> str:
        return f"{self.name} {self.method} {self.target}"


def recorded(
    base: str, name: str = "hvst-upgrade-7xn6v", *, each_client_body: bool = False
) -> list[Request]:
    """Every recorded request under ``base`` for the Upgrade ``name``. A dismiss's body
    is the recording's (naming the captured body per client version), or with
    ``each_client_body`` one request per distinct captured body."""
    out = []
    for entry in captured.dashboard_requests()["requests"]:
        path = entry["path"].replace("{base}", base).replace("{name}", name)
        body = entry["body"]
        bodies = [body]
        if each_client_body and isinstance(body, dict) and "client_body" in body:
            bodies = [captured.client_body(v) for v in sorted(set(body["client_body"].values()))]
        for query in entry["queries"]:
            for one in bodies:
                out.append(Request(entry["name"], entry["method"], path, query, one))
    return out
