"""``/openapi/v3``: the OpenAPI documents kubectl reads before it validates or explains.

``kubectl replace --validate=strict`` (the default ``--validate``) fetches the index,
then the group-version document, to learn that the server does field validation
itself; ``kubectl explain`` reads the schemas. The group-version document is what
kube-apiserver v1.36.3 generates for this CRD, captured once
(``openapi/apis-group-version.json``) *without* the CRD's own schema: the ``spec`` and
``status`` schemas and ``required`` are filled in from the CRD at load, so the CRD stays
the one copy of the Upgrade schema.
"""

from __future__ import annotations

import hashlib
import json
from functools import cache
from importlib import resources

from aiohttp import web

from bff.sandbox.httpio import json_response
from bff.sandbox.resource import GROUP, JSON, KIND, VERSION
from bff.sandbox.schema import SCHEMA

__all__ = ["add_routes", "group_version_document"]

_GROUP_VERSION_PATH = f"apis/{GROUP}/{VERSION}"
_UPGRADE_SCHEMA = f"io.harvesterhci.{VERSION}.{KIND}"


@cache
def _document() -> tuple[bytes, str]:
    text = (resources.files("bff.sandbox") / "openapi" / "apis-group-version.json").read_text()
    document: JSON = json.loads(text)
    upgrade = document["components"]["schemas"][_UPGRADE_SCHEMA]
    for name in ("spec", "status"):
        upgrade["properties"][name] = SCHEMA["properties"][name]
    upgrade["required"] = SCHEMA["required"]
    body = json.dumps(document, separators=(",", ":"), sort_keys=True).encode()
    return body, hashlib.sha512(body).hexdigest().upper()


def group_version_document() -> JSON:
    """The ``apis/harvesterhci.io/v1beta1`` document, as served."""
    document: JSON = json.loads(_document()[0])
    return document


async def index(request: web.Request) -> web.Response:
    _, digest = _document()
    url = f"/openapi/v3/{_GROUP_VERSION_PATH}?hash={digest}"
    return json_response({"paths": {_GROUP_VERSION_PATH: {"serverRelativeURL": url}}})


async def group_version(request: web.Request) -> web.Response:
    body, digest = _document()
    headers = {"Etag": f'"{digest}"'}
    if request.query.get("hash") == digest:
        # The hash names this exact content: clients may cache it for good.
        headers["Cache-Control"] = "public, immutable"
        headers["Expires"] = "Thu, 01 Jan 2099 00:00:00 GMT"
    return web.Response(body=body, content_type="application/json", headers=headers)


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/openapi/v3", index)
    router.add_get(f"/openapi/v3/{_GROUP_VERSION_PATH}", group_version)
