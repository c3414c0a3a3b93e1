"""harvester-upgrade-bff: a backend-for-frontend for Harvester's Upgrade resources.

It turns every dismiss or cancel from the Harvester dashboard extension into one
label-only JSON merge patch, so a client can never wipe an Upgrade's status.
"""

__version__ = "0.1.0"

from bff import lazy_client as _lazy_client

_lazy_client.install()
