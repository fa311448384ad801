"""The lab spec: derived plan values, and every bad input refused with the key and the value."""

from __future__ import annotations

import json
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

import pytest

from halab.model.errors import ConfigError
from halab.model.roles import Role, ZoneName
from halab.model.sections import VRRP_STARTUP_DELAY_S, EdgeKind, is_ssh_public_key
from halab.model.spec import BFD_DOWN_PRIORITY, LabSpec, derived_priorities, load_spec
from halab.model.stackconfig import read_stack, stack_spec
from tests.conftest import TEST_SSH_KEY

REPO = Path(__file__).resolve().parents[3]


def base(**overrides: Any) -> dict[str, Any]:
    """The dev stack's merged config as plain values, with overrides."""
    values = dict(read_stack("dev").values)
    values["sshPublicKeys"] = [TEST_SSH_KEY]
    values.update(overrides)
    return values


def spec_of(**overrides: Any) -> LabSpec:
    return load_spec(base(**overrides), stack="dev", secrets_present=frozenset({"fortigateToken"}))


def refused(**overrides: Any) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        spec_of(**overrides)
    err = info.value
    # One line a person can act on, naming the key.
    assert "\n" not in str(err)
    assert str(err).startswith("ha-web-lab:")
    return err


def zones(**changes: dict[str, Any]) -> dict[str, Any]:
    current = {k: dict(v) for k, v in base()["zones"].items()}
    for name, change in changes.items():
        current[name] = {**current.get(name, {}), **change}
    return current


def hosts(*extra: dict[str, Any], replace: dict[int, dict[str, Any]] | None = None) -> list[Any]:
    current = [dict(h) for h in base()["hosts"]]
    for index, change in (replace or {}).items():
        current[index] = {**current[index], **change}
    return current + list(extra)


# ---- the dev plan ----------------------------------------------------------------------------


def test_dev_plan_matches_the_architecture_table() -> None:
    spec = spec_of()
    plan = {h.name: {leg.zone.value: str(leg.address) for leg in h.legs} for h in spec.plan.hosts}
    # The address plan's table (docs/architecture.md) shows pairs of hosts in one row.
    table = (REPO / "docs" / "architecture.md").read_text()
    for zone, first, second in (
        ("dmz", "lb-1", "lb-2"),
        ("internal", "lb-1", "lb-2"),
        ("internal", "web-1", "web-2"),
    ):
        row = f"| {first} / {second} | {plan[first][zone]} / {plan[second][zone]} |"
        assert row in table, row
    assert f"| VIP (VRRP, one owner) | {spec.vip_address} |" in table
    assert f"/ public IP | {spec.public_address} |" in table
    assert plan == {
        "lb-1": {"dmz": "10.0.1.11", "internal": "192.168.10.2"},
        "lb-2": {"dmz": "10.0.1.12", "internal": "192.168.10.3"},
        "web-1": {"internal": "192.168.10.10"},
        "web-2": {"internal": "192.168.10.11"},
    }
    assert str(spec.vip_address) == "10.0.1.100"
    assert str(spec.public_address) == "203.0.113.10"
    assert spec.plan.public_url == "https://203.0.113.10/"
    # LB replies to clients leave through the DMZ gateway (the FortiGate), not the NAT zone.
    assert str(spec.plan.host("lb-1").default_gateway) == "10.0.1.1"
    assert str(spec.plan.host("web-1").default_gateway) == "192.168.10.1"


def test_derived_addresses_follow_the_documented_offsets() -> None:
    no_addresses = [{"name": h["name"], "role": h["role"]} for h in base()["hosts"]]
    derived = spec_of(hosts=[*no_addresses, {"name": "web-3", "role": "web"}])
    explicit = spec_of()
    for name in ("lb-1", "lb-2", "web-1", "web-2"):
        assert derived.plan.host(name).legs == explicit.plan.host(name).legs
    assert str(derived.plan.host("web-3").leg(ZoneName.INTERNAL).address) == "192.168.10.12"


def test_adding_a_web_node_changes_no_other_host() -> None:
    before = spec_of(edge="linux", zones=zones(dmz={"hostAddress": None}))
    after = spec_of(
        edge="linux",
        zones=zones(dmz={"hostAddress": None}),
        hosts=hosts({"name": "web-9", "role": "web"}),
    )
    for host in before.plan.hosts:
        assert after.plan.host(host.name).legs == host.legs


def test_macs_are_stable_distinct_and_local() -> None:
    spec = spec_of()
    macs = [leg.mac for h in spec.plan.hosts for leg in h.legs]
    assert len(set(macs)) == len(macs)
    assert all(m.startswith("52:54:00:") for m in macs)
    assert macs == [leg.mac for h in spec_of().plan.hosts for leg in h.legs]


def test_vrrp_pair_first_lb_is_preferred_master() -> None:
    first, second = spec_of().plan.vrrp_members
    assert (first.host, first.priority, first.peers) == ("lb-1", 150, (IPv4Address("10.0.1.12"),))
    assert (second.host, second.priority, second.peers) == (
        "lb-2",
        100,
        (IPv4Address("10.0.1.11"),),
    )
    # nopreempt needs state BACKUP on both (keepalived PR #346).
    assert first.state == second.state == "BACKUP" and first.nopreempt
    preempt = spec_of(vrrpPreempt=True).plan.vrrp_members
    assert [p.state for p in preempt] == ["MASTER", "BACKUP"]


def test_the_preferred_master_is_the_lb_with_the_highest_priority() -> None:
    assert [h.name for h in spec_of().plan.lbs_by_priority] == ["lb-1", "lb-2"]
    reversed_ = spec_of(vrrpPriorities=[100, 150])
    assert [h.name for h in reversed_.plan.lbs_by_priority] == ["lb-2", "lb-1"]
    assert [p.host for p in reversed_.plan.vrrp_members] == ["lb-1", "lb-2"]  # config order


def test_a_third_lb_is_config_only_every_member_names_every_peer() -> None:
    # No vrrpPriorities: derived in config order, the pair's own values first.
    trio = spec_of(hosts=hosts({"name": "lb-3", "role": "lb"}), vrrpPriorities=[])
    members = {m.host: m for m in trio.plan.vrrp_members}
    assert [m.priority for m in members.values()] == [150, 100, 50]
    assert str(trio.plan.host("lb-3").leg(ZoneName.DMZ).address) == "10.0.1.13"
    assert members["lb-1"].peers == (IPv4Address("10.0.1.12"), IPv4Address("10.0.1.13"))
    assert members["lb-3"].peers == (IPv4Address("10.0.1.11"), IPv4Address("10.0.1.12"))
    assert [h.name for h in trio.plan.lbs_by_priority] == ["lb-1", "lb-2", "lb-3"]
    given = spec_of(hosts=hosts({"name": "lb-3", "role": "lb"}), vrrpPriorities=[50, 100, 150])
    assert [h.name for h in given.plan.lbs_by_priority] == ["lb-3", "lb-2", "lb-1"]


def test_derived_priorities_keep_the_pair_and_stay_in_range() -> None:
    assert derived_priorities(2) == (150, 100)
    assert derived_priorities(3) == (150, 100, 50)
    for count in range(2, 40):
        values = derived_priorities(count)
        assert len(set(values)) == count and min(values) >= 1 and max(values) == 150


def test_linux_edge_adds_an_edge_host_that_owns_the_dmz_gateway() -> None:
    spec = spec_of(edge="linux")
    edge = spec.plan.host("edge")
    assert edge.role is Role.EDGE
    assert {leg.zone.value: str(leg.address) for leg in edge.legs} == {
        "public": "203.0.113.10",
        "dmz": "10.0.1.1",
    }
    assert spec.plan.firewall_rule.ports == (80, 443)


def test_empty_string_defaults_mean_derived() -> None:
    spec = spec_of(vip="", publicIp="")
    assert str(spec.vip_address) == "10.0.1.100"
    assert str(spec.public_address) == "203.0.113.10"


# ---- bad input: each names the key and the value -----------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "key", "value_text"),
    [
        ({"zones": zones(dmz={"cidr": "10.0.1.0/33"})}, "zones.dmz.cidr", "10.0.1.0/33"),
        ({"zones": zones(dmz={"cidr": "10.0.1.5/24"})}, "zones.dmz.cidr", "10.0.1.5/24"),
        ({"zones": zones(dmz={"cidr": "banana"})}, "zones.dmz.cidr", "banana"),
        ({"zones": zones(internal={"cidr": "10.0.0.0/16"})}, "zones.internal.cidr", "10.0.0.0/16"),
        (
            {"hosts": hosts(replace={2: {"addresses": {"internal": "10.0.1.50"}}})},
            "hosts[2].addresses.internal",
            "10.0.1.50",
        ),
        (
            {"hosts": hosts(replace={2: {"addresses": {"internal": "192.168.10.0"}}})},
            "hosts[2].addresses.internal",
            "192.168.10.0",
        ),
        (
            {"hosts": hosts(replace={2: {"addresses": {"internal": "192.168.10.255"}}})},
            "hosts[2].addresses.internal",
            "192.168.10.255",
        ),
        (
            {"hosts": hosts(replace={3: {"addresses": {"internal": "192.168.10.10"}}})},
            "hosts[3].addresses.internal",
            "192.168.10.10",
        ),
        ({"vip": "192.168.10.100"}, "vip", "192.168.10.100"),
        ({"vip": "10.0.1.11"}, "hosts[0].addresses.dmz", "10.0.1.11"),
        ({"vrrpRouterId": 0}, "vrrpRouterId", "0"),
        ({"vrrpRouterId": 256}, "vrrpRouterId", "256"),
        ({"vrrpPriorities": [100, 100]}, "vrrpPriorities", "100"),
        ({"vrrpVersion": 2, "vrrpAdvertIntervalMs": 500}, "vrrpAdvertIntervalMs", "500"),
        ({"vrrpAdvertIntervalMs": 55}, "vrrpAdvertIntervalMs", "55"),
        ({"hosts": hosts(replace={2: {"role": "db"}})}, "hosts[2].role", "db"),
        ({"hosts": hosts(replace={2: {"role": "edge"}})}, "hosts[2].role", "edge"),
        ({"hosts": [h for h in hosts() if h["role"] != "web"]}, "hosts", "lb-1"),
        ({"hosts": hosts(replace={2: {"name": "Web_1"}})}, "hosts[2].name", "Web_1"),
        ({"hosts": hosts(replace={2: {"name": "-web"}})}, "hosts[2].name", "-web"),
        ({"hosts": hosts(replace={3: {"name": "web-1"}})}, "hosts[3].name", "web-1"),
        ({"hosts": [h for h in hosts() if h["name"] != "lb-2"]}, "hosts", "lb-1"),
        (
            {"hosts": hosts({"name": "lb-3", "role": "lb"}), "vrrpPriorities": [150, 100]},
            "vrrpPriorities",
            "3: lb-1, lb-2, lb-3",
        ),
        ({"sshPublicKeys": ["ssh-ed25519 not-base64!"]}, "sshPublicKeys", "ssh-ed25519"),
        ({"sshPublicKeys": ["-----BEGIN OPENSSH PRIVATE KEY-----"]}, "sshPublicKeys", "PRIVATE"),
        ({"baseImage": "/nonexistent/debian.qcow2"}, "baseImage", "/nonexistent/debian.qcow2"),
        ({"edge": "paloalto"}, "edge", "paloalto"),
        ({"domainType": "xen"}, "domainType", "xen"),
        ({"zones": {k: v for k, v in zones().items() if k != "dmz"}}, "zones", "internal"),
        ({"edgePorts": [80, 80]}, "edgePorts", "80"),
        ({"vrpRouterId": 5}, "vrpRouterId", "5"),
        (
            {"zones": zones(internal={"hostAddress": "192.168.10.7"})},
            "zones.internal.hostAddress",
            "192.168.10.7",
        ),
        ({"haproxyRetryOn": "conn-failure sometimes"}, "haproxyRetryOn", "sometimes"),
        ({"vrrpDownTimerAdverts": 1}, "vrrpDownTimerAdverts", "1"),
        ({"vrrpDownTimerAdverts": 101}, "vrrpDownTimerAdverts", "101"),
        ({"vrrpFastDetection": True, "bfdIntervalMs": 40}, "bfdIntervalMs", "40"),
        (
            {"vrrpFastDetection": True, "bfdIntervalMs": 10, "bfdMultiplier": 4},
            "bfdIntervalMs",
            "= 40 ms",
        ),
        ({"vrrpFastDetection": True, "bfdMultiplier": 1}, "bfdMultiplier", "1"),
        ({"vrrpFastDetection": True, "vrrpPreempt": True}, "vrrpPreempt", "True"),
        ({"vrrpFastDetection": True, "vrrpPriorities": [230, 100]}, "vrrpPriorities", "230"),
    ],
)
def test_bad_input_names_key_and_value(
    overrides: dict[str, Any], key: str, value_text: str
) -> None:
    err = refused(**overrides)
    assert err.key == key, str(err)
    assert value_text in str(err), str(err)


def test_missing_required_key_is_named() -> None:
    values = base()
    del values["zones"]
    with pytest.raises(ConfigError) as info:
        load_spec(values, stack="dev", secrets_present=frozenset({"fortigateToken"}))
    assert info.value.key == "zones"
    assert "required" in str(info.value)


def test_fortigate_without_token_says_the_command_to_run() -> None:
    with pytest.raises(ConfigError) as info:
        load_spec(base(), stack="dev")
    assert info.value.key == "fortigateToken"
    assert "pulumi config set --secret fortigateToken" in str(info.value)


@pytest.mark.parametrize(
    ("overrides", "key", "value_text"),
    [
        # The provider would not even start: it must verify and has no CA.
        ({"fortigateInsecure": False}, "fortigateInsecure", "False"),
        (
            {"fortigateInsecure": False, "fortigateCaBundleFile": "/nonexistent/ca.pem"},
            "fortigateCaBundleFile",
            "/nonexistent/ca.pem",
        ),
        ({"fortigateInsecure": False, "fortigateCaBundle": "hello"}, "fortigateCaBundle", "hello"),
        # FortiOS limits that the provider checks only at preview.
        ({"fortigatePolicyId": 2147483000}, "fortigatePolicyId", "2147483000"),
        ({"fortigatePolicyId": 0}, "fortigatePolicyId", "0"),
        ({"fortigateNamePrefix": "p" * 28}, "fortigateNamePrefix", "at most 27 characters"),
    ],
)
def test_fortigate_settings_the_provider_would_refuse(
    overrides: dict[str, Any], key: str, value_text: str
) -> None:
    err = refused(**overrides)
    assert err.key == key, str(err)
    assert value_text in str(err), str(err)


def test_a_long_stack_name_needs_a_shorter_fortios_prefix() -> None:
    # 'hwl-devlongstacknamefortigate30chx-inbound' is 42 characters; FortiOS allows 35.
    with pytest.raises(ConfigError) as info:
        load_spec(
            base(),
            stack="devlongstacknamefortigate30chx",
            secrets_present=frozenset({"fortigateToken"}),
        )
    assert info.value.key == "fortigateNamePrefix"
    assert "hwl-devlongstacknamefortigate30chx-inbound" in str(info.value)
    spec = load_spec(
        base(fortigateNamePrefix="hwl-long"),
        stack="devlongstacknamefortigate30chx",
        secrets_present=frozenset({"fortigateToken"}),
    )
    assert ("policy", "hwl-long-inbound") in spec.plan.fortios.objects


def test_a_ca_bundle_keeps_verification_on(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    spec = spec_of(fortigateInsecure=False, fortigateCaBundleFile=str(ca))
    assert not spec.edge.fortigate.insecure and spec.edge.fortigate.ca_bundle_file == str(ca)
    err = refused(
        fortigateInsecure=False, fortigateCaBundleFile=str(ca), fortigateCaBundle=ca.read_text()
    )
    assert err.key == "fortigateCaBundle"


def test_linux_edge_refuses_a_hypervisor_address_on_its_gateway() -> None:
    err = refused(edge="linux", zones=zones(dmz={"hostAddress": "10.0.1.1", "gateway": None}))
    assert err.key == "zones.dmz.hostAddress"
    assert "null" in err.reason


def test_half_a_tls_pair_is_refused() -> None:
    with pytest.raises(ConfigError) as info:
        load_spec(
            base(), stack="dev", secrets_present=frozenset({"fortigateToken", "tlsCertificate"})
        )
    assert info.value.key == "tlsPrivateKey"


def test_secret_values_never_enter_the_spec() -> None:
    spec = load_spec({**base(), "fortigateToken": "hunter2"}, stack="dev")
    assert "fortigateToken" in spec.secrets_present
    assert "hunter2" not in spec.model_dump_json()


def test_edge_none_needs_no_public_ip() -> None:
    spec = spec_of(edge="none", publicIp="8.8.8.8")
    assert spec.edge.kind is EdgeKind.NONE
    assert spec.plan.public_url == "https://10.0.1.100/"


@pytest.mark.parametrize(
    ("key", "ok"),
    [
        (TEST_SSH_KEY, True),
        (TEST_SSH_KEY.replace("ssh-ed25519", "ssh-rsa", 1), False),  # blob says ed25519
        ("ssh-ed25519", False),
        ("", False),
    ],
)
def test_ssh_public_key_check(key: str, ok: bool) -> None:
    assert is_ssh_public_key(key) is ok


# ---- first config mistakes: one device per address, URIs and key lines as their tools read them


@pytest.mark.parametrize(
    ("overrides", "key", "clash"),
    [
        # A host on the hypervisor's own address, or on a gateway the FortiGate owns.
        (
            {"hosts": hosts(replace={2: {"addresses": {"internal": "192.168.10.1"}}})},
            "hosts[2].addresses.internal",
            "zones.internal.hostAddress (the hypervisor)",
        ),
        (
            {"hosts": hosts(replace={0: {"addresses": {"dmz": "10.0.1.1"}}})},
            "hosts[0].addresses.dmz",
            "zones.dmz.gateway (the FortiGate)",
        ),
        # The VIP on a gateway or on the hypervisor's address: two devices would answer ARP.
        ({"vip": "10.0.1.1"}, "vip", "zones.dmz.gateway (the FortiGate)"),
        (
            {"vip": "10.0.1.1", "zones": zones(dmz={"hostAddress": "10.0.1.1", "gateway": None})},
            "vip",
            "zones.dmz.hostAddress (the hypervisor)",
        ),
        ({"publicIp": "203.0.113.1"}, "publicIp", "zones.public.hostAddress (the hypervisor)"),
        ({"fortigateHost": "10.0.1.100"}, "fortigateHost", "vip (the VIP)"),
        (
            {"fortigateHost": "192.168.10.11:8443"},
            "fortigateHost",
            "hosts[3].addresses.internal (host web-2)",
        ),
        (
            {"edge": "linux", "publicIp": "203.0.113.1"},
            "publicIp",
            "zones.public.hostAddress (the hypervisor)",
        ),
        (
            {"zones": zones(internal={"gateway": "192.168.10.10"})},
            "hosts[2].addresses.internal",
            "zones.internal.gateway (the internal gateway)",
        ),
    ],
)
def test_every_address_of_the_plan_has_one_device(
    overrides: dict[str, Any], key: str, clash: str
) -> None:
    err = refused(**overrides)
    assert err.key == key, str(err)
    assert f"already used by {clash}" in err.reason, str(err)
    assert str(overrides.get(key, "")) in str(err)  # the value as given, port and all


@pytest.mark.parametrize(
    "overrides",
    [
        # One FortiGate answers on its API address, its public IP and its DMZ port.
        {"fortigateHost": "203.0.113.10"},
        {"fortigateHost": "10.0.1.1"},
        {"fortigateHost": "fw.example.net:8443"},
        # A gateway given as the hypervisor's own address is still one device.
        {"zones": zones(internal={"gateway": "192.168.10.1"})},
    ],
)
def test_addresses_one_device_owns_twice_are_taken(overrides: dict[str, Any]) -> None:
    spec_of(**overrides)


def test_two_zones_on_one_bridge_are_refused() -> None:
    err = refused(zones=zones(dmz={"bridge": "br-lab"}, internal={"bridge": "br-lab"}))
    assert err.key == "zones.internal.bridge"
    assert "zones.dmz" in err.reason


@pytest.mark.parametrize(
    "uri",
    [
        "qemu:///system",
        "qemu:///system?socket=/run/hwl/libvirt-sock",
        "qemu+ssh://lab@kvm1.example.net/system?keyfile=/home/lab/.ssh/id_ed25519",
        "qemu+tls://kvm1.example.net:16514/system",
    ],
)
def test_libvirt_uris_are_taken(uri: str) -> None:
    assert spec_of(libvirtUri=uri).vm.libvirt_uri == uri


@pytest.mark.parametrize(
    ("uri", "reason"),
    [
        ("qemu//system", "not a libvirt URI"),
        ("/var/run/libvirt/libvirt-sock", "not a libvirt URI"),
        ("localhost", "not a libvirt URI"),
        ("xen:///system", "driver is qemu"),
        ("qemu+telnet://h/system", "unknown libvirt transport 'telnet'"),
        ("qemu:///session", "use /system"),
        ("qemu://kvm1/", "path of a QEMU URI is /system"),
    ],
)
def test_libvirt_uris_that_are_not(uri: str, reason: str) -> None:
    err = refused(libvirtUri=uri)
    assert err.key == "libvirtUri" and repr(uri) in str(err)
    assert reason in err.reason, str(err)


def test_a_fortigate_url_instead_of_its_address_is_refused() -> None:
    err = refused(fortigateHost="https://203.0.113.2/")
    assert err.key == "fortigateHost" and "no https://" in err.reason


_BLOB = TEST_SSH_KEY.split()[1]


@pytest.mark.parametrize(
    ("line", "ok"),
    [
        (f'from="10.0.0.0/8",no-agent-forwarding ssh-ed25519 {_BLOB} c', True),
        (f'command="echo a, b",no-pty,restrict ssh-ed25519 {_BLOB}', True),
        (f'environment="A=\\"x y\\"" ssh-ed25519 {_BLOB}', True),
        (f"NO-PTY ssh-ed25519 {_BLOB}", True),  # sshd reads option names in any case
        (f"no-such-option ssh-ed25519 {_BLOB}", False),  # sshd would ignore the whole line
        (f'from="10.0.0.0/8 ssh-ed25519 {_BLOB}', False),  # the quote is never closed
        (f"from=10.0.0.0/8 ssh-ed25519 {_BLOB}", False),  # sshd wants the value quoted
        (f'from="10.0.0.0/8" ssh-rsa {_BLOB}', False),  # the blob says ed25519
        ('from="10.0.0.0/8"', False),
    ],
)
def test_authorized_keys_lines_with_options(line: str, ok: bool) -> None:
    assert is_ssh_public_key(line) is ok


def test_a_key_line_with_options_reaches_cloud_init_as_given() -> None:
    line = f'from="10.0.0.0/8",no-agent-forwarding ssh-ed25519 {_BLOB} c'
    assert spec_of(sshPublicKeys=[line]).vm.ssh_public_keys == (line,)
    err = refused(sshPublicKeys=[f"no-such-option ssh-ed25519 {_BLOB}"])
    assert err.key == "sshPublicKeys"


def test_stack_files_written_by_pulumi_config_set_read_back_typed(tmp_path: Path) -> None:
    # `pulumi config set` quotes every value; the CLI hands them to the program as strings.
    for name in ("Pulumi.yaml", "Pulumi.staging.yaml"):
        (tmp_path / name).write_text((REPO / name).read_text())
    with (tmp_path / "Pulumi.staging.yaml").open("a") as f:
        f.write('  ha-web-lab:vrrpVersion: "3"\n  ha-web-lab:installPackages: "false"\n')
    spec = read_stack("staging", tmp_path).spec()
    assert spec.vrrp.version == 3 and spec.vm.install_packages is False


def test_fast_detection_shortens_the_master_down_timer_and_lifts_each_lb_to_the_top() -> None:
    assert spec_of().vrrp.master_down_adverts == 3
    fast = spec_of(vrrpFastDetection=True)
    assert fast.vrrp.master_down_adverts == 1
    assert spec_of(vrrpFastDetection=True, vrrpDownTimerAdverts=2).vrrp.master_down_adverts == 2
    # While BFD is down every LB is lifted by the same amount: the preferred master to the top,
    # the other stays below it, so two LBs that both see BFD down never tie.
    lifted = sorted(p.priority + p.bfd_lift for p in fast.plan.vrrp_members)
    assert lifted[-1] == BFD_DOWN_PRIORITY and lifted[0] < BFD_DOWN_PRIORITY
    assert len({p.bfd_lift for p in fast.plan.vrrp_members}) == 1


def test_fast_detection_with_three_lbs_splits_the_lift_over_the_peers() -> None:
    trio = spec_of(
        hosts=hosts({"name": "lb-3", "role": "lb"}), vrrpPriorities=[], vrrpFastDetection=True
    )
    # One BFD session per peer, each worth half the lift: a dead master takes one session off
    # each survivor, so both rise by the same 40 and keep their order; all down reaches 230.
    assert {m.bfd_weight for m in trio.plan.vrrp_members} == {40}
    assert max(m.priority + m.bfd_lift for m in trio.plan.vrrp_members) == BFD_DOWN_PRIORITY
    err = refused(
        hosts=hosts({"name": "lb-3", "role": "lb"}),
        vrrpPriorities=[229, 100, 50],
        vrrpFastDetection=True,
    )
    assert err.key == "vrrpPriorities" and "228 or less" in str(err)


def test_vrrp_waits_for_bfd_at_start_only_with_fast_detection() -> None:
    # Without the wait a returning LB, at 254 until its BFD session is up, took the VIP from a
    # live master (the master-returns drill, namespace lab).
    assert spec_of().vrrp.startup_delay_s == 0.0
    assert spec_of(vrrpFastDetection=True).vrrp.startup_delay_s == VRRP_STARTUP_DELAY_S > 0


# ---- scalars as YAML and JSON write them: a boolean is no number, a name is one clean line ----


@pytest.mark.parametrize(
    ("overrides", "key", "reason"),
    [
        # true where a number belongs, and a number where true/false belongs.
        ({"vrrpRouterId": True}, "vrrpRouterId", "a whole number is expected here, not true/false"),
        ({"vrrpVersion": True}, "vrrpVersion", "not true/false"),
        ({"defaultVcpus": 2.0}, "defaultVcpus", "a whole number is expected here"),
        ({"vrrpPriorities": [True, 100]}, "vrrpPriorities[0]", "not true/false"),
        ({"hosts": hosts(replace={2: {"vcpus": True}})}, "hosts[2].vcpus", "not true/false"),
        ({"vrrpPreempt": 1}, "vrrpPreempt", "true or false is expected here, not a number"),
        ({"readiness": 0}, "readiness", "not a number"),
        ({"installPackages": "yes"}, "installPackages", "true or false is expected here"),
        # A YAML block scalar (`name: |`) keeps its final line break; a paste can carry more.
        ({"hosts": hosts(replace={2: {"name": "web-1\n"}})}, "hosts[2].name", "a line break"),
        ({"libvirtUri": "qemu:///system\n"}, "libvirtUri", "ends with a line break"),
        ({"sshPublicKeys": [TEST_SSH_KEY + "\n"]}, "sshPublicKeys", "item 0 ends with a line"),
        ({"adminUser": "lab\x1b"}, "adminUser", "control character '\\x1b' at position 3"),
        ({"kernelCmdline": "console=ttyS0\troot=/dev/vda"}, "kernelCmdline", "'\\t'"),
        ({"fortigateVdom": "ro\not"}, "fortigateVdom", "control character '\\n'"),
        ({"zones": zones(dmz={"bridge": "br-dmz\n"})}, "zones.dmz.bridge", "a line break"),
        # Ports are 1-65535 wherever one is given.
        ({"edgePorts": [0, 443]}, "edgePorts", "port 0 is not a TCP port (1-65535)"),
        ({"edgePorts": [80, 70000]}, "edgePorts", "port 70000 is not a TCP port"),
        ({"fortigateHost": "203.0.113.2:0"}, "fortigateHost", "port 0 is not a TCP port"),
        ({"fortigateHost": "203.0.113.2:70000"}, "fortigateHost", "port 70000 is not"),
        ({"libvirtUri": "qemu+tls://kvm1:0/system"}, "libvirtUri", "port 0 is not"),
        ({"libvirtUri": "qemu+tls://kvm1:70000/system"}, "libvirtUri", "port 70000 is not"),
        ({"libvirtUri": "qemu+tcp://[::1]:70000/system"}, "libvirtUri", "port 70000 is not"),
    ],
)
def test_scalars_are_what_they_say(overrides: dict[str, Any], key: str, reason: str) -> None:
    err = refused(**overrides)
    assert err.key == key, str(err)
    assert reason in err.reason, str(err)
    value = next(iter(overrides.values()))
    if isinstance(value, str | bool | int | float):
        assert repr(value) in str(err) if isinstance(value, str) else str(value) in str(err)


def test_multi_line_text_is_only_a_pems() -> None:
    pem = "-----BEGIN CERTIFICATE-----\r\nMIIB\r\n-----END CERTIFICATE-----\n"
    spec = spec_of(fortigateInsecure=False, fortigateCaBundle=pem)
    assert spec.edge.fortigate.ca_bundle == pem
    err = refused(fortigateInsecure=False, fortigateCaBundle=pem.replace("MIIB", "MI\x00IB"))
    assert err.key == "fortigateCaBundle" and "'\\x00'" in err.reason


@pytest.mark.parametrize(
    "overrides",
    [
        {"libvirtUri": "qemu+tls://kvm1.example.net:16514/system"},
        {"libvirtUri": "qemu+ssh://lab@[2001:db8::1]:22/system"},
        {"fortigateHost": "fw.example.net:65535"},
        {"edgePorts": [1, 65535]},
    ],
)
def test_ports_at_the_ends_of_the_range_are_taken(overrides: dict[str, Any]) -> None:
    spec_of(**overrides)


def test_values_pulumi_hands_over_as_text_are_still_typed() -> None:
    # The CLI gives the program every value as a string: "3", "false", JSON for lists.
    texts = {**{k: json.dumps(v) for k, v in base().items() if not isinstance(v, str)}}
    texts.update(vrrpVersion="3", installPackages="false", vrrpPriorities="[150, 100]")
    entries = {f"ha-web-lab:{k}": {"value": v, "secret": False} for k, v in texts.items()}
    entries["ha-web-lab:fortigateToken"] = {"secret": True}
    spec = stack_spec("dev", REPO, entries)
    assert spec.vrrp.version == 3 and spec.vm.install_packages is False
    assert spec.vrrp.priorities == (150, 100)
    entries["ha-web-lab:vrrpRouterId"] = {"value": "true", "secret": False}
    with pytest.raises(ConfigError) as info:
        stack_spec("dev", REPO, entries)
    assert info.value.key == "vrrpRouterId" and "not true/false" in info.value.reason


@pytest.mark.parametrize("kind", list(EdgeKind))
def test_every_access_restriction_is_enforced_somewhere_or_refused(kind: EdgeKind) -> None:
    restricted = ["198.51.100.0/24"]
    if kind is EdgeKind.NONE:
        # Nothing stands between the clients and the VIP: a restriction there would be a lie.
        error = refused(edge="none", edgeAllowedSources=restricted)
        assert error.key == "edgeAllowedSources" and "198.51.100.0/24" in str(error)
        assert "no edge enforces it" in str(error)
        return
    # The e2e stack is the Linux edge's, the dev stack the FortiGate's.
    values = {**read_stack("e2e" if kind is EdgeKind.LINUX else "dev").values}
    values.update(sshPublicKeys=[TEST_SSH_KEY], edgeAllowedSources=restricted)
    spec = load_spec(values, stack="dev", secrets_present=frozenset({"fortigateToken"}))
    assert set(spec.access_enforcement) == {"edgeAllowedSources"}
    assert all(spec.access_enforcement.values())


def test_no_restriction_needs_no_enforcer() -> None:
    assert spec_of(edge="none").access_enforcement == {}


#: Stack names people really give side by side: a cut or a fold must not make two of them one.
LOOK_ALIKES = (
    "staging", "staging2", "staging-2", "staging_2", "staging.2", "Staging2",
    "my_lab", "my-lab", "my.lab", "My-lab", "MY_LAB",
    "tutorial", "tutorial2", "customer-acceptance-2026", "customer-acceptance-2027",
    "a" * 40, "a" * 39 + "b", "dev", "e2e", "local",
)  # fmt: skip


def test_look_alike_stack_names_never_share_a_libvirt_or_bridge_name() -> None:
    # The Linux edge's stack: a FortiGate's object names have limits of their own.
    values = {**read_stack("e2e").values, "sshPublicKeys": [TEST_SSH_KEY]}
    specs = [load_spec(values, stack=name) for name in LOOK_ALIKES]
    labs = [spec.lab_name for spec in specs]
    assert len(set(labs)) == len(LOOK_ALIKES), labs
    for zone in ZoneName:
        bridges = [spec.plan.bridges[zone] for spec in specs]
        assert len(set(bridges)) == len(bridges), bridges
        assert all(len(b) <= 15 for b in bridges)
    # Names that needed neither a fold nor a cut keep the names labs already run under.
    by_stack = dict(zip(LOOK_ALIKES, specs, strict=True))
    assert by_stack["staging"].lab_name == "hwl-staging"
    assert by_stack["staging"].plan.bridges[ZoneName.DMZ] == "hwl-staging-dmz"
    assert by_stack["e2e"].plan.bridges[ZoneName.INTERNAL] == "hwl-e2e-int"
