"""The check's arguments: what the e2e run passes is what a user types after ``check``."""

from __future__ import annotations

import ast
from pathlib import Path

from halab.e2e.check import DEFAULT_STEPS, check_args


def test_check_args_are_the_check_commands_with_the_project_folder(tmp_path: Path) -> None:
    args = check_args(["--stack", "e2e", "--netns", "", "--seed", "8"], tmp_path)
    assert args.stack == "e2e"
    assert args.project_dir == str(tmp_path)
    assert args.netns == ""
    assert args.seed == 8
    assert args.steps == ",".join(DEFAULT_STEPS)


def test_the_check_imports_neither_the_run_nor_the_cli() -> None:
    # The run imports the check; an import back would make the two one tangle again.
    tree = ast.parse(Path(check_args.__code__.co_filename).read_text(encoding="utf-8"))
    imported = {
        node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module
    }
    assert "halab.e2e" in {m.rsplit(".", 1)[0] for m in imported}  # it does import its siblings
    assert not imported & {"halab.e2e.run", "halab.cli"}
