"""The README and docs/ agree with the project: the configuration page is what Pulumi.yaml says,
every relative link lands on a file (and heading) that exists, every `make` target named exists."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from halab.cli import main
from halab.plumbing.roots import PROJECT
from halab.render.docs import PAGE, configuration_page

REPO = Path(__file__).resolve().parent.parent
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)|!\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^(```|~~~).*?^\1", re.S | re.M)


def _prose(text: str) -> str:
    # Links and commands inside code blocks are examples, not part of the page's own text.
    return FENCE.sub("", text)


def _slug(heading: str) -> str:
    # GitHub's anchors: lower case, punctuation dropped (hyphens and underscores kept), spaces
    # to hyphens.
    text = re.sub(r"[`*_]{1,2}(?=\S)|(?<=\S)[`*_]{1,2}", "", heading.strip()).lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    seen: dict[str, int] = {}
    out: set[str] = set()
    for line in _prose(page.read_text()).splitlines():
        match = re.match(r"#{1,6} (.*)", line)
        if not match:
            continue
        slug = _slug(match.group(1))
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        out.add(slug if count == 0 else f"{slug}-{count}")
    return out


def test_configuration_page_is_what_pulumi_yaml_says() -> None:
    page = REPO / PAGE
    assert page.read_text() == configuration_page(REPO), (
        "docs/configuration.md and Pulumi.yaml disagree: run `python -m halab docs`"
    )
    assert main(["docs", "--check"]) == 0


def test_configuration_page_documents_every_key_with_its_default() -> None:
    page = (REPO / PAGE).read_text()
    declared = yaml.safe_load((REPO / "Pulumi.yaml").read_text())["config"]
    for name, decl in declared.items():
        key = name.removeprefix(f"{PROJECT}:")
        rows = [line for line in page.splitlines() if line.startswith(f"| `{key}` |")]
        assert len(rows) == 1, f"docs/configuration.md has {len(rows)} rows for {key}"
        default = decl["default"]
        if isinstance(default, (str, int)) and not isinstance(default, bool) and default != "":
            assert f"`{default}`" in rows[0], key


def test_the_check_fails_when_pulumi_yaml_changes(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    project = (REPO / "Pulumi.yaml").read_text()
    (tmp_path / "Pulumi.yaml").write_text(project)
    (tmp_path / PAGE).write_text(configuration_page(tmp_path))
    assert main(["--project-dir", str(tmp_path), "docs", "--check"]) == 0
    changed = project.replace("default: 40\n", "default: 50\n", 1)
    assert changed != project
    (tmp_path / "Pulumi.yaml").write_text(changed)
    assert main(["--project-dir", str(tmp_path), "docs", "--check"]) == 1


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_every_relative_link_resolves(page: Path) -> None:
    broken = []
    for match in LINK.finditer(_prose(page.read_text())):
        target = match.group(1) or match.group(2)
        if re.match(r"[a-z]+:", target):
            continue
        path, _, anchor = target.partition("#")
        resolved = (page.parent / path).resolve() if path else page
        missing_anchor = bool(anchor) and resolved.suffix == ".md" and resolved.exists()
        if not resolved.exists() or (missing_anchor and anchor not in _anchors(resolved)):
            broken.append(target)
    assert not broken, f"{page.name}: links to nothing: {broken}"


def test_every_make_target_named_exists() -> None:
    makefile = (REPO / "Makefile").read_text()
    targets = set(re.findall(r"^([a-z][a-z0-9-]*):", makefile, re.M))
    for page in PAGES:
        named = set(re.findall(r"(?:`|^\s*)make ([a-z][a-z0-9-]*)", page.read_text(), re.M))
        assert named <= targets, f"{page.name} names {sorted(named - targets)}"


def test_readme_first_screen_is_the_two_commands_and_the_releases() -> None:
    first_screen = "\n".join((REPO / "README.md").read_text().splitlines()[:40])
    for needed in ("make up", "make test", "bookworm", "trixie", "scripts/apt-packages.txt"):
        assert needed in first_screen, needed
