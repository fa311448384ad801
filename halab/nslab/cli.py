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
from pathlib import Path
from typing import Any

from halab.plumbing import hostdeps


def need_root() -> None:
    """Exit with one line unless root: every ``lab`` subcommand makes namespaces."""
    hostdeps.require_root(
        "the local lab makes network namespaces and bind mounts",
        lambda m: SystemExit(f"error: {m}"),
    )


def progress(msg: str) -> None:
    """One flushed line of a lab's progress."""
    print(msg, flush=True)


def _up(args: argparse.Namespace) -> int:
    from halab.nslab.lab import LabError, NamespaceLab
    from halab.plumbing.procs import signals_raise

    need_root()
    try:
        with signals_raise():
            lab = NamespaceLab.create(
                args.stack, Path(args.project_dir), fortigate_emulator=args.fortigate_emulator
            )
            lab.up(progress, timeout=args.timeout)
    except LabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted: everything the lab had started was removed", file=sys.stderr)
        return 130
    _print_status(lab.status())
    if lab.fortigate is not None:
        print("nothing passes the public IP until the FortiOS provider has configured the emulator")
    print(
        f"next: python -m halab lab drill --stack {args.stack}; then lab down --stack {args.stack}"
    )
    return 0


def _print_status(status: dict[str, Any]) -> None:
    print(f"lab {status['lab']} (stack {status['stack']}): {status['public_url']}")
    print(f"VIP {status['vip']} held by: {', '.join(status['vip_holders']) or 'nobody'}")
    fortigate = status.get("fortigate_emulator")
    if fortigate:
        print(
            f"FortiGate (emulator, forwards only what it is told): https://{fortigate['hostname']}"
            f" CA {fortigate['ca_bundle']} token {fortigate['token_file']}"
        )
    for host, entry in status["hosts"].items():
        running = ", ".join(f"{n} {p}" for n, p in entry["processes"].items()) or "-"
        backends = entry.get("backends")
        extra = f"  backends {backends}" if backends else ""
        print(f"  {host:<8} netns {entry['namespace']:<18} {running}{extra}")


def _status(args: argparse.Namespace) -> int:
    from halab.nslab.lab import LabError, NamespaceLab

    need_root()
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
    from halab.nslab.lab import LabError, NamespaceLab

    need_root()
    try:
        lab = NamespaceLab.attach(args.stack)
    except LabError as exc:
        print(str(exc))
        return 0
    problems = lab.down(progress)
    print("lab removed" if not problems else "some things were left: " + "; ".join(problems))
    return 1 if problems else 0


def with_stack(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """``--stack``, which every ``lab`` subcommand takes."""
    p.add_argument("--stack", default="dev", help="stack name (default: dev)")
    return p


def add_lab_commands(subparsers: Any) -> Any:
    """Add ``lab`` with ``up``, ``status`` and ``down`` to ``python -m halab``'s parser; returns
    its subcommands, where :func:`halab.bench.cli.add_drill_commands` adds the drills'."""
    lab = subparsers.add_parser(
        "lab",
        help="the local lab: every host as a network namespace, real daemons (root)",
        # The help of the whole command, drill and bench (halab.bench.cli) included.
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = lab.add_subparsers(dest="lab_command", required=True, metavar="LAB_COMMAND")

    up = with_stack(
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
    up.add_argument(
        "--fortigate-emulator",
        action="store_true",
        help=(
            "a stack with edge: fortigate: the edge runs the FortiOS API emulator with "
            "--apply-nft on fortigateHost instead of the Linux edge's rules; nothing passes to "
            "the VIP until the FortiOS provider has configured it (docs/fortigate-emulator.md)"
        ),
    )
    up.set_defaults(func=_up)

    status = with_stack(sub.add_parser("status", help="what runs, and who holds the VIP"))
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.set_defaults(func=_status)

    down = with_stack(sub.add_parser("down", help="stop every recorded process, remove namespaces"))
    down.set_defaults(func=_down)

    return sub
