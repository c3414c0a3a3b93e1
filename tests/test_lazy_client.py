"""bff.lazy_client: the Kubernetes client loads only what is used, and still all of it works.

Each check runs in a fresh interpreter, since the lazy packages are put in place
once, before anything imports the client.
"""

from __future__ import annotations

import json
import subprocess
import sys

PROBE = """
import json, sys
import bff.app, bff.cli, bff.server  # what `serve` imports
loaded = [m for m in sys.modules if m.startswith("kubernetes_asyncio")]
from kubernetes_asyncio import client, config, watch
names = [client.CustomObjectsApi.__name__, client.V1TokenReview.__name__,
         client.models.V1SubjectAccessReview.__name__, client.ApiException.__name__,
         config.load_kube_config.__name__, watch.Watch.__name__]
import kubernetes_asyncio
print(json.dumps({"loaded": len(loaded), "names": names, "version": kubernetes_asyncio.__version__,
                  "pod": client.V1Pod.__module__, "star": "V1Pod" in client.__all__}))
"""


def _probe() -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result: dict[str, object] = json.loads(done.stdout)
    return result


def test_serve_loads_a_few_of_the_clients_modules_and_every_name_still_resolves() -> None:
    result = _probe()
    # The eager package imports about 860 modules; the BFF's imports need a few dozen.
    assert isinstance(result["loaded"], int)
    assert result["loaded"] < 60, result
    assert result["names"] == [
        "CustomObjectsApi", "V1TokenReview", "V1SubjectAccessReview", "ApiException",
        "load_kube_config", "Watch",
    ]  # fmt: skip
    # Names nobody imported yet are still there, from their own modules, on first use.
    assert result["pod"] == "kubernetes_asyncio.client.models.v1_pod"
    assert result["star"] is True
    assert isinstance(result["version"], str)
    assert result["version"]
