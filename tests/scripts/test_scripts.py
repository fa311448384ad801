"""The bash entry points: shellcheck-clean, and thin: the logic lives in Python."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from halab.model.stackconfig import REPO_ROOT
from halab.plumbing import hostdeps

SCRIPTS = sorted((REPO_ROOT / "scripts").glob("*.sh"))
#: bootstrap.sh installs Python itself (a fresh Debian may have none), so it is the one script
#: with logic of its own; the others hand over to Python within a few lines.
BEFORE_PYTHON = "bootstrap.sh"
THIN_LINES = 20


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_shellcheck_passes(script: Path) -> None:
    hostdeps.require_tools(["shellcheck"], pytest.fail)
    run = subprocess.run(
        ["shellcheck", "-x", str(script)], capture_output=True, text=True, check=False
    )
    assert run.returncode == 0, run.stdout


@pytest.mark.parametrize(
    "script", [s for s in SCRIPTS if s.name != BEFORE_PYTHON], ids=lambda p: p.name
)
def test_every_other_script_is_a_thin_entry_point(script: Path) -> None:
    code = [
        line
        for line in script.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    assert len(code) <= THIN_LINES, f"{script.name}: {len(code)} lines of code"
    # The cache root is Python's (halab.plumbing.roots.cache_root); only the bootstrap repeats the
    # rule.
    assert "ha-web-lab}" not in "\n".join(code)


def test_bootstrap_installs_what_its_caller_needs_and_nothing_else() -> None:
    """`make up` gets the host set, `make test` both (halab/plumbing/hostdeps.py: the one list); an
    unknown choice stops before anything is installed."""
    makefile = (REPO_ROOT / "Makefile").read_text(encoding="utf-8")
    assert "\tscripts/bootstrap.sh host\n" in makefile
    assert "up: bootstrap " in makefile
    test_sh = (REPO_ROOT / "scripts" / "test.sh").read_text(encoding="utf-8")
    assert "\nscripts/bootstrap.sh tests\n" in test_sh
    bad = subprocess.run(
        [str(REPO_ROOT / "scripts" / "bootstrap.sh"), "everything"],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert bad.returncode == 2
    assert "usage" in bad.stderr
