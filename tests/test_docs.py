"""The documentation: the README an operator reads, and the MkDocs site under docs/.

* ``mkdocs build --strict`` of ``mkdocs.yml`` succeeds with no warning at all:
  every link and anchor between pages resolves, and every page under docs/ is
  in the nav (mkdocs.yml's ``validation`` makes each of those a warning).
* The strict build is live: a copy of the site with one broken link, or one
  page left out of the nav, fails it.
* README.md is at most 300 lines, every relative link in it names a file of the
  repository (and a heading of it, for an anchor into a Markdown file), and it
  keeps the two fresh-machine commands the project promises (the sandbox
  one-liner, and ``bash scripts/test``, which .ci/run calls).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
MAX_README_LINES = 300

#: The commands a fresh clone is promised to work with (README, top).
SANDBOX_COMMAND = (
    "python3 -m venv .venv && .venv/bin/pip install '.[sandbox]' && "
    ".venv/bin/harvester-upgrade-bff sandbox"
)
TEST_COMMAND = "bash scripts/test"

# Inline links and images, [text](target) and ![alt](target), and reference
# definitions, [label]: target. Code spans and fenced blocks are removed first.
_INLINE = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_REFERENCE = re.compile(r"^\s*\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$", re.MULTILINE)
_FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)
_CODE_SPAN = re.compile(r"`[^`\n]*`")


def links(markdown: str) -> list[str]:
    """Every link target of a Markdown text, outside code."""
    text = _CODE_SPAN.sub("", _FENCE.sub("", markdown))
    return _INLINE.findall(text) + _REFERENCE.findall(text)


def relative(target: str) -> str | None:
    """The repository path a link names, or None for a URL or an anchor of the page itself."""
    if re.match(r"^[a-z][a-z0-9+.-]*:", target, flags=re.IGNORECASE) or target.startswith("#"):
        return None
    return target.split("#", 1)[0].split("?", 1)[0]


def mkdocs_build(config: Path, site: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            *(sys.executable, "-m", "mkdocs", "build", "--strict", "--clean"),
            *("--config-file", str(config), "--site-dir", str(site)),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_link_parser_finds_what_it_must() -> None:
    text = (
        "See [a](docs/a.md), ![b](docs/b.png), [c](https://x.example/), [d](#here),\n"
        "[e](docs/e.md#part), `[f](docs/f.md)`.\n\n```\n[g](docs/g.md)\n```\n"
        "[h]: docs/h.md\n"
    )
    found = [relative(t) for t in links(text)]
    assert found == ["docs/a.md", "docs/b.png", None, None, "docs/e.md", "docs/h.md"]


def test_site_builds_strict_without_a_warning(tmp_path: Path) -> None:
    result = mkdocs_build(ROOT / "mkdocs.yml", tmp_path / "site")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "WARNING" not in output, output
    assert (tmp_path / "site" / "index.html").is_file()


def _copy_site(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "docs", tmp_path / "docs")
    shutil.copy(ROOT / "mkdocs.yml", tmp_path / "mkdocs.yml")
    return tmp_path / "mkdocs.yml"


def test_strict_build_fails_on_a_broken_link(tmp_path: Path) -> None:
    config = _copy_site(tmp_path)
    index = tmp_path / "docs" / "index.md"
    index.write_text(index.read_text() + "\n[gone](no-such-page.md)\n")
    result = mkdocs_build(config, tmp_path / "site")
    assert result.returncode != 0
    assert "no-such-page.md" in result.stdout + result.stderr


def test_strict_build_fails_on_a_broken_anchor(tmp_path: Path) -> None:
    config = _copy_site(tmp_path)
    index = tmp_path / "docs" / "index.md"
    index.write_text(index.read_text() + "\n[gone](guard.md#no-such-section)\n")
    result = mkdocs_build(config, tmp_path / "site")
    assert result.returncode != 0
    assert "no-such-section" in result.stdout + result.stderr


def test_strict_build_fails_on_a_page_not_in_the_nav(tmp_path: Path) -> None:
    config = _copy_site(tmp_path)
    (tmp_path / "docs" / "stray.md").write_text("# Stray\n")
    result = mkdocs_build(config, tmp_path / "site")
    assert result.returncode != 0
    assert "stray.md" in result.stdout + result.stderr


def test_readme_is_at_most_300_lines() -> None:
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= MAX_README_LINES, f"README.md has {len(lines)} lines"


def anchors(markdown: str) -> set[str]:
    """The heading anchors GitHub (and MkDocs' default slugs) give a Markdown text's headings."""
    text = _FENCE.sub("", markdown)
    found = set()
    for heading in re.findall(r"^#{1,6}\s+(.+?)\s*$", text, flags=re.MULTILINE):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        found.add(slug)
    return found


def test_anchor_slugs_are_githubs() -> None:
    text = "# Verify with `doctor`\n## Why `failurePolicy: Fail`\n```\n# not a heading\n```\n"
    assert anchors(text) == {"verify-with-doctor", "why-failurepolicy-fail"}


def test_every_relative_link_in_the_readme_is_a_file_of_the_repository() -> None:
    text = README.read_text(encoding="utf-8")
    targets = [t for t in links(text) if relative(t) is not None or t.startswith("#")]
    assert targets, "the README links nothing: the parser is broken"
    broken = []
    for target in targets:
        name, _, anchor = target.partition("#")
        if not name:
            if anchor not in anchors(text):
                broken.append(target)
            continue
        path = (ROOT / name).resolve()
        if (
            not path.is_relative_to(ROOT)
            or not path.is_file()
            or (
                anchor
                and path.suffix == ".md"
                and anchor not in anchors(path.read_text(encoding="utf-8"))
            )
        ):
            broken.append(target)
    assert broken == []


def test_readme_keeps_the_fresh_machine_commands() -> None:
    text = README.read_text(encoding="utf-8")
    blocks = [b.strip() for b in re.findall(r"```sh\n(.*?)```", text, flags=re.DOTALL)]
    commands = [line.strip() for block in blocks for line in block.splitlines()]
    assert SANDBOX_COMMAND in commands
    assert TEST_COMMAND in commands
    # .ci/run runs the README's test command.
    assert TEST_COMMAND in (ROOT / ".ci" / "run").read_text(encoding="utf-8")
