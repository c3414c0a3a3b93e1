"""The OpenAPI document (bff.openapi) against the code it describes.

* Code and document cannot drift: the app's router and the document's paths
  list the same (method, path) pairs, both ways, with and without a base path.
* The document is valid OpenAPI 3.1 (openapi-spec-validator) and schemathesis
  can load every operation from it.
* Real shapes validate against its schemas: the client fixture bodies against
  the PUT body, Steve resources and collections built by ``bff.steve`` from the
  seed objects, and error bodies built by ``bff.errors``. Every example in the
  document validates against the schema beside it.
* What the document enumerates (versions, actions, name patterns, error codes,
  served files) is what the code accepts.
* ``GET /openapi.json`` serves it, under the base path.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
import yaml
from aiohttp import web
from aiohttp.test_utils import make_mocked_request
from jsonschema import Draft202012Validator, FormatChecker
from openapi_spec_validator import validate as validate_spec
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from bff import captured, errors, openapi
from bff.api import page
from bff.app import create_app
from bff.keys import SETTINGS
from bff.names import is_dns1123_label, is_dns1123_subdomain
from bff.patches import check_body
from bff.settings import Settings
from bff.steve import V104, V105, ClientVersion, collection, resource

ROOT = Path(__file__).parent.parent
METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")
BASE = "/harvester-upgrade-bff"
DOC: Any = openapi.document()


def load(rel: str) -> Any:
    """A file of the captured data, read as a file (not through the module's helpers)."""
    return json.loads(captured.files().joinpath(rel).read_text())


def router_pairs(base_path: str, metrics_port: int | None = None) -> set[tuple[str, str]]:
    # The app is built, never started: no upstream connection is made.
    app = create_app(Settings(base_path=base_path, metrics_port=metrics_port))
    pairs = set()
    for route in app.router.routes():
        path = route.resource.canonical if route.resource is not None else ""
        assert path.startswith(base_path), path
        pairs.add((route.method, path[len(base_path) :] or "/"))
    return pairs


def document_pairs(doc: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (method.upper(), path)
        for path, item in doc["paths"].items()
        for method in item
        if method in METHODS
    }


def schema_validator(doc: dict[str, Any], pointer: str) -> Draft202012Validator:
    """A validator for the schema at ``pointer`` in ``doc``, resolving its ``$ref``s."""
    registry: Registry[Any] = Registry().with_resource(
        "urn:openapi",
        Resource(contents=doc, specification=DRAFT202012),  # type: ignore[call-arg, call-arg]
    )
    return Draft202012Validator(
        {"$ref": f"urn:openapi#{pointer}"}, registry=registry, format_checker=FormatChecker()
    )


def component(name: str) -> Draft202012Validator:
    return schema_validator(DOC, f"/components/schemas/{name}")


def escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def media_with_examples(node: Any, pointer: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every media type object in the document that has both a schema and examples."""
    if isinstance(node, dict):
        if "schema" in node and "examples" in node:
            yield pointer, node
        for key, value in node.items():
            yield from media_with_examples(value, f"{pointer}/{escape(key)}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from media_with_examples(value, f"{pointer}/{i}")


# --- code and document cannot drift -----------------------------------------------------------


@pytest.mark.parametrize("metrics_port", [None, 9090])
@pytest.mark.parametrize("base_path", ["", BASE])
def test_router_and_document_list_the_same_routes(base_path: str, metrics_port: int | None) -> None:
    in_code = router_pairs(base_path, metrics_port)
    in_doc = document_pairs(openapi.document(base_path, metrics_on_api_port=metrics_port is None))
    assert in_code - in_doc == set(), "routes the document does not describe"
    assert in_doc - in_code == set(), "operations the app does not serve"


def test_the_document_covers_every_route_family() -> None:
    paths = set(DOC["paths"])
    steve = "/v1/harvester/harvesterhci.io.upgrades"
    assert {"/healthz", "/readyz", "/metrics", "/openapi.json", "/", "/static/{file}"} <= paths
    assert {"/api/{version}/upgrades", "/api/{version}/upgrades/{namespace}/{name}"} <= paths
    for prefix in ("", "/k8s/clusters/{cluster}"):
        assert {
            f"{prefix}{steve}",
            f"{prefix}{steve}/{{namespace}}",
            f"{prefix}{steve}/{{namespace}}/{{name}}",
        } <= paths


@pytest.mark.parametrize("base_path", ["", BASE])
def test_the_base_path_is_the_server_url(base_path: str) -> None:
    doc = openapi.document(base_path)
    assert doc["servers"] == [{"url": base_path or "/"}]
    assert all(not path.startswith(BASE) for path in doc["paths"])  # type: ignore[attr-defined]


# --- a valid document -------------------------------------------------------------------------


@pytest.mark.parametrize("base_path", ["", BASE])
def test_document_is_valid_openapi_31(base_path: str) -> None:
    doc = openapi.document(base_path)
    assert doc["openapi"].startswith("3.1.")  # type: ignore[attr-defined]
    validate_spec(doc)


def test_document_is_plain_json() -> None:
    assert json.loads(json.dumps(DOC)) == DOC


def test_schemathesis_loads_every_operation() -> None:
    schema = schemathesis.openapi.from_dict(DOC)
    loaded = {(op.ok().method.upper(), op.ok().path) for op in schema.get_all_operations()}  # type: ignore[union-attr]
    assert loaded == document_pairs(DOC)


def test_operation_ids_are_unique() -> None:
    ids = [
        item[method]["operationId"]
        for item in DOC["paths"].values()
        for method in item
        if method in METHODS
    ]
    assert len(ids) == len(set(ids))


# --- real shapes against the schemas ----------------------------------------------------------


def test_a_document_shares_nothing_with_the_next() -> None:
    """A caller that changes its document (schemathesis does) changes no other document."""
    path = "/api/{version}/upgrades/{namespace}/{name}"
    first = openapi.document()
    examples: Any = first["paths"]
    examples = examples[path]["put"]["requestBody"]["content"]["application/json"]["examples"]
    examples["v1.0.4"]["value"]["metadata"]["name"] = "changed"
    second: Any = openapi.document()["paths"]
    second = second[path]["put"]["requestBody"]["content"]["application/json"]["examples"]
    assert second["v1.0.4"]["value"] == load("clients/v1.0.4-dismiss-put-body.json")


def test_put_body_examples_are_the_captured_client_bodies() -> None:
    path = "/api/{version}/upgrades/{namespace}/{name}"
    examples = DOC["paths"][path]["put"]["requestBody"]["content"]["application/json"]["examples"]
    assert set(examples) == set(captured.CLIENT_VERSIONS)
    for version in captured.CLIENT_VERSIONS:
        assert examples[version]["value"] == load(f"clients/{version}-dismiss-put-body.json")
    # What tells the two clients apart: v1.0.4 drops status, v1.0.5 sends it back.
    assert "status" not in examples["v1.0.4"]["value"]
    assert "status" in examples["v1.0.5"]["value"]


def test_the_upgrade_schema_is_the_crds_own() -> None:
    crd = yaml.safe_load(captured.files().joinpath(captured.CRD_FILE).read_text())
    (served,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1beta1"]
    from_crd = served["schema"]["openAPIV3Schema"]["properties"]
    documented = DOC["components"]["schemas"]["Upgrade"]["properties"]
    assert documented["spec"] == from_crd["spec"]
    status = {k: v for k, v in documented["status"].items() if k != "description"}
    assert status == from_crd["status"]
    assert component("Upgrade").is_valid(load("upgrades/upgrade-succeeded.json"))
    no_spec = {k: v for k, v in load("upgrades/upgrade-succeeded.json").items() if k != "spec"}
    assert not component("Upgrade").is_valid(no_spec), "the CRD requires spec"


@pytest.mark.parametrize("client", ["v1.0.4", "v1.0.5"])
def test_client_fixture_bodies_validate_against_the_put_schema(client: str) -> None:
    body = load(f"clients/{client}-dismiss-put-body.json")
    put = DOC["paths"]["/api/{version}/upgrades/{namespace}/{name}"]["put"]
    schema_pointer = "/paths/~1api~1{version}~1upgrades~1{namespace}~1{name}/put/requestBody"
    assert put["requestBody"]["required"] is True
    schema_validator(DOC, schema_pointer + "/content/application~1json/schema").validate(body)


@pytest.mark.parametrize(
    "body",
    [
        [],
        {"metadata": "x"},
        {"apiVersion": "v1", "metadata": {"name": "a"}},
        {"kind": "Pod", "metadata": {"name": "a"}},
        {"metadata": {"name": "a", "labels": {"harvesterhci.io/read-message": True}}},
        {"metadata": {"namespace": "harvester-system"}},
    ],
)
def test_put_schema_refuses_what_the_bff_refuses(body: object) -> None:
    # Each of these is a 400 from bff.patches.check_body; the schema says so too.
    with pytest.raises(errors.BadRequest):
        check_body(body, namespace="harvester-system", name="a")
    assert not component("PutBody").is_valid(body)


SEEDS = list(captured.UPGRADE_FILES)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize(
    "version",
    [
        V105.at("/api/v1.0.5/upgrades"),
        V104.at("/api/v1.0.4/upgrades"),
        V104.at(f"{BASE}/k8s/clusters/local/v1/harvester/harvesterhci.io.upgrades"),
    ],
)
def test_steve_resources_validate_against_the_response_schema(
    seed: str, version: ClientVersion
) -> None:
    shaped = resource(captured.upgrade(seed), version)
    assert ("actions" in shaped) is version.actions
    component("UpgradeResource").validate(json.loads(json.dumps(shaped)))


def test_dismissed_object_validates_against_the_response_schema() -> None:
    after = json.loads(
        (ROOT / "tests/fixtures/expected/upgrade-succeeded-after-dismiss.json").read_text()
    )
    component("UpgradeResource").validate(resource(after, V105.at("/api/v1.0.5/upgrades")))


def test_steve_collection_validates_against_the_response_schema() -> None:
    listed = {
        "apiVersion": "harvesterhci.io/v1beta1",
        "kind": "UpgradeList",
        "metadata": {"resourceVersion": "42"},
        "items": captured.upgrades(),
    }
    version = V105.at("/api/v1.0.5/upgrades")
    shaped = collection(listed, version, "/api/v1.0.5/upgrades")
    component("UpgradeCollection").validate(shaped)
    assert not component("UpgradeCollection").is_valid({**shaped, "type": "error"})


ERROR_KINDS = [
    errors.BadRequest("bad", code=errors.Code.INVALID_NAME),
    errors.Unauthorized("who"),
    errors.Forbidden("no"),
    errors.NotFound("gone"),
    errors.MethodNotAllowed("no actions"),
    errors.Conflict("busy", code=errors.Code.UPGRADE_IN_PROGRESS),
    errors.PayloadTooLarge("big"),
    errors.UnsupportedMediaType("text"),
    errors.Invalid("invalid"),
    errors.TooManyRequests("slow down"),
    errors.UpstreamUnavailable("down", http_status=502),
    errors.UpstreamUnavailable("down", http_status=503),
    errors.UpstreamUnavailable("slow", http_status=504),
    errors.UpstreamRequestRefused("PUT /apis/x is not a request the BFF makes"),
]


@pytest.mark.parametrize("error", ERROR_KINDS, ids=lambda e: str(e.status))
def test_error_bodies_validate_against_their_status_response(error: errors.BffError) -> None:
    name = next(n for s, (n, _, _) in openapi._ERRORS.items() if s == error.status)
    pointer = f"/components/responses/{name}/content/application~1json/schema"
    body = error.body()
    schema_validator(DOC, pointer).validate(body)
    assert not schema_validator(DOC, pointer).is_valid({**body, "status": 599})
    assert not component("Error").is_valid({**body, "stack": "Traceback"})


def test_every_example_validates_against_its_schema() -> None:
    checked = 0
    for pointer, media in media_with_examples(DOC):
        validator = schema_validator(DOC, f"{pointer}/schema")
        for name, example in media["examples"].items():
            errors_found = [e.message for e in validator.iter_errors(example["value"])]
            assert errors_found == [], f"{pointer} example {name}"
            checked += 1
    assert checked > 20


# --- what the document enumerates is what the code accepts ------------------------------------


async def test_the_documented_versions_and_actions_are_the_ones_served(emulator_stack: Any) -> None:
    """Every documented version and action is accepted by the real app; nothing else is."""
    client = emulator_stack.client
    params = DOC["components"]["parameters"]
    versions = params["version"]["schema"]["enum"]
    assert versions
    for version in [*versions, "v1.0.3", "v9"]:
        answer = await client.get(f"/api/{version}/upgrades", headers=ADMIN)
        assert (answer.status == 200) is (version in versions), version
    actions = params["action"]["schema"]["enum"]
    assert actions
    for action in [*actions, "delete", "Dismiss"]:
        url = f"/api/v1.0.5/upgrades/{NS}/{IN_PROGRESS}?action={action}"
        answer = await client.post(url, headers=ADMIN)
        body = await answer.json()
        assert (body.get("code") != "UnknownAction") is (action in actions), (action, body)


NAMES = [
    "harvester-system",
    "hvst-upgrade-7xn6v",
    "a",
    "a.b",
    "a" * 63,
    "a" * 64,
    "a." * 126 + "a",
    "a" * 254,
    "-a",
    "a-",
    "A",
    "a_b",
    "a..b",
    ".a",
    "a.",
    "..",
    "a/b",
    "",
]


@pytest.mark.parametrize("value", NAMES)
def test_name_schemas_agree_with_the_name_checks(value: str) -> None:
    params = DOC["components"]["parameters"]
    for param, check in (("namespace", is_dns1123_label), ("name", is_dns1123_subdomain)):
        schema = {"type": "string", **params[param]["schema"]}
        assert Draft202012Validator(schema).is_valid(value) is check(value), (param, value)


def test_the_documented_error_codes_are_the_code_enum() -> None:
    """Read from the document's own error examples: every code there, and only those."""
    documented: set[str] = set()
    for response in DOC["components"]["responses"].values():
        for media in response.get("content", {}).values():
            for example in media.get("examples", {}).values():
                value = example["value"]
                if isinstance(value, dict) and value.get("type") == "error":
                    documented.add(value["code"])
    assert documented == {str(code) for code in errors.Code}
    # Every error kind's default is a code of the enum (so of the document).
    kinds = [c for _, c in inspect.getmembers(errors, inspect.isclass)
             if issubclass(c, errors.BffError)]  # fmt: skip
    assert all(isinstance(kind.default_code, errors.Code) for kind in kinds)


def test_each_operation_lists_the_contracts_error_statuses() -> None:
    api = "/api/{version}/upgrades/{namespace}/{name}"
    steve = "/v1/harvester/harvesterhci.io.upgrades/{namespace}/{name}"
    upstream = {"401", "403", "404", "429", "502", "503", "504"}
    for path, item in DOC["paths"].items():
        for method, op in item.items():
            if method not in METHODS or "security" not in op:
                continue
            assert upstream <= set(op["responses"]), (path, method)
            assert "400" in op["responses"], (path, method)
    assert {"409", "413", "415", "422"} <= set(DOC["paths"][api]["put"]["responses"])
    assert {"409", "413", "415", "422"} <= set(DOC["paths"][steve]["put"]["responses"])
    assert {"405", "409"} <= set(DOC["paths"][api]["post"]["responses"])


def test_response_headers() -> None:
    responses = DOC["components"]["responses"]
    assert set(responses["Written"]["headers"]) == {
        "X-Request-ID",
        "X-Upgrade-Bff-Changed",
        "Warning",
    }
    assert "Retry-After" in responses["TooManyRequests"]["headers"]
    assert "Allow" in responses["MethodNotAllowed"]["headers"]
    for name, response in responses.items():
        assert "X-Request-ID" in response["headers"], name
    for path, item in DOC["paths"].items():
        for method, op in item.items():
            if method in ("put", "post"):
                assert op["responses"]["200"] == {"$ref": "#/components/responses/Written"}, path


def test_security_schemes_are_bearer_and_the_session_cookie() -> None:
    schemes = DOC["components"]["securitySchemes"]
    assert schemes["bearer"] == {**schemes["bearer"], "type": "http", "scheme": "bearer"}
    assert (schemes["session"]["in"], schemes["session"]["name"]) == ("cookie", "R_SESS")
    api = DOC["paths"]["/api/{version}/upgrades/{namespace}/{name}"]
    assert {"bearer": []} in api["get"]["security"]
    assert {"session": [], "csrf": []} in api["put"]["security"]
    assert "security" not in DOC["paths"]["/healthz"]["get"]


async def test_the_documented_static_files_are_the_page_and_are_served() -> None:
    documented = DOC["components"]["parameters"]["file"]["schema"]["enum"]
    on_disk = {p.name for p in (ROOT / "static").iterdir()} - {"index.html"}
    assert set(documented) == on_disk, "every file of the page, and no other, is documented"
    for name in documented:
        request = make_mocked_request("GET", f"/static/{name}", match_info={"file": name})
        assert (await page.static(request)).status == 200
    other = make_mocked_request("GET", "/static/x.js", match_info={"file": "x.js"})
    with pytest.raises(web.HTTPNotFound):
        await page.static(other)


# --- served -----------------------------------------------------------------------------------


async def test_openapi_json_is_served_under_the_base_path(aiohttp_client: Any) -> None:
    # Just the one handler, on a bare app: it needs only the settings.
    app = web.Application()
    app[SETTINGS] = Settings(base_path=BASE)
    app.router.add_get(f"{BASE}/openapi.json", page.openapi)
    client = await aiohttp_client(app)
    first = await client.get(f"{BASE}/openapi.json")
    assert first.status == 200
    assert first.content_type == "application/json"
    body = await first.json()
    assert body == json.loads(json.dumps(openapi.document(BASE)))
    second = await client.get(f"{BASE}/openapi.json")
    assert await second.read() == await first.read()


# --- the real app's answers against the document ----------------------------------------------

API_ONE = "/api/{version}/upgrades/{namespace}/{name}"
STEVE_ONE = "/v1/harvester/harvesterhci.io.upgrades/{namespace}/{name}"
NS = "harvester-system"
SUCCEEDED, IN_PROGRESS, MISSING = "hvst-upgrade-7xn6v", "hvst-upgrade-zjft7", "hvst-upgrade-none"
ADMIN = {"Authorization": "Bearer sandbox-admin"}

#: (method, URL, template, headers, body) — each answer is checked against the document.
LIVE_REQUESTS: list[tuple[str, str, str, dict[str, str], Any]] = [
    ("GET", "/healthz", "/healthz", {}, None),
    ("GET", "/readyz", "/readyz", {}, None),
    ("GET", "/openapi.json", "/openapi.json", {}, None),
    ("GET", "/api/v1.0.5/upgrades", "/api/{version}/upgrades", ADMIN, None),
    ("GET", "/api/v1.0.5/upgrades/access", "/api/{version}/upgrades/access", ADMIN, None),
    ("GET", "/api/v1.0.5/upgrades/access", "/api/{version}/upgrades/access", {}, None),
    ("GET", f"/api/v1.0.4/upgrades/{NS}/{SUCCEEDED}", API_ONE, ADMIN, None),
    ("GET", f"/api/v1.0.5/upgrades/{NS}/{SUCCEEDED}", API_ONE, ADMIN, None),
    ("POST", f"/api/v1.0.5/upgrades/{NS}/{SUCCEEDED}?action=dismiss", API_ONE, ADMIN, None),
    ("POST", f"/api/v1.0.5/upgrades/{NS}/{IN_PROGRESS}?action=dismiss", API_ONE, ADMIN, None),
    ("POST", f"/api/v1.0.5/upgrades/{NS}/{IN_PROGRESS}?action=cancel", API_ONE, ADMIN, None),
    ("POST", f"/api/v1.0.5/upgrades/{NS}/{SUCCEEDED}?action=delete", API_ONE, ADMIN, None),
    ("POST", f"/api/v1.0.4/upgrades/{NS}/{SUCCEEDED}?action=dismiss", API_ONE, ADMIN, None),
    ("PUT", f"/v1/harvester/harvesterhci.io.upgrades/{NS}/{SUCCEEDED}", STEVE_ONE, ADMIN, "v104"),
    ("PUT", f"/api/v1.0.5/upgrades/{NS}/{SUCCEEDED}", API_ONE, ADMIN, "v105"),
    ("PUT", f"/api/v1.0.5/upgrades/{NS}/{SUCCEEDED}", API_ONE, ADMIN, "text"),
    (
        "GET",
        "/v1/harvester/harvesterhci.io.upgrades",
        "/v1/harvester/harvesterhci.io.upgrades",
        ADMIN,
        None,
    ),
    (
        "GET",
        f"/k8s/clusters/local/v1/harvester/harvesterhci.io.upgrades/{NS}",
        "/k8s/clusters/{cluster}/v1/harvester/harvesterhci.io.upgrades/{namespace}",
        ADMIN,
        None,
    ),
    ("GET", "/api/v9/upgrades", "/api/{version}/upgrades", ADMIN, None),
    ("GET", "/api/v1.0.5/upgrades?labelSelector=a%20b", "/api/{version}/upgrades", ADMIN, None),
    ("GET", "/api/v1.0.5/upgrades", "/api/{version}/upgrades", {}, None),
    ("GET", f"/api/v1.0.5/upgrades/{NS}/Bad_Name", API_ONE, ADMIN, None),
    ("GET", f"/api/v1.0.5/upgrades/{NS}/{MISSING}", API_ONE, ADMIN, None),
]


def response_for(template: str, method: str, status: int) -> tuple[str, dict[str, Any]]:
    """The documented response (its JSON pointer and the object) for this answer."""
    responses = DOC["paths"][template][method.lower()]["responses"]
    assert str(status) in responses, f"{method} {template} answered {status}, not documented"
    pointer = f"/paths/{escape(template)}/{method.lower()}/responses/{status}"
    found = responses[str(status)]
    if "$ref" in found:
        pointer = found["$ref"].removeprefix("#")
        found = DOC["components"]["responses"][pointer.rsplit("/", 1)[1]]
    return pointer, found


def header_object(header: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in header:
        return DOC["components"]["headers"][header["$ref"].rsplit("/", 1)[1]]  # type: ignore[no-any-return]
    return header


async def test_real_answers_match_the_document(emulator_stack: Any) -> None:
    """The real app, in front of the emulator: every answer is documented, shape included."""
    client = emulator_stack.client
    bodies = {"v104": captured.client_body("v1.0.4"), "v105": captured.client_body("v1.0.5")}
    statuses = set()
    for method, url, template, headers, body in LIVE_REQUESTS:
        kwargs: dict[str, Any] = {"headers": dict(headers)}
        if body == "text":
            kwargs["data"] = "hello"
            kwargs["headers"]["Content-Type"] = "text/plain"
        elif body is not None:
            kwargs["json"] = bodies[body]
        async with client.request(method, url, **kwargs) as answer:
            pointer, documented = response_for(template, method, answer.status)
            statuses.add(answer.status)
            for name, header in documented.get("headers", {}).items():
                if header_object(header).get("required"):
                    assert name in answer.headers, (method, url, name)
            assert "X-Request-ID" in answer.headers
            assert answer.content_type in documented["content"], (method, url)
            if answer.content_type != "application/json":
                continue
            payload = await answer.json()
        schema = schema_validator(DOC, f"{pointer}/content/application~1json/schema")
        problems = [e.message for e in schema.iter_errors(payload)]
        assert problems == [], (method, url, answer.status)
    assert statuses == {200, 400, 401, 404, 405, 409, 415}


@pytest.mark.parametrize("metrics_port", [None, 9090])
async def test_the_served_document_lists_metrics_only_where_the_api_port_serves_it(
    aiohttp_client: Any, metrics_port: int | None
) -> None:
    app = web.Application()
    app[SETTINGS] = Settings(metrics_port=metrics_port)
    app.router.add_get("/openapi.json", page.openapi)
    client = await aiohttp_client(app)
    paths = (await (await client.get("/openapi.json")).json())["paths"]
    assert ("/metrics" in paths) is (metrics_port is None)
