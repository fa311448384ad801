"""``make e2e`` (``python -m halab e2e``): everything around the e2e run of :mod:`halab.e2e.run`.

It makes sure the engine (:mod:`halab.machine.engine`) and the image (:mod:`halab.machine.image`)
exist, starts the project's libvirtd (:mod:`halab.machine.libvirtd`) unless it already runs, and
runs
``python -m halab e2e-run`` inside the libvirtd's network namespace, where the VMs are reachable.
A TERM or Ctrl-C goes on to the run, which destroys its stack before it ends. A libvirtd this
started is stopped afterwards, whatever the run's result; one that already ran is left running.

``--edge fortigate`` runs the dev stack, whose FortiGate the project's FortiOS emulator plays on
the lab's bridges (:mod:`halab.e2e.standin`), instead of the e2e stack and its Linux edge.

Reports go to ``reports/e2e/`` (``reports/e2e-fortigate/`` with ``--edge fortigate``;
``HA_WEB_LAB_E2E_REPORTS=DIR`` for another folder);
``HA_WEB_LAB_E2E_KEEP=1`` keeps the run's temporary project copy. Arguments after ``e2e`` go to
the run: ``python -m halab e2e-run --help`` lists them (``--skip``, ``--advert-sweep``...).
Runs as root: the project's libvirtd runs as root.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import Any

from halab.machine import debian, engine, image, libvirtd
from halab.plumbing import hostdeps
from halab.plumbing.teller import teller

REPO = Path(__file__).resolve().parents[2]
#: The longest a whole run may take (its own steps are bounded; about 11 minutes measured here
#: with warm caches, and 60 is CI's budget for everything).
RUN_LIMIT_S = 3600.0
#: How long the run may take to end after a TERM (it destroys its stack first).
STOP_GRACE_S = 900.0
#: How often the launcher looks at the run and the clock.
POLL_S = 1.0


#: Progress on stderr, named like the make target.
say = teller("e2e")


#: ``--edge``: the stack each edge's run drives, and its report folder under ``reports/``.
EDGES = {"linux": ("e2e", "e2e"), "fortigate": ("dev", "e2e-fortigate")}


def run_argv(
    uri: str, paths: Sequence[Path], extra: Sequence[str], *, edge: str = "linux"
) -> list[str]:
    """The run's command line (inside the namespace), from the image, the edge and the
    environment."""
    disk, kernel, initrd = paths
    stack, folder = EDGES[edge]
    reports = os.environ.get("HA_WEB_LAB_E2E_REPORTS") or str(REPO / "reports" / folder)
    keep = ["--keep"] if os.environ.get("HA_WEB_LAB_E2E_KEEP") else []
    which = [] if edge == "linux" else ["--stack", stack]
    return [
        sys.executable, "-m", "halab", "e2e-run", "--uri", uri,
        "--image", str(disk), "--kernel", str(kernel), "--initrd", str(initrd),
        "--reports", reports, *which, *keep, *extra,
    ]  # fmt: skip


def launch(extra: Sequence[str], *, image_release: str | None = None, edge: str = "linux") -> int:
    """Engine, image, libvirtd, then the run; the run's exit status (1 when the set-up failed,
    143 when this was told to stop). ``image_release``: the Debian release of the VMs' image
    (default: this machine's); ``edge``: which run (:data:`EDGES`)."""
    try:
        hostdeps.require_root("the project's libvirtd runs as root", RuntimeError)
    except RuntimeError as exc:
        say(str(exc))
        return 1
    try:
        engine.build_cli()
        env = engine.engine_env(libvirtd.tool_env())
        engine.install_plugins(env)
        paths = image.ensure(image.image(release=image_release))
    except (RuntimeError, OSError, subprocess.SubprocessError) as exc:  # EngineError, ImageError
        say(f"set-up failed: {exc}")
        return 1
    where = libvirtd.folders()
    ours = not libvirtd.running(where)
    rc = 1
    try:
        if ours:
            uri = libvirtd.start(where)
        else:
            say("the project's libvirtd already runs: using it (and leaving it running)")
            uri = libvirtd.uri(where)
        argv = libvirtd.netns_argv(where, run_argv(uri, paths, extra, edge=edge))
        rc = _run_forwarding_signals(argv, {**env, "PYTHONPATH": str(REPO)})
    except (libvirtd.LibvirtdError, OSError) as exc:
        say(str(exc))
        rc = 1
    finally:
        if ours:
            try:
                libvirtd.stop(where)
            except (libvirtd.LibvirtdError, OSError, subprocess.SubprocessError) as exc:
                say(f"the project's libvirtd did not stop cleanly: {exc}")
                rc = rc or 1  # a passed run that leaves a daemon behind has not passed
    return rc


def _run_forwarding_signals(
    argv: Sequence[str], env: dict[str, str], limit_s: float = RUN_LIMIT_S
) -> int:
    """Run ``argv``; a TERM or INT to this process becomes a TERM to it, as does running longer
    than ``limit_s``. After a TERM it has ``STOP_GRACE_S`` to end (it destroys its stack first),
    then it is killed. Returns its exit status, or 143 when it was told to stop."""
    run = subprocess.Popen(argv, env=env, cwd=REPO)
    started = time.monotonic()
    told_at: list[float] = []

    def stop(_signum: int = signal.SIGTERM, _frame: FrameType | None = None) -> None:
        if not told_at:
            told_at.append(time.monotonic())
        if run.poll() is None:
            run.send_signal(signal.SIGTERM)

    previous = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        for _ in range(int((limit_s + STOP_GRACE_S) / POLL_S) + 2):
            try:
                rc = run.wait(POLL_S)
                break
            except subprocess.TimeoutExpired:
                now = time.monotonic()
                if not told_at and now - started > limit_s:
                    say(f"the run took longer than {limit_s:.0f} s: telling it to stop")
                    stop()
                elif told_at and now - told_at[0] > STOP_GRACE_S:
                    say(f"the run did not end {STOP_GRACE_S:.0f} s after TERM: killing it")
                    break
        else:
            say("the run outlived every bound: killing it")
        if run.poll() is None:
            run.kill()
            rc = run.wait()
    except BaseException:
        run.kill()
        run.wait()
        raise
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return 128 + signal.SIGTERM if told_at else rc


def _command(args: argparse.Namespace) -> int:
    extra = args.extra[1:] if args.extra[:1] == ["--"] else args.extra
    return launch(extra, image_release=args.image_release, edge=args.edge)


def _e2e_run(args: argparse.Namespace) -> int:
    # Pulumi's Automation API is imported only by the command that uses it.
    from halab.e2e.run import run

    return run(args)


def add_e2e_command(subparsers: Any) -> None:
    """Add ``e2e`` (the launcher) and ``e2e-run`` (what it runs in the namespace) to
    ``python -m halab``."""
    parser = subparsers.add_parser(
        "e2e",
        help="real VMs on the project's libvirtd through the real plugins: up, drills, "
        "scale-out, replace, drift, interrupt, destroy",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--image-release",
        choices=sorted(debian.RELEASES),
        default=None,
        help="the Debian release the VMs run (default: this machine's; either builds here)",
    )
    parser.add_argument(
        "--edge",
        choices=sorted(EDGES),
        default="linux",
        help="linux: the e2e stack (the Linux edge VM); fortigate: the dev stack, its FortiGate "
        "played by the FortiOS emulator on the lab's bridges (reports in reports/e2e-fortigate)",
    )
    # Every other argument goes to the run as it is (halab.cli.main collects them).
    parser.set_defaults(func=_command, passes_on=True)

    _add_run_command(subparsers)


def _add_run_command(subparsers: Any) -> None:
    """``python -m halab e2e-run``: the run itself, as :func:`run_argv` calls it."""
    parser = subparsers.add_parser(
        "e2e-run",
        help="the e2e run itself, inside the libvirtd's namespace (what e2e starts there)",
    )
    parser.add_argument("--uri", required=True, help="the libvirt URI of the project's libvirtd")
    parser.add_argument("--image", required=True, help="the base image (qcow2)")
    parser.add_argument("--kernel", required=True)
    parser.add_argument("--initrd", required=True)
    parser.add_argument("--reports", default=str(REPO / "reports" / "e2e"))
    parser.add_argument(
        "--stack",
        default="e2e",
        help="the stack to run: e2e (the Linux edge), or one whose edge is a FortiGate (dev), "
        "which the FortiOS emulator then plays",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    sweeps = {
        "--advert-sweep": "also measure these VRRP advert intervals "
        "(spurious VIP moves, hard-failure outage)",
        "--fast-detection-sweep": "also measure fast detection off, then on at these BFD "
        "intervals (the same figures)",
    }
    for flag, text in sweeps.items():
        parser.add_argument(
            flag,
            type=lambda text: [int(v) for v in text.split(",") if v],
            default=[],
            metavar="MS,MS",
            help=text,
        )
    parser.add_argument("--observe-s", type=float, default=120.0, help="quiet time per variant")
    parser.add_argument(
        "--fixed-probe",
        action="store_true",
        help="the drills probe every 0.1 s whatever the lab's pace (what an oversized probe "
        "does to the figures)",
    )
    parser.add_argument(
        "--cpu-hogs",
        type=int,
        default=0,
        metavar="N",
        help="keep N host cores busy all along (a slower machine on purpose)",
    )
    parser.add_argument(
        "--skip",
        type=lambda text: [v for v in text.split(",") if v],
        default=[],
        metavar="STEP,STEP",
        help="leave out steps: no-diff, drill, scale-out, replace, drift, interrupt (a "
        "FortiGate stack: no-diff, drill, edge-ports, edge-sources)",
    )
    parser.set_defaults(func=_e2e_run)
