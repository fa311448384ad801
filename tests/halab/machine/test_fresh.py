"""The fresh-machine runner: what it mounts, what it copies, and that it never deletes through a
mount; its boot mode's snapshots and verdicts. (The runs themselves, mmdebstrap and `make test`
in the root, are `make fresh-test` in CI; the boot mode is `make fresh-boot`.)"""

from __future__ import annotations

import json
import shlex
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

from halab.machine import fresh, freshboot, freshroot
from halab.machine.fresh import Mount
from halab.machine.freshroot import INNER_SHARED, FreshError, Phases
from halab.model.roles import ZoneName
from halab.model.stackconfig import REPO_ROOT, read_stack


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
    freshroot.copy_checkout(repo, dest)
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
    assert freshroot.mounted_under(Path("/tmp/fresh-1"), mountinfo) == ["/tmp/fresh-1/root/dev"]
    assert freshroot.mounted_under(Path("/tmp/fresh-2"), mountinfo) == []


def test_a_failed_phase_is_named_and_still_timed() -> None:
    phases = Phases()
    with pytest.raises(FreshError, match="the failing phase failed"):
        phases.run("the failing phase", ["false"])
    assert "the failing phase" in phases.seconds
    assert "the failing phase" in phases.table()


# --- the boot mode (halab/machine/freshboot.py): its snapshots and verdicts
# ---------------------------

SNAPSHOT = """\
@@listeners
tcp LISTEN 0 128 0.0.0.0:2024 0.0.0.0:*
tcp LISTEN 0 511 0.0.0.0:80 0.0.0.0:* users:(("nginx",pid=40,fd=6),("nginx",pid=41,fd=6))
@@enabled
nginx.service                enabled enabled
libvirtd.socket              enabled enabled
@@user-enabled
@@running
nginx.service loaded active running A high performance web server
libvirtd.socket loaded active listening libvirt legacy monolithic daemon socket
@@failed
\u25cf haproxy.service loaded failed failed HAProxy
@@packages
nginx\tinstalled
haproxy\tconfig-files
@@files
/etc/cloud/cloud-init.disabled
@@end
"""
BEFORE = """\
@@listeners
tcp LISTEN 0 128 0.0.0.0:2024 0.0.0.0:*
@@enabled
@@user-enabled
@@running
@@failed
@@packages
@@files
/usr/sbin/policy-rc.d
@@end
"""


def test_a_snapshot_is_read_part_by_part() -> None:
    snap = freshboot.parse_snapshot(SNAPSHOT)
    assert snap.listeners == {"tcp 0.0.0.0:2024": "", "tcp 0.0.0.0:80": "nginx"}
    assert snap.enabled == {"nginx.service", "libvirtd.socket"}
    assert snap.running == {"nginx.service", "libvirtd.socket"}
    assert snap.failed == {"haproxy.service"}
    assert snap.packages == {"nginx"}
    assert snap.counts()["listeners of the root"] == 1
    with pytest.raises(FreshError, match="cut short"):
        freshboot.parse_snapshot(SNAPSHOT.replace("@@end\n", ""))


def test_anything_new_is_unexpected_but_the_labs_units_and_this_machines_listeners() -> None:
    before, after = freshboot.parse_snapshot(BEFORE), freshboot.parse_snapshot(SNAPSHOT)
    after.listeners["udp 0.0.0.0:5353"] = ""  # this machine's: no process of the root owns it
    found = {(f.kind, f.name): f.verdict for f in freshboot.compare(before, after, "p")}
    assert found == {
        ("listener", "tcp 0.0.0.0:80"): "unexpected",
        ("listener", "udp 0.0.0.0:5353"): "not the root's",
        ("enabled", "nginx.service"): "unexpected",
        ("enabled", "libvirtd.socket"): "expected",
        ("running", "nginx.service"): "unexpected",
        ("running", "libvirtd.socket"): "expected",
        ("failed", "haproxy.service"): "unexpected",
        ("file", "/etc/cloud/cloud-init.disabled"): "expected",
        ("file", "/usr/sbin/policy-rc.d"): "unexpected",  # the machine's own is gone
    }
    on_demand = freshboot.compare(
        before, after, "p", expected={}, on_demand={"nginx.service": "asked for"}
    )
    assert ("running", "nginx.service", "expected") in {
        (f.kind, f.name, f.verdict) for f in on_demand
    }
    assert ("enabled", "nginx.service", "unexpected") in {
        (f.kind, f.name, f.verdict) for f in on_demand
    }


def test_libvirts_default_network_must_be_neither_active_nor_autostarted() -> None:
    quiet = freshboot.libvirt_findings("p", True, " default   inactive   no   yes\n")
    assert [f.verdict for f in quiet] == ["expected", "expected"]
    loud = freshboot.libvirt_findings("p", True, " default   active   yes   yes\n")
    assert [f.verdict for f in loud] == ["expected", "unexpected"]
    silent = freshboot.libvirt_findings("p", False, "")
    assert [f.verdict for f in silent] == ["unexpected"]


def test_the_root_boots_in_this_unit_on_this_network_and_is_entered_by_its_pid_1() -> None:
    argv = freshboot.nspawn_argv(Path("/tmp/r x/root"), [(Path("/c/apt"), Path("/var/cache/a"))])
    assert argv[0] == "systemd-nspawn"
    assert {"--boot", "--keep-unit", "--register=no"} <= set(argv)
    assert not [a for a in argv if a.startswith(("--private-network", "--network-"))]
    assert "--directory=/tmp/r x/root" in argv and "--bind=/c/apt:/var/cache/a" in argv
    inner = freshboot.inner_argv(1234, ["ss", "-Hltnup"])
    assert inner[:3] == ["nsenter", "--target=1234", "--all"]
    assert inner[3:5] == ["env", "-i"] and inner[-2:] == ["ss", "-Hltnup"]


def test_the_lab_boot_has_a_network_of_its_own() -> None:
    argv = freshboot.nspawn_argv(Path("/r"), [], private_network=True)
    assert "--private-network" in argv
    # Only loopback there: no veth, no bridge of this machine's joins it.
    assert not [a for a in argv if a.startswith("--network-")]


def test_the_lab_root_gets_the_unified_cgroup_hierarchy_a_debian_13_host_has() -> None:
    hybrid = (
        "cgroup2 /sys/fs/cgroup/unified cgroup2 rw 0 0\n"
        "cgroup /sys/fs/cgroup/cpu cgroup rw,cpu 0 0\n"
    )
    unified = "cgroup2 /sys/fs/cgroup cgroup2 rw,nsdelegate 0 0\n"
    assert freshboot.host_has_cgroup_v1(hybrid) and not freshboot.host_has_cgroup_v1(unified)
    key = "SYSTEMD_NSPAWN_UNIFIED_HIERARCHY"
    assert freshboot.nspawn_env({"A": "1"}, lab=True, cgroup_v1=True) == {"A": "1", key: "1"}
    # Only the lab needs it; on a unified host nspawn does it by itself.
    assert key not in freshboot.nspawn_env({}, lab=False, cgroup_v1=True)
    assert key not in freshboot.nspawn_env({}, lab=True, cgroup_v1=False)


INVENTORY = """domain hwl-local-lb-1
network hwl-local-dmz
pool hwl-local
volume hwl-local/lb-1.qcow2
pool theirs
volume theirs/disk.img
@@end
"""


def test_libvirts_objects_are_listed_and_a_cut_listing_refused() -> None:
    objects = freshboot.parse_inventory(INVENTORY)
    assert "volume hwl-local/lb-1.qcow2" in objects and "pool theirs" in objects
    assert len(objects) == 6
    with pytest.raises(FreshError, match="cut short"):
        freshboot.parse_inventory("domain a\n")
    assert freshboot.parse_inventory("@@end\n") == set()


def test_make_down_must_leave_the_users_libvirtd_as_it_found_it() -> None:
    theirs = {"pool theirs", "volume theirs/disk.img"}
    during = freshboot.parse_inventory(INVENTORY)
    clean = freshboot.lab_findings(theirs, during, theirs)
    assert [f.verdict for f in clean] == ["expected"]
    assert "4 objects" in clean[0].why
    left = freshboot.lab_findings(theirs, during, theirs | {"network hwl-local-dmz"})
    assert [(f.name, f.verdict) for f in left[1:]] == [("network hwl-local-dmz", "unexpected")]
    lost = freshboot.lab_findings(theirs, during, {"pool theirs"})
    assert [(f.name, f.why) for f in lost[1:]] == [
        ("volume theirs/disk.img", "there before make up, gone after")
    ]
    # No domain of the lab appeared: make up deployed somewhere else (the project's libvirtd).
    elsewhere = freshboot.lab_findings(theirs, theirs, theirs)
    assert [f.verdict for f in elsewhere] == ["unexpected"]


def test_the_second_labs_make_down_must_leave_the_first_as_it_was() -> None:
    theirs = {"pool theirs"}
    first = {"domain hwl-local-lb-1", "network hwl-local-dmz"}
    kept = freshboot.neighbour_findings(first, theirs, theirs | first)
    assert [(f.name, f.verdict) for f in kept] == [("the first lab", "expected")]
    gone = freshboot.neighbour_findings(first, theirs, theirs | {"domain hwl-local-lb-1"})
    assert [(f.name, f.verdict) for f in gone] == [("network hwl-local-dmz", "unexpected")]
    left = freshboot.neighbour_findings(first, theirs, theirs | first | {"pool hwl-neighbour"})
    assert [(f.name, f.why) for f in left] == [
        ("pool hwl-neighbour", "left by the second lab's make down")
    ]


def test_the_second_lab_has_an_address_plan_of_its_own(tmp_path: Path) -> None:
    repo = tmp_path / freshroot.INNER_REPO.relative_to("/")
    repo.mkdir(parents=True)
    shutil.copy(REPO_ROOT / "Pulumi.yaml", repo)
    freshboot.write_second_stack(tmp_path)
    # Read as make up reads it: the project's one reader, every key declared.
    second = read_stack(freshboot.SECOND_STACK, repo).spec(offline=True)
    first = read_stack(freshboot.LAB_STACK, REPO_ROOT).spec(offline=True)
    for zone in ZoneName:
        assert not second.zones[zone].cidr.overlaps(first.zones[zone].cidr), zone
        assert second.plan.bridges[zone] != first.plan.bridges[zone]
    assert second.vrrp.router_id != first.vrrp.router_id
    assert second.lab_name != first.lab_name
    # Everything else is the local stack's, as the second lab's config copies it: a timer tuned
    # in Pulumi.local.yaml and not here fails this, not a run on emulated guests.
    mine = read_stack(freshboot.SECOND_STACK, repo).values
    local = read_stack(freshboot.LAB_STACK, REPO_ROOT).values
    for key in {k.removeprefix("ha-web-lab:") for k in freshboot.SECOND_LAB_CONFIG}:
        if key not in ("zones", "vrrpRouterId"):
            assert mine[key] == local[key], key
    assert mine["hosts"] == local["hosts"]  # the project's default, which local spells out


def test_the_labs_reports_are_kept_without_its_ssh_sockets(tmp_path: Path) -> None:
    source = tmp_path / "reports"
    (source / "check-local" / ".work" / "ssh").mkdir(parents=True)
    (source / "check-local" / "summary.txt").write_text("PASSED\n")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(source / "check-local" / ".work" / "ssh" / "203.0.113.10"))
    try:
        freshroot.keep_reports(source, tmp_path / "kept")
    finally:
        sock.close()
    assert (tmp_path / "kept" / "check-local" / "summary.txt").read_text() == "PASSED\n"
    assert not (tmp_path / "kept" / "check-local" / ".work").exists()
    freshroot.keep_reports(tmp_path / "none", tmp_path / "kept")  # nothing to keep: no error


def test_the_tables_and_the_report_say_what_was_found(tmp_path: Path) -> None:
    before, after = freshboot.parse_snapshot(BEFORE), freshboot.parse_snapshot(SNAPSHOT)
    report = freshboot.Report("bookworm", {"before": before, "after": after})
    report.findings = freshboot.compare(before, after, "after")
    assert "tcp 0.0.0.0:80" in freshboot.verdict_table(report.findings)
    assert "listeners of the root" in freshboot.summary_table(report.snapshots)
    path = report.write(tmp_path, Phases())
    data = json.loads(path.read_text())
    assert data["ok"] is False
    assert data["summary"]["after"]["listeners of the root"] == 1
    assert "libvirtd.socket" in data["expected_units"]
    assert freshboot.verdict_table([]).endswith("(no difference from the first snapshot)")


def test_the_root_runs_the_tests_or_the_benchmark() -> None:
    assert fresh.root_command(False, []) == ["make", "test"]
    assert fresh.root_command(False, ["-k", "spec"]) == ["scripts/test.sh", "-k", "spec"]
    assert fresh.root_command(True, []) == ["make", "bench"]
    assert fresh.root_command(True, ["--runs", "1"]) == ["make", "bench", "BENCH_ARGS=--runs 1"]
    assert fresh.parse_args(["--bench"]).reports.name == "fresh-bench"
    with pytest.raises(SystemExit):
        fresh.parse_args(["--bench", "--boot"])


def test_boot_mode_reports_beside_the_tests_timings() -> None:
    assert fresh.parse_args(["--boot"]).reports.name == "fresh-boot"
    assert fresh.parse_args([]).reports.name == "fresh-test"
    assert fresh.parse_args(["--boot", "--lab"]).lab
    with pytest.raises(SystemExit):
        fresh.parse_args(["--lab"])  # the lab runs only in a booted root
    assert fresh.parse_args(["--boot", "--lab", "--second-lab"]).second_lab
    with pytest.raises(SystemExit):
        fresh.parse_args(["--boot", "--second-lab"])
    freshboot.Container(Path("/nonexistent"), [], Path("/nonexistent/log")).stop()  # no-op


def test_a_minimal_root_of_either_release_from_this_machines_mirrors(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(
        freshroot, "mirror", lambda suite: f"http://m/{suite.partition('-')[2] or 'main'}"
    )
    argv = freshroot.minbase_argv("trixie", Path("/w/root"), ("git", "make"))
    assert argv[:5] == ["mmdebstrap", "--mode=root", "--variant=minbase", "--components=main",
                        "--include=git,make"]  # fmt: skip
    assert argv[-5:] == [
        "trixie", "/w/root", "deb http://m/main trixie main",
        "deb http://m/main trixie-updates main", "deb http://m/security trixie-security main",
    ]  # fmt: skip
