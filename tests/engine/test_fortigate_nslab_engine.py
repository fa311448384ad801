"""The dev stack's FortiGate edge, for real: the namespace lab's edge runs the FortiOS emulator
with ``--apply-nft``, and the registry's fortios plugin configures it through the built CLI.

The lab's edge loads none of the Linux edge's nftables, so a client reaches the LB VIP only
through the objects the provider created. The Pulumi run sits where the tutorial's client PC
does (the client namespace, the public zone's hypervisor address) and reaches the emulator on
the stack's ``fortigateHost``, verifying its throwaway CA. Each step is timed:

``up`` (traffic passes), the round-robin and lb-hard-failure drills through the public IP,
``preview --expect-no-changes``, ``refresh --expect-no-changes`` and ``preview`` again (reads
answer FortiOS's normal forms, so a refresh changes nothing and plans nothing), port 80 taken out
of ``edgePorts`` and put back (the VIP group and the policy stop naming its VIP before it is
deleted; the edge's ruleset drops and regains its DNAT; 443 never stops answering),
``edgeAllowedSources`` without the client (refused) and back, ``destroy`` (nothing passes, no
object left), then the lab down with nothing left. The client's probe runs through the public IP
around each change's ``up``; what it saw is printed per change.

The lab runs Pulumi.dev.yaml unchanged under a stack name of its own (``LAB_STACK``), so its
namespaces and run folder never meet a dev lab of someone else's; the program's objects are the
dev stack's (``hwl-dev-*``).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from halab.drills import analysis
from halab.drills.core import settle
from halab.machine import engine
from halab.model.stackconfig import REPO_ROOT
from halab.nslab.lab import NamespaceLab, http_get
from halab.plumbing import procs
from halab.target.probe import OK, REFUSED, ProbeConfig, Sample
from tests.engine.test_fortigate_emulator_engine import edge_project
from tests.halab.nslab.running import passing_drills, running_lab

pytestmark = [pytest.mark.engine, pytest.mark.lab]

STACK = "dev"
LAB_STACK = "fgtlab"
#: What the program names its objects with (the dev stack's lab name).
PREFIX = "hwl-dev-"
REPORTS = REPO_ROOT / "reports" / "test-fortigate-lab" / time.strftime("%Y%m%d-%H%M%S")
Project = tuple[Path, dict[str, str]]

#: The client's probe around each change. Patient (1 s to connect, 2 s in all, where the drills
#: allow 0.2 s and 0.3 s): the CLI, its Python program and the plugin share the 2-core machine
#: with the lab during an ``up``, and a request late for that reason is not what is measured
#: here. A SYN the edge drops still fails it: TCP's first retransmission comes after 1 s (RFC
#: 6298 section 2.1's initial RTO), when the connect has already timed out.
CHANGE_PROBE = ProbeConfig(url="", interval=0.05, connect_timeout=1.0, total_timeout=2.0)
#: The probe runs this long before the ``up`` and after it, so each window shows the path as it
#: was and as it became.
PROBE_MARGIN_S = 1.0
#: The probe's own end, should the test never stop it (an ``up`` is bounded by 300 s).
PROBE_BOUND_S = 330.0
#: Requests to the kept port (443) that may fail while port 80 goes and comes back: none. Every
#: state the provider's order passes through keeps VIP hwl-dev-443 in the group and HTTPS in the
#: policy (the group and the policy are updated first, the old VIP deleted last; a new VIP is
#: created first, then named), and the emulator loads each state as one ``nft -f`` transaction
#: that deletes and recreates its table at once (nftables commits a batch atomically: a packet
#: meets the old ruleset or the new one, never none), while conntrack keeps the NAT of the
#: connections already made. So no request to 443 meets a missing DNAT (the edge's own closed
#: port: refused) or the implicit deny (dropped: a connect timeout).
KEPT_PORT_FAILURES = 0
#: What port 80 of the public IP answers when it is forwarded: HAProxy's redirect to HTTPS
#: (cloud-init/haproxy.cfg.j2), which the probe on port 80 counts as answered.
REDIRECT = 301


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


def _entry(lab: NamespaceLab, path: str, name: str) -> dict[str, object]:
    """One entry of the emulator's state file (``name`` is the table's key, as text)."""
    assert lab.fortigate is not None
    saved = json.loads(lab.fortigate.state_file.read_text())["vdoms"]["root"]
    key = "policyid" if path == "firewall/policy" else "name"
    found = [e for e in saved.get(path, []) if str(e[key]) == name]
    assert len(found) == 1, (path, name, saved.get(path))
    return dict(found[0])


def _dnat_ports(lab: NamespaceLab) -> set[int]:
    """The public ports the edge's ruleset translates to the LB VIP (as ``nft list`` shows them)."""
    ruleset = _edge(lab, "nft", "list", "table", "inet", "fortigate")
    vip = re.escape(str(lab.spec.vip_address))
    return {int(p) for p in re.findall(rf"tcp dport (\d+) dnat ip to {vip}\b", ruleset)}


def _served(lab: NamespaceLab) -> str:
    status, body = lab.client_get(timeout=3.0)
    assert status == 200 and "Hello from web-" in body, (status, body[:200])
    return body


def _port80(lab: NamespaceLab) -> int:
    """The status port 80 of the public IP answers the client with (HAProxy's redirect to
    HTTPS when forwarded); ConnectionRefusedError when the edge itself answers."""
    status, _body = http_get(
        lab.ns("client"), str(lab.spec.public_address), 80, "/", tls=False, timeout=3.0
    )
    return status


def _probed_up(lab: NamespaceLab, project: Project, times: dict[str, float], name: str,
               urls: list[str]) -> dict[str, list[Sample]]:  # fmt: skip
    """``up`` with the client's probe on each of ``urls`` from before it to after it; prints
    what each probe saw."""
    runs = {url: lab.start_probe(replace(CHANGE_PROBE, url=url), PROBE_BOUND_S) for url in urls}
    started = time.time()
    try:
        time.sleep(PROBE_MARGIN_S)
        started = time.time()
        _step(lab, project, times, name, "up", "--yes", "--skip-preview")
        time.sleep(PROBE_MARGIN_S)
    finally:
        samples = {url: run.stop() for url, run in runs.items()}
    samples = {
        url: [replace(s, outcome=OK) if s.status == REDIRECT else s for s in got]
        for url, got in samples.items()
    }
    for url, got in samples.items():
        print(f"probe during {name}, {url}: {_figures(got, started)}")
    return samples


def _first(samples: list[Sample], outcome: str) -> float:
    return min(s.t for s in samples if s.outcome == outcome)


def _last(samples: list[Sample], outcome: str) -> float:
    return max(s.t for s in samples if s.outcome == outcome)


def _figures(samples: list[Sample], started: float) -> str:
    """How many failed, the longest silence, and when each outcome was first and last seen
    (seconds from the ``up``'s start)."""
    m = analysis.metrics(samples)
    seen = ", ".join(
        f"{outcome} x{count} ({_first(samples, outcome) - started:+.2f}.."
        f"{_last(samples, outcome) - started:+.2f}s)"
        for outcome, count in m.outcomes.items()
    )
    return (
        f"{m.requests} requests, {m.failed} failed, longest silence "
        f"{analysis.longest_silence(samples):.2f}s, statuses {m.statuses}; {seen}"
    )


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
    # A refresh reads every object back: FortiOS's normal forms must change nothing in the state
    # and leave nothing to plan.
    _step(lab, project, times, "refresh (no changes)", "refresh", "--yes", "--skip-preview",
          "--expect-no-changes")  # fmt: skip
    _step(lab, project, times, "preview after refresh", "preview", "--expect-no-changes", "--diff")

    # Port 80 out of edgePorts: its VIP goes. FortiOS refuses to delete a VIP the group names
    # (-23), so the up passes only in the order group update, policy update, VIP delete (the
    # delete is Pulumi's last step: components/edge.py). The LB does not listen on another port,
    # so removing one and putting it back is the change the lab can answer.
    public, https = str(lab.spec.public_address), lab.public_url
    http = f"http://{public}/"
    assert _port80(lab) == 301
    probes: dict[str, dict[str, list[Sample]]] = {}
    _config(lab, project, "ports", "[443]")
    probes["ports 443"] = _probed_up(lab, project, times, "up (ports 443)", [https, http])
    assert _objects(lab)["firewall/vip"] == {"hwl-dev-443"}
    assert _entry(lab, "firewall/vipgrp", "hwl-dev-vips")["member"] == [{"name": "hwl-dev-443"}]
    assert _entry(lab, "firewall/policy", "1000")["service"] == [{"name": "HTTPS"}]
    assert _dnat_ports(lab) == {443}
    with pytest.raises(ConnectionRefusedError):
        _port80(lab)  # no DNAT: the edge's own port 80, closed
    _served(lab)

    _config(lab, project, "ports", json.dumps(list(lab.spec.edge.ports)))
    probes["ports 80, 443"] = _probed_up(lab, project, times, "up (ports 80, 443)", [https, http])
    assert _objects(lab)["firewall/vip"] == {"hwl-dev-80", "hwl-dev-443"}
    members = _entry(lab, "firewall/vipgrp", "hwl-dev-vips")["member"]
    assert isinstance(members, list)
    assert {m["name"] for m in members} == {"hwl-dev-80", "hwl-dev-443"}
    assert _dnat_ports(lab) == {80, 443}
    assert _port80(lab) == 301
    _served(lab)
    for change in ("ports 443", "ports 80, 443"):
        kept = analysis.metrics(probes[change][https])
        assert kept.failed <= KEPT_PORT_FAILURES, (change, kept.outcomes)
    # Port 80 itself: answered (HAProxy's 301) until its VIP goes, then refused by the edge, for
    # good; and the other way round when it comes back.
    assert _last(probes["ports 443"][http], OK) < _first(probes["ports 443"][http], REFUSED)
    assert _last(probes["ports 80, 443"][http], REFUSED) < _first(probes["ports 80, 443"][http], OK)

    # The client (the public zone's hypervisor address) is not in 198.51.100.0/24: the VIP still
    # translates, the policy no longer accepts, and the FortiGate's implicit deny drops it.
    _config(lab, project, "sources", '["198.51.100.0/24"]')
    probes["sources without the client"] = _probed_up(
        lab, project, times, "up (sources without the client)", [https]
    )
    assert "ip saddr 198.51.100.0/24" in _edge(lab, "nft", "list", "table", "inet", "fortigate")
    with pytest.raises(TimeoutError):
        lab.client_get(timeout=2.0)
    _config(lab, project, "sources", '["0.0.0.0/0"]')
    probes["sources back"] = _probed_up(lab, project, times, "up (sources back)", [https])
    _served(lab)
    assert _objects(lab).get("firewall/address", set()) == set()

    _step(lab, project, times, "destroy", "destroy", "--yes", "--skip-preview")
    assert not any(_objects(lab).values()), _objects(lab)
    assert "dnat" not in _edge(lab, "nft", "list", "table", "inet", "fortigate")
    with pytest.raises(ConnectionRefusedError):
        lab.client_get(timeout=2.0)
    print("\ntimes: " + "; ".join(f"{k} {v:.1f}s" for k, v in times.items()))
    for change, by_url in probes.items():
        for url, samples in by_url.items():
            m = analysis.metrics(samples)
            print(f"probe, {change}, {url}: {m.failed}/{m.requests} failed, longest silence "
                  f"{analysis.longest_silence(samples):.2f}s")  # fmt: skip
