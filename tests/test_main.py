"""The whole program under Pulumi mocks: the resource graph of the dev and staging stacks."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable

import pulumi
import pytest
import yaml

from halab.model.stackconfig import read_stack
from tests.conftest import (
    TEST_PRIVATE_KEY,
    TEST_SSH_KEY,
    TEST_TOKEN,
    Graph,
    Registered,
    build,
    run_program,
    stack_config,
)

Program = Callable[..., Graph]


def _by_id(graph: Graph, resource_id_suffix: str = "-id") -> dict[str, Registered]:
    return {f"{r.name}{resource_id_suffix}": r for r in graph.resources if r.custom}


def _seed_of(graph: Graph, domain: Registered) -> Registered:
    return _by_id(graph)[domain.inputs["cloudinit"]]


def test_dev_has_one_network_per_zone(program: Program, graph: Graph) -> None:
    program("dev")
    nets = {r.inputs["name"]: r.inputs for r in graph.of_type("libvirt:index/network:Network")}
    assert set(nets) == {"hwl-dev-public", "hwl-dev-dmz", "hwl-dev-internal"}
    assert nets["hwl-dev-internal"]["mode"] == "nat"
    assert nets["hwl-dev-internal"]["addresses"] == ["192.168.10.0/24"]
    # The DMZ is pure layer 2: the FortiGate, not the hypervisor, owns 10.0.1.1.
    assert nets["hwl-dev-dmz"]["mode"] == "none"
    assert "addresses" not in nets["hwl-dev-dmz"]
    assert all(n["autostart"] is True for n in nets.values())
    assert all(n["dhcp"] == {"enabled": False} for n in nets.values())


@pytest.mark.parametrize(
    ("stack", "hosts"),
    [
        ("dev", {"lb-1", "lb-2", "web-1", "web-2"}),
        ("staging", {"lb-1", "lb-2", "lb-3", "web-1", "web-2", "web-3", "edge"}),
    ],
)
def test_one_domain_per_host_with_pinned_macs(
    program: Program, graph: Graph, stack: str, hosts: set[str]
) -> None:
    program(stack)
    spec = read_stack(stack).spec(offline=True)
    domains = {r.inputs["name"]: r for r in graph.of_type("libvirt:index/domain:Domain")}
    assert set(domains) == {f"hwl-{stack}-{h}" for h in hosts}
    by_id = _by_id(graph)
    for host in spec.plan.hosts:
        domain = domains[f"hwl-{stack}-{host.name}"]
        nics = domain.inputs["networkInterfaces"]
        assert [n["mac"] for n in nics] == [leg.mac for leg in host.legs]
        nets = [by_id[n["networkId"]].inputs["name"] for n in nics]
        assert nets == [f"hwl-{stack}-{leg.zone.value}" for leg in host.legs]
        assert "waitForLease" not in str(nics)
        assert domain.inputs["type"] == "kvm"
        assert domain.inputs["consoles"][0]["targetType"] == "serial"
        assert domain.inputs["memory"] == host.memory_mib


def test_cloud_init_of_each_host_is_its_own(program: Program, graph: Graph) -> None:
    program("staging")
    spec = read_stack("staging").spec(offline=True)
    for domain in graph.of_type("libvirt:index/domain:Domain"):
        host = spec.plan.host(domain.inputs["name"].removeprefix("hwl-staging-"))
        seed = _seed_of(graph, domain).inputs
        user = yaml.safe_load(seed["userData"])
        assert seed["userData"].startswith("#cloud-config\n")
        assert user["hostname"] == host.name
        assert user["ssh_pwauth"] is False
        assert user["users"][0]["ssh_authorized_keys"] == [TEST_SSH_KEY]
        assert user["runcmd"] == [["/usr/local/sbin/ha-web-lab-setup"]]
        net = yaml.safe_load(seed["networkConfig"])
        assert net["version"] == 2
        for leg in host.legs:
            eth = net["ethernets"][leg.ifname]
            assert eth["match"] == {"macaddress": leg.mac}
            assert eth["addresses"] == [f"{leg.address}/{leg.network.prefixlen}"]
            assert eth["dhcp4"] is False
        meta = yaml.safe_load(seed["metaData"])
        assert meta["local-hostname"] == host.name
        assert meta["instance-id"] in seed["name"] or seed["name"].endswith(".iso")


def test_lb_seed_carries_haproxy_with_every_web_node(program: Program, graph: Graph) -> None:
    program("staging")
    domain = next(
        d for d in graph.of_type("libvirt:index/domain:Domain") if d.inputs["name"].endswith("lb-2")
    )
    files = {
        f["path"]: f["content"]
        for f in yaml.safe_load(_seed_of(graph, domain).inputs["userData"])["write_files"]
    }
    haproxy = files["/etc/haproxy/haproxy.cfg"]
    for address in ("172.20.10.10:80", "172.20.10.11:80", "172.20.10.12:80"):
        assert f" {address} check" in haproxy
    keepalived = files["/etc/keepalived/keepalived.conf"]
    assert "unicast_src_ip 172.20.1.12" in keepalived
    assert "priority 100" in keepalived
    # The shared certificate (here the mocked command's output) is what HAProxy serves.
    assert "BEGIN CERTIFICATE" in files["/etc/haproxy/certs/ha-web-lab.pem"]


def test_dev_fortigate_objects(program: Program, graph: Graph) -> None:
    program("dev")
    vips = {r.inputs["extport"]: r for r in graph.of_type("fortios:firewall/vip:Vip")}
    assert set(vips) == {"80", "443"}
    for port, vip in vips.items():
        assert vip.inputs["extip"] == "203.0.113.10"
        assert vip.inputs["mappedips"] == [{"range": "10.0.1.100"}]
        assert vip.inputs["mappedport"] == port
        assert vip.inputs["extintf"] == "port1"
        assert vip.inputs["portforward"] == "enable"
    (group,) = graph.of_type("fortios:firewall/vipgrp:Vipgrp")
    assert sorted(m["name"] for m in group.inputs["members"]) == ["hwl-dev-443", "hwl-dev-80"]
    # The members, and the zones' networks (the FortiGate sits on them: deleted after it).
    networks = {r.urn for r in graph.resources if r.type == "libvirt:index/network:Network"}
    assert len(networks) == 3
    assert set(group.dependencies) == {v.urn for v in vips.values()} | networks
    (policy,) = graph.of_type("fortios:firewall/policy:Policy")
    assert networks <= set(policy.dependencies)
    p = policy.inputs
    assert p["srcintfs"] == [{"name": "port1"}] and p["dstintfs"] == [{"name": "port2"}]
    assert p["dstaddrs"] == [{"name": "hwl-dev-vips"}]
    assert sorted(s["name"] for s in p["services"]) == ["HTTP", "HTTPS"]
    assert p["action"] == "accept" and p["nat"] == "disable" and p["policyid"] == 1000
    # Wired by outputs, not literals: the policy depends on the group.
    assert group.urn in policy.dependencies
    (provider,) = graph.of_type("pulumi:providers:fortios")
    assert provider.inputs["hostname"] == "203.0.113.2"
    assert all(r.provider.startswith(provider.urn) for r in (policy, group, *vips.values()))
    assert TEST_TOKEN not in str(p)


def test_staging_has_linux_edge_and_no_fortios(program: Program, graph: Graph) -> None:
    program("staging")
    assert not [r for r in graph.resources if r.type.startswith("fortios:")]
    edge = graph.named("lab-edge-edge-domain")
    user = yaml.safe_load(_seed_of(graph, edge).inputs["userData"])
    nft = next(f["content"] for f in user["write_files"] if f["path"] == "/etc/nftables.conf")
    assert "dnat to 172.20.1.100" in nft
    assert "ip daddr 198.51.100.10 tcp dport { 80, 443 }" in nft


def test_children_are_parented_to_their_components(program: Program, graph: Graph) -> None:
    program("dev")
    domain = graph.named("lab-web-web-1-domain")
    vm = graph.by_urn(domain.parent)
    assert vm.type == "ha-web-lab:index:LabVm" and vm.name == "lab-web-web-1"
    assert graph.by_urn(vm.parent).type == "ha-web-lab:index:HostGroup"
    for r in graph.resources:
        if r.type.startswith("ha-web-lab:index:") or r.type.startswith("pulumi:providers:"):
            continue
        assert r.parent, f"{r.name} has no parent component"
        assert r.name.startswith(graph.by_urn(r.parent).name + "-"), r.name


def test_lbs_wait_for_the_web_tier(program: Program, graph: Graph) -> None:
    program("dev")
    # Depending on a component means depending on every resource inside it.
    web_domains = {graph.named(f"lab-web-web-{i}-domain").urn for i in (1, 2)}
    for name in ("lab-lb-lb-1", "lab-lb-lb-2"):
        assert web_domains <= set(graph.named(name).dependencies)


def test_bad_config_stops_before_any_resource(program: Program, graph: Graph) -> None:
    with pytest.raises(
        pulumi.RunError, match=r"ha-web-lab:vip = '10.9.9.9': is outside 10.0.1.0/24"
    ):
        program("dev", vip="10.9.9.9")
    assert graph.resources == []


def test_plain_text_token_is_refused(program: Program, graph: Graph) -> None:
    flat, _ = stack_config("dev")
    pulumi.runtime.set_all_config(flat, [])  # the token is set, but not as a secret
    with pytest.raises(pulumi.RunError, match=r"fortigateToken.*must be a secret"):
        build(run_program)
    assert graph.resources == []


def test_a_misspelt_key_stops_the_program_and_names_the_key_it_meant(
    program: Program, graph: Graph
) -> None:
    with pytest.raises(
        pulumi.RunError,
        match=r"^ha-web-lab:edgeAllowedSource = .*10\.0\.0\.0/8.*"
        r"did you mean edgeAllowedSources\?$",
    ):
        program("staging", edgeAllowedSource=["10.0.0.0/8"])
    assert graph.resources == []


def test_keys_the_cli_passes_in_pulumi_config_are_checked_too(
    graph: Graph, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The language host's way: the whole config in PULUMI_CONFIG, the secret keys beside it.
    flat, secret_keys = stack_config("staging")
    typo = "ha-web-lab:sshPrivateKy"
    monkeypatch.setenv("PULUMI_CONFIG", json.dumps({**flat, typo: TEST_PRIVATE_KEY}))
    pulumi.runtime.set_all_config({}, [*secret_keys, typo])
    pulumi.runtime.settings._set_stack("staging")
    with pytest.raises(pulumi.RunError, match=r"did you mean sshPrivateKey\?") as info:
        build(run_program)
    assert "[secret]" in str(info.value) and "PRIVATE KEY" not in str(info.value)
    assert graph.resources == []


def test_other_namespaces_are_left_to_their_owners(program: Program, graph: Graph) -> None:
    flat, secret_keys = stack_config("staging")
    extra = {"libvirt:uri": "qemu:///system", "pulumi:tags": "{}", "fortios:insecure": "true"}
    pulumi.runtime.set_all_config({**flat, **extra}, secret_keys)
    pulumi.runtime.settings._set_stack("staging")
    build(run_program)
    assert graph.of_type("libvirt:index/domain:Domain")


def _pushed_files(script: str) -> dict[str, str]:
    """The files a gate script converges: `converge PATH MODE 'BASE64'` lines."""
    out = {}
    for line in script.splitlines():
        if line.startswith("converge /"):
            _, path, _mode, b64 = line.split(" ", 3)
            out[path] = base64.b64decode(b64.strip("'")).decode()
    return out


def test_one_more_web_node_replaces_no_other_vm(program: Program, graph: Graph) -> None:
    """What a second `pulumi up` would plan: new web VM; other VMs keep their domain inputs and
    seeds (user-data changes are ignored there and converged by the gates); LB gates rerun."""
    before = program("staging")
    snapshot = {r.name: r for r in before.resources}
    graph.resources.clear()
    hosts = [*read_stack("staging").values["hosts"], {"name": "web-4", "role": "web"}]
    after = {r.name: r for r in program("staging", hosts=hosts).resources}
    assert set(after) - set(snapshot) == {
        "lab-web-web-4", "lab-web-web-4-root", "lab-web-web-4-seed",
        "lab-web-web-4-domain", "lab-web-web-4-ready",
    }  # fmt: skip
    for name, old in snapshot.items():
        new = after[name]
        if new.type == "libvirt:index/domain:Domain":
            assert new.inputs == old.inputs, name
        if new.type == "libvirt:index/cloudInitDisk:CloudInitDisk":
            assert new.inputs["networkConfig"] == old.inputs["networkConfig"], name
            assert set(new.ignore_changes) == {"userData"}
            # Same network, gates on: the same instance, so the same seed and root disk.
            assert new.inputs["metaData"] == old.inputs["metaData"], name
            assert new.inputs["name"] == old.inputs["name"], name
    # HAProxy's backends change on the LBs: their gates rerun and converge it; the webs' do not.
    for lb in ("lb-1", "lb-2"):
        gate = f"lab-lb-{lb}-ready"
        assert after[gate].inputs["triggers"] != snapshot[gate].inputs["triggers"]
        pushed = _pushed_files(after[gate].inputs["create"])
        assert " web-4 172.20.10.13:80 check" in pushed["/etc/haproxy/haproxy.cfg"]
    for web in ("web-1", "web-2", "web-3"):
        gate = f"lab-web-{web}-ready"
        assert after[gate].inputs["triggers"] == snapshot[gate].inputs["triggers"]


def test_without_gates_a_changed_seed_means_a_new_vm(program: Program) -> None:
    graph = program("staging", readiness=False)
    seed = graph.named("lab-lb-lb-1-seed")
    assert seed.ignore_changes == ()
