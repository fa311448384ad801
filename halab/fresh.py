"""The README's test command on a fresh machine: a pristine Debian root made with mmdebstrap.

``python3 -m halab.fresh`` (``make fresh-test``, and ``.ci/run``) builds a minimal root of a
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
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from halab import debian
from halab.plumbing import hostdeps
from halab.plumbing.roots import cache_root

REPO = Path(__file__).resolve().parents[1]
#: What a newcomer installs before the README's first command (the README says so).
NEWCOMER_PACKAGES = ("ca-certificates", "git", "make")
#: Where the checkout and ../shared sit inside the root (the same layout CI has).
INNER_REPO = Path("/work/ha-web-lab")
INNER_SHARED = Path("/work/shared")
INNER_HOME = Path("/root")
INNER_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#: How this machine reaches the registries: its resolver, the CAs of its network (an egress
#: proxy's, a company's) and pip's settings for them. These come in; nothing else of /etc does.
NETWORK_FILES = (Path("/etc/resolv.conf"), Path("/etc/pip.conf"))
LOCAL_CA_DIR = Path("/usr/local/share/ca-certificates")


class FreshError(RuntimeError):
    """A precondition or a phase failed; the message says which and what to do."""


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


@dataclass
class Phases:
    """How long each phase took, printed as a table and written as JSON."""

    seconds: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def timed(self, name: str) -> Iterator[None]:
        """Time one phase, also when it fails."""
        start = time.monotonic()
        try:
            yield
        finally:
            self.seconds[name] = round(time.monotonic() - start, 1)

    def run(self, name: str, argv: list[str]) -> None:
        """Run one phase's command to its end, timed; a failure names the phase."""
        print(f"fresh: {name}: {' '.join(shlex.quote(a) for a in argv[:6])} ...", flush=True)
        with self.timed(name):
            try:
                subprocess.run(argv, check=True, stdin=subprocess.DEVNULL)
            except subprocess.CalledProcessError as exc:
                raise FreshError(f"{name} failed (exit {exc.returncode})") from None

    def table(self) -> str:
        """One row per phase."""
        rows = [f"{'phase':<28} {'seconds':>8}"]
        rows += [f"{name:<28} {secs:>8.1f}" for name, secs in self.seconds.items()]
        return "\n".join(rows)


def mirror(suite: str) -> str:
    """The Debian mirror this machine's apt uses for ``suite`` (the image build's choice too)."""
    env_key = "HA_WEB_LAB_DEBIAN_SECURITY_MIRROR" if suite.endswith("-security") else ""
    env_key = env_key or "HA_WEB_LAB_DEBIAN_MIRROR"
    if os.environ.get(env_key):
        return os.environ[env_key]
    found = debian.mirror_for(suite)
    if not found:
        raise FreshError(f"no apt source for {suite} on this machine: set {env_key}")
    return found


def minbase_argv(suite: str, root: Path, include: Sequence[str]) -> list[str]:
    """mmdebstrap of a minimal root of ``suite`` with ``include``, from this machine's mirrors."""
    main_mirror, security_mirror = mirror(suite), mirror(f"{suite}-security")
    return [
        "mmdebstrap", "--mode=root", "--variant=minbase", "--components=main",
        f"--include={','.join(include)}", suite, str(root),
        f"deb {main_mirror} {suite} main", f"deb {main_mirror} {suite}-updates main",
        f"deb {security_mirror} {suite}-security main",
    ]  # fmt: skip


def remove_root(work: Path, root: Path, *, keep: bool) -> None:
    """Remove the work folder of a root (``keep``: leave it, and say where), never through a
    mount into this machine's own files: anything still mounted below keeps it."""
    leftover = mounted_under(work)
    if leftover:
        print(f"fresh: still mounted, root kept at {work}: {leftover}", file=sys.stderr)
    elif keep:
        print(f"fresh: root kept at {root}")
    else:
        shutil.rmtree(work, ignore_errors=True)


def check_preconditions() -> None:
    """Root, and the few tools this needs on the machine itself."""
    hostdeps.require_root("mmdebstrap's root mode, mounts and chroot need it", FreshError)
    hostdeps.require_tools(("mmdebstrap", "unshare", "git"), FreshError)


def copy_checkout(repo: Path, dest: Path) -> None:
    """A clean clone of HEAD, then the working tree's changed and new files over it."""
    subprocess.run(["git", "clone", "-q", "--no-hardlinks", str(repo), str(dest)], check=True)
    changed = subprocess.run(
        ["git", "-C", str(repo), "ls-files", "-z", "-m", "-o", "--exclude-standard"],
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for raw in filter(None, changed):
        rel = Path(os.fsdecode(raw))
        source, target = repo / rel, dest / rel
        if source.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
        elif not source.exists():
            target.unlink(missing_ok=True)  # deleted in the working tree


def take_network_settings(root: Path) -> None:
    """Copy :data:`NETWORK_FILES` and the local CAs into the root and trust them there, as the
    machine does."""
    for path in NETWORK_FILES:
        if path.is_file():
            shutil.copy(path, root / path.relative_to("/"))  # follows a resolv.conf symlink
    if LOCAL_CA_DIR.is_dir() and any(LOCAL_CA_DIR.rglob("*.crt")):
        shutil.copytree(LOCAL_CA_DIR, root / LOCAL_CA_DIR.relative_to("/"), dirs_exist_ok=True)
        subprocess.run(
            ["chroot", str(root), "update-ca-certificates"], check=True, stdout=subprocess.DEVNULL
        )


def mounted_under(root: Path, mountinfo: str | None = None) -> list[str]:
    """Mount points at or below ``root`` in this process's namespace (none, after a run)."""
    points = []
    text = Path("/proc/self/mountinfo").read_text() if mountinfo is None else mountinfo
    for line in text.splitlines():
        point = line.split()[4]
        if point == str(root) or point.startswith(f"{root}/"):
            points.append(point)
    return points


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
        # The README's test command; pytest arguments go through the script `make test` runs.
        command = ["scripts/test.sh", *args.pytest_args] if args.pytest_args else ["make", "test"]
        script = mount_script(root, mounts, command)
        try:
            phases.run(
                "make test (in the root)",
                ["unshare", "--mount", "--propagation", "private", "--pid", "--fork",
                 "--kill-child", "sh", "-c", script],
            )  # fmt: skip
            rc = 0
        except FreshError as exc:
            print(f"fresh: {exc}", file=sys.stderr)
    finally:
        remove_root(work, root, keep=args.keep)
        report(phases, args.reports / args.release, cold=args.cold, release=args.release)
    return rc


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
        prog="python3 -m halab.fresh",
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
        "installs leave nothing serving or enabled (halab/freshboot.py)",
    )
    parser.add_argument(
        "--lab",
        action="store_true",
        help="with --boot: then make up, make check and make down in the booted root, at its "
        "own libvirtd (qemu:///system), in a network namespace of its own",
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
    if args.lab and not args.boot:
        parser.error("--lab needs --boot")
    if args.reports is None:
        args.reports = REPO / "reports" / ("fresh-boot" if args.boot else "fresh-test")
    return args


def main(argv: list[str] | None = None) -> int:
    """Entry point; a failed precondition or phase is one line on stderr."""
    args = parse_args(argv)
    try:
        if args.boot:
            from halab import freshboot  # it imports this module

            return freshboot.run(args)
        return run(args)
    except FreshError as exc:
        print(f"fresh: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
