"""Readiness gates under mocks: one per VM over SSH, then the tier through the VIP and public IP."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import pulumi
import pytest

from halab.model.spec import load_spec
from halab.model.stackconfig import read_stack
from halab.render.hosts import VM, readiness_script, render_host
from tests.conftest import FAKE_PEM, TEST_PRIVATE_KEY, TEST_SSH_KEY, Graph

Program = Callable[..., Graph]


def test_each_vm_has_a_gate_after_its_domain(program: Program) -> None:
    graph = program("staging")
    # The spec the program saw: the stack plus the test key conftest sets.
    spec = load_spec(
        {**read_stack("staging").values, "sshPublicKeys": [TEST_SSH_KEY]}, stack="staging"
    )
    gates = {r.name: r for r in graph.of_type("command:remote:Command")}
    for host in spec.plan.hosts:
        vm_name = f"lab-{host.role.value}-{host.name}"
        gate = gates[f"{vm_name}-ready"]
        conn = gate.inputs["connection"]
        assert conn["host"] == str(host.management_address)
        assert conn["user"] == "lab"
        assert conn["privateKey"] == TEST_PRIVATE_KEY
        # staging: readinessTimeoutS 900, one attempt up to 10 s dial + 5 s backoff.
        assert conn["dialErrorLimit"] == 60 and conn["perDialTimeout"] == 10
        rendered = (
            render_host(spec, host, VM, FAKE_PEM + "\n")
            if host.role.value == "lb"
            else render_host(spec, host)
        )
        assert gate.inputs["create"] == readiness_script(spec, rendered)
        assert "/run/cloud-init/result.json" in gate.inputs["create"]
        # Runs after the VM exists, and again whenever what the VM holds changes ...
        assert graph.named(f"{vm_name}-domain").urn in gate.dependencies
        seed = graph.named(f"{vm_name}-seed")
        # ... and again when the VM is a new one (a replaced domain has a new id).
        assert gate.inputs["triggers"] == [rendered.config_hash, f"{vm_name}-domain-id"]
        # Plain, never secret: pulumi-command refuses a secret trigger unknown at preview.
        assert "triggers" not in gate.secret_inputs
        assert seed.inputs["name"].endswith(f"-seed-{rendered.instance_id[-12:]}.iso")
        assert "connection" in gate.secret_inputs


def test_tier_gate_checks_every_web_node_through_vip_then_public_ip(program: Program) -> None:
    graph = program("staging")
    through_vip = graph.named("lab-gate-through-vip")
    script = through_vip.inputs["create"]
    assert "https://172.20.1.100/" in script
    assert 'expected=("web-1" "web-2" "web-3" )' in script
    assert through_vip.inputs["connection"]["host"] == "172.20.10.2"  # lb-1's internal leg
    host_gates = {
        r.urn for r in graph.of_type("command:remote:Command") if r.name.endswith("-ready")
    }
    assert len(host_gates) == 7  # staging: 3 LBs, 3 web nodes, the edge
    assert host_gates <= set(through_vip.dependencies)
    public = graph.named("lab-gate-through-public-ip")
    assert public.type == "command:local:Command"
    assert "https://198.51.100.10/" in public.inputs["create"]
    assert through_vip.urn in public.dependencies


def test_gates_are_off_with_readiness_false(program: Program) -> None:
    graph = program("staging", readiness=False)
    assert not graph.of_type("command:remote:Command")
    assert not [r for r in graph.resources if r.name.startswith("lab-gate")]


def test_no_key_and_no_agent_is_a_clear_error(
    program: Program, monkeypatch: pytest.MonkeyPatch, graph: Graph
) -> None:
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    with pytest.raises(
        pulumi.RunError, match=r"sshPrivateKey = \(not set\): the readiness gates need SSH"
    ):
        program("staging", sshPrivateKey="")
    assert graph.resources == []


@pytest.fixture
def live_agent(tmp_path: Path) -> Iterator[str]:
    """A unix socket that accepts connections, where SSH_AUTH_SOCK would point."""
    path = str(tmp_path / "agent.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        server.bind(path)
        server.listen(4)
        yield path


def test_agent_is_used_without_a_key(
    program: Program, monkeypatch: pytest.MonkeyPatch, live_agent: str
) -> None:
    monkeypatch.setenv("SSH_AUTH_SOCK", live_agent)
    graph = program("staging", sshPrivateKey="")
    conn = graph.named("lab-web-web-1-ready").inputs["connection"]
    assert conn["agentSocketPath"] == live_agent
    assert "privateKey" not in conn


def test_a_key_is_used_alone_even_with_an_agent(
    program: Program, monkeypatch: pytest.MonkeyPatch, live_agent: str
) -> None:
    monkeypatch.setenv("SSH_AUTH_SOCK", live_agent)
    conn = program("staging").named("lab-web-web-1-ready").inputs["connection"]
    assert conn["privateKey"] == TEST_PRIVATE_KEY
    assert "agentSocketPath" not in conn


@pytest.mark.parametrize("key", ["", None])
def test_a_stale_agent_socket_is_refused_before_anything_exists(
    program: Program, monkeypatch: pytest.MonkeyPatch, graph: Graph, tmp_path: Path, key: str | None
) -> None:
    # pulumi-command dials SSH_AUTH_SOCK before it logs in, with a key too: a dead socket
    # would fail every gate after the VMs were made.
    monkeypatch.setenv("SSH_AUTH_SOCK", str(tmp_path / "gone.sock"))
    overrides = {} if key is None else {"sshPrivateKey": key}
    with pytest.raises(pulumi.RunError, match=r"^SSH_AUTH_SOCK = '.*gone.sock': no SSH agent"):
        program("staging", **overrides)
    assert graph.resources == []


def test_lb_gates_run_one_at_a_time_backup_first(program: Program) -> None:
    graph = program("staging")
    master, second, last = (graph.named(f"lab-lb-lb-{i}-ready") for i in (1, 2, 3))
    # A rerun of setup may reload a daemon: each LB's gate waits for the one of the next lower
    # priority, so no two LBs reload at once and the preferred master gets the new config last.
    assert second.urn in master.dependencies and last.urn in second.dependencies
    assert master.urn not in second.dependencies and second.urn not in last.dependencies
    # The LB that gates first still waits only for its own domain (and what the group waits for).
    assert not any(d.endswith("-ready") for d in last.dependencies)
