"""The host's Debian packages: which set each command installs, and that what only the tests
need never serves, runs or starts at boot here (halab/plumbing/hostdeps.py). The install itself, on
a Debian booted with systemd, is `python3 -m halab.machine.fresh --boot`
(halab/machine/freshboot.py)."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from halab.machine import image, libvirtd
from halab.model.roles import all_packages, lab_binaries
from halab.plumbing import hostdeps
from halab.plumbing.hostdeps import EXPECTED_UNITS, HostDepsError, Unit

REPO = Path(__file__).resolve().parents[3]


# --- the list ---------------------------------------------------------------------------------


def test_sections_parse_and_a_choice_takes_what_it_needs() -> None:
    text = "# comment\n[host]\npython3  # why\n\n[tests]\nnginx\n[elsewhere]\ngit\n"
    sections = hostdeps.parse_list(text)
    assert sections == {"host": ("python3",), "tests": ("nginx",), "elsewhere": ("git",)}
    assert hostdeps.selected(sections, "host") == ("python3",)
    assert hostdeps.selected(sections, "tests") == ("python3", "nginx")
    with pytest.raises(HostDepsError):
        hostdeps.selected(sections, "everything")


@pytest.mark.parametrize(
    "text",
    [
        "nginx\n[host]\n",  # before any section
        "[host]\n[other]\nnginx\n",  # unknown section
        "[host]\n[host]\n",  # repeated section
        "[host]\nnginx\n[tests]\nnginx\n",  # in two sections
        "[host]\nnginx haproxy\n",  # two on a line
        "[host]\nnginx haproxy: haproxy\n",  # two before the tools
        "[host]\nhaproxy:\n",  # a colon and no tool
        "[host]\nnginx: nginx\nangie: nginx\n",  # a tool of two packages
    ],
)
def test_a_malformed_list_is_refused(text: str) -> None:
    with pytest.raises(HostDepsError):
        hostdeps.parse_list(text)


def test_make_up_gets_no_daemon_the_lab_runs_only_in_vms_or_namespaces() -> None:
    sections = hostdeps.read_list()
    host, tests = set(sections["host"]), set(sections["tests"])
    # The roles' packages (nginx, haproxy, keepalived, ...) go into the image and run in the
    # namespace lab: the tests need them here, make up never does.
    roles = set(all_packages())
    assert roles <= host | tests
    for package in ("nginx", "haproxy", "keepalived", "cloud-init", "netplan.io"):
        assert package in tests, package
        assert package not in host, package
    for binary in lab_binaries():
        assert hostdeps.package_of(binary) in host | tests, binary


def test_make_up_gets_every_tool_it_runs() -> None:
    host = set(hostdeps.read_list()["host"])
    tools = (*libvirtd.COMMANDS, libvirtd.qemu_driver(), *libvirtd.MOUNT_POINTS, *image.TOOLS)
    needed = {hostdeps.package_of(tool) for tool in tools} - {"dpkg"}
    assert needed <= host, needed - host
    # make up's own checks and commands: mkisofs, ssh-keygen, the certificate, the tier gate,
    # the picture, the venv.
    assert {"genisoimage", "openssh-client", "openssl", "curl", "graphviz", "python3-venv"} <= host


def test_a_package_line_names_its_tools() -> None:
    text = "[host]\ne2fsprogs: mkfs.ext4 e2fsck  # why\ncurl\n[tests]\nnginx: /usr/sbin/nginx\n"
    assert hostdeps.parse_list(text)["host"] == ("e2fsprogs", "curl")
    assert hostdeps.parse_tools(text) == {
        "mkfs.ext4": "e2fsprogs",
        "e2fsck": "e2fsprogs",
        "/usr/sbin/nginx": "nginx",
    }


def test_every_tool_the_code_checks_for_has_its_package_in_the_one_list() -> None:
    """A tool missing from scripts/apt-packages.txt would fail its own check with a KeyError."""
    from halab.nslab import lab
    from halab.render import validate

    listed = {p for section in hostdeps.read_list().values() for p in section}
    checked = (
        *image.TOOLS, *libvirtd.COMMANDS, libvirtd.qemu_driver(), *libvirtd.MOUNT_POINTS,
        *validate.TOOLS, *lab.REQUIRED, "mkisofs", "git", "systemd-nspawn", "nsenter",
    )  # fmt: skip
    for tool in checked:
        assert hostdeps.package_of(tool) in listed, tool
    # An absolute path is found by itself or by its file name.
    assert hostdeps.package_of("/usr/lib/python3/dist-packages/fastapi") == "python3-fastapi"
    assert hostdeps.package_of("/usr/sbin/haproxy") == "haproxy"
    with pytest.raises(KeyError):
        hostdeps.package_of("no-such-tool")


def test_missing_tools_are_named_all_at_once_with_their_packages(tmp_path: Path) -> None:
    (tmp_path / "mkfs.ext4").touch(mode=0o755)
    path = str(tmp_path)
    hostdeps.require_tools(["mkfs.ext4", str(tmp_path)], HostDepsError, path=path)
    with pytest.raises(HostDepsError) as failure:
        hostdeps.require_tools(
            ["mkfs.ext4", "e2fsck", "mmdebstrap", "/nonexistent/sbin/haproxy"],
            HostDepsError,
            path=path,
        )
    assert str(failure.value) == (
        "missing e2fsck, mmdebstrap, /nonexistent/sbin/haproxy: apt-get install "
        "--no-install-recommends e2fsprogs mmdebstrap haproxy"
    )


def test_root_is_required_with_the_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("os.geteuid", lambda: 0)
    hostdeps.require_root("the test needs it", HostDepsError)
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    with pytest.raises(SystemExit, match=r"^run as root: the test needs it$"):
        hostdeps.require_root("the test needs it", SystemExit)


# --- what dpkg says ---------------------------------------------------------------------------


def test_installed_means_installed_not_removed_with_config_kept() -> None:
    text = "nginx\tinstalled\nhaproxy\tconfig-files\nkeepalived\tnot-installed\ncurl\tinstalled\n"
    assert hostdeps.parse_installed(text) == {"nginx", "curl"}


DPKG_L = """\
/lib/systemd/system/nginx.service
/lib/systemd/system/cloud-init.target
/usr/lib/systemd/system/libvirtd.socket
/usr/lib/systemd/system/sockets.target.wants/systemd-importd.socket
/usr/lib/systemd/system/getty.target.wants/getty@tty1.service
/usr/lib/systemd/system/libvirtd.service.d/override.conf
/lib/systemd/system-generators/netplan
/usr/lib/systemd/system-generators/cloud-init-generator
/usr/lib/systemd/user/ssh-agent.socket
/etc/systemd/system/sshd-keygen@.service.d/x.conf
/usr/share/doc/nginx/copyright
"""


def test_units_generators_and_links_are_read_from_a_packages_files() -> None:
    paths = DPKG_L.splitlines()
    assert hostdeps.unit_names(paths) == ["cloud-init.target", "libvirtd.socket", "nginx.service"]
    assert hostdeps.generator_names(paths) == ["cloud-init-generator", "netplan"]
    assert hostdeps.shipped_wants(paths) == ["systemd-importd.socket"]
    assert hostdeps.user_unit_names(paths) == ["ssh-agent.socket"]


# --- the plan ---------------------------------------------------------------------------------


def test_the_plan_quiets_everything_but_the_labs_own_units() -> None:
    units = [
        Unit("nginx.service", "nginx-common", "enabled", "active"),
        Unit("haproxy.service", "haproxy", "enabled", "inactive"),
        Unit("cloud-init.target", "cloud-init", "static", "inactive"),
        Unit("libvirtd.socket", "libvirt-daemon-system", "enabled", "inactive"),
        Unit("libvirtd.service", "libvirt-daemon-system", "enabled", "inactive"),
        Unit("systemd-importd.socket", "systemd-container", "static", "active", True),
        Unit("ssh-agent.socket", "openssh-client", "enabled", "unknown", user=True),
        Unit("masked.socket", "x", "masked", "inactive", True),
        Unit("dbus.service", "dbus", "static", "active", True),
    ]
    todo = hostdeps.unit_plan(units)
    assert [u.name for u in todo.disable] == [
        "haproxy.service", "libvirtd.service", "nginx.service", "ssh-agent.socket",
    ]  # fmt: skip
    assert [u.name for u in todo.mask] == ["systemd-importd.socket"]
    assert [u.name for u in todo.stop] == ["nginx.service", "systemd-importd.socket"]
    assert [u.name for u in todo.keep] == ["libvirtd.socket"]
    assert todo.disable[-1].scope == ["--global"]


def test_every_expected_unit_says_why() -> None:
    assert "libvirtd.socket" in EXPECTED_UNITS
    for unit, why in EXPECTED_UNITS.items():
        # Nothing of the lab's runs at boot by itself: sockets and timers, and the bus's daemon
        # that its socket starts.
        assert unit.endswith((".socket", ".timer")) or unit == "dbus.service", unit
        assert len(why) > 20, unit


# --- policy-rc.d ------------------------------------------------------------------------------


def _forbids(path: Path) -> bool:
    """What invoke-rc.d would see: the script's exit status 101."""
    return subprocess.run([str(path)], check=False).returncode == 101


def test_without_a_policy_ours_is_there_only_during_the_install(tmp_path: Path) -> None:
    policy = tmp_path / "policy-rc.d"
    with hostdeps.services_forbidden(policy):
        assert _forbids(policy)
    assert not policy.exists()
    assert list(tmp_path.iterdir()) == []


def test_the_machines_own_policy_comes_back_also_on_failure(tmp_path: Path) -> None:
    policy = tmp_path / "policy-rc.d"
    policy.write_text("#!/bin/sh\nexit 0\n")
    policy.chmod(0o700)
    inode = policy.stat().st_ino
    with pytest.raises(RuntimeError), hostdeps.services_forbidden(policy):
        assert _forbids(policy)
        raise RuntimeError("apt-get failed")
    assert policy.read_text() == "#!/bin/sh\nexit 0\n"
    assert policy.stat().st_ino == inode  # the very file, mode and owner included
    assert sorted(p.name for p in tmp_path.iterdir()) == ["policy-rc.d"]


def test_an_interrupt_still_puts_it_back(tmp_path: Path) -> None:
    policy = tmp_path / "policy-rc.d"
    with pytest.raises(KeyboardInterrupt), hostdeps.services_forbidden(policy):
        raise KeyboardInterrupt
    assert not policy.exists()


def test_what_a_killed_run_left_is_undone_by_the_next(tmp_path: Path) -> None:
    policy = tmp_path / "policy-rc.d"
    saved = tmp_path / f"policy-rc.d{hostdeps.SAVED_SUFFIX}"
    # Killed inside the block: ours in place, theirs set aside.
    saved.write_text("theirs\n")
    policy.write_text(hostdeps.POLICY_TEXT)
    hostdeps.recover_policy(policy)
    assert policy.read_text() == "theirs\n"
    assert not saved.exists()
    # Killed between setting theirs aside and putting ours in: a second link to theirs.
    os.link(policy, saved)
    hostdeps.recover_policy(policy)
    assert policy.read_text() == "theirs\n"
    assert not saved.exists()
    # Killed with no policy of theirs: ours goes.
    policy.write_text(hostdeps.POLICY_TEXT)
    hostdeps.recover_policy(policy)
    assert not policy.exists()
    # A policy of theirs alone is never touched.
    policy.write_text("theirs\n")
    hostdeps.recover_policy(policy)
    assert policy.read_text() == "theirs\n"


# --- carrying the plan out, against stub commands ---------------------------------------------


@pytest.fixture
def stubs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """systemctl, dpkg-query and virsh as stubs: dpkg-query -L answers from files.json,
    systemctl is-enabled from states.json (the stub changes it on enable/disable/mask, and a
    disable of libvirtd.service takes its sockets along, as its Also= does), every call logged."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    files = {
        "nginx-common": ["/lib/systemd/system/nginx.service"],
        "libvirt-daemon-system": [
            "/lib/systemd/system/libvirtd.service",
            "/lib/systemd/system/libvirtd.socket",
        ],
        "netplan.io": ["/lib/systemd/system-generators/netplan"],
        "cloud-init": [
            "/lib/systemd/system/cloud-init.service",
            "/lib/systemd/system-generators/cloud-init-generator",
        ],
    }
    states = {
        "nginx.service": "enabled",
        "libvirtd.service": "enabled",
        "libvirtd.socket": "enabled",
        "cloud-init.service": "enabled",
    }
    (tmp_path / "files.json").write_text(json.dumps(files))
    (tmp_path / "states.json").write_text(json.dumps(states))
    stub = f"""#!{sys.executable}
import json, os, sys
base = {str(tmp_path)!r}
name = os.path.basename(sys.argv[0])
args = [a for a in sys.argv[1:] if a not in ("--quiet", "--global")]
with open(os.path.join(base, "calls.log"), "a") as log:
    log.write(" ".join([name, *sys.argv[1:]]) + "\\n")
states = json.load(open(os.path.join(base, "states.json")))
if name == "dpkg-query":
    print("\\n".join(json.load(open(os.path.join(base, "files.json")))[args[1]]))
elif name == "systemctl" and args[0] == "is-enabled":
    print(states.get(args[1], "disabled"))
elif name == "systemctl" and args[0] in ("enable", "disable", "mask"):
    new = {{"enable": "enabled", "disable": "disabled", "mask": "masked"}}[args[0]]
    for unit in args[1:]:
        states[unit] = new
        if unit == "libvirtd.service" and args[0] == "disable":
            states["libvirtd.socket"] = "disabled"
    json.dump(states, open(os.path.join(base, "states.json"), "w"))
elif name == "systemctl" and args[0] == "is-active":
    print("inactive")
"""
    for name in ("systemctl", "dpkg-query", "virsh"):
        (bin_dir / name).write_text(stub)
        (bin_dir / name).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    monkeypatch.setattr(hostdeps, "GENERATOR_MASKS", tmp_path / "etc" / "system-generators")
    (tmp_path / "etc" / "cloud").mkdir(parents=True)
    monkeypatch.setattr(hostdeps, "CLOUD_INIT_DISABLED", tmp_path / "etc/cloud/cloud-init.disabled")
    autostart = tmp_path / "etc/libvirt/autostart/default.xml"
    autostart.parent.mkdir(parents=True)
    autostart.symlink_to("../default.xml")
    monkeypatch.setattr(hostdeps, "LIBVIRT_DEFAULT_AUTOSTART", autostart)
    return tmp_path


def _calls(base: Path) -> list[list[str]]:
    return [shlex.split(line) for line in (base / "calls.log").read_text().splitlines()]


def test_quiet_disables_masks_and_keeps_only_the_labs_units(stubs: Path) -> None:
    new = {"nginx-common", "libvirt-daemon-system", "netplan.io", "cloud-init"}
    hostdeps.quiet(new, booted=False)
    states = json.loads((stubs / "states.json").read_text())
    assert states["nginx.service"] == "disabled"
    assert states["cloud-init.service"] == "disabled"
    assert states["libvirtd.service"] == "disabled"
    assert states["libvirtd.socket"] == "enabled"  # taken along by the disable, then back
    calls = _calls(stubs)
    assert not [c for c in calls if c[1:2] in (["start"], ["stop"])]  # nothing runs: not booted
    masks = stubs / "etc" / "system-generators"
    assert os.readlink(masks / "netplan") == "/dev/null"
    assert not (masks / "cloud-init-generator").exists()  # it reads the marker below
    assert (stubs / "etc/cloud/cloud-init.disabled").is_file()
    assert not (stubs / "etc/libvirt/autostart/default.xml").is_symlink()


def test_quiet_never_touches_what_the_machine_had(stubs: Path) -> None:
    hostdeps.quiet({"nginx-common"}, booted=False)
    states = json.loads((stubs / "states.json").read_text())
    assert states["cloud-init.service"] == "enabled"
    assert states["libvirtd.service"] == "enabled"
    assert not (stubs / "etc/cloud/cloud-init.disabled").exists()
    assert (stubs / "etc/libvirt/autostart/default.xml").is_symlink()
    assert not (stubs / "etc" / "system-generators").exists()
    touched = {c[-1] for c in _calls(stubs) if c[0] == "systemctl" and c[1] != "is-enabled"}
    assert touched == {"nginx.service"}


def test_on_a_running_systemd_the_labs_sockets_start_and_nothing_else(stubs: Path) -> None:
    hostdeps.quiet({"nginx-common", "libvirt-daemon-system"}, booted=True, runtime_before=set())
    started = [c[-1] for c in _calls(stubs) if c[:2] == ["systemctl", "start"]]
    assert started == ["libvirtd.socket"]


def test_the_module_runs_on_debians_python_alone() -> None:
    """scripts/bootstrap.sh runs it before the virtualenv exists (no site-packages)."""
    done = subprocess.run(
        [sys.executable, "-S", "-m", "halab.plumbing.hostdeps", "list", "host"],
        cwd=REPO, capture_output=True, text=True, timeout=30, check=True,
    )  # fmt: skip
    assert done.stdout.split() == list(hostdeps.read_list()["host"])
