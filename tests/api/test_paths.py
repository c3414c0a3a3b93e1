"""bff.api.paths: the templates the router and the API description share. No two of the
versioned templates match the same path (the router may try them in any order), each
static file named is one the page ships, and Steve's collection is Steve's type path."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from aiohttp.web_urldispatcher import DynamicResource, PlainResource

from bff.api import paths

VERSIONED = [paths.UPGRADES, paths.UPGRADE, paths.UPGRADE_EVENTS, paths.UPGRADE_ACCESS]
SAMPLE = {"version": "v1.0.5", "namespace": "events", "name": "access", "cluster": "c-m-1"}


def _resource(template: str) -> DynamicResource | PlainResource:
    return DynamicResource(template) if "{" in template else PlainResource(template)


def _path(template: str) -> str:
    return template.format(**SAMPLE)


@pytest.mark.parametrize(
    ("one", "other"), list(itertools.permutations(VERSIONED, 2)), ids=lambda t: t.rsplit("/", 2)[-1]
)
def test_no_two_versioned_templates_match_one_path(one: str, other: str) -> None:
    assert _resource(one)._match(_path(one)) is not None
    # Names chosen to look like the other templates' fixed words still reach only their own.
    assert _resource(other)._match(_path(one)) is None


def test_the_static_files_are_the_pages() -> None:
    root = Path(__file__).resolve().parents[2] / "static"
    assert sorted(p.name for p in root.iterdir() if p.name != "index.html") == sorted(
        paths.STATIC_FILES
    )


def test_steves_collection_is_its_type_path() -> None:
    assert paths.STEVE_COLLECTION == "/v1/harvester/harvesterhci.io.upgrades"
    assert _path(paths.RANCHER_PREFIX + paths.STEVE_COLLECTION).startswith("/k8s/clusters/c-m-1/")
