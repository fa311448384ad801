"""A VM and a namespace host get the same files except Keepalived's two lab-only lines."""

from __future__ import annotations

import difflib

import pytest

from halab.model.roles import Role
from halab.nslab.lab import lab_spec, lab_values
from halab.render.hosts import VM, RenderTarget, render_host


@pytest.mark.parametrize("stack", ["dev", "staging", "tutorial"])
def test_vm_and_netns_renders_differ_only_in_namespace_and_process_name(stack: str) -> None:
    values, secrets = lab_values(stack)
    spec = lab_spec(stack, values, secrets)
    for host in spec.plan.hosts:
        target = RenderTarget(netns=f"{spec.lab_name}-{host.name}")
        vm = {f.path: f.content for f in render_host(spec, host, VM).files}
        ns = {f.path: f.content for f in render_host(spec, host, target).files}
        assert vm.keys() == ns.keys()
        for path, vm_text in vm.items():
            diff = [
                line
                for line in difflib.unified_diff(
                    vm_text.splitlines(), ns[path].splitlines(), lineterm="", n=0
                )
                if line.startswith(("+", "-")) and not line.startswith(("+++", "---"))
            ]
            if host.role is not Role.LB or path != "/etc/keepalived/keepalived.conf":
                assert diff == [], f"{host.name}:{path} differs between VM and netns: {diff}"
                continue
            removed = [line[1:].strip() for line in diff if line.startswith("-")]
            added = [line[1:].strip() for line in diff if line.startswith("+")]
            name = target.haproxy_process_name(host.name)
            assert removed == ["process haproxy"], diff
            assert f"process {name}" in added
            assert f"net_namespace {target.netns}" in added
            others = [
                a for a in added if a not in (f"process {name}", f"net_namespace {target.netns}")
            ]
            assert all(a.startswith("#") for a in others), f"unexpected lab-only lines: {others}"


def test_lab_spec_plays_the_fortigate_with_the_linux_edge() -> None:
    """dev has a FortiGate; the lab uses the Linux edge, and LB/web files do not change."""
    values, secrets = lab_values("dev")
    assert values["edge"] == "fortigate"
    lab = lab_spec("dev", values, secrets)
    assert lab.edge.kind.value == "linux"
    real = lab_spec("dev", {**values, "edge": "linux"}, secrets)
    assert lab.plan.firewall_rule == real.plan.firewall_rule
    from halab.model.stackconfig import read_stack

    fortigate = read_stack("dev").spec(offline=True)
    for host in fortigate.plan.hosts:
        a = {f.path: f.content for f in render_host(fortigate, host).files}
        b = {f.path: f.content for f in render_host(lab, lab.plan.host(host.name)).files}
        assert a == b, f"{host.name}: files depend on the edge kind"
