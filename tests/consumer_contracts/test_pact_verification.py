"""Provider verification of the dashboard extension's pacts against the running sandbox.

The pacts are written by the consumer tests in ``contracts/consumer`` (JavaScript,
``npm test`` there; ``scripts/test`` runs them first). Here pact-python's
verifier replays every interaction of every pact against ``harvester-upgrade-bff
sandbox`` run as a user runs it, asking the sandbox-only state-change endpoint
for each provider state first, and checks each answer against the consumer's
matchers. Every interaction must pass; a pending one would not fail a build, so
none may be pending.

Without pact files this skips with one line, unless BFF_REQUIRE_PACTS=1 (set
by ``scripts/test`` once it has written them), which makes it a failure.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from pact import Verifier

from bff.sandbox.provider_states import PATH as STATES_PATH
from bff.sandbox.provider_states import STATES
from tests.consumer_contracts.sandbox_process import running_sandbox

ROOT = Path(__file__).resolve().parents[2]
PACTS = ROOT / "contracts" / "pacts"
PROVIDER = "harvester-upgrade-bff"
CONSUMERS = ("harvester-ui-extension-v1.0.4", "harvester-ui-extension-v1.0.5")
REQUIRE = os.environ.get("BFF_REQUIRE_PACTS") == "1"


def pact_file(consumer: str) -> Path:
    path = PACTS / f"{consumer}-{PROVIDER}.json"
    if not path.is_file():
        why = (
            f"no pact file {path.relative_to(ROOT)}: run `npm --prefix contracts/consumer ci "
            "&& npm --prefix contracts/consumer test` (bash scripts/test does)"
        )
        if REQUIRE:
            pytest.fail(why)
        pytest.skip(why)
    return path


def interactions(path: Path) -> list[dict[str, Any]]:
    pact = json.loads(path.read_text())
    assert pact["metadata"]["pactSpecification"]["version"].startswith("4."), "not a V4 pact"
    assert pact["provider"]["name"] == PROVIDER
    found: list[dict[str, Any]] = pact["interactions"]
    return found


def verify(path: Path, provider_url: str, states_url: str) -> tuple[bool, str]:
    """Run the verifier over one pact file; whether it passed, and its report."""
    # The Pact library sends anonymous usage events unless told not to; this suite sends none.
    os.environ["PACT_DO_NOT_TRACK"] = "true"
    host = urlsplit(provider_url).hostname
    verifier = (
        Verifier(PROVIDER, host=host)
        .add_transport(url=provider_url)
        .add_source(path)
        .state_handler(states_url, teardown=True, body=True)
        .set_error_on_empty_pact(enabled=True)
        .set_coloured_output(enabled=False)
    )
    try:
        verifier.verify()
    except RuntimeError:
        return False, verifier.output(strip_ansi=True)
    return True, verifier.output(strip_ansi=True)


@pytest.fixture(scope="module")
def sandbox() -> Iterator[str]:
    with running_sandbox() as url:
        yield url


@pytest.mark.parametrize("consumer", CONSUMERS)
def test_every_interaction_of_the_pact_verifies_against_the_sandbox(
    consumer: str, sandbox: str
) -> None:
    path = pact_file(consumer)
    found = interactions(path)
    assert found, f"{path.name} has no interactions"
    assert [i["description"] for i in found if i.get("pending")] == []
    states = {s["name"] for i in found for s in i.get("providerStates", [])}
    assert states <= set(STATES), f"states the provider does not know: {states - set(STATES)}"

    ok, report = verify(path, sandbox, sandbox + STATES_PATH)

    assert ok, report
    # The verifier's report names each interaction it replayed, with its outcome.
    for interaction in found:
        assert f"{interaction['description']}" in report, report
    assert "FAILED" not in report, report
