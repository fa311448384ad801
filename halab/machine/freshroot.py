"""A pristine Debian root: its layout, how it is made, filled with this checkout and removed.

What the fresh test (:mod:`halab.machine.fresh`), the booted root
(:mod:`halab.machine.freshboot`) and the image build (:mod:`halab.machine.image`) share: a
minimal root from this machine's mirrors, the newcomer's packages, this machine's network
settings, a clean clone with the working tree's changes, phases timed by name.

Standard library only: it runs before the project's virtualenv exists.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from halab.machine import debian

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


def keep_reports(source: Path, dest: Path) -> None:
    """Reports made in a root, out of it before it goes; a failure to keep them is said, never
    raised (it must not stand in the way of what cleans up after)."""
    if not source.is_dir():
        return
    shutil.rmtree(dest, ignore_errors=True)
    try:
        # .work holds make check's SSH sockets: not files, and nothing to read afterwards.
        shutil.copytree(source, dest, ignore=shutil.ignore_patterns(".work"))
    except (OSError, shutil.Error) as exc:
        print(f"fresh: the reports were not all kept: {exc}", file=sys.stderr)


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
