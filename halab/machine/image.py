"""The project's image of the lab VMs: Debian (bookworm or trixie; by default the release this
machine runs, so the tools that validated the lab's files are the versions its VMs run) from
Debian's packages only, built once per release and cached
(``python -m halab image [--release R] [--print-paths|--force]``).

It owns the folder ``<cache>/image`` (:func:`halab.plumbing.roots.cache_root`): one folder per
build, named by its key, with ``disk.qcow2``, ``vmlinuz``, ``initrd.img``, ``packages.tsv`` (every
package and its version), ``build-info`` and ``.complete``; while a build runs, its lock
``.lock-<key>`` and its work folder ``.build-<key>.*``. Older builds of the same release go when a
new one is complete (``HA_WEB_LAB_IMAGE_KEEP_OLD=1`` keeps them).

- no option: build unless cached, then print the three paths;
- ``--print-paths``: print the paths of the cached image (exit 1 when it is not built);
- ``--force``: build even when cached.

Output (stdout, one a line, in this order): disk.qcow2, vmlinuz, initrd.img. The key hashes the
image's version, the suite, the disk size (``HA_WEB_LAB_IMAGE_SIZE``, default 4G) and the
package list, so a rerun with nothing changed is instant. Progress goes to stderr.

In the image: cloud-init with the NoCloud datasource and the ENI renderer (ifupdown,
/etc/network/interfaces sources interfaces.d), ssh enabled without host keys (cloud-init makes
them per VM), nginx/haproxy/keepalived disabled (the first-boot setup script enables them),
C.UTF-8 as the locale, apt timers and e2scrub off, ed25519/ECDSA host keys only (RSA keygen
takes seconds under TCG), no grub-dpkg, sshd without password logins from its first start.
Kernel modules for graphics, media, sound, wireless, physical NICs and InfiniBand are left out,
nested KVM and the PC speaker are not loaded: the image is for virtio guests only. It boots by
its own kernel (cmdline: root=/dev/vda rw console=ttyS0 net.ifnames=0); the root filesystem is
the whole /dev/vda (no partition table).

Needs (Debian packages): mmdebstrap, e2fsprogs, qemu-utils, and a Debian mirror: the one this
machine's apt uses for the release and its security suite (:mod:`halab.machine.debian`), or
``HA_WEB_LAB_DEBIAN_MIRROR`` and ``HA_WEB_LAB_DEBIAN_SECURITY_MIRROR``. Builds as root
(mmdebstrap's root mode makes a tree with the right owners); a cached image needs no root.
Standard library only, like :mod:`halab.model.roles` that it reads.
"""

# How: mmdebstrap (minbase + the packages below) into a folder, a few files written into it,
# `mkfs.ext4 -d` into a sparse raw file (no loop mount), `qemu-img convert -O qcow2`; the kernel
# and initrd are copied out for direct kernel boot.
#
# Every long step is a child this process waits for with a bound; a Ctrl-C, a TERM or a HUP
# (halab.plumbing.procs.signals_raise) ends it by PID and start time, unmounts whatever it left
# mounted in the work folder, and removes that folder, never through a mount.

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from halab.machine import debian
from halab.machine.freshroot import FreshError, mirror, mounted_under
from halab.model.roles import all_packages
from halab.plumbing import hostdeps, procs
from halab.plumbing.locks import flock_within
from halab.plumbing.roots import cache_root
from halab.plumbing.teller import teller

# Bump when anything this module puts into the image changes: it is part of the cache key.
# net-tools: cloud-init's ENI renderer turns network-config routes into `route add ...`.
# 4: PasswordAuthentication no from the start (no sshd restart by cloud-init), no nested KVM
# or PC speaker modules.
VERSION = 4
#: The system the VMs boot into; the roles' own packages come from halab/model/roles.py, the one
# list.
SYSTEM_PACKAGES = (
    "linux-image-amd64", "initramfs-tools", "udev", "dbus", "kmod", "systemd-sysv", "procps",
    "e2fsprogs", "cloud-init", "ifupdown", "iproute2", "net-tools", "netbase", "iputils-ping",
    "openssh-server", "openssh-sftp-server", "sudo", "curl", "ca-certificates",
)  # fmt: skip
DEFAULT_SIZE = "4G"
#: Kernel modules a virtio guest never loads (about half of linux-image's 400 MB): graphics,
#: media, sound, wireless, physical NICs (the lab's NICs are virtio-net), InfiniBand, sensors.
MODULE_EXCLUDES = (
    "drivers/gpu", "drivers/media", "drivers/net/wireless", "drivers/net/ethernet",
    "drivers/infiniband", "drivers/iio", "drivers/staging", "drivers/isdn", "drivers/bluetooth",
    "net/wireless", "net/bluetooth", "sound",
)  # fmt: skip
#: The commands a build runs (their packages: scripts/apt-packages.txt).
TOOLS = ("mmdebstrap", "mkfs.ext4", "e2fsck", "qemu-img", "systemctl", "dpkg-query")
#: Seconds to wait for another build of the same key to let go of its lock.
LOCK_TIMEOUT = 1800.0
#: Seconds any one step (mmdebstrap, mkfs.ext4, e2fsck, qemu-img) may take; mmdebstrap took
#: about 100 s here with a near mirror.
STEP_TIMEOUT = 1800.0
#: Seconds a step gets after SIGTERM (mmdebstrap unmounts and cleans up then), and after SIGKILL.
STOP_TIMEOUT = 120.0
KILL_TIMEOUT = 10.0
#: Units that would run on every lab VM for nothing (or slow its first minutes), disabled when
#: their package put them there.
IDLE_UNITS = (
    "apt-daily.timer", "apt-daily-upgrade.timer", "e2scrub_all.timer", "e2scrub_reap.service",
    "fstrim.timer", "man-db.timer",
)  # fmt: skip
#: The role services start only once the setup script has configured them.
ROLE_SERVICES = ("nginx.service", "haproxy.service", "keepalived.service")


class ImageError(RuntimeError):
    """The image cannot be built or found; the message says what to do."""


#: Progress on stderr (stdout carries only the paths).
say = teller("image")


# --- what goes into the image ---------------------------------------------------------------


@dataclass(frozen=True)
class ImageFile:
    """A file written into the tree (replacing the package's, if any), at ``path`` under it."""

    path: str
    text: str
    mode: int | None = None  # None: a new file gets the umask's mode, an old one keeps its own


#: Written into the tree after mmdebstrap, in this order.
FILES = (
    ImageFile("etc/hostname", "debian\n"),
    ImageFile("etc/hosts", "127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n"),
    ImageFile("etc/resolv.conf", ""),
    ImageFile(
        "etc/fstab",
        "# ha-web-lab image: the root filesystem is the whole virtio disk\n"
        "/dev/vda\t/\text4\trw,errors=remount-ro\t0\t1\n",
    ),
    ImageFile(
        "etc/network/interfaces",
        """\
# ha-web-lab image: cloud-init (ENI renderer) writes interfaces.d/50-cloud-init.
source /etc/network/interfaces.d/*

auto lo
iface lo inet loopback
""",
    ),
    ImageFile(
        "etc/cloud/cloud.cfg.d/90_ha-web-lab.cfg",
        """\
# ha-web-lab image: seeded by a NoCloud ISO (volume label cidata) only; network config is
# rendered for ifupdown; C.UTF-8 needs no locales package.
datasource_list: [ NoCloud, None ]
locale: C.UTF-8
manage_etc_hosts: true
# Under TCG an RSA (and DSA) host key takes seconds to make: ed25519 and ECDSA only.
ssh_genkeytypes: [ ed25519, ecdsa ]
ssh:
  emit_keys_to_console: false
# No GRUB in this image (direct kernel boot).
grub_dpkg:
  enabled: false
system_info:
  network:
    renderers: [ eni ]
""",
    ),
    ImageFile("etc/default/locale", "LANG=C.UTF-8\n"),
    # Keys only from the first sshd start. The file is the one cloud-init's set-passwords module
    # edits for `ssh_pwauth: false`: finding the setting already there, it does not restart
    # sshd (a restart took ~2 s of an emulated guest's first boot, mid-way through the readiness
    # gate's SSH session). The role's sshd drop-in (60-ha-web-lab.conf) says the same later.
    ImageFile("etc/ssh/sshd_config.d/50-cloud-init.conf", "PasswordAuthentication no\n", 0o600),
    # Modules for hardware a lab guest has no use for, which udev would load at every boot while
    # cloud-init starts: nested KVM (QEMU's default CPU model advertises SVM), the PC speaker.
    ImageFile(
        "etc/modprobe.d/ha-web-lab.conf",
        """\
# ha-web-lab image: not loaded at boot (no nested VMs, no speaker in a lab guest).
blacklist kvm_amd
blacklist kvm_intel
blacklist kvm
blacklist ccp
blacklist pcspkr
""",
    ),
    # Per-VM identity: made on first boot.
    ImageFile("etc/machine-id", ""),
)
#: Made on first boot per VM (host keys by cloud-init, the machine id by systemd), or not
#: wanted (nginx's default site): removed from the tree.
REMOVED = ("etc/ssh/ssh_host_*", "var/lib/dbus/machine-id", "etc/nginx/sites-enabled/default")


def image_packages() -> tuple[str, ...]:
    """Every package the image installs: the system's, then every role's."""
    roles = all_packages()
    if not roles:
        raise ImageError("halab.model.roles lists no package")
    return (*SYSTEM_PACKAGES, *roles)


def disk_size(env: Mapping[str, str] | None = None) -> str:
    """``HA_WEB_LAB_IMAGE_SIZE`` (as truncate(1) reads it: 4G, 4096M, ...), default 4G."""
    size = (os.environ if env is None else env).get("HA_WEB_LAB_IMAGE_SIZE") or DEFAULT_SIZE
    size_bytes(size)
    return size


def size_bytes(size: str) -> int:
    """A size as truncate(1) reads it: digits, then K, M, G, T, P or E for powers of 1024
    (``KiB`` too), ``KB``... for powers of 1000; no unit is bytes."""
    found = re.fullmatch(r"([0-9]+)(?:([KMGTPE])(iB|B)?)?", size, flags=re.IGNORECASE)
    if not found:
        raise ImageError(
            f"HA_WEB_LAB_IMAGE_SIZE={size!r}: a size like 4G or 4096M (truncate's units)"
        )
    number, unit, suffix = found.groups()
    base = 1000 if suffix and suffix.upper() == "B" else 1024
    power = " KMGTPE".index(unit.upper()) if unit else 0
    return int(number) * int(base**power)


def cache_key(version: int, suite: str, size: str, names: Sequence[str]) -> str:
    """16 hex digits of the SHA-256 of the version, suite, size and sorted package names,
    byte for byte what scripts/build-image.sh hashed, so images it built stay cached."""
    text = f"version={version}\nsuite={suite}\nsize={size}\n" + "".join(
        f"{name}\n" for name in sorted(set(names))
    )
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def mmdebstrap_argv(
    root: Path, names: Sequence[str], main_mirror: str, security_mirror: str, suite: str
) -> list[str]:
    """The mmdebstrap command: minbase, the packages, no docs, man pages, locales or unused
    kernel modules."""
    excludes = [f"--dpkgopt=path-exclude=/lib/modules/*/kernel/{d}/*" for d in MODULE_EXCLUDES]
    return [
        "mmdebstrap", "--mode=root", "--variant=minbase", "--components=main",
        f"--include={','.join(names)}",
        "--dpkgopt=path-exclude=/usr/share/man/*",
        "--dpkgopt=path-exclude=/usr/share/doc/*",
        "--dpkgopt=path-include=/usr/share/doc/*/copyright",
        "--dpkgopt=path-exclude=/usr/share/locale/*",
        "--dpkgopt=path-include=/usr/share/locale/locale.alias",
        "--dpkgopt=path-exclude=/usr/share/info/*",
        *excludes,
        suite, str(root),
        f"deb {main_mirror} {suite} main",
        f"deb {main_mirror} {suite}-updates main",
        f"deb {security_mirror} {suite}-security main",
    ]  # fmt: skip


def write_image_files(root: Path) -> None:
    """:data:`FILES` into the tree (``etc/network/interfaces.d`` made for the first), then
    :data:`REMOVED` out of it."""
    (root / "etc/network/interfaces.d").mkdir(parents=True, exist_ok=True)
    for item in FILES:
        target = root / item.path
        if target.is_symlink():  # never write through a link into the machine's own files
            target.unlink()
        target.write_text(item.text, encoding="utf-8")
        if item.mode is not None:
            target.chmod(item.mode)
    for pattern in REMOVED:
        # Not glob for a plain path: it may be a link (absolute, to a file of this machine's).
        for path in root.glob(pattern) if "*" in pattern else [root / pattern]:
            path.unlink(missing_ok=True)


def systemctl_commands(root: Path) -> list[list[str]]:
    """The unit changes: ssh on; the role services off until the setup script has configured
    them; multi-user as the target; the idle units of :data:`IDLE_UNITS` that exist, off."""
    systemctl = ["systemctl", f"--root={root}"]
    idle = [unit for unit in IDLE_UNITS if (root / "lib/systemd/system" / unit).exists()]
    return [
        [*systemctl, "enable", "ssh.service"],
        [*systemctl, "disable", *ROLE_SERVICES],
        [*systemctl, "set-default", "multi-user.target"],
        *([*systemctl, "disable", unit] for unit in idle),
    ]


def version_key(name: str) -> tuple[Any, ...]:
    """Sort key that orders digit runs as numbers (``vmlinuz-6.1.0-10`` after ``-9``), like
    ``sort -V`` for kernel file names."""
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name))


def newest(boot: Path, prefix: str) -> Path:
    """The newest ``<prefix>-*`` file in ``boot`` (the kernel or initrd to boot)."""
    found = sorted(boot.glob(f"{prefix}-*"), key=lambda p: version_key(p.name))
    if not found:
        raise ImageError(f"no {prefix} in {boot}")
    return found[-1]


def built_suite(folder: Path) -> str | None:
    """The release a finished build was of, from its ``build-info`` (None when unreadable)."""
    try:
        lines = (folder / "build-info").read_text(encoding="utf-8").splitlines()
    except OSError:
        return None
    return next((line.partition("=")[2] for line in lines if line.startswith("suite=")), None)


def build_info(img: Image, *, kernel: str, built: str, mmdebstrap_s: int, total_s: int) -> str:
    """The ``build-info`` file: what was built, from what, and how long it took (the names
    are scripts/build-image.sh's)."""
    return "".join(
        f"{name}={value}\n"
        for name, value in (
            ("key", img.key), ("script_version", VERSION), ("suite", img.suite), ("size", img.size),
            ("kernel", kernel), ("built", built), ("mmdebstrap_seconds", mmdebstrap_s),
            ("total_seconds", total_s),
        )
    )  # fmt: skip


# --- the cache ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Image:
    """One image in the cache: its key and its folder."""

    cache: Path  # <cache root>/image
    key: str
    size: str
    packages: tuple[str, ...]
    #: The Debian release (:data:`halab.machine.debian.RELEASES`).
    suite: str

    @property
    def out(self) -> Path:
        """The image's folder."""
        return self.cache / self.key

    @property
    def paths(self) -> tuple[Path, Path, Path]:
        """Disk, kernel, initrd: what the lab boots."""
        return self.out / "disk.qcow2", self.out / "vmlinuz", self.out / "initrd.img"

    @property
    def lock(self) -> Path:
        """Held by a build of this key."""
        return self.cache / f".lock-{self.key}"

    def built(self) -> bool:
        """The three files are there and not empty, and the build said it was complete."""
        return (self.out / ".complete").is_file() and all(
            path.is_file() and path.stat().st_size > 0 for path in self.paths
        )


def image(
    cache: Path | None = None, env: Mapping[str, str] | None = None, release: str | None = None
) -> Image:
    """The image of this checkout's inputs in ``cache`` (default ``<cache root>/image``), of
    ``release`` (default: this machine's, :func:`halab.machine.debian.host_release`)."""
    names = image_packages()
    size = disk_size(env)
    suite = release or debian.host_release()
    if suite not in debian.RELEASES:
        raise ImageError(f"no image for Debian {suite!r}: one of {', '.join(debian.RELEASES)}")
    key = cache_key(VERSION, suite, size, names)
    return Image(cache or cache_root() / "image", key, size, names, suite)


def cached(img: Image | None = None) -> tuple[Path, Path, Path]:
    """The paths of the built image, or :class:`ImageError` when it is not built."""
    img = img or image()
    if not img.built():
        raise ImageError(f"no image for key {img.key} in {img.cache}: run python -m halab image")
    return img.paths


def ensure(img: Image | None = None, *, force: bool = False) -> tuple[Path, Path, Path]:
    """The image's paths; built first (as root) unless cached, or always with ``force``."""
    img = img or image()
    if not force and img.built():
        say(f"cached: {img.out}")
        return img.paths
    check_build_tools()
    img.cache.mkdir(parents=True, exist_ok=True)
    with procs.signals_raise(), img.lock.open("w") as lock:
        if not flock_within(lock, LOCK_TIMEOUT):
            raise ImageError(f"another build of {img.key} holds {img.lock}")
        if not force and img.built():  # built by the holder of the lock meanwhile
            say(f"cached: {img.out}")
            return img.paths
        build(img)
        if os.environ.get("HA_WEB_LAB_IMAGE_KEEP_OLD", "0") != "1":
            remove_older(img)
    return img.paths


def check_build_tools() -> None:
    """Root, and each command a build runs, its package named when missing."""
    hostdeps.require_root("mmdebstrap's root mode keeps file owners", ImageError)
    hostdeps.require_tools(TOOLS, ImageError)


def remove_older(img: Image) -> None:
    """Older builds of the same release (another version or package list) are of no more use:
    the lab copies the image into a libvirt pool. Another release's image stays."""
    for old in sorted(img.cache.iterdir()):
        if old.name.startswith(".") or old.is_symlink() or old == img.out:
            continue
        if not (old / ".complete").is_file() or built_suite(old) != img.suite:
            continue
        say(f"removing the older image {old.name}")
        try:
            remove_tree(old)
        except ImageError as exc:  # the new image is built: say so, and go on
            say(str(exc))
            continue
        (img.cache / f".lock-{old.name}").unlink(missing_ok=True)


# --- the build ------------------------------------------------------------------------------


def build(img: Image) -> None:
    """mmdebstrap into a work folder, the files, ext4, qcow2; the folder becomes the image's.
    A failure or an interruption leaves nothing: no process, no mount, no work folder."""
    try:
        main_mirror, security_mirror = mirror(img.suite), mirror(f"{img.suite}-security")
    except FreshError as exc:
        raise ImageError(str(exc)) from None
    work = Path(tempfile.mkdtemp(prefix=f".build-{img.key}.", dir=img.cache))
    try:
        _build_in(img, work, main_mirror, security_mirror)
    except BaseException:
        try:
            clean_work(work)
        except ImageError as exc:  # said; the build's own error is the one that goes on
            say(str(exc))
        raise


def _build_in(img: Image, work: Path, main_mirror: str, security_mirror: str) -> None:
    t0 = time.monotonic()
    root = work / "root"
    root.mkdir()
    say(f"mmdebstrap {img.suite} ({len(img.packages)} packages) from {main_mirror} into {root}")
    run_step(mmdebstrap_argv(root, img.packages, main_mirror, security_mirror, img.suite))
    t_mmdebstrap = round(time.monotonic() - t0)

    say("configuring the tree")
    write_image_files(root)
    for argv in systemctl_commands(root):
        procs.run(argv, timeout=60)
    kernel, initrd = newest(root / "boot", "vmlinuz"), newest(root / "boot", "initrd.img")
    shutil.copy(kernel, work / "vmlinuz")
    shutil.copy(initrd, work / "initrd.img")
    with (work / "packages.tsv").open("wb") as out:
        run_step(
            ["dpkg-query", f"--admindir={root / 'var/lib/dpkg'}", "-W",
             r"-f=${Package}\t${Version}\n"],
            stdout=out,
        )  # fmt: skip

    say(f"ext4 ({img.size}, sparse) from the tree, then qcow2")
    raw = work / "root.raw"
    with raw.open("wb") as sparse:
        sparse.truncate(size_bytes(img.size))
    run_step(["mkfs.ext4", "-q", "-F", "-L", "hwl-root", "-E", "root_owner=0:0", "-d", str(root),
              str(raw)])  # fmt: skip
    run_step(["e2fsck", "-fn", str(raw)], stdout=subprocess.DEVNULL)
    run_step(
        ["qemu-img", "convert", "-f", "raw", "-O", "qcow2", str(raw), str(work / "disk.qcow2")]
    )
    raw.unlink()
    remove_tree(root)

    total = round(time.monotonic() - t0)
    built = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    (work / "build-info").write_text(
        build_info(img, kernel=kernel.name, built=built, mmdebstrap_s=t_mmdebstrap, total_s=total)
    )
    (work / ".complete").touch()
    if img.out.exists():
        remove_tree(img.out)
    work.rename(img.out)
    blocks = (img.out / "disk.qcow2").stat().st_blocks * 512
    say(f"built in {total} s (mmdebstrap {t_mmdebstrap} s): {blocks / 2**20:.0f} MiB qcow2")


def run_step(argv: Sequence[str], *, stdout: IO[Any] | int | None = None) -> None:
    """Run a long step to its end within :data:`STEP_TIMEOUT` s (its output to stderr unless
    ``stdout`` says otherwise); if it fails, times out or this process is interrupted, it is
    ended first, by PID and start time, then the error goes on."""
    proc = subprocess.Popen(
        list(argv), stdin=subprocess.DEVNULL, stdout=2 if stdout is None else stdout
    )
    start = procs.starttime(proc.pid)
    try:
        rc = proc.wait(timeout=STEP_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise ImageError(f"{argv[0]} did not finish within {STEP_TIMEOUT:.0f} s") from None
    finally:
        if proc.returncode is None:
            stop_step(proc.pid, start)
    if rc != 0:
        raise ImageError(f"{argv[0]} failed (exit {rc})")


def stop_step(pid: int, start: int) -> None:
    """TERM a step (mmdebstrap then unmounts and removes what it made), wait, KILL it if it
    must; then end what is left of its children (apt, dpkg), found before it went."""
    children = procs.children_of([pid])
    left = procs.end([(pid, start)], STOP_TIMEOUT, KILL_TIMEOUT, say)
    left += procs.end(list(children.items()), KILL_TIMEOUT, KILL_TIMEOUT, say)
    for gone in left:
        say(f"PID {gone} did not end")


def clean_work(work: Path) -> None:
    """A failed build's work folder: anything still mounted in it unmounted (deepest first),
    then removed; kept, and said, if a mount stays."""
    for point in sorted(mounted_under(work), key=len, reverse=True):
        say(f"unmounting {point}, left by the build")
        for argv in (["umount", point], ["umount", "--lazy", point]):
            try:
                procs.run(argv, timeout=60)
            except (RuntimeError, subprocess.SubprocessError) as exc:
                say(str(exc))
            else:
                break
    remove_tree(work)


def remove_tree(folder: Path) -> None:
    """Remove a folder of ours, never through a mount into the machine's own files."""
    leftover = mounted_under(folder)
    if leftover:
        raise ImageError(f"still mounted, {folder} kept: {' '.join(leftover)}")
    shutil.rmtree(folder)


# --- command line ---------------------------------------------------------------------------


def _command(args: argparse.Namespace) -> int:
    try:
        img = image(release=args.release)
        paths = cached(img) if args.print_paths else ensure(img, force=args.force)
    except (RuntimeError, OSError, subprocess.SubprocessError) as exc:  # ImageError too
        say(str(exc))
        return 1
    except KeyboardInterrupt:
        say("interrupted")
        return 130
    print("\n".join(map(str, paths)))
    return 0


def add_image_command(subparsers: Any) -> None:
    """``python -m halab image [--print-paths|--force]``."""
    text = "the project's image of the lab VMs: build it unless cached, print its paths"
    parser = subparsers.add_parser(
        "image",
        help=text + " (a build needs root)",
        description=(
            f"{text}: disk.qcow2, vmlinuz, initrd.img, one a line, from "
            "<cache>/image/<key>/ (Debian with every role's packages, by mmdebstrap). "
            "HA_WEB_LAB_IMAGE_SIZE sets the disk size (default 4G)."
        ),
    )
    parser.add_argument(
        "--release",
        choices=sorted(debian.RELEASES),
        default=None,
        help="the Debian release of the image (default: this machine's)",
    )
    which = parser.add_mutually_exclusive_group()
    which.add_argument(
        "--print-paths",
        action="store_true",
        help="print the paths of the cached image (exit 1 when it is not built)",
    )
    which.add_argument("--force", action="store_true", help="build even when cached")
    parser.set_defaults(func=_command)
