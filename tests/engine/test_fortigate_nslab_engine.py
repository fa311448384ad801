"""The dev stack's FortiGate edge, for real: the namespace lab's edge runs the FortiOS emulator
with ``--apply-nft``, and the registry's fortios plugin configures it through the built CLI.

The lab's edge loads none of the Linux edge's nftables, so a client reaches the LB VIP only
through the objects the provider created. The Pulumi run sits where the tutorial's client PC
does (the client namespace, the public zone's hypervisor address) and reaches the emulator on
the stack's ``fortigateHost``, verifying its throwaway CA. Each step is timed:

``up`` (traffic passes), the round-robin and lb-hard-failure drills through the public IP,
``preview --expect-no-changes``, ``edgeAllowedSources`` without the client (refused) and back,
``destroy`` (nothing passes, no object left), then the lab down with nothing left.

The lab runs Pulumi.dev.yaml unchanged under a stack name of its own (``LAB_STACK``), so its
namespaces and run folder never meet a dev lab of someone else's; the program's objects are the
dev stack's (``hwl-dev-*``).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from halab.drills.core import settle
from halab.machine import engine
from halab.model.stackconfig import REPO_ROOT
from halab.nslab.lab import NamespaceLab
from halab.plumbing import procs
from tests.engine.test_fortigate_emulator_engine import edge_project
from tests.halab.nslab.running import passing_drills, running_lab

pytestmark = [pytest.mark.engine, pytest.mark.lab]

STACK = "dev"
LAB_STACK = "fgtlab"
#: What the program names its objects with (the dev stack's lab name).
PREFIX = "hwl-dev-"
REPORTS = REPO_ROOT / "reports" / "test-fortigate-lab" / time.strftime("%Y%m%d-%H%M%S")
Project = tuple[Path, dict[str, str]]


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NamespaceLab]:
    """The dev stack's lab with the emulated FortiGate edge; down (and checked gone) whatever
    happens."""
    folder = tmp_path_factory.mktemp("lab-stack")
    shutil.copy(REPO_ROOT / "Pulumi.yaml", folder)
    shutil.copy(REPO_ROOT / f"Pulumi.{STACK}.yaml", folder / f"Pulumi.{LAB_STACK}.yaml")
    with running_lab(LAB_STACK, fortigate_emulator=True, project_dir=folder) as up:
        yield up


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    """The edge-only program of tests/engine/test_fortigate_emulator_engine.py."""
    return edge_project(tmp_path_factory.mktemp("edge-project"))


def _pulumi(lab: NamespaceLab, project: Project, *args: str) -> tuple[str, int, float]:
    """The CLI in the client namespace (the tutorial's client PC); (output, exit, seconds)."""
    root, env = project
    argv = [str(engine.bin_dir() / "pulumi"), *args, "--non-interactive"]
    start = time.monotonic()
    done = subprocess.run(
        procs.nsexec_argv(argv, net=lab.ns("client")),
        cwd=root, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    return done.stdout + done.stderr, done.returncode, time.monotonic() - start


def _step(lab: NamespaceLab, project: Project, times: dict[str, float], name: str,
          *args: str) -> None:  # fmt: skip
    output, code, seconds = _pulumi(lab, project, *args)
    times[name] = seconds
    print(f"\n== {name}: exit {code} in {seconds:.1f}s\n{output[-2500:]}")
    assert code == 0, f"{name} failed:\n{output[-4000:]}"


def _config(lab: NamespaceLab, project: Project, key: str, value: str, *flags: str) -> None:
    output, code, _ = _pulumi(lab, project, "config", "set", *flags, key, value)
    assert code == 0, output


def _edge(lab: NamespaceLab, *argv: str) -> str:
    done = subprocess.run(
        procs.nsexec_argv(list(argv), net=lab.ns("edge")),
        capture_output=True, text=True, timeout=10, check=True,
    )  # fmt: skip
    return done.stdout


def _objects(lab: NamespaceLab) -> dict[str, set[str]]:
    """The lab's own objects (named with its prefix) in the emulator's state file, per table."""
    assert lab.fortigate is not None
    saved = json.loads(lab.fortigate.state_file.read_text())["vdoms"]["root"]
    found = {
        path: {str(e["name"]) for e in entries if str(e.get("name", "")).startswith(PREFIX)}
        for path, entries in saved.items()
    }
    return {path: names for path, names in found.items() if names}


def _served(lab: NamespaceLab) -> str:
    status, body = lab.client_get(timeout=3.0)
    assert status == 200 and "Hello from web-" in body, (status, body[:200])
    return body


def test_the_dev_stack_through_its_emulated_fortigate(lab: NamespaceLab, project: Project) -> None:
    fortigate = lab.fortigate
    assert fortigate is not None
    times: dict[str, float] = {}
    # The edge is the FortiGate and nothing else: the emulator's table alone, no hwl_* tables.
    assert _edge(lab, "nft", "list", "tables").split() == ["table", "inet", "fortigate"]
    # Nothing configured, nothing passes: the public IP is the edge's own, closed.
    with pytest.raises(ConnectionRefusedError):
        lab.client_get(timeout=2.0)

    output, code, _ = _pulumi(lab, project, "stack", "select", "--create", STACK)
    assert code == 0, output
    _config(lab, project, "host", fortigate.hostname)
    _config(lab, project, "caFile", str(fortigate.ca_file))
    _config(lab, project, "token", fortigate.token_file.read_text().strip(), "--secret")
    _config(lab, project, "ports", json.dumps(list(lab.spec.edge.ports)))
    _config(lab, project, "sources", '["0.0.0.0/0"]')

    _step(lab, project, times, "up", "up", "--yes", "--skip-preview")
    objects = _objects(lab)
    assert objects["firewall/vip"] == {"hwl-dev-80", "hwl-dev-443"}
    assert objects["firewall/policy"] == {"hwl-dev-inbound"}
    ruleset = _edge(lab, "nft", "list", "table", "inet", "fortigate")
    assert "dnat ip to 10.0.1.100" in ruleset, ruleset
    t0 = time.monotonic()
    _served(lab)
    times["first 200 through the public IP"] = time.monotonic() - t0

    t0 = time.monotonic()
    passing_drills(lab, ["round-robin", "lb-hard-failure"], REPORTS)
    times["drills round-robin, lb-hard-failure"] = time.monotonic() - t0
    settle(lab, timeout=30.0)
    lab.wait_backends()
    _served(lab)

    _step(lab, project, times, "preview (no changes)", "preview", "--expect-no-changes", "--diff")

    # The client (the public zone's hypervisor address) is not in 198.51.100.0/24: the VIP still
    # translates, the policy no longer accepts, and the FortiGate's implicit deny drops it.
    _config(lab, project, "sources", '["198.51.100.0/24"]')
    _step(lab, project, times, "up (sources without the client)", "up", "--yes", "--skip-preview")
    assert "ip saddr 198.51.100.0/24" in _edge(lab, "nft", "list", "table", "inet", "fortigate")
    with pytest.raises(TimeoutError):
        lab.client_get(timeout=2.0)
    _config(lab, project, "sources", '["0.0.0.0/0"]')
    _step(lab, project, times, "up (sources back)", "up", "--yes", "--skip-preview")
    _served(lab)
    assert _objects(lab).get("firewall/address", set()) == set()

    _step(lab, project, times, "destroy", "destroy", "--yes", "--skip-preview")
    assert not any(_objects(lab).values()), _objects(lab)
    assert "dnat" not in _edge(lab, "nft", "list", "table", "inet", "fortigate")
    with pytest.raises(ConnectionRefusedError):
        lab.client_get(timeout=2.0)
    print("\ntimes: " + "; ".join(f"{k} {v:.1f}s" for k, v in times.items()))
