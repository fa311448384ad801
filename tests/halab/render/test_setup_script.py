"""The rendered setup script reapplies only what changed.

The script runs against stub commands that record their arguments, so what each step does is
seen without a VM: at first boot (no arguments) every step; on a rerun by the readiness gate
(the changed files as arguments) only the steps that read one of them. A reload of Keepalived
on the VIP's holder is a failover, so a new HAProxy backend must not touch Keepalived.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from halab.model.roles import PATHS
from halab.model.spec import LabSpec
from halab.model.stackconfig import read_stack
from halab.render.hosts import render_all

#: Everything the script may call; each stub appends its name and arguments to the log.
COMMANDS = ("sysctl", "nft", "systemctl", "sshd", "haproxy", "keepalived", "nginx", "rm", "ln")


@pytest.fixture(scope="module")
def spec() -> LabSpec:
    return read_stack("dev").spec(offline=True)


def _run_setup(spec: LabSpec, host: str, tmp_path: Path, *changed: str) -> list[str]:
    """Run host's setup script with stubs only on PATH; the commands it ran, one per line."""
    script = next(f for f in render_all(spec)[host].files if f.path == PATHS.setup).content
    stubs = tmp_path / "bin"
    stubs.mkdir(exist_ok=True)
    log = tmp_path / "calls.log"
    log.write_text("")
    for name in COMMANDS:
        stub = stubs / name
        stub.write_text(f'#!/bin/bash\necho "{name} $*" >> {log}\n')
        stub.chmod(0o755)
    (tmp_path / "setup").write_text(script)
    done = subprocess.run(
        ["/bin/bash", str(tmp_path / "setup"), *changed],
        env={"PATH": str(stubs)},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return log.read_text().splitlines()


def _reloaded(calls: list[str]) -> set[str]:
    """Units the script reloaded or restarted."""
    units = set()
    for call in calls:
        words = call.split()
        if words[0] == "systemctl" and words[1] in ("reload", "restart", "reload-or-restart"):
            units.update(words[2:])
    return units


def test_first_boot_runs_every_step(spec: LabSpec, tmp_path: Path) -> None:
    lb = _run_setup(spec, "lb-1", tmp_path)
    assert _reloaded(lb) == {"nftables.service", "ssh.service", "haproxy.service",
                             "keepalived.service"}  # fmt: skip
    assert f"sysctl -p {PATHS.sysctl}" in lb
    web = _run_setup(spec, "web-1", tmp_path)
    assert _reloaded(web) == {"nftables.service", "ssh.service", "ha-web-app.service",
                              "nginx.service"}  # fmt: skip
    assert "systemctl daemon-reload" in web


def test_a_new_haproxy_backend_reloads_haproxy_only(spec: LabSpec, tmp_path: Path) -> None:
    calls = _run_setup(spec, "lb-1", tmp_path, PATHS.haproxy_cfg)
    assert _reloaded(calls) == {"haproxy.service"}
    assert f"haproxy -c -q -f {PATHS.haproxy_cfg}" in calls
    assert not any(c.startswith(("keepalived", "nft", "sysctl", "sshd")) for c in calls)


def test_a_keepalived_change_is_checked_then_reloaded(spec: LabSpec, tmp_path: Path) -> None:
    calls = _run_setup(spec, "lb-2", tmp_path, PATHS.keepalived_conf)
    assert _reloaded(calls) == {"keepalived.service"}
    test = calls.index(f"keepalived --config-test -f {PATHS.keepalived_conf}")
    assert test < calls.index("systemctl reload-or-restart keepalived.service")


def test_the_firewall_is_reloaded_never_restarted(spec: LabSpec, tmp_path: Path) -> None:
    # Debian's nftables unit stops with `nft flush ruleset`: a restart empties every table.
    calls = _run_setup(spec, "web-2", tmp_path, PATHS.nftables)
    assert _reloaded(calls) == {"nftables.service"}
    assert "systemctl reload-or-restart nftables.service" in calls
    assert f"nft -c -f {PATHS.nftables}" in calls


def test_app_code_restarts_the_app_without_a_systemd_reload(spec: LabSpec, tmp_path: Path) -> None:
    calls = _run_setup(spec, "web-1", tmp_path, f"{PATHS.app_dir}/main.py")
    assert _reloaded(calls) == {"ha-web-app.service"}
    assert "systemctl daemon-reload" not in calls


def test_a_new_setup_script_runs_every_step(spec: LabSpec, tmp_path: Path) -> None:
    everything = _run_setup(spec, "lb-1", tmp_path)
    assert _run_setup(spec, "lb-1", tmp_path, PATHS.haproxy_cfg, PATHS.setup) == everything


def test_unrelated_files_run_nothing(spec: LabSpec, tmp_path: Path) -> None:
    assert _run_setup(spec, "lb-1", tmp_path, f"{PATHS.app_dir}/main.py") == []
