"""bff.doctor.release: the Deployment's settings read as serve reads them."""

from __future__ import annotations

import pytest

from bff.doctor.release import read_cache
from bff.settings import OFF_WORDS, ON_WORDS


@pytest.mark.parametrize("word", [*ON_WORDS, "YES", " On "])
def test_every_word_serve_takes_for_on_is_on(word: str) -> None:
    assert read_cache({"BFF_READ_CACHE": word}, rancher=True) is True


@pytest.mark.parametrize("word", [*OFF_WORDS, "No"])
def test_every_word_serve_takes_for_off_is_off(word: str) -> None:
    assert read_cache({"BFF_READ_CACHE": word}, rancher=False) is False


def test_unset_is_serves_default_per_mode() -> None:
    assert read_cache({}, rancher=False) is True
    assert read_cache({}, rancher=True) is False
