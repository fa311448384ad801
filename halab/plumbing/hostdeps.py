"""The Debian packages this machine gets, and no daemon of theirs left serving or enabled here
(``python3 -m halab.plumbing.hostdeps missing|install|list host|tests``, run by
``scripts/bootstrap.sh``).

``scripts/apt-packages.txt`` is the one list, in sections: ``[host]``, what ``make up`` needs
on this machine (libvirt and QEMU, the image build's tools, Python's venv, ssh, ...), and
``[tests]``, what only the tests and the namespace lab need (the validators: HAProxy, Keepalived,
nginx, cloud-init, netplan, shellcheck, ...). ``host`` installs the first, ``tests`` both;
``[elsewhere]`` holds the few packages the code names but neither installs. A line
``package: tool ...`` also says which of the package's tools the code checks for, so that every
"is it installed" check (:func:`require_tools`) names the package the install step would bring,
from the same table; :func:`require_root` is every "run as root" check.

On a Debian host that runs systemd, installing a package with a daemon starts the daemon and
enables it at boot: nginx on 0.0.0.0:80, HAProxy, cloud-init's units (cloud-init would run at
the next boot and reconfigure the machine). The lab runs those daemons only in its VMs and
namespaces, so an install here:

1. runs apt-get under a temporary ``policy-rc.d`` that forbids every start (a machine's own
   policy-rc.d is set aside and put back afterwards, also on a failure or an interruption);
2. for each package this run newly installed (never one the machine already had): disables the
   systemd units it enabled (for every user's session too), masks those it links into a target
   itself, stops those running, except :data:`EXPECTED_UNITS`, the lab's own needs (libvirt's
   sockets), which it starts as Debian would have; masks the generators it
   ships (netplan's would enable a unit of its own at every boot), and disables for this boot
   what they enabled in /run;
3. cloud-init newly installed: writes ``/etc/cloud/cloud-init.disabled``, which cloud-init's
   systemd generator reads at every boot (with it, cloud-init.target is never pulled in);
4. libvirt's ``default`` network newly installed: its autostart goes (the lab makes networks of
   its own; ``default`` would put virbr0 and a dnsmasq on 192.168.122.1:53 on this machine).

``python3 -m halab.machine.fresh --boot`` proves it on a pristine Debian root booted with systemd.

Standard library only: it runs with Debian's python3, before the virtualenv exists.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from halab.plumbing.procs import signals_raise
from halab.plumbing.teller import teller

REPO = Path(__file__).resolve().parents[2]
PACKAGE_LIST = REPO / "scripts" / "apt-packages.txt"
#: What each choice installs: the tests run what `make up` runs, so they need its packages too.
CHOICES: Mapping[str, tuple[str, ...]] = {"host": ("host",), "tests": ("host", "tests")}
#: The list's sections: a choice's, and one of packages whose tools the code checks for but no
#: choice installs (a developer's check's, dpkg, the unpacked sshd).
SECTIONS = ("host", "tests", "elsewhere")

#: Units the lab needs on this machine: left enabled (and started, when this run installed them
#: on a running systemd), each with why. Everything else a newly installed package enabled is
#: disabled. One place: ``python3 -m halab.machine.fresh --boot`` allows exactly these.
EXPECTED_UNITS: Mapping[str, str] = {
    # `make up` uses the libvirtd at qemu:///system when one answers (halab/up.py), as any
    # libvirt tool would. These are unix sockets under /run/libvirt (root only, or read-only);
    # libvirtd starts on a client's first call and exits when idle (--timeout 120): nothing
    # listens on the network and no daemon runs until the lab asks. libvirtd.service itself is
    # not enabled (it would start libvirtd at every boot).
    "libvirtd.socket": "libvirt's API socket: make up's libvirtd (qemu:///system), on demand",
    "libvirtd-ro.socket": "libvirt's read-only socket (virsh list, status): same daemon, on demand",
    "libvirtd-admin.socket": "libvirt's admin socket (virt-admin): same daemon, on demand",
    # libvirtd.service Requires virtlogd.socket (QEMU's console logs go through virtlogd) and
    # Wants virtlockd.socket: without them libvirtd does not start.
    "virtlogd.socket": "libvirtd's QEMU log daemon, started on demand: libvirtd requires it",
    "virtlogd-admin.socket": "virtlogd's admin socket, started with it",
    "virtlockd.socket": "libvirtd's lock daemon, started on demand: libvirtd wants it",
    "virtlockd-admin.socket": "virtlockd's admin socket, started with it",
    # libvirt-daemon-system depends on logrotate for /var/log/libvirt; the timer is how Debian's
    # logrotate runs (daily, then exits).
    "logrotate.timer": "rotates libvirt's logs (libvirt-daemon-system depends on logrotate for it)",
    # libvirtd asks polkitd over the system bus; libvirt-daemon-system depends on polkitd,
    # which depends on dbus: a machine without a system bus gets one.
    "dbus.socket": "the system bus libvirtd asks polkitd on (a libvirt dependency), on demand",
    # Its package links it into multi-user.target itself; masking it would leave dbus.socket
    # with nothing to start (a machine booted without systemd gets dbus new here).
    "dbus.service": "the system bus's daemon, started by dbus.socket",
}
#: Packages whose units are the machine's own system, never quieted even when this run installed
#: them (the image build needs `systemctl`; on a machine booted without systemd, disabling them
#: would only break a later boot with it, not silence any service).
SYSTEM_PACKAGES: Mapping[str, str] = {
    "systemd": "the init system's own units (getty, journald's helpers, timers of its own)",
    "systemd-sysv": "the init system itself",
    # A machine booted with systemd has it already; where it comes new (a container, a chroot:
    # trixie's libvirt pulls it in), masking its sockets would break a later boot of that root.
    "udev": "the device manager, the machine's own",
}
#: Unit files a package ships, where dpkg lists them (bookworm: /lib, trixie: /usr/lib); user
#: units (every user's session: trixie's openssh-client enables ssh-agent.socket there).
UNIT_DIRS = ("/lib/systemd/system/", "/usr/lib/systemd/system/")
USER_UNIT_DIRS = ("/usr/lib/systemd/user/",)
UNIT_SUFFIXES = (".service", ".socket", ".timer", ".path", ".target")
#: Generators run at every boot (and daemon-reload) and may enable units of their own in /run:
#: those of a newly installed package are masked (a link to /dev/null in GENERATOR_MASKS, as
#: systemd.generator(7) says), since this machine never booted with them. Except these:
GENERATOR_DIRS = ("/lib/systemd/system-generators/", "/usr/lib/systemd/system-generators/")
GENERATOR_MASKS = Path("/etc/systemd/system-generators")
KEPT_GENERATORS: Mapping[str, str] = {
    # cloud-init's own off switch is read by its generator, which then says so in
    # /run/cloud-init/disabled: the proof (halab/machine/freshboot.py) checks that file after a
    # reboot.
    "cloud-init-generator": "reads /etc/cloud/cloud-init.disabled and keeps cloud-init off",
}
#: `systemctl is-enabled` answers that mean the unit starts by itself (at boot or on an event).
ENABLED_STATES = frozenset({"enabled", "enabled-runtime"})
#: `systemctl is-active` answers of a unit that runs or listens.
ACTIVE_STATES = frozenset({"active", "activating", "reloading", "refreshing"})

POLICY_RC_D = Path("/usr/sbin/policy-rc.d")
#: The first lines of ours: how a later run knows one left behind by a killed run.
POLICY_MARK = "# ha-web-lab: temporary policy-rc.d"
POLICY_TEXT = f"""#!/bin/sh
{POLICY_MARK} (halab/plumbing/hostdeps.py), present only while apt-get installs
# the lab's packages: no daemon of theirs starts on this machine (exit 101: action forbidden).
exit 101
"""
SAVED_SUFFIX = ".ha-web-lab-saved"

#: cloud-init's systemd generator reads this at every boot (cloud-init's documented way, and
#: what /lib/systemd/system-generators/cloud-init-generator checks): cloud-init.target is then
#: never pulled in, whatever a later upgrade enables.
CLOUD_INIT_DISABLED = Path("/etc/cloud/cloud-init.disabled")
CLOUD_INIT_TEXT = """\
# ha-web-lab: cloud-init was installed on this machine only for the lab's tests (its schema and
# network-config checks), never to configure this machine: with this file its generator keeps
# it from running at boot. Remove the file if you want cloud-init to run here.
"""
#: The autostart link of libvirt's `default` network, and the packages that bring the network.
LIBVIRT_DEFAULT_AUTOSTART = Path("/etc/libvirt/qemu/networks/autostart/default.xml")
LIBVIRT_DEFAULT_PACKAGES = frozenset({"libvirt-daemon-config-network", "libvirt-daemon-system"})
#: Seconds one apt-get may take (a cold install of everything is a few minutes), and one
#: systemctl/virsh/dpkg call.
APT_TIMEOUT = 3600.0
CALL_TIMEOUT = 120.0

say = teller("hostdeps")


class HostDepsError(RuntimeError):
    """The list or an install step failed; the message says which and what to do."""


# --- the list ---------------------------------------------------------------------------------


def _parse(text: str) -> tuple[dict[str, tuple[str, ...]], dict[str, str]]:
    """The list's sections (``{name: packages}``) and its tools (``{tool: package}``)."""
    sections: dict[str, list[str]] = {}
    tools: dict[str, str] = {}
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
        package, colon, names = (part.strip() for part in line.partition(":"))
        if current is None or " " in package or (colon and not names):
            raise HostDepsError(
                f"line {number}: {line!r}: one package a line (`package: tool ...` with its "
                "tools), under a [section]"
            )
        if package in seen:
            raise HostDepsError(f"line {number}: {package} is listed twice")
        seen.add(package)
        sections[current].append(package)
        for tool in names.split():
            if tool in tools:
                raise HostDepsError(f"line {number}: {tool} is {tools[tool]}'s already")
            tools[tool] = package
    return {name: tuple(sections.get(name, ())) for name in SECTIONS}, tools


def parse_list(text: str) -> dict[str, tuple[str, ...]]:
    """The sections of the package list: ``{name: packages}``. A line ``[name]`` starts a section;
    ``#`` starts a comment; every package sits in exactly one known section."""
    return _parse(text)[0]


def parse_tools(text: str) -> dict[str, str]:
    """Which package brings each tool: ``{tool: package}`` from the ``package: tool ...`` lines;
    a tool belongs to one package."""
    return _parse(text)[1]


def read_list(path: Path = PACKAGE_LIST) -> dict[str, tuple[str, ...]]:
    """The sections of ``scripts/apt-packages.txt``."""
    return parse_list(path.read_text(encoding="utf-8"))


def selected(sections: Mapping[str, Sequence[str]], choice: str) -> tuple[str, ...]:
    """The packages of a choice (``host`` or ``tests``), in the list's order."""
    if choice not in CHOICES:
        raise HostDepsError(f"unknown choice {choice!r}: one of {', '.join(CHOICES)}")
    return tuple(pkg for name in CHOICES[choice] for pkg in sections[name])


# --- which package brings a tool -------------------------------------------------------------


@functools.cache
def tool_packages(path: Path = PACKAGE_LIST) -> dict[str, str]:
    """Which Debian package brings each tool the code checks for (``scripts/apt-packages.txt``)."""
    return parse_tools(path.read_text(encoding="utf-8"))


def package_of(tool: str) -> str:
    """The package that brings ``tool``: a command, or an absolute path, found by itself or else
    by its file name (``/usr/sbin/haproxy`` is haproxy's)."""
    table = tool_packages()
    for name in (tool, os.path.basename(tool)):
        if name in table:
            return table[name]
    raise KeyError(f"{tool}: no `package: {tool}` line in {PACKAGE_LIST}")


def have(tool: str, path: str | None = None) -> bool:
    """An absolute path exists; a command is on ``path`` (default: ``$PATH``)."""
    if os.path.isabs(tool):
        return os.path.exists(tool)
    return shutil.which(tool, path=path) is not None


def missing_message(tools: Iterable[str]) -> str:
    """What to tell a user who lacks ``tools``: each of them, then the install of their packages."""
    names = list(tools)
    packages = dict.fromkeys(package_of(tool) for tool in names)
    return (
        f"missing {', '.join(names)}: apt-get install --no-install-recommends {' '.join(packages)}"
    )


def require_tools(
    tools: Iterable[str], error: Callable[[str], BaseException], *, path: str | None = None
) -> None:
    """Every tool there (:func:`have`), else ``error`` with :func:`missing_message` of all that
    are not: one answer names everything to install."""
    absent = [tool for tool in tools if not have(tool, path)]
    if absent:
        raise error(missing_message(absent))


def require_root(why: str, error: Callable[[str], BaseException]) -> None:
    """Running as root, else ``error`` saying so and ``why`` root is needed."""
    if os.geteuid() != 0:
        raise error(f"run as root: {why}")


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


def _names_in(paths: Iterable[str], folders: Sequence[str]) -> list[str]:
    """The file names right in one of ``folders`` (not in a folder below)."""
    names = set()
    for path in paths:
        for folder in folders:
            name = path.removeprefix(folder)
            if name != path and name and "/" not in name:
                names.add(name)
    return sorted(names)


def generator_names(paths: Iterable[str]) -> list[str]:
    """The systemd generators among a package's files (``dpkg -L``)."""
    return _names_in(paths, GENERATOR_DIRS)


def shipped_wants(paths: Iterable[str]) -> list[str]:
    """Units a package links into a target itself (``<target>.wants/<unit>`` among its files,
    trixie's systemd-container: sockets.target.wants/systemd-importd.socket): they start at
    every boot, and `disable` cannot undo a link the package owns, only `mask`."""
    found = set()
    for path in paths:
        for folder in UNIT_DIRS:
            rest = path.removeprefix(folder)
            target, _, unit = rest.partition("/")
            if (
                rest != path
                and target.endswith((".wants", ".requires"))
                and "/" not in unit
                and unit.endswith(UNIT_SUFFIXES)
                and "@" not in unit  # an instance of a template: not a unit file of its own
            ):
                found.add(unit)
    return sorted(found)


def user_unit_names(paths: Iterable[str]) -> list[str]:
    """The user units among a package's files."""
    return [name for name in _names_in(paths, USER_UNIT_DIRS) if name.endswith(UNIT_SUFFIXES)]


def unit_names(paths: Iterable[str]) -> list[str]:
    """The systemd units among a package's files (``dpkg -L``): those right in a unit folder,
    not drop-ins or ``.wants`` links."""
    return [name for name in _names_in(paths, UNIT_DIRS) if name.endswith(UNIT_SUFFIXES)]


def package_files(package: str) -> list[str]:
    """The files of an installed package."""
    return _call(["dpkg-query", "-L", package]).stdout.splitlines()


# --- policy-rc.d ------------------------------------------------------------------------------


def _ours(path: Path) -> bool:
    try:
        return POLICY_MARK in path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False


def recover_policy(path: Path | None = None) -> None:
    """Undo what a run that was killed outright (no chance to clean up) left: our policy-rc.d
    goes, the machine's own comes back."""
    path = path or POLICY_RC_D
    saved = path.with_name(path.name + SAVED_SUFFIX)
    if saved.exists() or saved.is_symlink():
        if _ours(path) or not (path.exists() or path.is_symlink()):
            os.replace(saved, path)
            say(f"put back this machine's {path}, set aside by an interrupted run")
        else:  # theirs never left its place: the set-aside link is a leftover
            saved.unlink()
    elif _ours(path):
        path.unlink()
        say(f"removed the temporary {path} an interrupted run left")


@contextlib.contextmanager
def services_forbidden(path: Path | None = None) -> Iterator[None]:
    """Within the block, invoke-rc.d and deb-systemd-invoke start nothing (policy-rc.d exits 101).

    A policy-rc.d the machine has is set aside (a hard link, so at no moment is there none)
    and put back at the end; without one, ours is removed. Also on an exception, Ctrl-C, TERM or
    HUP. Only a kill -9 can leave ours: the next run's :func:`recover_policy` undoes that.
    """
    path = path or POLICY_RC_D
    recover_policy(path)
    saved = path.with_name(path.name + SAVED_SUFFIX)
    had_own = path.exists() or path.is_symlink()
    path.parent.mkdir(parents=True, exist_ok=True)
    with signals_raise():
        fd, tmp = tempfile.mkstemp(prefix=".policy-rc.d.", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(POLICY_TEXT)
            # Executable, as invoke-rc.d runs it; root-owned in a root-only folder.
            os.chmod(tmp, 0o755)  # noqa: S103
            if had_own:
                os.link(path, saved, follow_symlinks=False)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            with contextlib.suppress(OSError):
                if had_own and saved.exists() and not _ours(path):
                    saved.unlink()  # ours never went in: theirs is still in place
            raise
        try:
            yield
        finally:
            if had_own:
                os.replace(saved, path)
            elif _ours(path):
                path.unlink()


# --- quieting what was installed --------------------------------------------------------------


@dataclass(frozen=True)
class Unit:
    """One unit of a newly installed package, as systemctl saw it after the install."""

    name: str
    package: str
    enabled: str  # `systemctl is-enabled`: enabled, static, disabled, ...
    active: str  # `systemctl is-active` on a running systemd, else "unknown"
    #: The package links it into a target itself (:func:`shipped_wants`).
    shipped_wanted: bool = False
    #: A user unit: enabled for every user's session (`systemctl --global`).
    user: bool = False

    @property
    def scope(self) -> list[str]:
        """systemctl's flag for the unit's manager."""
        return ["--global"] if self.user else []


@dataclass
class UnitPlan:
    """What to do with the units of the newly installed packages."""

    disable: list[Unit] = field(default_factory=list)
    mask: list[Unit] = field(default_factory=list)
    stop: list[Unit] = field(default_factory=list)
    keep: list[Unit] = field(default_factory=list)  # expected: enabled, started if installed now


def unit_plan(units: Iterable[Unit], expected: Mapping[str, str] = EXPECTED_UNITS) -> UnitPlan:
    """Disable every enabled unit, mask every unit its package links into a target, stop every
    running one; but for the expected units."""
    result = UnitPlan()
    for unit in sorted(units, key=lambda u: (u.user, u.name)):
        if unit.name in expected:
            if unit.enabled in ENABLED_STATES:
                result.keep.append(unit)
            continue
        if unit.enabled in ENABLED_STATES:
            result.disable.append(unit)
        elif unit.shipped_wanted and unit.enabled != "masked":
            result.mask.append(unit)
        if unit.active in ACTIVE_STATES:
            result.stop.append(unit)
    return result


def booted_with_systemd() -> bool:
    """systemd runs this machine (sd_booted(3)'s test); else systemctl works on files only."""
    return Path("/run/systemd/system").is_dir()


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


def _state(verb: str, unit: str, scope: Sequence[str] = ()) -> str:
    # is-enabled/is-active print the state and exit non-zero for most states: read the word.
    done = _call(["systemctl", *scope, verb, unit], check=False)
    return (done.stdout.strip().splitlines() or ["unknown"])[0]


def look_at(files: Mapping[str, Sequence[str]], *, booted: bool) -> list[Unit]:
    """Every unit of the packages (``{package: its files}``), with its states."""
    units = []
    for package in sorted(files):
        wanted = set(shipped_wants(files[package]))
        for name in unit_names(files[package]):
            active = _state("is-active", name) if booted else "unknown"
            enabled = _state("is-enabled", name)
            units.append(Unit(name, package, enabled, active, shipped_wanted=name in wanted))
        for name in user_unit_names(files[package]):
            enabled = _state("is-enabled", name, ["--global"])
            units.append(Unit(name, package, enabled, "unknown", user=True))
    return units


def runtime_enabled() -> set[str]:
    """Units enabled in /run only (by a generator, or `enable --runtime`): gone at reboot."""
    done = _call(
        ["systemctl", "list-unit-files", "--no-legend", "--no-pager", "--state=enabled-runtime"],
        check=False,
    )
    return {line.split()[0] for line in done.stdout.splitlines() if line.split()}


def quiet(
    new: set[str], *, booted: bool | None = None, runtime_before: set[str] | None = None
) -> UnitPlan:
    """Disable, stop, keep: :func:`plan` carried out on the units of the packages in ``new``
    (those this run installed); their generators masked; then cloud-init and libvirt's default
    network (module doc). ``runtime_before``: :func:`runtime_enabled` before the install, so
    that what a new generator enabled in /run this boot is disabled too."""
    booted = booted_with_systemd() if booted is None else booted
    if shutil.which("systemctl") is None:
        say("no systemctl here: no unit to disable")
        return UnitPlan()
    files = {pkg: package_files(pkg) for pkg in new if pkg not in SYSTEM_PACKAGES}
    todo = unit_plan(look_at(files, booted=booted))
    for unit in todo.stop:
        say(f"stopping {unit.name} ({unit.package}): started by its install, not the lab's")
        _call(["systemctl", "stop", unit.name], check=False)
    for unit in todo.disable:
        whose = "every user's session" if unit.user else "this machine"
        say(f"disabling {unit.name} ({unit.package}) for {whose}: not the lab's to run here")
        _call(["systemctl", *unit.scope, "disable", "--quiet", unit.name])
    for unit in todo.mask:
        say(f"masking {unit.name} ({unit.package}): its package starts it at every boot")
        _call(["systemctl", "mask", "--quiet", unit.name])
    # `disable` also disables a unit's Also= units (libvirtd.service takes its sockets along):
    # the expected ones come back.
    for unit in todo.keep:
        if _state("is-enabled", unit.name, unit.scope) not in ENABLED_STATES:
            _call(["systemctl", *unit.scope, "enable", "--quiet", unit.name])
    masked = False
    for package, paths in sorted(files.items()):
        for name in generator_names(paths):
            if name not in KEPT_GENERATORS:
                masked = mask_generator(name, package) or masked
    if CLOUD_INIT_DISABLED.parent.is_dir() and "cloud-init" in new:
        disable_cloud_init()
    if new & LIBVIRT_DEFAULT_PACKAGES:
        no_default_network(booted=booted)
    if booted:
        if masked:  # generators run again, without the masked ones
            _call(["systemctl", "daemon-reload"])
        for name in sorted(runtime_enabled() - (runtime_before or set()) - set(EXPECTED_UNITS)):
            say(f"disabling {name} for this boot: a new generator enabled it in /run")
            _call(["systemctl", "disable", "--runtime", "--quiet", name], check=False)
        for unit in todo.keep:
            if not unit.user:
                say(f"starting {unit.name}: {EXPECTED_UNITS[unit.name]}")
                _call(["systemctl", "start", unit.name], check=False)
    return todo


def mask_generator(name: str, package: str, masks: Path | None = None) -> bool:
    """Mask a generator (a link to /dev/null of its name); True when this masked it now."""
    masks = masks or GENERATOR_MASKS
    link = masks / name
    if link.exists() or link.is_symlink():
        return False  # masked or overridden by the machine's admin: theirs
    masks.mkdir(parents=True, exist_ok=True)
    link.symlink_to("/dev/null")
    say(f"masking the generator {name} ({package}): it would run at every boot here")
    return True


def disable_cloud_init(marker: Path | None = None) -> None:
    """The marker file cloud-init's generator honours (kept if the machine had one)."""
    marker = marker or CLOUD_INIT_DISABLED
    if marker.exists():
        return
    marker.write_text(CLOUD_INIT_TEXT, encoding="utf-8")
    say(f"cloud-init will not run at this machine's boot: {marker}")


def no_default_network(*, booted: bool, link: Path | None = None) -> None:
    """libvirt's `default` network neither autostarted nor running, when this run brought it.

    Before any libvirtd has run, its autostart is the link alone. A libvirtd already running
    (an install on a running systemd whose policy let it start) is asked to do it itself."""
    link = link or LIBVIRT_DEFAULT_AUTOSTART
    running = booted and _state("is-active", "libvirtd.service") in ACTIVE_STATES
    if running:
        uri = ["virsh", "-q", "-c", "qemu:///system"]
        _call([*uri, "net-autostart", "default", "--disable"], check=False)
        _call([*uri, "net-destroy", "default"], check=False)
    if link.is_symlink() or link.exists():
        link.unlink()
    say("libvirt's default network (virbr0, dnsmasq on 192.168.122.1) will not autostart")


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
    """Install what a choice lacks, quietly (module doc); 0 when everything is there."""
    wanted = selected(read_list(), choice)
    before = installed_packages()
    lacking = [pkg for pkg in wanted if pkg not in before]
    if not lacking:
        say(f"Debian packages present ({len(wanted)})")
        return 0
    require_root("installing Debian packages needs it", HostDepsError)
    say(f"installing Debian packages: {' '.join(lacking)}")
    runtime_before = runtime_enabled() if booted_with_systemd() else set()
    with services_forbidden():
        try:
            apt_get("update", "-q")
            apt_get("install", "-y", "-q", "--no-install-recommends", *lacking)
        finally:
            # Also after a failed install: what it did install must not serve or start at boot.
            new = installed_packages() - before
            if new:
                quiet(new, runtime_before=runtime_before)
    return 0


def main(argv: Sequence[str] | None = None, *, out: Callable[[str], None] = print) -> int:
    """``python3 -m halab.plumbing.hostdeps missing|install|list host|tests``."""
    parser = argparse.ArgumentParser(prog="python3 -m halab.plumbing.hostdeps", description=__doc__)
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
