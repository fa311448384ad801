"""The Debian packages this machine gets (``python3 -m halab.hostdeps missing|install|list
host|tests``, run by ``scripts/bootstrap.sh``).

``scripts/apt-packages.txt`` is the one list, in two sections: ``[host]``, what ``make up`` needs
on this machine (libvirt and QEMU, the image build's tools, Python's venv, ssh, ...), and
``[tests]``, what only the tests and the namespace lab need (the validators: HAProxy, Keepalived,
nginx, cloud-init, netplan, shellcheck, ...). ``host`` installs the first, ``tests`` both: the
daemons the lab runs only in its VMs and namespaces are never installed by ``make up``.

Standard library only: it runs with Debian's python3, before the virtualenv exists.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from halab import teller

REPO = Path(__file__).resolve().parent.parent
PACKAGE_LIST = REPO / "scripts" / "apt-packages.txt"
#: What each choice installs: the tests run what `make up` runs, so they need its packages too.
CHOICES: Mapping[str, tuple[str, ...]] = {"host": ("host",), "tests": ("host", "tests")}
SECTIONS = ("host", "tests")

#: Seconds one apt-get may take (a cold install of everything is a few minutes), and one
#: dpkg call.
APT_TIMEOUT = 3600.0
CALL_TIMEOUT = 120.0

say = teller("hostdeps")


class HostDepsError(RuntimeError):
    """The list or an install step failed; the message says which and what to do."""


# --- the list ---------------------------------------------------------------------------------


def parse_list(text: str) -> dict[str, tuple[str, ...]]:
    """The sections of the package list: ``{name: packages}``. A line ``[name]`` starts a section;
    ``#`` starts a comment; every package sits in exactly one known section."""
    sections: dict[str, list[str]] = {}
    current: str | None = None
    seen: set[str] = set()
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith("[") and line.endswith("]"):
            current = line[1:-1].strip()
            if current not in SECTIONS or current in sections:
                raise HostDepsError(f"line {number}: section [{current}] unknown or repeated")
            sections[current] = []
            continue
        if current is None or " " in line:
            raise HostDepsError(f"line {number}: {line!r}: one package a line, under a [section]")
        if line in seen:
            raise HostDepsError(f"line {number}: {line} is listed twice")
        seen.add(line)
        sections[current].append(line)
    return {name: tuple(sections.get(name, ())) for name in SECTIONS}


def read_list(path: Path = PACKAGE_LIST) -> dict[str, tuple[str, ...]]:
    """The sections of ``scripts/apt-packages.txt``."""
    return parse_list(path.read_text(encoding="utf-8"))


def selected(sections: Mapping[str, Sequence[str]], choice: str) -> tuple[str, ...]:
    """The packages of a choice (``host`` or ``tests``), in the list's order."""
    if choice not in CHOICES:
        raise HostDepsError(f"unknown choice {choice!r}: one of {', '.join(CHOICES)}")
    return tuple(pkg for name in CHOICES[choice] for pkg in sections[name])


# --- what dpkg has ----------------------------------------------------------------------------


def parse_installed(text: str) -> set[str]:
    """Installed package names from ``dpkg-query -W -f='${Package}\\t${db:Status-Status}\\n'``
    (a package removed with its config kept is not installed)."""
    names = set()
    for line in text.splitlines():
        name, _, status = line.partition("\t")
        if status.strip() == "installed":
            names.add(name.strip())
    return names


def installed_packages() -> set[str]:
    """Every package dpkg has installed now."""
    done = _call(["dpkg-query", "-W", "-f=${Package}\t${db:Status-Status}\n"])
    return parse_installed(done.stdout)


def _call(argv: Sequence[str], *, check: bool = True) -> subprocess.CompletedProcess[str]:
    """A short command, bounded; its output captured."""
    try:
        done = subprocess.run(
            list(argv), capture_output=True, text=True, timeout=CALL_TIMEOUT, check=False,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        raise HostDepsError(
            f"{' '.join(argv[:3])} did not answer in {CALL_TIMEOUT:.0f} s"
        ) from None
    if check and done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or [""]
        raise HostDepsError(f"{' '.join(argv[:4])} failed ({done.returncode}): {tail[0]}")
    return done


# --- install ----------------------------------------------------------------------------------


def missing(choice: str, path: Path = PACKAGE_LIST) -> list[str]:
    """The packages of a choice that dpkg does not have installed."""
    have = installed_packages()
    return [pkg for pkg in selected(read_list(path), choice) if pkg not in have]


def apt_get(*args: str) -> None:
    """apt-get, non-interactive, bounded."""
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    try:
        done = subprocess.run(
            ["apt-get", *args], env=env, stdin=subprocess.DEVNULL, timeout=APT_TIMEOUT,
            check=False,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        raise HostDepsError(f"apt-get {args[0]} took over {APT_TIMEOUT:.0f} s") from None
    if done.returncode != 0:
        raise HostDepsError(f"apt-get {' '.join(args[:2])} failed ({done.returncode})")


def install(choice: str) -> int:
    """Install what a choice lacks; 0 when everything is there."""
    wanted = selected(read_list(), choice)
    lacking = [pkg for pkg in wanted if pkg not in installed_packages()]
    if not lacking:
        say(f"Debian packages present ({len(wanted)})")
        return 0
    if os.geteuid() != 0:
        raise HostDepsError("installing Debian packages needs root")
    say(f"installing Debian packages: {' '.join(lacking)}")
    apt_get("update", "-q")
    apt_get("install", "-y", "-q", "--no-install-recommends", *lacking)
    return 0


def main(argv: Sequence[str] | None = None, *, out: Callable[[str], None] = print) -> int:
    """``python3 -m halab.hostdeps missing|install|list host|tests``."""
    parser = argparse.ArgumentParser(prog="python3 -m halab.hostdeps", description=__doc__)
    parser.add_argument("action", choices=["missing", "install", "list"])
    parser.add_argument("choice", choices=sorted(CHOICES))
    args = parser.parse_args(argv)
    try:
        if args.action == "install":
            return install(args.choice)
        names = missing(args.choice) if args.action == "missing" else None
        for name in names if names is not None else selected(read_list(), args.choice):
            out(name)
    except (HostDepsError, OSError) as exc:
        say(str(exc))
        return 1
    except KeyboardInterrupt:
        say("interrupted")
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
