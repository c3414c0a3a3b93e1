"""Build and run the container image without a Docker engine or a registry.

The Dockerfile's default base is ``python:3.11-slim``, which needs a registry.
Where none can be reached, this module makes an equivalent base locally:

1. ``debootstrap`` installs a minimal Debian bookworm root with Debian's own
   python3, pip and venv. The tarball is cached under the user cache directory
   (``~/.cache/harvester-upgrade-bff/image-base/``), keyed by suite and packages.
2. The root is imported into ``buildah``'s storage as ``localhost/bff-base``.
   Two changes make it behave like the official Python image, which is what the
   Dockerfile is written for: pip may install into the system site (Debian's
   ``EXTERNALLY-MANAGED`` marker is removed; the image holds nothing else), and
   the machine's own CA bundle is the base's trust store, so the builder stage's
   ``pip wheel`` trusts whatever this machine trusts (for example a TLS proxy
   in front of PyPI).
3. ``buildah bud --build-arg BASE_IMAGE=localhost/bff-base:bookworm`` builds the
   Dockerfile unchanged.

Images live in a buildah storage root of the project's own under the same cache
directory, so later runs reuse the base and the unchanged layers.

Containers run with ``buildah run --isolation chroot``, which shares the host's
network, so a server started inside answers on this machine's loopback.
Everything here needs root (buildah's vfs storage and debootstrap both do).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
PACKAGES = ("python3", "python3-pip", "python3-venv")
BASE_IMAGE = f"localhost/bff-base:{SUITE}"
IMAGE = "localhost/harvester-upgrade-bff:test"
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")


def storage_root() -> Path:
    """A storage root of the project's own, so no other buildah user's images mix in."""
    return cache_dir().parent / "containers"


def _storage() -> tuple[str, ...]:
    # overlay shares layers, so a rebuild with unchanged sources takes seconds;
    # vfs copies the whole root per step (minutes here). Use vfs only where the
    # kernel has no overlayfs.
    driver = "overlay" if "overlay" in Path("/proc/filesystems").read_text() else "vfs"
    root = storage_root() / driver
    return ("--storage-driver", driver, "--root", str(root), "--runroot", str(root / "run"))


class ImageUnavailable(RuntimeError):
    """This machine cannot build images (not root, or buildah/debootstrap missing)."""


class ImageBuildError(RuntimeError):
    """A build step failed; the message carries the tail of its output."""


def unavailable_reason() -> str | None:
    if os.geteuid() != 0:
        return "building the image needs root (buildah vfs storage, debootstrap)"
    missing = [tool for tool in ("buildah", "debootstrap") if shutil.which(tool) is None]
    if missing:
        return f"{' and '.join(missing)} not installed (Debian packages of the same names)"
    return None


def cache_dir() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "harvester-upgrade-bff" / "image-base"


STORAGE = _storage()


def buildah(*args: str, timeout: float = 900, check: bool = True) -> str:
    result = subprocess.run(
        ["buildah", *STORAGE, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if check and result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).splitlines()[-25:])
        raise ImageBuildError(f"buildah {' '.join(args[:2])} failed ({result.returncode}):\n{tail}")
    return result.stdout


def _base_key() -> str:
    text = "\n".join([SUITE, MIRROR, *PACKAGES])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def base_tarball() -> Path:
    """The debootstrapped root as a tarball, made once and cached."""
    target = cache_dir() / f"{SUITE}-{_base_key()}.tar"
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="bff-base-") as tmp:
        rootfs = Path(tmp) / "root"
        result = subprocess.run(
            [
                "debootstrap",
                "--variant=minbase",
                f"--include={','.join(PACKAGES)}",
                SUITE,
                str(rootfs),
                MIRROR,
            ],
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        if result.returncode != 0:
            tail = "\n".join((result.stdout + result.stderr).splitlines()[-25:])
            raise ImageBuildError(f"debootstrap failed ({result.returncode}):\n{tail}")
        for marker in rootfs.glob("usr/lib/python3*/EXTERNALLY-MANAGED"):
            marker.unlink()
        for leftovers in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for path in (rootfs / leftovers).glob("*"):
                if path.is_file():
                    path.unlink()
        partial = target.with_suffix(".partial")
        subprocess.run(["tar", "-C", str(rootfs), "-cf", str(partial), "."], check=True)
        partial.rename(target)
    return target


def _image_exists(name: str) -> bool:
    result = subprocess.run(
        ["buildah", *STORAGE, "inspect", "--type", "image", name],
        capture_output=True,
        check=False,
    )
    return result.returncode == 0


def ensure_base_image() -> str:
    """``localhost/bff-base:bookworm`` in buildah's storage, trusting the host's CAs."""
    if _image_exists(BASE_IMAGE):
        return BASE_IMAGE
    tarball = base_tarball()
    container = buildah("from", "--quiet", "scratch").strip()
    try:
        buildah("add", "--quiet", container, str(tarball), "/")
        if HOST_CA_BUNDLE.exists():
            buildah("copy", "--quiet", container, str(HOST_CA_BUNDLE), str(HOST_CA_BUNDLE))
        buildah(
            "config", "--env", "PATH=/usr/local/bin:/usr/bin:/bin", "--cmd", "python3", container
        )
        buildah("commit", "--quiet", container, BASE_IMAGE)
    finally:
        buildah("rm", container, check=False)
    return BASE_IMAGE


def build_args() -> dict[str, str]:
    """The Dockerfile's OCI label arguments: the package version, the commit, the origin."""
    with (ROOT / "pyproject.toml").open("rb") as stream:
        version = str(tomllib.load(stream)["project"]["version"])

    def git(*argv: str) -> str:
        done = subprocess.run(
            ["git", "-C", str(ROOT), *argv], capture_output=True, text=True, timeout=30, check=False
        )
        return done.stdout.strip() if done.returncode == 0 else ""

    return {
        "VERSION": version,
        "REVISION": git("rev-parse", "HEAD") or "unknown",
        "SOURCE": git("config", "--get", "remote.origin.url") or "unknown",
    }


def build_image(args: dict[str, str] | None = None) -> str:
    """Build the repository's Dockerfile on the local base; layers are cached.

    ``args`` are the label arguments (default: :func:`build_args` now)."""
    base = ensure_base_image()
    chosen = build_args() if args is None else args
    labels = [a for key, value in chosen.items() for a in ("--build-arg", f"{key}={value}")]
    # buildah's layer cache (1.28) keys a LABEL step by its text before the
    # build arguments are substituted, so a cached image would keep an old
    # commit's labels: --label sets them on the final image whatever is cached.
    labels += [
        a
        for key, value in chosen.items()
        for a in ("--label", f"org.opencontainers.image.{key.lower()}={value}")
    ]
    buildah(
        "bud",
        "--isolation",
        "chroot",
        "--layers",
        *labels,
        "--build-arg",
        f"BASE_IMAGE={base}",
        "--tag",
        IMAGE,
        str(ROOT),
        timeout=1800,
    )
    return IMAGE


def image_config(image: str = IMAGE) -> dict[str, Any]:
    """The image's OCI config (``User``, ``Entrypoint``, ``Env``, ...)."""
    config: dict[str, Any] = json.loads(buildah("inspect", "--type", "image", image))["OCIv1"][
        "config"
    ]
    return config


@contextlib.contextmanager
def container(image: str = IMAGE) -> Iterator[str]:
    """A working container of ``image``, removed on the way out."""
    name = buildah("from", "--quiet", image).strip()
    try:
        yield name
    finally:
        buildah("rm", name, check=False)


def run_argv(name: str, *argv: str) -> list[str]:
    """The argv that runs ``argv`` inside container ``name`` as the image's user."""
    return ["buildah", *STORAGE, "run", "--isolation", "chroot", name, "--", *argv]
