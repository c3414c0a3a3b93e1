"""Properties (hypothesis): whatever a client sends, the write is nothing or the one label patch.

Bodies are derived from the real fixtures (the objects Harvester serves and the
bodies v1.0.4 and v1.0.5 clients send), then mutated the ways clients and
attackers do: stale or wiped status, changed spec, labels and annotations
added, removed or rewritten, server metadata dropped, unknown fields, the
read-message label set, cleared or left out.
"""

from __future__ import annotations

import copy
import json
from collections import Counter
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from bff import captured
from bff.errors import BffError
from bff.patches import check_body, mark_read_patch, reduce_put
from bff.sandbox.patching import apply_merge_patch
from bff.upgrade_resource import READ_MESSAGE

LIVE = {which: captured.upgrade(which) for which in captured.UPGRADE_FILES}
CLIENT = {version: captured.client_body(version) for version in captured.CLIENT_VERSIONS}
EXAMPLES = 400

text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)  # type: ignore[arg-type]
json_value = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
    max_leaves=8,
)


@st.composite
def scenario(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, Any], str]:
    """(live object, client body, how the body was made)."""
    live = copy.deepcopy(LIVE[draw(st.sampled_from(sorted(LIVE)))])
    live["metadata"].setdefault("labels", {})
    if draw(st.booleans()):
        live["metadata"]["labels"].pop(READ_MESSAGE, None)
    source = draw(st.sampled_from(["live", *sorted(CLIENT)]))
    body = copy.deepcopy(live if source == "live" else CLIENT[source])
    if source != "live":
        # A client body for this object: its identity from the live object.
        body["metadata"]["name"] = live["metadata"]["name"]
        body["metadata"]["namespace"] = live["metadata"]["namespace"]
        body["metadata"]["uid"] = live["metadata"].get("uid")
        body.pop("id", None)
    meta = body["metadata"]
    labels = meta.setdefault("labels", {})
    read = draw(st.sampled_from(["true", "false", "", "absent", "True"]))
    if read == "absent":
        labels.pop(READ_MESSAGE, None)
    else:
        labels[READ_MESSAGE] = read
    for mutation in draw(st.sets(st.sampled_from(sorted(MUTATIONS)), max_size=5)):
        MUTATIONS[mutation](draw, body)
    return live, body, source


def _status(draw: st.DrawFn, body: dict[str, Any]) -> None:
    body["status"] = draw(st.sampled_from([None, {}, {"conditions": []}])) or {}


def _drop_status(draw: st.DrawFn, body: dict[str, Any]) -> None:
    body.pop("status", None)


def _spec(draw: st.DrawFn, body: dict[str, Any]) -> None:
    body["spec"] = draw(st.dictionaries(text, json_value, max_size=3))


def _label(draw: st.DrawFn, body: dict[str, Any]) -> None:
    body["metadata"]["labels"][draw(text) or "x"] = draw(text)


def _drop_labels(draw: st.DrawFn, body: dict[str, Any]) -> None:
    labels = body["metadata"]["labels"]
    for key in [k for k in labels if k != READ_MESSAGE]:
        if draw(st.booleans()):
            del labels[key]


def _annotation(draw: st.DrawFn, body: dict[str, Any]) -> None:
    body["metadata"].setdefault("annotations", {})[draw(text) or "a"] = draw(text)


def _server_metadata(draw: st.DrawFn, body: dict[str, Any]) -> None:
    for key in ("resourceVersion", "generation", "creationTimestamp", "managedFields"):
        if draw(st.booleans()):
            body["metadata"].pop(key, None)


def _stale_version(draw: st.DrawFn, body: dict[str, Any]) -> None:
    body["metadata"]["resourceVersion"] = str(draw(st.integers(1, 10**6)))


def _unknown(draw: st.DrawFn, body: dict[str, Any]) -> None:
    body[draw(st.sampled_from(["extra", "data", "spec2"]))] = draw(json_value)


def _finalizers(draw: st.DrawFn, body: dict[str, Any]) -> None:
    body["metadata"]["finalizers"] = draw(st.lists(text, max_size=2))


MUTATIONS = {
    "status": _status,
    "drop-status": _drop_status,
    "spec": _spec,
    "label": _label,
    "drop-labels": _drop_labels,
    "annotation": _annotation,
    "server-metadata": _server_metadata,
    "stale-version": _stale_version,
    "unknown": _unknown,
    "finalizers": _finalizers,
}


def the_write(body: dict[str, Any], live: dict[str, Any]) -> dict[str, Any] | None:
    """The BFF's write for this body against this live object: None, or the patch body."""
    meta = live["metadata"]
    try:
        checked = check_body(body, namespace=meta["namespace"], name=meta["name"])
        reduction = reduce_put(checked, live)
    except BffError:
        return None
    if not reduction.dismiss:
        return None
    return mark_read_patch(meta["resourceVersion"])


def test_reduction_is_nothing_or_the_one_label_patch() -> None:
    branches: Counter[str] = Counter()

    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow])  # fmt: skip
    @given(scenario())
    def check(case: tuple[dict[str, Any], dict[str, Any], str]) -> None:
        live, body, source = case
        frozen = json.dumps([live, body], sort_keys=True)
        write = the_write(body, live)
        # Deterministic, and neither input is touched.
        assert the_write(copy.deepcopy(body), copy.deepcopy(live)) == write
        assert json.dumps([live, body], sort_keys=True) == frozen
        branch = "dismiss" if write is not None else "nothing"
        event(f"{branch} from {source}")
        branches[branch] += 1
        asked = (body["metadata"].get("labels") or {}).get(READ_MESSAGE) == "true"
        already = (live["metadata"].get("labels") or {}).get(READ_MESSAGE) == "true"
        if not asked or already:
            # Only a client that asks for the label, on an object without it, causes a write.
            assert write is None, (body["metadata"].get("labels"), write)
        if write is None:
            return
        version = live["metadata"]["resourceVersion"]
        # The literal patch, not the function that builds it: a patch that grew a field
        # (a status, a removal) fails here.
        assert write == {"metadata": {"labels": {READ_MESSAGE: "true"}, "resourceVersion": version}}
        assert write == mark_read_patch(version)
        # The whole write applied, as the API server would (its precondition holds).
        after = apply_merge_patch(live, write)
        # Only the one label was added; nothing removed; status, spec, annotations kept.
        for part in ("status", "spec"):
            assert after.get(part) == live.get(part)
        assert after["metadata"]["annotations"] == live["metadata"].get("annotations")
        added = set(after["metadata"]["labels"].items()) - set(live["metadata"]["labels"].items())
        removed = set(live["metadata"]["labels"].items()) - set(after["metadata"]["labels"].items())
        assert added == {(READ_MESSAGE, "true")}
        assert removed == set()
        # Idempotent: against the object as written, the same body writes nothing.
        assert the_write(body, after) is None

    check()
    print(f"properties: {EXAMPLES} examples, {dict(branches)}")
    # The strategy really reaches both branches, often.
    assert branches["dismiss"] >= EXAMPLES // 10, branches
    assert branches["nothing"] >= EXAMPLES // 10, branches
