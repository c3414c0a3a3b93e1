"""Import only the parts of the Kubernetes client that are used.

``kubernetes_asyncio/__init__.py`` imports every generated API class and all
of its 1,500 model classes, about 40 MB of resident memory, although the BFF
uses a handful (the REST client, the configuration, custom objects, two
review APIs and their models). :func:`install` puts lazy stand-ins for the
package and its ``client``, ``client.api`` and ``client.models`` packages in
``sys.modules`` before anything imports them: each name is imported from its
own module on first use, as the package's ``__init__`` would have bound it.
Every submodule (``kubernetes_asyncio.config``, ``.watch``, ...) imports
normally, so the library works unchanged; it just never loads what nobody uses.

If the package is already imported (by someone who got there first), nothing
is replaced. The stand-ins read the real ``__init__`` files to learn which
module defines which name, so a new library version needs no change here.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
import sys
import types
from pathlib import Path

ROOT = "kubernetes_asyncio"
#: Packages whose ``__init__`` eagerly imports everything: made lazy.
LAZY = (ROOT, f"{ROOT}.client", f"{ROOT}.client.api", f"{ROOT}.client.models")

_FROM = re.compile(r"^from (kubernetes_asyncio\.[\w.]+) import (\w+)\s*$", re.MULTILINE)
_ALIAS = re.compile(r"^import (kubernetes_asyncio\.[\w.]+) as (\w+)\s*$", re.MULTILINE)
_VERSION = re.compile(r"^__version__ = \"([^\"]+)\"", re.MULTILINE)


class _LazyPackage(types.ModuleType):
    """A package whose names are imported from their defining module on first access."""

    def __init__(self, name: str, directory: Path) -> None:
        super().__init__(name)
        init = directory / "__init__.py"
        self.__file__ = str(init)
        self.__path__ = [str(directory)]
        self.__package__ = name
        source = init.read_text(encoding="utf-8")
        self._origins = {attr: module for module, attr in _FROM.findall(source)}
        self._origins.update({attr: module for module, attr in _ALIAS.findall(source)})
        self.__all__ = list(self._origins)
        version = _VERSION.search(source)
        if version:
            self.__version__ = version.group(1)

    def __getattr__(self, attr: str) -> object:
        if attr.startswith("__"):
            raise AttributeError(attr)
        origin = self._origins.get(attr)
        if origin is None:
            try:
                return importlib.import_module(f"{self.__name__}.{attr}")
            except ModuleNotFoundError as exc:
                if exc.name != f"{self.__name__}.{attr}":
                    raise
                raise AttributeError(
                    f"module {self.__name__!r} has no attribute {attr!r}"
                ) from None
        module = importlib.import_module(origin)
        value = module if origin == f"{self.__name__}.{attr}" else getattr(module, attr)
        setattr(self, attr, value)
        return value


def install() -> bool:
    """Put the lazy packages in place; False when the client is already imported or absent."""
    if ROOT in sys.modules:
        return False
    spec = importlib.util.find_spec(ROOT)
    if spec is None or not spec.submodule_search_locations:
        return False
    base = Path(next(iter(spec.submodule_search_locations)))
    for name in LAZY:
        directory = base.joinpath(*name.split(".")[1:])
        package = _LazyPackage(name, directory)
        package.__spec__ = importlib.util.spec_from_file_location(
            name, directory / "__init__.py", submodule_search_locations=[str(directory)]
        )
        sys.modules[name] = package
        if "." in name:
            above, _, last = name.rpartition(".")
            setattr(sys.modules[above], last, package)
    return True
