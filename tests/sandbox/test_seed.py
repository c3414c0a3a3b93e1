"""The sandbox seed: created through the same path as an API create."""

from __future__ import annotations

from bff.sandbox.seed import creatable, seed_objects
from bff.sandbox.store import Store
from tests.support.backends import NS, SUCCEEDED, EmulatorBackend


async def test_seed_goes_through_the_create_path(emu: EmulatorBackend) -> None:
    """A POST of the same creatable body gives the same shape as the seeded object."""
    shipped = {o["metadata"]["name"]: o for o in seed_objects()}[SUCCEEDED]
    seeded = emu.live(SUCCEEDED)
    fresh = Store()
    created, _ = fresh.create(NS, creatable(shipped))
    for obj in (seeded, created):
        for key in ("uid", "resourceVersion", "creationTimestamp"):
            obj["metadata"].pop(key)
    assert seeded == created
    assert seeded["status"] == shipped["status"]
    assert seeded["metadata"]["labels"] == shipped["metadata"]["labels"]
