"""The README's test command on a fresh machine: a pristine Debian root made with mmdebstrap.

``python3 -m halab.machine.fresh`` (``make fresh-test``, and ``.ci/run``) builds a minimal root of a
Debian release (``--release``: bookworm or trixie, this machine's own by default)
(minbase plus what a newcomer has before the README's first command: git, make, CA
certificates), puts a clean clone of this checkout in it (with the working tree's uncommitted
changes) and ``../shared`` beside it, read-only, and runs ``make test`` there as root. Nothing
of this machine's users, groups, packages or ``/etc`` reaches the tests, so a step the project
forgot to install fails here instead of passing on a machine that happened to have it.

For speed, three caches of the project's own are mounted in (``--cold`` leaves them out): Go's
module and build caches with the Go toolchain and the built CLI, apt's downloaded ``.deb`` files,
and pip's wheels. They hold downloads and builds only, each checked by its tool (hashes, go.sum,
the engine's stamp), never configuration.

Isolation: the run is a child of ``unshare --mount --pid --fork --kill-child``: its mounts live
in a private mount namespace and vanish with it; every process it starts is in a PID namespace
whose init is killed when the run ends, however it ends. It shares this machine's network
namespace only to reach the package registries; the tests themselves make their own namespaces.

Standard library only: it runs before the project's virtualenv exists.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from halab.machine import debian, freshboot
from halab.machine.freshroot import (
    INNER_HOME,
    INNER_PATH,
    INNER_REPO,
    INNER_SHARED,
    NEWCOMER_PACKAGES,
    FreshError,
    Phases,
    copy_checkout,
    keep_reports,
    minbase_argv,
    remove_root,
    take_network_settings,
)
from halab.plumbing import hostdeps
from halab.plumbing.roots import cache_root

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Mount:
    """A bind mount into the root: ``source`` on the machine, ``target`` inside the root."""

    source: Path
    target: Path
    read_only: bool = False


def cache_mounts(cache: Path) -> list[Mount]:
    """The project's own download and build caches, mounted where the root's tools look."""
    inner_cache = INNER_HOME / ".cache" / "ha-web-lab"
    return [
        # Go module + build caches, the fetched toolchain, the built CLI (stamp-checked).
        Mount(cache / "go", inner_cache / "go"),
        Mount(cache / "go-toolchain", inner_cache / "go-toolchain"),
        Mount(cache / "engine", inner_cache / "engine"),
        # apt checks every .deb against the signed package lists; pip checks wheel hashes.
        Mount(cache / "fresh" / "apt-archives", Path("/var/cache/apt/archives")),
        Mount(cache / "fresh" / "pip", INNER_HOME / ".cache" / "pip"),
    ]


def mount_script(root: Path, mounts: list[Mount], command: list[str]) -> str:
    """The shell run as PID 1 of the new namespaces: mounts, then the command in the root.

    Every path is quoted; the command runs with a clean environment, as a login would give.
    """
    q = shlex.quote
    lines = [
        "set -eu",
        # The root a mount point of its own: tools in it that make mount namespaces (unshare,
        # libvirtd) change the propagation of "/", which only a mount point has.
        f"mount --bind {q(str(root))} {q(str(root))}",
        f"mount -t proc proc {q(str(root / 'proc'))}",
        f"mount --rbind /sys {q(str(root / 'sys'))}",
        f"mount --rbind /dev {q(str(root / 'dev'))}",
        f"mount -t tmpfs -o mode=755 tmpfs {q(str(root / 'run'))}",
    ]
    for m in mounts:
        point = q(str(root / m.target.relative_to("/")))
        lines.append(f"mkdir -p {q(str(m.source))} {point}")
        lines.append(f"mount --bind {q(str(m.source))} {point}")
        if m.read_only:
            lines.append(f"mount -o remount,bind,ro {point}")
    env = ["env", "-i", f"HOME={INNER_HOME}", f"PATH={INNER_PATH}", "LANG=C.UTF-8", "CI=true"]
    enter = f'cd {q(str(INNER_REPO))} && exec "$@"'
    chroot = ["chroot", str(root), *env, "bash", "-c", enter, "fresh", *command]
    lines.append("exec " + " ".join(q(a) for a in chroot))
    return "\n".join(lines) + "\n"


def check_preconditions() -> None:
    """Root, and the few tools this needs on the machine itself."""
    hostdeps.require_root("mmdebstrap's root mode, mounts and chroot need it", FreshError)
    hostdeps.require_tools(("mmdebstrap", "unshare", "git"), FreshError)


def run(args: argparse.Namespace) -> int:
    """Build the root, run the test command in it, remove the root; the exit code is the tests'."""
    check_preconditions()
    cache = cache_root()
    phases = Phases()
    shared = (REPO.parent / "shared").resolve()
    work = Path(tempfile.mkdtemp(prefix="fresh-", dir=args.work_dir))
    root = work / "root"
    rc = 1
    try:
        phases.run(
            f"mmdebstrap (Debian {debian.RELEASES[args.release]} minbase)",
            minbase_argv(args.release, root, NEWCOMER_PACKAGES),
        )
        with phases.timed("network settings"):
            take_network_settings(root)
        with phases.timed("clone of the checkout"):
            copy_checkout(REPO, root / INNER_REPO.relative_to("/"))
        mounts = [] if args.cold else cache_mounts(cache)
        if shared.is_dir():
            mounts.append(Mount(shared, INNER_SHARED, read_only=True))
        command = root_command(args.bench, args.pytest_args)
        script = mount_script(root, mounts, command)
        try:
            phases.run(
                f"{' '.join(command[:2])} (in the root)",
                ["unshare", "--mount", "--propagation", "private", "--pid", "--fork",
                 "--kill-child", "sh", "-c", script],
            )  # fmt: skip
            rc = 0
        except FreshError as exc:
            print(f"fresh: {exc}", file=sys.stderr)
    finally:
        if args.bench:
            keep_reports(
                root / INNER_REPO.relative_to("/") / "reports" / "bench",
                args.reports / args.release / "bench",
            )
        remove_root(work, root, keep=args.keep)
        report(phases, args.reports / args.release, cold=args.cold, release=args.release)
    return rc


def root_command(bench: bool, extra: Sequence[str]) -> list[str]:
    """What runs in the root: the README's test command (pytest arguments go through the
    script `make test` runs), or the failover benchmark with the release's own daemons."""
    if bench:
        return ["make", "bench", *([f"BENCH_ARGS={shlex.join(extra)}"] if extra else [])]
    return ["scripts/test.sh", *extra] if extra else ["make", "test"]


def report(phases: Phases, reports: Path, *, cold: bool, release: str) -> None:
    """Print the phase table and write it as JSON (the fresh machine's extra cost)."""
    print(phases.table())
    reports.mkdir(parents=True, exist_ok=True)
    (reports / "timings.json").write_text(
        json.dumps({"release": release, "cold_caches": cold, "seconds": phases.seconds}, indent=2)
        + "\n"
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line (``--help`` has it all)."""
    parser = argparse.ArgumentParser(
        prog="python3 -m halab.machine.fresh",
        description="Run `make test` in a pristine Debian root (mmdebstrap), as a fresh "
        "machine would. Root only.",
    )
    parser.add_argument(
        "--release",
        choices=sorted(debian.RELEASES),
        default=debian.host_release(),
        help="the Debian release of the root (default: this machine's, %(default)s)",
    )
    parser.add_argument(
        "--cold", action="store_true", help="mount none of the project's caches (slow)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the root for a look afterwards")
    parser.add_argument(
        "--work-dir",
        type=Path,
        default=None,
        help="where the root is made (default: the system's temporary folder)",
    )
    parser.add_argument(
        "--boot",
        action="store_true",
        help="instead: boot the root with systemd and prove that make up's and make test's "
        "installs leave nothing serving or enabled (halab/machine/freshboot.py)",
    )
    parser.add_argument(
        "--bench",
        action="store_true",
        help="instead of make test: make bench (the failover benchmark in namespaces, with the "
        "root's release of HAProxy, Keepalived, nginx); its reports kept in REPORTS/RELEASE/bench",
    )
    parser.add_argument(
        "--lab",
        action="store_true",
        help="with --boot: then make up, make check and make down in the booted root, at its "
        "own libvirtd (qemu:///system), in a network namespace of its own",
    )
    parser.add_argument(
        "--second-lab",
        action="store_true",
        help="with --lab: a second lab with its own address plan up beside the first on the "
        "same libvirtd; both checked; its make down must leave the first untouched",
    )
    parser.add_argument(
        "--reports",
        type=Path,
        default=None,
        help="reports folder (default: reports/fresh-test, or reports/fresh-boot with --boot)",
    )
    parser.add_argument(
        "pytest_args", nargs="*", help="passed on to the test command (after --), e.g. -k spec"
    )
    args = parser.parse_args(argv)
    if args.bench and args.boot:
        parser.error("--bench runs in a fresh root, not a booted one: one of them")
    if args.lab and not args.boot:
        parser.error("--lab needs --boot")
    if args.second_lab and not args.lab:
        parser.error("--second-lab needs --lab")
    if args.reports is None:
        kind = "fresh-boot" if args.boot else "fresh-bench" if args.bench else "fresh-test"
        args.reports = REPO / "reports" / kind
    return args


def main(argv: list[str] | None = None) -> int:
    """Entry point; a failed precondition or phase is one line on stderr."""
    args = parse_args(argv)
    try:
        if args.boot:
            return freshboot.run(args)
        return run(args)
    except FreshError as exc:
        print(f"fresh: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
