"""The client generations the BFF speaks, and what differs between them."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ClientVersion:
    name: str
    #: v1.0.5 clients call ``?action=dismiss|cancel``; v1.0.4 only PUTs.
    actions: bool


V104 = ClientVersion("v1.0.4", actions=False)
V105 = ClientVersion("v1.0.5", actions=True)
VERSIONS = {v.name: v for v in (V104, V105)}
#: Steve paths are what v1.0.2 to v1.0.4 call; they behave exactly like v1.0.4.
STEVE = V104
