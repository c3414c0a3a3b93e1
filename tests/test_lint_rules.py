"""The project's own lint rules do their job: ruff's banned-api keeps HTTP sessions
in the transport, and the layers contract covers every module of the package.

The ruff check is real: ruff reads the project's pyproject.toml and a module given
on stdin under the name it would have in the tree, so the per-file exemptions
apply exactly as they would to a committed file.
"""

from __future__ import annotations

import pkgutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import bff

ROOT = Path(__file__).resolve().parents[1]

SECOND_SESSION = """\
\"\"\"A module that opens an HTTP session of its own.\"\"\"

import aiohttp


async def fetch(url: str) -> bytes:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return await response.read()
"""

IMPORTED_SESSION = """\
\"\"\"The same, imported by name.\"\"\"

from aiohttp import ClientSession


def session() -> ClientSession:
    return ClientSession()
"""


def _ruff(source: str, filename: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--no-cache", "--output-format", "concise",
         "--stdin-filename", filename, "-"],
        input=source, capture_output=True, text=True, timeout=60, check=False, cwd=ROOT,
    )  # fmt: skip


@pytest.mark.parametrize("source", [SECOND_SESSION, IMPORTED_SESSION], ids=["attr", "import"])
@pytest.mark.parametrize(
    "filename",
    ["bff/upgrades_client.py", "bff/api/fetch.py", "bff/kube/gateways.py", "bff/admission/x.py"],
)
def test_a_second_session_in_the_product_is_a_lint_error(source: str, filename: str) -> None:
    result = _ruff(source, filename)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "TID251" in result.stdout
    assert "aiohttp.ClientSession" in result.stdout


@pytest.mark.parametrize(
    "filename",
    ["bff/kube/transport.py", "bff/sandbox/client.py", "bff/bench/client.py", "bff/demo.py",
     "tests/test_client.py"],
)  # fmt: skip
def test_the_transport_the_sandbox_the_bench_and_the_tests_may_open_sessions(
    filename: str,
) -> None:
    result = _ruff(SECOND_SESSION, filename)
    assert result.returncode == 0, result.stdout + result.stderr


def _layers() -> list[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    (contract,) = [c for c in config["contracts"] if c["type"] == "layers"]
    layers: list[str] = contract["layers"]
    return layers


def test_every_module_of_the_package_is_in_a_layer() -> None:
    """A module added tomorrow must be given its place, or the contract would not see it."""
    listed = {
        name.strip()
        for layer in _layers()
        for group in layer.split("|")
        for name in group.split(":")
    }
    modules = {f"bff.{info.name}" for info in pkgutil.iter_modules(bff.__path__)}
    assert modules - {"bff.static", "bff.captured"} <= listed, sorted(modules - listed)
    assert "bff.captured" in listed
    assert _layers()[0] == "bff.__main__"
    assert _layers()[-1].split("|")[0].strip() == "bff.errors"
