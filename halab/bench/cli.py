"""``python -m halab lab drill|bench``: the drills and the benchmark against the namespace lab.

The ``lab`` command and its ``up``, ``status`` and ``down`` are the namespace lab's own
(:mod:`halab.nslab.cli`); these two put the drills on it, so they stand above both.
``drill`` on a stack that is not up brings a lab up for the drills and removes it afterwards.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from halab.model.stackconfig import REPO_ROOT
from halab.nslab.cli import need_root, progress, with_stack


def _drill(args: argparse.Namespace) -> int:
    from halab.drills import registry, report
    from halab.drills.core import DrillResult
    from halab.nslab.lab import LabError, NamespaceLab
    from halab.nslab.state import LabState
    from halab.plumbing.procs import signals_raise
    from halab.target.probe import ProbeConfig

    need_root()
    names = [n for n in args.only.split(",") if n] if args.only else list(registry.ALL)
    if args.load:
        names.append("load-run")
    out = Path(args.out or REPO_ROOT / "reports" / args.stack / time.strftime("%Y%m%d-%H%M%S"))
    own = LabState.load(args.stack) is None
    results: list[DrillResult] = []
    try:
        with signals_raise():
            lab = (
                NamespaceLab.create(args.stack, Path(args.project_dir))
                if own
                else NamespaceLab.attach(args.stack)
            )
            if own:
                lab.up(progress)

            def written(result: DrillResult) -> None:
                paths = report.write(result, out)
                print(report.summary(result))
                print(f"  report: {paths['png']} (+ .json, .txt)", flush=True)
                results.append(result)

            probe = ProbeConfig(
                url=lab.public_url,
                interval=args.interval,
                connect_timeout=args.connect_timeout,
                total_timeout=args.total_timeout,
            )
            registry.run_drills(
                lab,
                args.stack,
                names,
                probe=probe,
                seed=args.seed,
                on_result=written,
                load_seconds=args.load_seconds,
            )
    except (LabError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        if own and LabState.load(args.stack) is not None:
            NamespaceLab.attach(args.stack).down(progress)
        if results:
            print(f"summary: {report.write_index(results, out)}")
    failed = [r.name for r in results if not r.passed]
    if failed:
        print(f"FAILED drills: {', '.join(failed)} (reports in {out})")
        return 1
    return 0


def _bench(args: argparse.Namespace) -> int:
    from halab.bench import benchmark

    need_root()
    return benchmark.main_from_args(args)


def add_drill_commands(sub: Any) -> None:
    """Add ``drill`` and ``bench`` to the subcommands of ``lab``
    (:func:`halab.nslab.cli.add_lab_commands`)."""

    from halab.bench.benchmark import add_arguments
    from halab.drills.registry import ALL, EXTRA

    drill = with_stack(
        sub.add_parser(
            "drill",
            help="failover drills with a client probing every 20 ms; JSON + PNG + text reports",
            description=(
                "Drills: "
                + ", ".join(ALL)
                + " (and load-run with --load; "
                + ", ".join(n for n in EXTRA if n != "load-run")
                + " with --only). A client in the "
                "client namespace requests the public URL every --interval s on a new "
                "connection; every result is recorded. Reports go to --out (default "
                "reports/<stack>/<time>/). Exit code 1 when a drill's checks fail."
            ),
        )
    )
    drill.add_argument("--only", default="", help="comma-separated drill names (default: all)")
    drill.add_argument(
        "--load",
        action="store_true",
        help="also the 60 s load run (requests plus a CPU hog on every core)",
    )
    drill.add_argument("--load-seconds", type=float, default=60.0)
    drill.add_argument("--out", default=None, help="report folder")
    drill.add_argument("--seed", type=int, default=None, help="seed of the random kill phase")
    drill.add_argument("--interval", type=float, default=0.02, help="probe interval (s)")
    drill.add_argument("--connect-timeout", type=float, default=0.2)
    drill.add_argument("--total-timeout", type=float, default=0.3)
    drill.set_defaults(func=_drill)

    bench = sub.add_parser(
        "bench",
        help="run the drills N times per stack and print a table of medians",
        description="Same as scripts/benchmark.py.",
    )
    add_arguments(bench)
    bench.set_defaults(func=_bench)
