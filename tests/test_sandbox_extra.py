"""The ``sandbox`` extra: the wheel's core requirements are the product's only,
``serve`` runs from a virtual environment without the extra, and the commands
that need it say how to install it.

The wheel is built once per module by pip (build isolation, so the declared
setuptools builds it, as a user's ``pip install`` would). The second venv installs
that wheel with its core dependencies only; pip reuses its cache for them.
"""

from __future__ import annotations

import email.parser
import os
import re
import shutil
import subprocess
import sys
import venv
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from bff.cli import SANDBOX_EXTRA, SANDBOX_ONLY
from tests.support.processes import started
from tests.support.upgrade_api import serving_upgrade_api, write_token_kubeconfig

ROOT = Path(__file__).resolve().parents[1]
#: Distributions only the sandbox, the demo and the bench use.
#: (cryptography is the product's own since --webhook-cert-source self makes certificates.)
SANDBOX_ONLY_DISTS = {"cel-python"}


def _pip(python: Path | str, *args: str, timeout: float = 600) -> None:
    result = subprocess.run(
        [str(python), "-m", "pip", "--disable-pip-version-check", "-q", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Built from a copy of what .dockerignore lets into the image build, so no build/
    # folder is left in (or read from) the work tree.
    source = tmp_path_factory.mktemp("source")
    for name in ("pyproject.toml", "README.md", "LICENSE", "MANIFEST.in"):
        if (ROOT / name).exists():
            shutil.copy2(ROOT / name, source / name)
    for folder in ("bff", "static"):
        shutil.copytree(ROOT / folder, source / folder,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))  # fmt: skip
    out = tmp_path_factory.mktemp("wheel")
    _pip(sys.executable, "wheel", "--no-deps", "--wheel-dir", str(out), str(source))
    (built,) = out.glob("harvester_upgrade_bff-*.whl")
    return built


def _requirements(wheel: Path) -> list[str]:
    with zipfile.ZipFile(wheel) as archive:
        (name,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        metadata = email.parser.Parser().parsestr(archive.read(name).decode())
    return metadata.get_all("Requires-Dist") or []


def _name(requirement: str) -> str:
    match = re.match(r"[A-Za-z0-9._-]+", requirement)
    assert match, requirement
    return re.sub(r"[-_.]+", "-", match.group(0)).lower()


def test_the_wheels_core_requirements_hold_no_sandbox_dependency(wheel: Path) -> None:
    requirements = _requirements(wheel)
    core = {_name(r) for r in requirements if "extra ==" not in r}
    assert "aiohttp" in core, requirements
    assert "kubernetes-asyncio" in core, requirements
    assert not core & SANDBOX_ONLY_DISTS, f"sandbox-only in the core: {core & SANDBOX_ONLY_DISTS}"
    sandbox = {_name(r) for r in requirements if re.search(r"extra == ['\"]sandbox['\"]", r)}
    assert sandbox == SANDBOX_ONLY_DISTS
    # The command line checks for exactly what the extra installs.
    assert set(SANDBOX_ONLY.values()) == SANDBOX_ONLY_DISTS


def test_the_wheel_holds_every_module_of_the_package(wheel: Path) -> None:
    """setuptools is given the package list by hand: a package left off it is missing here."""
    with zipfile.ZipFile(wheel) as archive:
        shipped = set(archive.namelist())
    source = {str(p.relative_to(ROOT)) for p in (ROOT / "bff").rglob("*.py")}
    assert "bff/kube/transport.py" in source
    assert source - shipped == set()


@pytest.fixture(scope="module")
def product_venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A venv with the wheel and its core dependencies, not the sandbox extra."""
    where = tmp_path_factory.mktemp("venv") / "product"
    venv.EnvBuilder(with_pip=True).create(where)
    python = where / "bin" / "python"
    _pip(python, "install", str(wheel))
    return where


def _run(venv_dir: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BFF_", "KUBECONFIG"))}
    return subprocess.run(
        [str(venv_dir / "bin" / "harvester-upgrade-bff"), *argv],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
        cwd=venv_dir,  # not the repository: nothing of the source tree is importable
    )


def test_the_venv_without_the_extra_has_none_of_its_modules(product_venv: Path) -> None:
    probe = "import importlib.util as u, sys; print([m for m in sys.argv[1:] if u.find_spec(m)])"
    result = subprocess.run(
        [str(product_venv / "bin" / "python"), "-c", probe, *SANDBOX_ONLY, "bff"],
        capture_output=True, text=True, timeout=60, check=True, cwd=product_venv,
    )  # fmt: skip
    assert result.stdout.strip() == "['bff']"


@pytest.mark.parametrize("command", ["sandbox", "demo", "bench"])
def test_sandbox_commands_without_the_extra_say_how_to_install_it(
    product_venv: Path, command: str
) -> None:
    result = _run(product_venv, command)
    assert result.returncode == 2, result
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert SANDBOX_EXTRA in lines[0]
    assert lines[0].startswith(f"harvester-upgrade-bff: error: {command} needs the sandbox extra")
    assert result.stdout == ""


def test_serve_runs_without_the_extra(product_venv: Path, tmp_path: Path) -> None:
    help_ = _run(product_venv, "serve", "--help")
    assert help_.returncode == 0, help_.stderr
    assert "--kubeconfig" in help_.stdout
    # No cluster: the operator's one line, exit 2, no traceback.
    bad = _run(product_venv, "serve", "--port", "0")
    assert bad.returncode == 2
    assert len(bad.stderr.splitlines()) == 1, bad.stderr
    assert "cannot load cluster configuration" in bad.stderr


def test_doctor_runs_without_the_extra(product_venv: Path) -> None:
    help_ = _run(product_venv, "doctor", "--help")
    assert help_.returncode == 0, help_.stderr
    assert "--upgrades-namespace" in help_.stdout
    bad = _run(product_venv, "doctor")
    assert bad.returncode == 2
    assert len(bad.stderr.splitlines()) == 1, bad.stderr
    assert "cannot load cluster configuration" in bad.stderr


@pytest.fixture
def upgrade_api() -> Iterator[str]:
    with serving_upgrade_api() as url:
        yield url


def test_serve_starts_and_is_ready_without_the_extra(
    product_venv: Path, tmp_path: Path, upgrade_api: str
) -> None:
    import urllib.request

    kubeconfig = write_token_kubeconfig(tmp_path / "kubeconfig", upgrade_api)
    argv = [
        str(product_venv / "bin" / "harvester-upgrade-bff"), "serve",
        "--host", "127.0.0.1", "--port", "0", "--kubeconfig", str(kubeconfig),
        "--read-cache", "off",
    ]  # fmt: skip
    with started(argv, stderr=subprocess.STDOUT) as child:
        base = child.read_until(r"serving on (http://127\.0\.0\.1:\d+)", timeout=60).group(1)
        with urllib.request.urlopen(f"{base}/readyz", timeout=10) as answer:  # noqa: S310
            assert answer.status == 200
