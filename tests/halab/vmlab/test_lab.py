"""VmLab without VMs: names, order, command lines (nothing is run but the probe, on loopback)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from halab.cli import build_parser
from halab.model.stackconfig import REPO_ROOT, read_stack
from halab.target.probe import REFUSED, ProbeConfig
from halab.vmlab.lab import VmLab, VmLabError, runs_in_netns


def _lab(tmp_path: Path, netns: str | None = None) -> VmLab:
    spec = read_stack("e2e", REPO_ROOT).spec(offline=True)
    return VmLab(spec, ssh_key=tmp_path / "key", workdir=tmp_path / "work", netns=netns)


def test_names_and_settings(tmp_path: Path) -> None:
    lab = _lab(tmp_path)
    assert lab.lb_names == ["lb-1", "lb-2"]  # the higher VRRP priority first
    assert lab.web_names == ["web-1"]
    assert lab.domain("lb-1") == "hwl-e2e-lb-1"
    assert lab.public_url == "https://192.0.2.10/"
    assert lab.settings.vrrp_advert_interval_ms == 1000
    assert lab.settings.domain_type == "qemu"
    assert lab.settings.target == "vms"


def test_ssh_command_line(tmp_path: Path) -> None:
    argv = _lab(tmp_path, netns="hwl-no-such-netns").ssh_argv(_lab(tmp_path).host("lb-2"), "true")
    assert argv[:4] == ["ip", "netns", "exec", "hwl-no-such-netns"]
    assert argv[-2:] == ["lab@172.22.10.3", "true"]
    assert "ControlMaster=auto" in argv
    assert str(tmp_path / "key") in argv
    assert not runs_in_netns("hwl-no-such-netns")


def test_the_probe_runs_where_the_lab_is_reachable_and_fails_as_e2e(tmp_path: Path) -> None:
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    cfg = ProbeConfig(f"http://127.0.0.1:{port}/", interval=0.02, max_requests=3)
    lab = _lab(tmp_path)  # no netns: the probe runs right here
    probe = lab.start_probe(cfg, 10.0)
    probe.wait(10.0)
    assert [s.outcome for s in probe.stop()] == [REFUSED] * 3
    assert not list(lab.workdir.glob("probe-*"))
    spec = read_stack("e2e", REPO_ROOT).spec(offline=True)
    broken = VmLab(spec, ssh_key=None, workdir=tmp_path / "work", python="/bin/false")
    with pytest.raises(VmLabError, match="did not start, it ended"):
        broken.start_probe(cfg, 10.0)


def test_check_command_arguments() -> None:
    args = build_parser().parse_args(["check", "--stack", "e2e", "--steps", "round-robin"])
    assert args.stack == "e2e"
    assert args.steps == "round-robin"
    args = build_parser().parse_args(["plan-check", "p.json", "--new-host", "web-2"])
    assert args.new_host == "web-2"


def test_spec_from_pulumi_config_json() -> None:
    from halab.model.stackconfig import stack_spec

    # What `pulumi config --json` prints after `pulumi config set`: every value a string.
    config = {
        "ha-web-lab:edge": {"value": "linux", "secret": False},
        "ha-web-lab:domainType": {"value": "qemu", "secret": False},
        "ha-web-lab:vrrpVersion": {"value": "3", "secret": False},
        "ha-web-lab:vrrpAdvertIntervalMs": {"value": "1000", "secret": False},
        "ha-web-lab:libvirtUri": {"value": "qemu:///system?socket=/x", "secret": False},
        "ha-web-lab:sshPrivateKey": {"secret": True},
        "ha-web-lab:hosts": {
            "value": '[{"name":"lb-1","role":"lb"},{"name":"lb-2","role":"lb"},'
            '{"name":"web-1","role":"web"},{"name":"web-2","role":"web"}]',
            "secret": False,
        },
    }
    spec = stack_spec("e2e", REPO_ROOT, config)
    assert spec.vrrp.version == 3
    assert spec.vm.libvirt_uri == "qemu:///system?socket=/x"
    assert [h.name for h in spec.plan.hosts][:4] == ["lb-1", "lb-2", "web-1", "web-2"]
    assert "sshPrivateKey" in spec.secrets_present


def test_balanced() -> None:
    from halab.drills.analysis import balanced

    assert balanced({"web-1": 5, "web-2": 5}, ["web-1", "web-2"])
    assert balanced({"web-1": 6, "web-2": 4}, ["web-1", "web-2"])
    assert not balanced({"web-1": 9, "web-2": 1}, ["web-1", "web-2"])
    assert not balanced({"web-1": 10}, ["web-1", "web-2"])


def test_a_host_that_never_gets_healthy_says_which_unit_and_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lab = _lab(tmp_path)
    asked: list[str] = []

    def run(name: str, command: str, timeout: float = 30.0) -> str:
        asked.append(command)
        if "--quiet" in command:
            raise VmLabError(f"{name}: `{command}` exit 3: ")
        return "active\ninactive\nkeepalived[412]: Stopped (exit 1)\n"

    monkeypatch.setattr(lab, "run", run)
    monkeypatch.setattr("halab.vmlab.lab.time.sleep", lambda _s: None)
    with pytest.raises(VmLabError, match="not healthy within 0s") as failed:
        lab.wait_healthy("lb-1", timeout=0.01)
    assert "inactive" in str(failed.value) and "Stopped (exit 1)" in str(failed.value)
    # The quiet check first, then one question for the states and the journal.
    assert "journalctl -b" in asked[-1] and "-u keepalived.service" in asked[-1]
