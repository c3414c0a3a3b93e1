"""What a browser reads: the page, its static files, and the API description it renders."""

from __future__ import annotations

import functools
import json
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

from aiohttp import web

from bff.api.paths import STATIC_FILES
from bff.keys import SETTINGS
from bff.middleware import PAGE_CSP
from bff.openapi import document as openapi_document


@functools.cache
def _openapi_json(base_path: str, metrics_on_api_port: bool) -> bytes:
    # Built once per base path and metrics place: the document only changes with the code.
    return json.dumps(openapi_document(base_path, metrics_on_api_port=metrics_on_api_port)).encode()


async def openapi(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    body = _openapi_json(settings.base_path, settings.metrics_port is None)
    return web.Response(body=body, content_type="application/json")


def _static_root() -> Traversable:
    """The page's files: ``bff/static`` in an installed wheel, ``static/`` in a source tree."""
    packaged = resources.files("bff").joinpath("static")
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[2] / "static"


def _static(name: str) -> bytes:
    return _static_root().joinpath(name).read_bytes()


_TYPES = {
    ".html": "text/html",
    ".js": "text/javascript",
    ".css": "text/css",
    ".svg": "image/svg+xml",
}


def static_file(name: str) -> web.Response:
    """One file of the page, with a strict CSP: no inline script, no CDN."""
    suffix = name[name.rfind(".") :]
    try:
        body = _static(name)
    except (FileNotFoundError, IsADirectoryError):
        raise web.HTTPNotFound() from None
    response = web.Response(body=body, content_type=_TYPES.get(suffix, "application/octet-stream"))
    response.headers["Content-Security-Policy"] = PAGE_CSP
    response.headers["Cache-Control"] = "no-cache"
    return response


async def to_index(request: web.Request) -> web.Response:
    """``{base}`` without the slash: send the browser to ``{base}/`` so relative URLs work."""
    raise web.HTTPFound(f"{request.path}/")


async def index(request: web.Request) -> web.Response:
    return static_file("index.html")


async def static(request: web.Request) -> web.Response:
    name = request.match_info["file"]
    if name not in STATIC_FILES:
        raise web.HTTPNotFound()
    return static_file(name)
