"""``python -m halab lab up|status|drill|down|bench``: the local namespace lab from the shell.

Every subcommand takes ``--stack`` (default ``dev``) and needs root (network namespaces). ``up``
leaves the lab running for ``status``, ``drill`` and your own ``ip netns exec`` look-arounds;
``drill`` on a stack that is not up brings a lab up for the drills and removes it afterwards.
A failure or Ctrl-C during ``up`` removes everything ``up`` had created.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from halab.model.stackconfig import REPO_ROOT
from halab.plumbing import hostdeps


def _need_root() -> None:
    hostdeps.require_root(
        "the local lab makes network namespaces and bind mounts",
        lambda m: SystemExit(f"error: {m}"),
    )


def _progress(msg: str) -> None:
    print(msg, flush=True)


def _up(args: argparse.Namespace) -> int:
    from halab.lab.lab import LabError, NamespaceLab
    from halab.plumbing.procs import signals_raise

    _need_root()
    try:
        with signals_raise():
            lab = NamespaceLab.create(args.stack, Path(args.project_dir))
            lab.up(_progress, timeout=args.timeout)
    except LabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted: everything the lab had started was removed", file=sys.stderr)
        return 130
    _print_status(lab.status())
    print(
        f"next: python -m halab lab drill --stack {args.stack}; then lab down --stack {args.stack}"
    )
    return 0


def _print_status(status: dict[str, Any]) -> None:
    print(f"lab {status['lab']} (stack {status['stack']}): {status['public_url']}")
    print(f"VIP {status['vip']} held by: {', '.join(status['vip_holders']) or 'nobody'}")
    for host, entry in status["hosts"].items():
        running = ", ".join(f"{n} {p}" for n, p in entry["processes"].items()) or "-"
        backends = entry.get("backends")
        extra = f"  backends {backends}" if backends else ""
        print(f"  {host:<8} netns {entry['namespace']:<18} {running}{extra}")


def _status(args: argparse.Namespace) -> int:
    from halab.lab.lab import LabError, NamespaceLab

    _need_root()
    try:
        lab = NamespaceLab.attach(args.stack)
    except LabError as exc:
        print(str(exc))
        return 3
    status = lab.status()
    if args.json:
        print(json.dumps(status, indent=1))
    else:
        _print_status(status)
    return 0


def _down(args: argparse.Namespace) -> int:
    from halab.lab.lab import LabError, NamespaceLab

    _need_root()
    try:
        lab = NamespaceLab.attach(args.stack)
    except LabError as exc:
        print(str(exc))
        return 0
    problems = lab.down(_progress)
    print("lab removed" if not problems else "some things were left: " + "; ".join(problems))
    return 1 if problems else 0


def _drill(args: argparse.Namespace) -> int:
    from halab.drills import registry, report
    from halab.drills.core import DrillResult
    from halab.lab.lab import LabError, NamespaceLab
    from halab.lab.state import LabState
    from halab.plumbing.procs import signals_raise
    from halab.target.probe import ProbeConfig

    _need_root()
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
                lab.up(_progress)

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
            NamespaceLab.attach(args.stack).down(_progress)
        if results:
            print(f"summary: {report.write_index(results, out)}")
    failed = [r.name for r in results if not r.passed]
    if failed:
        print(f"FAILED drills: {', '.join(failed)} (reports in {out})")
        return 1
    return 0


def _bench(args: argparse.Namespace) -> int:
    from halab.lab import bench

    _need_root()
    return bench.main_from_args(args)


def add_lab_commands(subparsers: Any) -> None:
    """Add ``lab`` with its subcommands to ``python -m halab``'s parser."""
    lab = subparsers.add_parser(
        "lab",
        help="the local lab: every host as a network namespace, real daemons (root)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = lab.add_subparsers(dest="lab_command", required=True, metavar="LAB_COMMAND")

    def common(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("--stack", default="dev", help="stack name (default: dev)")
        return p

    up = common(
        sub.add_parser(
            "up",
            help="render the stack and start it in namespaces",
            description=(
                "Render every host with the one renderer, create one namespace per host plus a "
                "switch (the zones' bridges) and a client on the public side, and start nginx, "
                "uvicorn, HAProxy and Keepalived with the rendered files. Waits until the client "
                "gets a 200 through the public IP."
            ),
        )
    )
    up.add_argument("--timeout", type=float, default=30.0, help="readiness limit (s)")
    up.set_defaults(func=_up)

    status = common(sub.add_parser("status", help="what runs, and who holds the VIP"))
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.set_defaults(func=_status)

    down = common(sub.add_parser("down", help="stop every recorded process, remove namespaces"))
    down.set_defaults(func=_down)

    from halab.drills.registry import ALL, EXTRA

    drill = common(
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

    from halab.lab.bench import add_arguments

    bench = sub.add_parser(
        "bench",
        help="run the drills N times per stack and print a table of medians",
        description="Same as scripts/benchmark.py.",
    )
    add_arguments(bench)
    bench.set_defaults(func=_bench)
