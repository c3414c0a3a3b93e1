"""Every third-party import in the package and the tests is a declared dependency.

A fresh virtual environment has only what ``pyproject.toml`` declares, so an
import that works here only because this machine's Python happens to have the
package would break the README's commands for a new user. The check reads the
imports from source and maps each top-level module to its installed
distribution.
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OWN = {"bff", "tests", "conftest"}


def _declared(extra: str | None) -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = list(project["dependencies"])
    if extra:
        requirements += project["optional-dependencies"][extra]
    return {_normalise(re.split(r"[\s\[<>=!~;]", r, maxsplit=1)[0]) for r in requirements}


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


#: What the ``sandbox`` extra serves: the product never imports these (import-linter).
SANDBOX_PARTS = ("bff/sandbox/", "bff/bench/", "bff/demo.py")


def _imports(folder: str, *, sandbox: bool | None = None) -> dict[str, str]:
    """Third-party imports under ``folder``; ``sandbox``: only its parts (True), or none (False)."""
    seen: dict[str, str] = {}
    for path in sorted((ROOT / folder).rglob("*.py")):
        relative = str(path.relative_to(ROOT))
        if sandbox is not None and relative.startswith(SANDBOX_PARTS) != sandbox:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top not in OWN:
                    seen.setdefault(top, str(path.relative_to(ROOT)))
    return seen


def _undeclared(folder: str, extra: str | None, *, sandbox: bool | None = None) -> list[str]:
    declared = _declared(extra)
    distributions = metadata.packages_distributions()
    missing = []
    for module, where in _imports(folder, sandbox=sandbox).items():
        owners = {_normalise(d) for d in distributions.get(module, [])}
        if not owners:
            missing.append(f"{module} (imported in {where}) is not installed at all")
        elif not owners & declared:
            missing.append(f"{module} (imported in {where}; from {sorted(owners)}) is not declared")
    return missing


def test_the_product_imports_only_its_runtime_dependencies() -> None:
    assert _undeclared("bff", extra=None, sandbox=False) == []


def test_the_sandbox_imports_only_the_sandbox_extra_and_the_runtime() -> None:
    assert _undeclared("bff", extra="sandbox", sandbox=True) == []
    # The extra is needed: without it the sandbox's imports are not all declared.
    assert _undeclared("bff", extra=None, sandbox=True) != []


def test_the_tests_import_only_declared_dependencies() -> None:
    assert _undeclared("tests", extra="test") == []


def test_the_check_finds_an_undeclared_import(tmp_path: Path) -> None:
    # hypothesis is installed here, but it is not a runtime dependency.
    assert "hypothesis" not in _declared(extra=None)
    assert "hypothesis" in _imports("tests")
