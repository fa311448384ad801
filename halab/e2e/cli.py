"""``python -m halab.e2e check|plan-check|run``: the check and the plan check of
:mod:`halab.e2e.check`, and the whole e2e run of :mod:`halab.e2e.run`."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from halab.e2e.check import add_check_command, run_plan_check


def build_parser() -> argparse.ArgumentParser:
    """``python -m halab.e2e``: check, plan-check and run."""
    parser = argparse.ArgumentParser(prog="python -m halab.e2e")
    parser.add_argument("--project-dir", default=str(Path(__file__).resolve().parent.parent.parent))
    sub = parser.add_subparsers(dest="command", required=True)
    add_check_command(sub)
    # The Automation API (Pulumi's SDK) is imported only by the command that uses it.
    from halab.e2e.run import add_run_command

    add_run_command(sub)
    plan = sub.add_parser("plan-check", help="judge a `pulumi preview --json` of a scale-out")
    plan.add_argument("preview", help="the JSON file")
    plan.add_argument("--new-host", required=True)
    plan.add_argument("--out", default=None, help="write the verdict as JSON")
    plan.set_defaults(func=run_plan_check)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m halab.e2e``."""
    args = build_parser().parse_args(argv)
    return int(args.func(args))
