"""The fresh-machine runner: what it mounts, what it copies, and that it never deletes through a
mount. (The run itself, mmdebstrap and `make test` in the root, is `make fresh-test` in CI.)"""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

import pytest

from halab import fresh
from halab.fresh import INNER_SHARED, FreshError, Mount, Phases


def test_every_mount_lands_inside_the_root_and_shared_is_read_only() -> None:
    root = Path("/tmp/fresh x/root")  # a space: every path must stay one argument
    mounts = [*fresh.cache_mounts(Path("/c")), Mount(Path("/w/shared"), INNER_SHARED, True)]
    script = fresh.mount_script(root, mounts, ["make", "test"])
    binds = [shlex.split(line) for line in script.splitlines() if line.startswith("mount")]
    assert binds, script
    for words in binds:
        assert Path(words[-1]).is_relative_to(root), words
    read_only = [w[-1] for w in binds if "remount,bind,ro" in w]
    assert read_only == [str(root / "work/shared")]
    last = shlex.split(script.splitlines()[-1])
    assert last[:3] == ["exec", "chroot", str(root)]
    assert last[-2:] == ["make", "test"]
    assert "env" in last and "-i" in last  # nothing of this shell's environment goes in


def test_caches_hold_downloads_and_builds_never_configuration() -> None:
    for mount in fresh.cache_mounts(Path("/c")):
        assert not mount.target.is_relative_to("/etc"), mount
        assert mount.source.is_relative_to("/c"), mount


def _git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t", *args],
        check=True,
        capture_output=True,
    )


def test_the_copy_is_a_clean_clone_plus_the_working_trees_changes(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    for name, text in (
        ("kept", "1"),
        ("changed", "old"),
        ("deleted", "x"),
        (".gitignore", "*.log"),
    ):
        (repo / name).write_text(text)
    _git(repo, "add", ".")
    _git(repo, "commit", "-qm", "c")
    (repo / "changed").write_text("new")
    (repo / "deleted").unlink()
    (repo / "sub").mkdir()
    (repo / "sub" / "added").write_text("a")
    (repo / "noise.log").write_text("ignored")
    dest = tmp_path / "dest"
    fresh.copy_checkout(repo, dest)
    assert (dest / "kept").read_text() == "1"
    assert (dest / "changed").read_text() == "new"
    assert (dest / "sub" / "added").read_text() == "a"
    assert not (dest / "deleted").exists()
    assert not (dest / "noise.log").exists()  # ignored files are the machine's, not the project's


def test_mounts_below_the_root_are_found_so_it_is_never_deleted_through_one() -> None:
    mountinfo = (
        "22 1 8:1 / / rw - ext4 /dev/vda rw\n"
        "90 22 0:5 / /tmp/fresh-1/root/dev rw - devtmpfs udev rw\n"
        "91 22 0:6 / /tmp/fresh-10 rw - tmpfs tmpfs rw\n"
    )
    assert fresh.mounted_under(Path("/tmp/fresh-1"), mountinfo) == ["/tmp/fresh-1/root/dev"]
    assert fresh.mounted_under(Path("/tmp/fresh-2"), mountinfo) == []


def test_a_failed_phase_is_named_and_still_timed() -> None:
    phases = Phases()
    with pytest.raises(FreshError, match="the failing phase failed"):
        phases.run("the failing phase", ["false"])
    assert "the failing phase" in phases.seconds
    assert "the failing phase" in phases.table()
