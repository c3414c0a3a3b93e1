"""The dashboard extension's own ``save()``, run in Node: the bodies it really sends.

``referee/shell/`` bundles the real ``@rancher/shell`` 3.0.1-rc.4 Steve store and
model classes with the extension's own model files at v1.0.4 and v1.0.5 (vendored
unchanged); its README says what is bundled and why each stand-in leaves the body
unchanged. This module builds that bundle and runs it:

* :func:`build` installs the Node project (``npm ci --ignore-scripts``, only from
  the lockfile) and bundles it with esbuild, once, and caches both under the user
  cache directory (``$XDG_CACHE_HOME`` or ``~/.cache``, then
  ``harvester-upgrade-bff/referee-shell/``): the install in ``node-<lockfile hash>/``
  (about 2,500 packages, 950 MB: 6 to 7 minutes on 2 cores, download or not, so it
  is kept between clones rather than redone in each), and the bundles in
  ``bundle-<hash>/``, keyed by the lockfile, the build script and every source and
  vendored file, so any edit rebuilds (about 3 s). ``referee/shell/node_modules``
  is made a symlink to the cached install, where esbuild resolves the shell.
  Parallel test processes take a file lock and build once.
* :func:`run` does what the dashboard does against a real Steve endpoint over real
  HTTP: GET the item through the shell's store, build the extension's model, apply
  the edit, ``save()``; returns the request the model sent and the answer.
* :func:`saved_body` serves a given Steve-shaped object from a loopback HTTP server
  of its own and returns the body the real code PUTs back, to send straight to an
  API server or through the BFF.

Edits are strings, as the runner takes them: :data:`DISMISS` (the "Dismiss it"
button), :func:`label`, :func:`annotation` (the description field writes
:data:`DESCRIPTION`), :func:`set_field` (a form field).

Without Node.js 20+ and npm, :class:`ShellUnavailable` is raised; tests skip on it
unless ``BFF_REQUIRE_SHELL=1`` (``scripts/test`` sets it whenever it built the bundle).

``python -m tests.support.shell`` builds (``scripts/test`` runs it before pytest).
"""

from __future__ import annotations

import contextlib
import copy
import fcntl
import functools
import hashlib
import http.server
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

PROJECT = Path(__file__).resolve().parents[2] / "referee" / "shell"
#: Extension versions whose model files are vendored; the bundle has one file each.
VERSIONS = ("v1.0.4", "v1.0.5")
#: Steve types the bundle has the extension's model for, by resource.
TYPES = {
    "upgrade": "harvesterhci.io.upgrade",
    "setting": "harvesterhci.io.setting",
    "keypair": "harvesterhci.io.keypair",
    "schedulevmbackup": "harvesterhci.io.schedulevmbackup",
    "ippool": "loadbalancer.harvesterhci.io.ippool",
    "loadbalancer": "loadbalancer.harvesterhci.io.loadbalancer",
    "clusternetwork": "network.harvesterhci.io.clusternetwork",
}
#: "Dismiss it": ``setLabel('harvesterhci.io/read-message', 'true')``, then save.
DISMISS = "dismiss"
#: The annotation the dashboard's description field writes.
DESCRIPTION = "field.cattle.io/description"
INSTALL_TIMEOUT = 30 * 60
RUN_TIMEOUT = 60.0
_SOURCES = ("package.json", "package-lock.json", "build.mjs", "src", "shims", "third_party")
_STAMP = ".installed"


class ShellUnavailable(RuntimeError):
    """No Node.js 20+ with npm here: the bundle cannot be built (skip, unless required)."""


class ShellBuildError(RuntimeError):
    """Node was there, but ``npm ci`` or the bundle failed."""


class ShellRunError(RuntimeError):
    """The runner did not get as far as a save: a bad GET, or a failure in the code."""


@dataclass(frozen=True)
class Result:
    """One save, as the model did it."""

    version: str
    resource_type: str
    #: The extension's model class the store built (e.g. ``HciUpgrade``).
    model: str
    method: str
    url: str
    #: The request body exactly as serialised on the wire.
    body: dict[str, Any]
    status: int
    response: Any


def label(key: str, value: str) -> str:
    """``model.setLabel(key, value)``, as the labels editor does."""
    return f"label:{key}={value}"


def annotation(key: str, value: str) -> str:
    """``model.setAnnotation(key, value)``, as the annotations editor and description field do."""
    return f"annotation:{key}={value}"


def set_field(path: str, value: Any) -> str:
    """Set the field at dotted ``path`` to ``value``, as a form field's v-model does."""
    return f"set:{path}={json.dumps(value)}"


@functools.lru_cache(maxsize=1)
def node_tools() -> tuple[str, str]:
    """``node`` and ``npm``, when Node.js 20 or later is on PATH."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        raise ShellUnavailable("Node.js 20+ with npm is not on PATH")
    major = subprocess.run(
        [node, "-p", "process.versions.node.split('.')[0]"],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    ).stdout.strip()
    if not major.isdigit() or int(major) < 20:
        raise ShellUnavailable(f"Node.js 20+ is needed, found {major or 'none'}")
    return node, npm


def _digest(paths: Sequence[Path]) -> str:
    h = hashlib.sha256()
    for top in paths:
        files = sorted(p for p in top.rglob("*") if p.is_file()) if top.is_dir() else [top]
        for f in files:
            h.update(str(f.relative_to(PROJECT)).encode() + b"\0")
            h.update(f.read_bytes() + b"\0")
    return h.hexdigest()


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "harvester-upgrade-bff" / "referee-shell"


def _lock_key() -> str:
    return hashlib.sha256((PROJECT / "package-lock.json").read_bytes()).hexdigest()[:16]


def bundle_dir() -> Path:
    """Where the bundles for the current sources are (or will be)."""
    return cache_root() / f"bundle-{_digest([PROJECT / s for s in _SOURCES])[:16]}"


def _bundles(where: Path) -> dict[str, Path]:
    return {v: where / f"shell-{v}.cjs" for v in VERSIONS}


def build() -> dict[str, Path]:
    """The bundle per extension version, installing and building first when needed."""
    node, npm = node_tools()
    root = cache_root()
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            _link(_install(npm, root))
            target = bundle_dir()
            found = _bundles(target)
            if all(p.is_file() for p in found.values()):
                return found
            # Build beside and rename into place: an interrupted build never
            # leaves a half-written bundle where the next run would trust it.
            scratch = Path(tempfile.mkdtemp(prefix=".build-", dir=root))
            done = subprocess.run(
                [node, str(PROJECT / "build.mjs"), str(scratch)],
                cwd=PROJECT,
                capture_output=True,
                text=True,
                check=False,
                timeout=INSTALL_TIMEOUT,
            )
            if done.returncode != 0:
                shutil.rmtree(scratch, ignore_errors=True)
                raise ShellBuildError(f"esbuild failed: {done.stderr.strip()[-2000:]}")
            shutil.rmtree(target, ignore_errors=True)
            scratch.rename(target)
            return _bundles(target)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _install(npm: str, root: Path) -> Path:
    """The cached ``node_modules`` for the current lockfile, installed when missing."""
    target = root / f"node-{_lock_key()}"
    if (target / _STAMP).is_file():
        return target / "node_modules"
    print(f"installing referee/shell (npm ci) into {target} ...", file=sys.stderr, flush=True)
    started = time.monotonic()
    # Installed in a scratch folder and renamed: a stamped folder is a whole install.
    scratch = Path(tempfile.mkdtemp(prefix=".install-", dir=root))
    for name in ("package.json", "package-lock.json"):
        shutil.copy2(PROJECT / name, scratch / name)
    done = subprocess.run(
        [npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=scratch,
        capture_output=True,
        text=True,
        check=False,
        timeout=INSTALL_TIMEOUT,
    )
    if done.returncode != 0:
        shutil.rmtree(scratch, ignore_errors=True)
        raise ShellBuildError(f"npm ci failed for {PROJECT}: {done.stderr.strip()[-2000:]}")
    (scratch / _STAMP).write_text(_lock_key() + "\n")
    shutil.rmtree(target, ignore_errors=True)
    scratch.rename(target)
    print(f"installed in {time.monotonic() - started:.0f} s", file=sys.stderr, flush=True)
    return target / "node_modules"


def _link(modules: Path) -> None:
    """Point ``referee/shell/node_modules`` at ``modules`` (replacing a stale link or tree)."""
    here = PROJECT / "node_modules"
    if here.is_symlink():
        if here.resolve() == modules.resolve():
            return
        here.unlink()
    elif here.exists():
        # A tree left by a hand-run npm install: the cached one is the pinned one.
        shutil.rmtree(here)
    here.symlink_to(modules, target_is_directory=True)


def _edits(edit: str | Sequence[str]) -> list[str]:
    return [edit] if isinstance(edit, str) else list(edit)


def run(
    version: str,
    resource_type: str,
    item_url: str,
    headers: Mapping[str, str] | None = None,
    edit: str | Sequence[str] = (),
    timeout: float = RUN_TIMEOUT,
    bundle: Path | None = None,
) -> Result:
    """Load the Steve item at ``item_url`` as the dashboard does, apply ``edit``, ``save()``.

    ``resource_type`` is a Steve type (a value of :data:`TYPES`, or its key).
    ``headers`` go with every request (``Authorization: Bearer ...``, ``Cookie``).
    The PUT goes where the item's ``links.update`` (or ``self``) points. An answer
    that is not 2xx is returned, not raised: ``status`` says it. ``bundle`` runs
    another build of the runner than :func:`build`'s (the tests' mutants).
    """
    if version not in VERSIONS:
        raise ValueError(f"version must be one of {VERSIONS}, not {version!r}")
    steve_type = TYPES.get(resource_type, resource_type)
    if steve_type not in TYPES.values():
        raise ValueError(f"no extension model for {resource_type!r}; one of {sorted(TYPES)}")
    node, _ = node_tools()
    runner = bundle or build()[version]
    argv = [node, str(runner), "--type", steve_type, "--url", item_url]
    for name, value in (headers or {}).items():
        argv += ["--header", f"{name}: {value}"]
    for one in _edits(edit):
        argv += ["--edit", one]
    done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=timeout)
    lines = done.stdout.strip().splitlines()
    try:
        out: dict[str, Any] = json.loads(lines[-1])
    except (IndexError, json.JSONDecodeError):
        raise ShellRunError(
            f"the {version} runner exited {done.returncode} without a result: "
            f"{done.stderr.strip()[-2000:]}"
        ) from None
    request = out.get("request")
    # After a refused PUT the shell's own follow-up (a 409 reloads the item through
    # the store's schemas, which this runner does not load) may fail too: the
    # answer's status is the result then.
    refused = request is not None and not 200 <= int(out.get("status") or 0) < 300
    if request is None or (out.get("error") and not refused):
        raise ShellRunError(
            f"the {version} runner did not save: error={out.get('error')!r}, "
            f"status={out.get('status')!r}: {json.dumps(out)[:1500]}"
        )
    return Result(
        version=version,
        resource_type=steve_type,
        model=str(out["model"]),
        method=str(request["method"]),
        url=str(request["url"]),
        body=request["body"],
        status=int(out["status"]),
        response=out.get("response"),
    )


def _excluding(obj: dict[str, Any], query: str) -> dict[str, Any]:
    """``obj`` less each ``exclude=a.b.c`` of ``query``, as Steve's formatter removes them.

    The dashboard's store asks for ``exclude=metadata.managedFields`` on every Steve
    GET (``plugins/steve/getters.js`` ``urlFor``), and Steve honours it.
    """
    out = copy.deepcopy(obj)
    for path in parse_qs(query).get("exclude", []):
        *parents, last = path.split(".")
        node: Any = out
        for part in parents:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node.pop(last, None)
    return out


class JsonHandler(http.server.BaseHTTPRequestHandler):
    """A loopback test server's handler that answers JSON over HTTP/1.1."""

    protocol_version = "HTTP/1.1"

    def _answer(self, status: int, body: object) -> None:
        raw = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)


class _Item(JsonHandler):
    """Answers GET with the object (less what the query excludes, as Steve does),
    records a PUT's body and echoes it as Steve does."""

    server: _ItemServer

    def do_GET(self) -> None:
        self.server.gets.append(self.path)
        self._answer(200, _excluding(self.server.item, urlsplit(self.path).query))

    def do_PUT(self) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        body = json.loads(raw)
        self.server.puts.append((self.path, body))
        self._answer(200, body)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the test reads what was recorded, not an access log


class _ItemServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, item: dict[str, Any]) -> None:
        super().__init__(("127.0.0.1", 0), _Item)
        self.item = item
        self.puts: list[tuple[str, dict[str, Any]]] = []
        self.gets: list[str] = []


@contextlib.contextmanager
def _serving(item: dict[str, Any]) -> Iterator[_ItemServer]:
    server = _ItemServer(item)
    thread = threading.Thread(target=server.serve_forever, name="shell-item", daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def built_or_skip() -> dict[str, Path]:
    """The bundles, for a test: built if need be; where Node cannot build them the test
    is skipped, unless ``BFF_REQUIRE_SHELL=1`` (CI) makes that a failure."""
    try:
        return build()
    except ShellUnavailable as e:
        if os.environ.get("BFF_REQUIRE_SHELL") == "1":
            pytest.fail(f"BFF_REQUIRE_SHELL=1 but {e}")
        pytest.skip(str(e))


def saved_body(
    version: str,
    resource_type: str,
    steve_object: Mapping[str, Any],
    edit: str | Sequence[str] = (),
    bundle: Path | None = None,
) -> dict[str, Any]:
    """The body extension ``version``'s real ``save()`` PUTs for ``steve_object`` after ``edit``.

    ``steve_object`` is an item as Steve answers it: ``id``, ``type`` and
    ``links.update`` or ``links.self`` (absolute, as real Steve renders them, or a
    path, as ``bff/steve.py`` does). A loopback server answers the GET with it
    (less the fields the GET's ``exclude`` parameters name, as Steve does: the
    dashboard always excludes ``metadata.managedFields``) and records the PUT.
    Absolute links are pointed at that server for the run and their origin put
    back in the recorded body, so the body is the one the code would send to the
    object's own server, links included.
    """
    item = copy.deepcopy(dict(steve_object))
    links = item.get("links") or {}
    target = links.get("update") or links.get("self")
    if not isinstance(target, str) or not item.get("id") or not item.get("type"):
        raise ValueError("steve_object needs id, type and links.update or links.self")
    origins = {
        f"{u.scheme}://{u.netloc}"
        for u in (urlsplit(v) for v in links.values() if isinstance(v, str))
        if u.scheme
    }
    if len(origins) > 1:
        raise ValueError(f"the object's links point at more than one server: {sorted(origins)}")
    with _serving(item) as server:
        here = f"http://127.0.0.1:{server.server_address[1]}"
        origin = origins.pop() if origins else None
        if origin:
            item["links"] = {k: v.replace(origin, here, 1) for k, v in links.items()}
        result = run(version, resource_type, here + urlsplit(target).path, edit=edit, bundle=bundle)
        if len(server.puts) != 1:
            raise ShellRunError(f"expected one PUT, the code sent {len(server.puts)}")
        path, body = server.puts[0]
    if result.body != body:
        raise ShellRunError("the runner's record and the server's record of the PUT differ")
    if path != urlsplit(target).path:
        raise ShellRunError(f"the code PUT to {path}, not the object's link {target}")
    if origin and isinstance(body.get("links"), dict):
        body["links"] = {
            k: v.replace(here, origin, 1) if isinstance(v, str) else v
            for k, v in body["links"].items()
        }
    return body


def main() -> int:
    try:
        built = build()
    except ShellUnavailable as e:
        print(f"referee/shell not built: {e}", file=sys.stderr)
        return 2
    except ShellBuildError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    for version, path in built.items():
        print(f"{version}: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
