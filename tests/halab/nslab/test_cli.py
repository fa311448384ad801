"""Every lab subcommand has --help and --stack (no root needed to read them)."""

from __future__ import annotations

import pytest

from halab.cli import build_parser


@pytest.mark.parametrize("command", ["up", "status", "drill", "down", "bench"])
def test_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(["lab", command, "--help"])
    assert exc.value.code == 0
    assert "--stack" in capsys.readouterr().out


def test_defaults() -> None:
    args = build_parser().parse_args(["lab", "drill"])
    assert args.stack == "dev" and args.interval == 0.02
