"""The project's image: its key and folder, its command line and refusals, what it writes into
the tree, and a build run with every step faked (no mmdebstrap, no real image).
"""

from __future__ import annotations

import fcntl
import os
import stat
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

import pytest
import yaml
from pytest import CaptureFixture, MonkeyPatch

from halab.cli import main
from halab.machine import debian, image
from halab.plumbing import procs

#: The key scripts/build-image.sh printed for these inputs (its last version, 4, with the
#: roles' packages of today): images it built stay cached.
KEY_4G = "74ff5ef7bea25c9f"
KEY_8G = "c1b0d459e7597c3d"


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: MonkeyPatch) -> Path:
    """A cache root of the test's own, the default size, a bookworm machine (the keys below are
    bookworm's); returns <cache>/image."""
    monkeypatch.setattr(debian, "host_release", lambda *_: "bookworm")
    monkeypatch.setenv("HA_WEB_LAB_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("HA_WEB_LAB_IMAGE_SIZE", raising=False)
    monkeypatch.delenv("HA_WEB_LAB_IMAGE_KEEP_OLD", raising=False)
    return tmp_path / "cache" / "image"


def _complete(img: image.Image) -> None:
    """What a finished build leaves (the three files not empty, and .complete)."""
    img.out.mkdir(parents=True)
    for path in img.paths:
        path.write_bytes(b"x")
    (img.out / "build-info").write_text(f"key={img.key}\nsuite={img.suite}\n")
    (img.out / ".complete").touch()


def test_the_key_of_the_current_inputs_is_the_bash_scripts(cache: Path) -> None:
    assert image.image_packages()[-6:] == (
        "nginx", "python3-fastapi", "python3-uvicorn", "nftables", "haproxy", "keepalived",
    )  # fmt: skip
    assert image.image().key == KEY_4G
    assert image.image(env={"HA_WEB_LAB_IMAGE_SIZE": "8G"}).key == KEY_8G
    assert image.image(env={"HA_WEB_LAB_IMAGE_SIZE": ""}).key == KEY_4G  # empty: the default
    names = image.image_packages()
    # Sorted and unique, as `LC_ALL=C sort -u` made them: order and repeats change nothing.
    assert image.cache_key(4, "bookworm", "4G", [*reversed(names), names[0]]) == KEY_4G
    assert image.cache_key(5, "bookworm", "4G", names) != KEY_4G


def test_the_folder_follows_the_cache_root(cache: Path, monkeypatch: MonkeyPatch) -> None:
    img = image.image()
    assert img.cache == cache
    assert img.out == cache / KEY_4G
    assert img.paths == (
        cache / KEY_4G / "disk.qcow2", cache / KEY_4G / "vmlinuz", cache / KEY_4G / "initrd.img"
    )  # fmt: skip
    assert img.lock == cache / f".lock-{KEY_4G}"
    monkeypatch.setenv("HA_WEB_LAB_IMAGE_SIZE", "8G")
    assert image.image().out == cache / KEY_8G


def test_print_paths_only_for_a_complete_image(cache: Path, capsys: CaptureFixture[str]) -> None:
    assert main(["image", "--print-paths"]) == 1
    assert capsys.readouterr().err == (
        f"image: no image for key {KEY_4G} in {cache}: run python -m halab image\n"
    )
    img = image.image()
    _complete(img)
    img.paths[0].write_bytes(b"")  # an empty disk is no image
    assert main(["image", "--print-paths"]) == 1
    img.paths[0].write_bytes(b"x")
    assert main(["image", "--print-paths"]) == 0
    assert capsys.readouterr().out.splitlines() == [str(p) for p in img.paths]


def test_a_cached_image_needs_no_root_and_no_build(
    cache: Path, monkeypatch: MonkeyPatch, capsys: CaptureFixture[str]
) -> None:
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    assert main(["image"]) == 1
    assert "run as root: mmdebstrap's root mode keeps file owners" in capsys.readouterr().err
    img = image.image()
    _complete(img)
    assert main(["image"]) == 0
    out = capsys.readouterr()
    assert out.out.splitlines() == [str(p) for p in img.paths]
    assert out.err == f"image: cached: {img.out}\n"
    with pytest.raises(image.ImageError, match="run as root"):
        image.ensure(force=True)


def test_arguments(capsys: CaptureFixture[str]) -> None:
    for argv in (["image", "--print-paths", "--force"], ["image", "--paths"], ["image", "x"]):
        with pytest.raises(SystemExit) as exit_:
            main(argv)
        assert exit_.value.code == 2
    with pytest.raises(SystemExit) as exit_:
        main(["image", "--help"])
    assert exit_.value.code == 0
    assert "--print-paths" in capsys.readouterr().out


def test_a_missing_tool_is_named_with_its_package(monkeypatch: MonkeyPatch) -> None:
    monkeypatch.setattr("os.geteuid", lambda: 0)
    monkeypatch.setattr(
        "shutil.which", lambda cmd, path=None: None if cmd == "mkfs.ext4" else f"/bin/{cmd}"
    )
    with pytest.raises(
        image.ImageError,
        match=r"missing mkfs.ext4: apt-get install --no-install-recommends e2fsprogs$",
    ):
        image.check_build_tools()


@pytest.mark.parametrize(
    ("size", "size_bytes"),
    [("4G", 4 << 30), ("4096M", 4 << 30), ("512", 512), ("2KiB", 2048), ("3KB", 3000),
     ("1t", 1 << 40)],
)  # fmt: skip
def test_sizes_read_as_truncate_reads_them(size: str, size_bytes: int) -> None:
    assert image.size_bytes(size) == size_bytes


@pytest.mark.parametrize("size", ["4 G", "-4G", "+4G", "4X", "G", "4.5G"])
def test_a_size_truncate_would_not_make_is_refused_before_anything(size: str) -> None:
    with pytest.raises(image.ImageError, match="HA_WEB_LAB_IMAGE_SIZE="):
        image.disk_size({"HA_WEB_LAB_IMAGE_SIZE": size})


def _tree(root: Path) -> None:
    """The parts of a fresh mmdebstrap tree that the files touch."""
    for folder in (
        "etc/cloud/cloud.cfg.d", "etc/ssh/sshd_config.d", "etc/modprobe.d", "etc/default",
        "etc/network", "var/lib/dbus", "etc/nginx/sites-enabled",
    ):  # fmt: skip
        (root / folder).mkdir(parents=True)
    for key in ("ssh_host_rsa_key", "ssh_host_rsa_key.pub", "ssh_host_ed25519_key"):
        (root / "etc/ssh" / key).write_text("key")
    (root / "etc/machine-id").write_text("0123\n")
    (root / "var/lib/dbus/machine-id").symlink_to("/etc/machine-id")
    (root / "etc/nginx/sites-enabled/default").symlink_to("/etc/nginx/sites-available/default")


def test_the_files_written_into_the_tree(tmp_path: Path) -> None:
    root = tmp_path / "root"
    _tree(root)
    outside = tmp_path / "outside"
    outside.write_text("the machine's own")
    (root / "etc/resolv.conf").symlink_to(outside)
    image.write_image_files(root)

    def text(path: str) -> str:
        return (root / path).read_text()

    assert text("etc/fstab") == (
        "# ha-web-lab image: the root filesystem is the whole virtio disk\n"
        "/dev/vda\t/\text4\trw,errors=remount-ro\t0\t1\n"
    )
    assert text("etc/hostname") == "debian\n"
    assert text("etc/hosts").splitlines() == [
        "127.0.0.1\tlocalhost", "::1\t\tlocalhost ip6-localhost ip6-loopback"
    ]  # fmt: skip
    assert text("etc/resolv.conf") == text("etc/machine-id") == ""
    assert outside.read_text() == "the machine's own"  # the link replaced, not written through
    assert text("etc/default/locale") == "LANG=C.UTF-8\n"
    assert "source /etc/network/interfaces.d/*\n" in text("etc/network/interfaces")
    assert (root / "etc/network/interfaces.d").is_dir()
    cloud = yaml.safe_load(text("etc/cloud/cloud.cfg.d/90_ha-web-lab.cfg"))
    assert cloud == {
        "datasource_list": ["NoCloud", "None"],
        "locale": "C.UTF-8",
        "manage_etc_hosts": True,
        "ssh_genkeytypes": ["ed25519", "ecdsa"],
        "ssh": {"emit_keys_to_console": False},
        "grub_dpkg": {"enabled": False},
        "system_info": {"network": {"renderers": ["eni"]}},
    }
    sshd = root / "etc/ssh/sshd_config.d/50-cloud-init.conf"
    assert sshd.read_text() == "PasswordAuthentication no\n"
    assert stat.S_IMODE(sshd.stat().st_mode) == 0o600
    blacklisted = [line.split()[1] for line in text("etc/modprobe.d/ha-web-lab.conf").splitlines()
                   if line.startswith("blacklist ")]  # fmt: skip
    assert blacklisted == ["kvm_amd", "kvm_intel", "kvm", "ccp", "pcspkr"]
    assert not list((root / "etc/ssh").glob("ssh_host_*"))
    assert not os.path.lexists(root / "var/lib/dbus/machine-id")
    assert not os.path.lexists(root / "etc/nginx/sites-enabled/default")


def test_units_on_and_off(tmp_path: Path) -> None:
    units = tmp_path / "lib/systemd/system"
    units.mkdir(parents=True)
    for unit in ("apt-daily.timer", "fstrim.timer", "ssh.service"):
        (units / unit).touch()
    systemctl = ["systemctl", f"--root={tmp_path}"]
    assert image.systemctl_commands(tmp_path) == [
        [*systemctl, "enable", "ssh.service"],
        [*systemctl, "disable", "nginx.service", "haproxy.service", "keepalived.service"],
        [*systemctl, "set-default", "multi-user.target"],
        [*systemctl, "disable", "apt-daily.timer"],
        [*systemctl, "disable", "fstrim.timer"],
    ]


def test_the_mmdebstrap_command() -> None:
    argv = image.mmdebstrap_argv(
        Path("/w/root"), ("a", "b"), "http://m/debian", "http://s/sec", "bookworm"
    )
    assert argv[:5] == [
        "mmdebstrap", "--mode=root", "--variant=minbase", "--components=main", "--include=a,b"
    ]  # fmt: skip
    assert "--dpkgopt=path-exclude=/lib/modules/*/kernel/drivers/gpu/*" in argv
    assert "--dpkgopt=path-exclude=/lib/modules/*/kernel/sound/*" in argv
    assert argv[-5:] == [
        "bookworm", "/w/root", "deb http://m/debian bookworm main",
        "deb http://m/debian bookworm-updates main", "deb http://s/sec bookworm-security main",
    ]  # fmt: skip


def test_the_newest_kernel_by_version(tmp_path: Path) -> None:
    for name in ("vmlinuz-6.1.0-9-amd64", "vmlinuz-6.1.0-10-amd64", "initrd.img-6.1.0-9-amd64"):
        (tmp_path / name).touch()
    assert image.newest(tmp_path, "vmlinuz").name == "vmlinuz-6.1.0-10-amd64"
    assert image.newest(tmp_path, "initrd.img").name == "initrd.img-6.1.0-9-amd64"
    with pytest.raises(image.ImageError, match=r"no System\.map in "):
        image.newest(tmp_path, "System.map")


def test_older_images_go_the_new_one_and_unfinished_builds_stay(cache: Path) -> None:
    img = image.image(release="bookworm")
    _complete(img)
    old = image.Image(cache, "0123456789abcdef", "4G", (), "bookworm")
    _complete(old)
    old.lock.touch()
    # The other release's image is no older build of this one: both releases stay usable.
    trixie = image.image(release="trixie")
    _complete(trixie)
    unfinished = cache / "fedcba9876543210"
    unfinished.mkdir()
    (cache / f".build-{img.key}.x").mkdir()
    image.remove_older(img)
    assert sorted(p.name for p in cache.iterdir()) == sorted(
        [img.key, trixie.key, unfinished.name, f".build-{img.key}.x"]
    )


def test_each_release_has_its_own_key_and_an_unknown_one_is_refused(cache: Path) -> None:
    assert image.image(release="bookworm").key == KEY_4G
    assert image.image(release="trixie").key != KEY_4G
    assert image.image(release="trixie").suite == "trixie"
    with pytest.raises(image.ImageError, match="no image for Debian 'sid'"):
        image.image(release="sid")


def test_a_failing_or_slow_step_is_an_error_and_ends(monkeypatch: MonkeyPatch) -> None:
    with pytest.raises(image.ImageError, match=r"^sh failed \(exit 3\)$"):
        image.run_step(["sh", "-c", "exit 3"], stdout=subprocess.DEVNULL)
    monkeypatch.setattr(image, "STEP_TIMEOUT", 0.3)
    started: list[tuple[int, int]] = []
    real_starttime = procs.starttime

    def starttime(pid: int) -> int:
        started.append((pid, real_starttime(pid)))
        return started[-1][1]

    monkeypatch.setattr(procs, "starttime", starttime)
    with pytest.raises(image.ImageError, match=r"sleep did not finish within 0 s"):
        image.run_step(["sleep", "30"])
    assert started
    monkeypatch.undo()
    assert not procs.alive(*started[0])


def test_a_work_folder_is_never_removed_through_a_mount(
    tmp_path: Path, monkeypatch: MonkeyPatch
) -> None:
    work = tmp_path / ".build-x"
    (work / "root/proc").mkdir(parents=True)
    mounts = [str(work / "root/proc"), str(work / "root/dev/pts"), str(work / "root/dev")]
    unmounted: list[list[str]] = []

    def run(argv: Sequence[str], timeout: float = 10.0) -> None:
        unmounted.append(list(argv))
        # dev/pts is busy: it goes only lazily.
        if argv[-1] != str(work / "root/dev/pts") or argv[1] == "--lazy":
            mounts.remove(argv[-1])
        else:
            raise RuntimeError("umount: target is busy")

    monkeypatch.setattr(
        image, "mounted_under", lambda root: [m for m in mounts if m.startswith(str(root))]
    )
    monkeypatch.setattr(procs, "run", run)
    image.clean_work(work)
    assert [argv[-1].removeprefix(str(work)) for argv in unmounted] == [
        "/root/dev/pts", "/root/dev/pts", "/root/proc", "/root/dev"
    ]  # fmt: skip
    assert not work.exists()
    work.mkdir()
    mounts.append(str(work / "root/sys"))
    monkeypatch.setattr(procs, "run", lambda argv, timeout=10.0: None)  # it stays mounted
    with pytest.raises(image.ImageError, match="still mounted"):
        image.clean_work(work)
    assert work.exists()


class FakeSteps:
    """Every step of a build, faked: each writes what the real one would, or fails."""

    def __init__(self, fail_at: str | None = None, error: BaseException | None = None) -> None:
        self.ran: list[str] = []
        self.fail_at = fail_at
        self.error = error or image.ImageError(f"{fail_at} failed (exit 1)")

    def run_step(self, argv: Sequence[str], *, stdout: IO[Any] | int | None = None) -> None:
        self.ran.append(argv[0])
        if argv[0] == self.fail_at:
            raise self.error
        if argv[0] == "mmdebstrap":
            root = Path(argv[argv.index("bookworm") + 1])
            _tree(root)
            (root / "boot").mkdir()
            (root / "boot/vmlinuz-6.1.0-9-amd64").write_bytes(b"kernel")
            (root / "boot/initrd.img-6.1.0-9-amd64").write_bytes(b"initrd")
        elif argv[0] == "dpkg-query":
            assert stdout is not None and not isinstance(stdout, int)
            stdout.write(b"bash\t5.2.15-2+b8\n")
        elif argv[0] == "qemu-img":
            Path(argv[-1]).write_bytes(b"qcow2")


@pytest.fixture
def fake_build(cache: Path, monkeypatch: MonkeyPatch) -> list[list[str]]:
    """Root, the tools, a mirror; systemctl's calls recorded."""
    monkeypatch.setattr(image, "check_build_tools", lambda: None)
    monkeypatch.setattr(image, "mirror", lambda suite: f"http://mirror/{suite}")
    systemctl: list[list[str]] = []
    monkeypatch.setattr(procs, "run", lambda argv, timeout=10.0: systemctl.append(list(argv)))
    return systemctl


def test_a_build_with_faked_steps_leaves_the_image_and_nothing_else(
    cache: Path, fake_build: list[list[str]], monkeypatch: MonkeyPatch, capsys: CaptureFixture[str]
) -> None:
    steps = FakeSteps()
    monkeypatch.setattr(image, "run_step", steps.run_step)
    old = image.Image(cache, "0123456789abcdef", "4G", (), "bookworm")
    _complete(old)
    assert main(["image", "--release", "bookworm"]) == 0
    img = image.image()
    assert capsys.readouterr().out.splitlines() == [str(p) for p in img.paths]
    assert steps.ran == ["mmdebstrap", "dpkg-query", "mkfs.ext4", "e2fsck", "qemu-img"]
    assert len(fake_build) == 3  # ssh on, the role services off, the default target
    assert sorted(p.name for p in cache.iterdir()) == [f".lock-{img.key}", img.key]
    assert sorted(p.name for p in img.out.iterdir()) == [
        ".complete", "build-info", "disk.qcow2", "initrd.img", "packages.tsv", "vmlinuz"
    ]  # fmt: skip
    assert (img.out / "vmlinuz").read_bytes() == b"kernel"
    assert (img.out / "packages.tsv").read_text() == "bash\t5.2.15-2+b8\n"
    info = dict(line.split("=", 1) for line in (img.out / "build-info").read_text().splitlines())
    assert list(info) == ["key", "script_version", "suite", "size", "kernel", "built",
                          "mmdebstrap_seconds", "total_seconds"]  # fmt: skip
    assert (info["key"], info["script_version"], info["size"]) == (img.key, "4", "4G")
    assert info["kernel"] == "vmlinuz-6.1.0-9-amd64"
    # Cached now: no step runs again; --force builds again.
    steps.ran.clear()
    assert main(["image"]) == 0
    assert steps.ran == []
    assert main(["image", "--force"]) == 0
    assert steps.ran[0] == "mmdebstrap"


@pytest.mark.parametrize(
    ("fail_at", "error", "code"),
    [("mmdebstrap", None, 1), ("mkfs.ext4", None, 1), ("qemu-img", KeyboardInterrupt(), 130)],
)
def test_a_failed_or_interrupted_build_leaves_no_work_folder(
    cache: Path, fake_build: list[list[str]], monkeypatch: MonkeyPatch,
    fail_at: str, error: BaseException | None, code: int,
) -> None:  # fmt: skip
    monkeypatch.setattr(image, "run_step", FakeSteps(fail_at, error).run_step)
    assert main(["image"]) == code
    img = image.image()
    assert [p.name for p in cache.iterdir()] == [f".lock-{img.key}"]
    with img.lock.open("w") as lock:  # and the lock is free
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)


def test_a_build_waits_for_another_one_of_the_same_key(
    cache: Path, fake_build: list[list[str]], monkeypatch: MonkeyPatch
) -> None:
    monkeypatch.setattr(image, "LOCK_TIMEOUT", 0.3)
    img = image.image()
    cache.mkdir(parents=True)
    with img.lock.open("w") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(image.ImageError, match=f"another build of {img.key} holds"):
            image.ensure()
