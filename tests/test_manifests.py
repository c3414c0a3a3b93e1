"""deploy/manifests: the chart's rendering for ``kubectl apply``, never out of date.

Each ``deploy/manifests/<combination>.yaml`` must be byte for byte what
``scripts/render-manifests`` writes from the chart now, and the directory
holds exactly the combinations it writes. A chart change without a re-render
fails here, naming the file and the command.
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path

import pytest

from tests.support import chart
from tests.support.helm import HelmUnavailable, ensure_helm


@pytest.fixture(scope="module")
def helm() -> Path:
    try:
        return ensure_helm()
    except HelmUnavailable as exc:
        if os.environ.get("BFF_REQUIRE_HELM") == "1":
            pytest.fail(f"BFF_REQUIRE_HELM=1 but {exc}")
        pytest.skip(str(exc))


def test_the_directory_holds_exactly_the_rendered_combinations() -> None:
    assert sorted(p.name for p in chart.MANIFESTS.iterdir()) == sorted(
        f"{name}.yaml" for name in chart.manifest_combinations()
    )


@pytest.mark.parametrize("name", chart.manifest_combinations())
def test_each_manifest_is_what_the_chart_renders(helm: Path, name: str) -> None:
    shipped = (chart.MANIFESTS / f"{name}.yaml").read_text(encoding="utf-8")
    now = chart.render_text(helm, name)
    diff = "".join(
        difflib.unified_diff(
            shipped.splitlines(keepends=True), now.splitlines(keepends=True),
            f"deploy/manifests/{name}.yaml", "the chart now", n=1,
        )
    )  # fmt: skip
    assert not diff, f"deploy/manifests drifted; run scripts/render-manifests\n{diff[:4000]}"
