"""The bash entry points: shellcheck-clean, and their helpers defined once (scripts/lib.sh)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from halab.stackconfig import REPO_ROOT

SCRIPTS = sorted((REPO_ROOT / "scripts").glob("*.sh"))


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_shellcheck_passes(script: Path) -> None:
    if shutil.which("shellcheck") is None:
        pytest.fail("shellcheck is missing: apt-get install shellcheck")
    run = subprocess.run(
        ["shellcheck", "-x", str(script)], capture_output=True, text=True, check=False
    )
    assert run.returncode == 0, run.stdout


def test_say_die_and_the_cache_root_live_in_lib_only() -> None:
    helper = re.compile(r"^\s*(say|die|log)\s*\(\)", re.MULTILINE)
    cache = "${XDG_CACHE_HOME:-$HOME/.cache}/ha-web-lab"
    # engine-env.sh is sourced into users' shells: it keeps its own line and defines nothing.
    for script in SCRIPTS:
        text = script.read_text(encoding="utf-8")
        if script.name == "lib.sh":
            assert helper.search(text) and cache in text
            continue
        assert not helper.search(text), f"{script.name} defines its own message helper"
        comments_stripped = "\n".join(
            line for line in text.splitlines() if not line.lstrip().startswith("#")
        )
        if script.name != "engine-env.sh":
            assert cache not in comments_stripped, f"{script.name} computes the cache root"
