"""Property-based tests of the spec and the renderer over generated lab topologies.

Valid topologies: 1-8 web nodes, any three non-overlapping private CIDRs, optional explicit
addresses (host legs, VIP, public IP), every edge kind, both VRRP versions, and every other
section over its valid range (fast detection, HAProxy's checks and retries, the VMs' size, the
edge's allowed sources). For each,
``load_spec`` and ``render_all`` must succeed and the rendered plan must hold its invariants
(a fast pure-Python property, many examples); on a few examples, the real validators must accept
a sample of the rendered hosts (slow: few examples, no shrinking, so the run time stays bounded).

Invalid topologies are valid ones with one defect planted (overlapping zones, an address outside
its zone, a duplicate address, a router id out of range, equal priorities, a fractional VRRPv2
advert): the :class:`ConfigError` must name the offending key.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from halab.model.errors import ConfigError
from halab.model.roles import PATHS, Role, ZoneName
from halab.model.spec import BFD_DOWN_PRIORITY, LabSpec, load_spec
from halab.render.hosts import render_all
from halab.render.validate import CHECKS, unknown_cloud_config_keys
from tests.halab.render.validators import (
    TEST_SSH_KEY,
    assert_no_problems,
    render_to_tree,
    validate_all,
)

#: Runs the real validators (haproxy, keepalived, nginx, cloud-init...): seconds each.
pytestmark = pytest.mark.validators

ZONES = ("public", "dmz", "internal")
PRIVATE_BLOCKS = (
    IPv4Network("10.0.0.0/8"),
    IPv4Network("172.16.0.0/12"),
    IPv4Network("192.168.0.0/16"),
)
#: Smallest zone (longest prefix) that still holds the derived addresses: the public IP at +10
#: (/28), the VIP at +100 (/25), web nodes at +10..+17 (/27).
MAX_PREFIX = {"public": 28, "dmz": 25, "internal": 27}
#: Offsets the derived plan may use in each zone (gateway/host .1, LBs, web nodes, VIP, public IP):
#: explicit addresses are drawn elsewhere, since an explicit address never moves a derived one.
RESERVED = {
    "public": {1, 10},
    "dmz": {1, 11, 12, 100},
    "internal": {1, 2, 3, *range(10, 18)},
}
LEGS = {"lb": ("dmz", "internal"), "web": ("internal",)}
#: Labs the real validators see per run: a few in `make test` (the same ones every run);
#: HA_WEB_LAB_PROPERTY_EXAMPLES=200 runs a longer search.
VALIDATED_EXAMPLES = int(os.environ.get("HA_WEB_LAB_PROPERTY_EXAMPLES", "4"))
#: libyaml's loader when PyYAML has it: the pure-Python one would make parsing most of the run.
LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _load(text: str) -> Any:
    return yaml.load(text, Loader=LOADER)  # a safe loader, the C one or the Python one


@dataclass
class Topology:
    """A generated stack config and what it promised (for the invariants)."""

    values: dict[str, Any]
    secrets: frozenset[str]
    explicit: dict[tuple[str, str], IPv4Address] = field(default_factory=dict)

    def spec(self) -> LabSpec:
        """The spec (raises ConfigError on an invalid config)."""
        return load_spec(self.values, stack="prop", secrets_present=self.secrets)

    @property
    def hosts(self) -> list[dict[str, Any]]:
        """The ``hosts`` list of the config."""
        hosts: list[dict[str, Any]] = self.values["hosts"]
        return hosts

    def cidr(self, zone: str) -> IPv4Network:
        """A zone's network."""
        return IPv4Network(self.values["zones"][zone]["cidr"])


# ---- strategies --------------------------------------------------------------------------------


@st.composite
def subnet(draw: st.DrawFn, parent: IPv4Network, min_prefix: int, max_prefix: int) -> IPv4Network:
    """Any aligned subnet of ``parent`` with a prefix in [min_prefix, max_prefix]."""
    prefix = draw(st.integers(max(min_prefix, parent.prefixlen), max_prefix))
    index = draw(st.integers(0, 2 ** (prefix - parent.prefixlen) - 1))
    return IPv4Network((int(parent.network_address) + index * 2 ** (32 - prefix), prefix))


@st.composite
def disjoint_zones(draw: st.DrawFn) -> dict[str, IPv4Network]:
    """Three non-overlapping private networks, either in three different private blocks or
    packed into three distinct quarters of one parent network (neighbours, any sizes)."""
    if draw(st.booleans()):
        blocks = draw(st.permutations(PRIVATE_BLOCKS))
        return {z: draw(subnet(b, 16, MAX_PREFIX[z])) for z, b in zip(ZONES, blocks, strict=True)}
    block = draw(st.sampled_from(PRIVATE_BLOCKS))
    parent = draw(subnet(block, block.prefixlen, 23))
    quarters = list(parent.subnets(prefixlen_diff=2))
    chosen = draw(st.permutations(quarters))[:3]
    return {
        z: draw(subnet(q, q.prefixlen, MAX_PREFIX[z])) for z, q in zip(ZONES, chosen, strict=True)
    }


def _free_offsets(zone: str, cidr: IPv4Network) -> list[int]:
    """Host offsets in ``cidr`` the derived plan never uses (among the first 512: a /8 has
    16 million, and drawing from a list that long makes every example slow)."""
    last = min(cidr.num_addresses - 2, 512)
    return [o for o in range(2, last + 1) if o not in RESERVED[zone]]


#: HAProxy's retry-on keywords a config may combine (``none`` only stands alone).
RETRY_ON = (
    "conn-failure",
    "empty-response",
    "response-timeout",
    "502",
    "503",
    "504",
    "0rtt-rejected",
)


@st.composite
def sections(draw: st.DrawFn, edge: str, advert_ms: int) -> dict[str, Any]:
    """The other sections' keys, each over its whole valid range: fast detection (BFD faster
    than one advert), the master-down timer, HAProxy's checks and retries, the VMs' size, and
    who may reach the edge."""
    fast = draw(st.booleans())
    values: dict[str, Any] = {"vrrpFastDetection": fast}
    if fast:
        multiplier = draw(st.integers(2, 5))
        values["bfdMultiplier"] = multiplier
        values["bfdIntervalMs"] = draw(st.integers(1, min(1000, (advert_ms - 1) // multiplier)))
    values["vrrpDownTimerAdverts"] = draw(
        st.sampled_from([0, 1, 2, 3, 5] if fast else [0, 2, 3, 5])
    )
    retry_on = draw(st.lists(st.sampled_from(RETRY_ON), min_size=1, max_size=4, unique=True))
    values.update({
        "healthCheckIntervalMs": draw(st.integers(100, 60000)),
        "healthCheckFall": draw(st.integers(1, 10)),
        "healthCheckRise": draw(st.integers(1, 10)),
        "haproxyTimeoutConnectMs": draw(st.integers(100, 60000)),
        "haproxyRetries": draw(st.integers(0, 10)),
        "haproxyRedispatch": draw(st.booleans()),
        "haproxyRetryOn": draw(st.sampled_from(["none", " ".join(retry_on)])),
        "defaultVcpus": draw(st.integers(1, 8)),
        "defaultMemoryMib": draw(st.integers(256, 8192)),
    })  # fmt: skip
    if edge != "none":
        sources = draw(st.lists(subnet(draw(st.sampled_from(PRIVATE_BLOCKS)), 8, 32), max_size=3))
        values["edgeAllowedSources"] = [str(n) for n in sources] or ["0.0.0.0/0"]
    return values


@st.composite
def topologies(draw: st.DrawFn) -> Topology:
    """A valid lab config: 2 LBs, 1-8 web nodes in any order, optional explicit addresses."""
    nets = draw(disjoint_zones())
    n_web = draw(st.integers(1, 8))
    names = [("lb-1", "lb"), ("lb-2", "lb")] + [(f"web-{i}", "web") for i in range(1, n_web + 1)]
    order = draw(st.permutations(names))

    # Explicit addresses: per zone, distinct offsets outside the derived plan.
    pools = {z: _free_offsets(z, nets[z]) for z in ZONES}
    taken: dict[str, set[int]] = {z: set() for z in ZONES}

    def explicit_offset(zone: str) -> int | None:
        if not draw(st.booleans()):
            return None
        free = [o for o in pools[zone] if o not in taken[zone]]
        if not free:
            return None
        offset = draw(st.sampled_from(free))
        taken[zone].add(offset)
        return offset

    hosts: list[dict[str, Any]] = []
    explicit: dict[tuple[str, str], IPv4Address] = {}
    for name, role in order:
        host: dict[str, Any] = {"name": name, "role": role}
        addresses = {}
        for zone in LEGS[role]:
            offset = explicit_offset(zone)
            if offset is not None:
                address = nets[zone].network_address + offset
                addresses[zone] = str(address)
                explicit[(name, zone)] = address
        if addresses:
            host["addresses"] = addresses
        hosts.append(host)

    edge = draw(st.sampled_from(["linux", "none", "fortigate"]))
    version = draw(st.sampled_from([2, 3]))
    interval = draw(st.integers(1, 255)) * 1000 if version == 2 else draw(st.integers(1, 4095)) * 10
    priorities = draw(st.lists(st.integers(1, 254), min_size=2, max_size=2, unique=True))
    values: dict[str, Any] = {
        "zones": {
            "public": {"cidr": str(nets["public"]), "mode": "route"},
            # The DMZ is a pure L2 segment: the linux edge or the FortiGate owns its gateway .1.
            "dmz": {
                "cidr": str(nets["dmz"]),
                "mode": "isolated",
                "hostAddress": None,
                "gateway": str(nets["dmz"].network_address + 1),
            },
            "internal": {"cidr": str(nets["internal"]), "mode": "nat"},
        },
        "hosts": hosts,
        "edge": edge,
        "vrrpVersion": version,
        "vrrpRouterId": draw(st.integers(1, 255)),
        "vrrpAdvertIntervalMs": interval,
        "vrrpPriorities": priorities,
        "vrrpPreempt": draw(st.booleans()),
        "vrrpRealtime": draw(st.booleans()),
        "healthCheckPath": draw(st.from_regex(r"/[a-z0-9][a-z0-9._-]{0,15}", fullmatch=True)),
        "edgePorts": draw(st.lists(st.sampled_from([80, 443, 8080]), min_size=1, unique=True)),
        "httpsRedirect": draw(st.booleans()),
        "edgeSourceNat": draw(st.booleans()),
        "sshPublicKeys": draw(st.sampled_from([[], [TEST_SSH_KEY]])),
    }
    vip_offset = explicit_offset("dmz")
    if vip_offset is not None:
        values["vip"] = str(nets["dmz"].network_address + vip_offset)
    public_offset = explicit_offset("public")
    if public_offset is not None:
        values["publicIp"] = str(nets["public"].network_address + public_offset)
    values.update(draw(sections(edge, interval)))
    if values.get("vrrpFastDetection"):
        # BFD lifts a backup's priority up to BFD_DOWN_PRIORITY: refused with preempt, and every
        # priority stays below the lift.
        values["vrrpPreempt"] = False
        values["vrrpPriorities"] = draw(
            st.lists(st.integers(1, BFD_DOWN_PRIORITY - 1), min_size=2, max_size=2, unique=True)
        )
    secrets: frozenset[str] = frozenset()
    if edge == "fortigate":
        values["fortigateHost"] = "192.0.2.1"
        values["fortigateInsecure"] = True
        secrets = frozenset({"fortigateToken"})
    return Topology(values, secrets, explicit)


# ---- valid topologies --------------------------------------------------------------------------


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(topologies())
def test_valid_topologies_load_and_render_with_their_invariants(topo: Topology) -> None:
    """Fast, pure Python: load, render, and check what every rendered file promises."""
    spec = topo.spec()
    rendered = render_all(spec)

    webs = [h["name"] for h in topo.hosts if h["role"] == "web"]
    expected_hosts = {h["name"] for h in topo.hosts} | (
        {"edge"} if spec.edge.kind.value == "linux" else set()
    )
    assert set(rendered) == expected_hosts

    # Every address: unique in the lab, inside its zone, never the network or broadcast address.
    seen: dict[IPv4Address, str] = {}
    for resolved in spec.plan.hosts:
        for leg in resolved.legs:
            cidr = topo.cidr(leg.zone.value)
            assert leg.address in cidr
            assert leg.address not in (cidr.network_address, cidr.broadcast_address)
            owner = f"{resolved.name}/{leg.zone.value}"
            assert seen.setdefault(leg.address, owner) == owner, f"{leg.address} used twice"
    assert spec.vip_address not in seen
    for (name, zone), address in topo.explicit.items():
        assert spec.plan.host(name).leg(ZoneName(zone)).address == address

    for name, host in rendered.items():
        # network-config: one NIC per leg, its address with the zone's prefix.
        network = _load(host.network_config)
        assert network["version"] == 2
        assert {eth["set-name"]: eth["addresses"] for eth in network["ethernets"].values()} == {
            leg.ifname: [str(leg.interface)] for leg in spec.plan.host(name).legs
        }
        # user-data: the header, and only keys cloud-init's schema knows.
        assert host.user_data.startswith("#cloud-config\n")
        assert unknown_cloud_config_keys(_load(host.user_data)) == []

    for lb in spec.plan.hosts_with_role(Role.LB):
        cfg = rendered[lb.name].file(PATHS.haproxy_cfg).content
        for web in webs:
            address = spec.plan.host(web).leg(ZoneName.INTERNAL).address
            assert f"    server {web} {address}:80 check\n" in cfg
        for port in spec.edge.ports:
            assert f"    bind {spec.vip_address}:{port}" in cfg
        keepalived = rendered[lb.name].file(PATHS.keepalived_conf).content
        assert f"virtual_router_id {spec.vrrp.router_id}\n" in keepalived
        assert f"{spec.vip_address}/{topo.cidr('dmz').prefixlen} dev dmz" in keepalived


def _sample(spec: LabSpec) -> list[str]:
    """One host per role (and the last web node): enough to exercise every template branch."""
    names = [
        spec.plan.hosts_with_role(Role.LB)[0].name,
        spec.plan.hosts_with_role(Role.WEB)[-1].name,
    ]
    return names + [h.name for h in spec.plan.hosts_with_role(Role.EDGE)]


@settings(
    max_examples=VALIDATED_EXAMPLES,
    deadline=None,
    derandomize=True,  # the same few examples on every run: CI results are reproducible
    phases=[Phase.explicit, Phase.reuse, Phase.generate],  # no shrinking: each run is ~1 s
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(topo=topologies())
def test_valid_topologies_pass_the_real_validators(topo: Topology, tmp_path: Path) -> None:
    """Slow: a sample of each lab's hosts through every applicable real validator."""
    spec = topo.spec()
    trees = render_to_tree(spec, tmp_path / f"lab-{len(list(tmp_path.iterdir()))}")
    assert_no_problems(validate_all(trees[name] for name in _sample(spec)))


def test_the_validator_suite_covers_every_check() -> None:
    """The slow property's sample reaches every check (so no validator is left out of it)."""
    topo = Topology(
        {
            "zones": {
                "public": {"cidr": "10.1.0.0/24", "mode": "route"},
                "dmz": {"cidr": "10.2.0.0/24", "hostAddress": None, "gateway": "10.2.0.1"},
                "internal": {"cidr": "10.3.0.0/24"},
            },
            "hosts": [
                {"name": "lb-1", "role": "lb"},
                {"name": "lb-2", "role": "lb"},
                {"name": "web-1", "role": "web"},
            ],
        },
        frozenset(),
    )
    spec = topo.spec()
    rendered = render_all(spec)
    covered = {
        check.name
        for name in _sample(spec)
        for check in CHECKS
        if check.applies({f.path: f.content for f in rendered[name].files})
    }
    assert covered == {check.name for check in CHECKS}


# ---- invalid topologies: the error names the key -----------------------------------------------


def _refused(topo: Topology) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        topo.spec()
    assert "\n" not in caught.value.line()
    return caught.value


@settings(max_examples=100, deadline=None)
@given(topologies(), st.data())
def test_overlapping_zones_name_a_zone_cidr(topo: Topology, data: st.DataObject) -> None:
    moved, anchor = data.draw(st.permutations(ZONES))[:2]
    target = topo.cidr(anchor)
    # A subnet of the anchor zone, or a supernet of it (both overlap it).
    if data.draw(st.booleans()) and target.prefixlen < 29:
        overlapping = data.draw(subnet(target, target.prefixlen, 29))
    else:
        overlapping = target.supernet(new_prefix=data.draw(st.integers(8, target.prefixlen)))
    topo.values["zones"][moved]["cidr"] = str(overlapping)
    error = _refused(topo)
    overlapped = {z for z in ZONES if z != moved and topo.cidr(z).overlaps(overlapping)}
    assert error.key in {f"zones.{z}.cidr" for z in {moved} | overlapped}, error.line()


@settings(max_examples=100, deadline=None)
@given(topologies(), st.data())
def test_an_address_outside_its_zone_names_the_host_key(
    topo: Topology, data: st.DataObject
) -> None:
    index = data.draw(st.integers(0, len(topo.hosts) - 1))
    host = topo.hosts[index]
    zone = data.draw(st.sampled_from(LEGS[host["role"]]))
    cidr = topo.cidr(zone)
    outside = data.draw(
        st.integers(1, 2**32 - 2).map(IPv4Address).filter(lambda ip: ip not in cidr)
    )
    host.setdefault("addresses", {})[zone] = str(outside)
    assert _refused(topo).key == f"hosts[{index}].addresses.{zone}"


@settings(max_examples=100, deadline=None)
@given(topologies(), st.data())
def test_a_duplicate_address_names_the_later_host(topo: Topology, data: st.DataObject) -> None:
    zone = data.draw(st.sampled_from(["dmz", "internal"]))
    having = [i for i, h in enumerate(topo.hosts) if zone in LEGS[h["role"]]]
    first, second = sorted(data.draw(st.permutations(having))[:2])
    cidr = topo.cidr(zone)
    used = set(topo.explicit.values()) | {
        IPv4Address(topo.values[key]) for key in ("vip", "publicIp") if key in topo.values
    }
    free = [o for o in _free_offsets(zone, cidr) if cidr.network_address + o not in used]
    address = str(cidr.network_address + data.draw(st.sampled_from(free)))
    for index in (first, second):
        topo.hosts[index].setdefault("addresses", {})[zone] = address
    assert _refused(topo).key == f"hosts[{second}].addresses.{zone}"


@settings(max_examples=50, deadline=None)
@given(topologies(), st.data())
def test_a_host_on_the_vip_names_the_host_key(topo: Topology, data: st.DataObject) -> None:
    lbs = [i for i, h in enumerate(topo.hosts) if h["role"] == "lb"]
    index = data.draw(st.sampled_from(lbs))
    vip = topo.values.get("vip") or str(topo.cidr("dmz").network_address + 100)
    topo.hosts[index].setdefault("addresses", {})["dmz"] = vip
    assert _refused(topo).key == f"hosts[{index}].addresses.dmz"


@settings(max_examples=100, deadline=None)
@given(topologies(), st.one_of(st.integers(max_value=0), st.integers(min_value=256)))
def test_a_router_id_out_of_range_names_the_key(topo: Topology, router_id: int) -> None:
    topo.values["vrrpRouterId"] = router_id
    assert _refused(topo).key == "vrrpRouterId"


@settings(max_examples=100, deadline=None)
@given(topologies(), st.integers(1, 254))
def test_equal_priorities_name_the_key(topo: Topology, priority: int) -> None:
    topo.values["vrrpPriorities"] = [priority, priority]
    assert _refused(topo).key == "vrrpPriorities"


@settings(max_examples=100, deadline=None)
@given(topologies(), st.integers(0, 254), st.integers(1, 999))
def test_a_fractional_vrrp2_advert_names_the_key(topo: Topology, seconds: int, ms: int) -> None:
    topo.values["vrrpVersion"] = 2
    topo.values["vrrpAdvertIntervalMs"] = seconds * 1000 + ms
    assert _refused(topo).key == "vrrpAdvertIntervalMs"


@settings(max_examples=100, deadline=None)
@given(topologies(), st.integers(1, 4094), st.integers(1, 9))
def test_a_vrrp3_advert_off_the_centisecond_grid_names_the_key(
    topo: Topology, centis: int, ms: int
) -> None:
    topo.values["vrrpVersion"] = 3
    topo.values["vrrpAdvertIntervalMs"] = centis * 10 + ms
    assert _refused(topo).key == "vrrpAdvertIntervalMs"
