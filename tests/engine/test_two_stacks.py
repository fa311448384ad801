"""Two stacks, each with its own address plan, side by side on one hypervisor: what the real
engine plans for one shares no libvirt name and no address range with the other's, and the
neighbour check ``make up`` runs first sees the one's networks on that libvirtd and refuses only
a stack that would collide with them.

Both stacks preview once, fresh, through the CLI halab/machine/engine.py builds and the registry's
libvirt provider, against the same libvirtd (the module's own, from tests/engine/conftest.py).
They are copies of staging and tutorial under names that share their first characters, so even
the bridge names, cut to Linux's 15 characters, differ only by the hash of the lab's name
(``halab.model.plan.LabPlan.bridges``). The neighbour check then runs against stack A's networks
as the plan has them, defined (never started) on that libvirtd through virsh, and undefined
again whatever happens.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from ipaddress import IPv4Network
from pathlib import Path
from typing import Any
from xml.sax.saxutils import quoteattr

import pytest

from halab import up
from halab.model.roles import ZoneName
from halab.model.spec import LabSpec, load_spec
from halab.model.stackconfig import read_stack
from halab.plumbing import tls
from halab.plumbing.virsh import Virsh
from halab.vmlab import neighbours
from tests.conftest import TEST_SSH_KEY
from tests.engine.conftest import Workspace, configure, pulumi

pytestmark = pytest.mark.engine

#: Stack name: the stack file it copies. The names share "twostacks-" so the bridges' cut
#: prefix is the same for both.
STACKS = {"twostacks-staging": "staging", "twostacks-tutorial": "tutorial"}
A, B = STACKS
#: The engine's placeholder for a value that is only known once the resource exists.
UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
#: Every libvirt object type the lab creates, each with its own namespace of names.
NAMED_TYPES = (
    "libvirt:index/network:Network",
    "libvirt:index/pool:Pool",
    "libvirt:index/volume:Volume",
    "libvirt:index/cloudInitDisk:CloudInitDisk",
    "libvirt:index/domain:Domain",
)
#: How long one virsh call on the module's libvirtd may take.
VIRSH_TIMEOUT_S = 30.0


def _overrides(files: dict[str, str], uri: str) -> dict[str, Any]:
    """What a user sets on their machine: both stacks on the same libvirtd, the same image."""
    return {"baseImage": files["image"], "libvirtUri": uri}


def _spec(name: str, overrides: dict[str, Any], source: str = "", **changes: Any) -> LabSpec:
    """The spec of stack ``name``: the stack file it copies (``source``, else its own in
    :data:`STACKS`), the machine's overrides, then ``changes``."""
    values = {**read_stack(source or STACKS[name]).values, **overrides, **changes}
    return load_spec(
        {**values, "sshPublicKeys": [TEST_SSH_KEY]},
        stack=name,
        secrets_present=frozenset({"sshPrivateKey"}),
    )


@pytest.fixture(scope="module")
def overrides(machine_files: dict[str, str], libvirt_uri: str) -> dict[str, Any]:
    """The machine's values both stacks get."""
    return _overrides(machine_files, libvirt_uri)


@pytest.fixture(scope="module")
def plans(workspace: Workspace, overrides: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Each stack's planned creates (``pulumi preview --json`` steps): one fresh preview each.

    Both stacks bring their own certificate: a generated one exists only once its command has
    run, and with it unknown at preview so would be the LBs' seeds, and the names of their disks
    that carry the seed's instance id.
    """
    pem = tls.self_signed_pem("twostacks.test")
    marker = "-----BEGIN PRIVATE KEY-----"
    certificate, key = pem[: pem.index(marker)], pem[pem.index(marker) :]
    root = workspace[0]
    found = {}
    for name, source in STACKS.items():
        (root / f"Pulumi.{name}.yaml").write_text((root / f"Pulumi.{source}.yaml").read_text())
        configure(
            workspace,
            name,
            ("set", "--path", "sshPublicKeys[0]", TEST_SSH_KEY),
            ("set", "--secret", "sshPrivateKey", "not-a-real-key"),
            # set-all: `KEY=VALUE`, so a value starting with dashes is no flag to the CLI.
            ("set-all", "--secret", f"tlsCertificate={certificate}"),
            ("set-all", "--secret", f"tlsPrivateKey={key}"),
            *(("set", key, str(value)) for key, value in overrides.items()),
        )
        done = pulumi(workspace, "preview", "--stack", name, "--json", timeout=300)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        plan = json.loads(done.stdout)
        problems = [
            d for d in plan.get("diagnostics", []) if d.get("severity") in ("error", "warning")
        ]
        assert problems == [], name
        found[name] = [s for s in plan["steps"] if s["op"] == "create"]
    return found


def _inputs(steps: list[dict[str, Any]], type_: str) -> list[dict[str, Any]]:
    """The inputs of every planned resource of ``type_``."""
    return [s["newState"]["inputs"] for s in steps if s["newState"]["type"] == type_]


def _names(steps: list[dict[str, Any]]) -> dict[str, list[str]]:
    """Every name a stack gives libvirt, by kind: one namespace per object type, and bridges
    and pool folders, which the host has one namespace of."""
    names = {t: [i["name"] for i in _inputs(steps, t)] for t in NAMED_TYPES}
    names["bridge"] = [i["bridge"] for i in _inputs(steps, "libvirt:index/network:Network")]
    names["pool folder"] = [i["target"]["path"] for i in _inputs(steps, "libvirt:index/pool:Pool")]
    return names


def _ranges(steps: list[dict[str, Any]]) -> list[IPv4Network]:
    """The address ranges the stack's libvirt networks are planned with."""
    return [
        IPv4Network(cidr)
        for i in _inputs(steps, "libvirt:index/network:Network")
        for cidr in i.get("addresses", [])
    ]


def test_no_libvirt_name_of_one_stack_is_one_of_the_others(
    plans: dict[str, list[dict[str, Any]]],
) -> None:
    a, b = _names(plans[A]), _names(plans[B])
    for kind in a:
        # Known at preview, all of them: a name the engine only learns later could still clash.
        for name in a[kind] + b[kind]:
            assert isinstance(name, str) and name and UNKNOWN not in name, (kind, name)
        assert a[kind] and b[kind], kind
        # Unique within each stack too, as libvirt wants them.
        assert len(set(a[kind])) == len(a[kind]) and len(set(b[kind])) == len(b[kind]), kind
        assert not set(a[kind]) & set(b[kind]), kind
    # Within Linux's 15 characters, and told apart by the hash after the same cut prefix.
    for bridge in a["bridge"] + b["bridge"]:
        assert len(bridge) <= 15, bridge
    assert {x[:5] for x in a["bridge"]} == {x[:5] for x in b["bridge"]} == {"hwl-t"}


def test_the_plan_is_the_specs_own_names_and_ranges(
    plans: dict[str, list[dict[str, Any]]], overrides: dict[str, Any]
) -> None:
    # The neighbour check reasons on the spec: it must be what the engine plans.
    for name, steps in plans.items():
        spec = _spec(name, overrides)
        networks = {i["name"]: i for i in _inputs(steps, "libvirt:index/network:Network")}
        assert set(networks) == {f"{spec.lab_name}-{z.value}" for z in ZoneName}
        for zone_name, zone in spec.zones.items():
            planned = networks[f"{spec.lab_name}-{zone_name.value}"]
            assert planned["bridge"] == spec.plan.bridges[zone_name]
            expected = [str(zone.cidr)] if zone.host_ip is not None else []
            assert planned.get("addresses", []) == expected, zone_name
        domains = {i["name"] for i in _inputs(steps, "libvirt:index/domain:Domain")}
        assert domains == {f"{spec.lab_name}-{h.name}" for h in spec.plan.hosts}


def test_no_address_range_of_one_stack_overlaps_the_others(
    plans: dict[str, list[dict[str, Any]]], overrides: dict[str, Any]
) -> None:
    a, b = _ranges(plans[A]), _ranges(plans[B])
    assert a and b
    assert [(x, y) for x in a for y in b if x.overlaps(y)] == []
    # A zone without a host address (a DMZ whose gateway the edge owns) has no range in the
    # plan's network; its range is the spec's, as the hosts' addresses are.
    zones_a, zones_b = _spec(A, overrides).zones.values(), _spec(B, overrides).zones.values()
    assert [(x, y) for x in zones_a for y in zones_b if x.cidr.overlaps(y.cidr)] == []


def _network_xml(inputs: dict[str, Any]) -> str:
    """libvirt network XML for a planned network: its name, bridge, forward mode and range,
    with the bridge's address as the provider gives it (the range's first host)."""
    mode = inputs.get("mode", "nat")
    forward = f"<forward mode={quoteattr(mode)}/>" if mode in ("nat", "route") else ""
    ips = "".join(
        f"<ip address='{next(net.hosts())}' prefix='{net.prefixlen}'/>"
        for net in map(IPv4Network, inputs.get("addresses", []))
    )
    return (
        f"<network><name>{inputs['name']}</name>{forward}"
        f"<bridge name={quoteattr(inputs['bridge'])}/>{ips}</network>"
    )


@pytest.fixture
def stack_a_defined(
    plans: dict[str, list[dict[str, Any]]], libvirt_uri: str, tmp_path: Path
) -> Iterator[list[str]]:
    """Stack A's networks as its plan has them, defined (not started) on the shared libvirtd,
    as a lab that is up would have them; undefined afterwards, whatever the test did."""
    virsh = Virsh(libvirt_uri, timeout=VIRSH_TIMEOUT_S)
    assert virsh("net-list", "--all", "--name").split() == []
    defined: list[str] = []
    try:
        for inputs in _inputs(plans[A], "libvirt:index/network:Network"):
            xml = tmp_path / f"{inputs['name']}.xml"
            xml.write_text(_network_xml(inputs))
            virsh("net-define", str(xml))
            defined.append(inputs["name"])
        yield defined
    finally:
        failed = []
        for name in defined:
            try:
                virsh("net-undefine", name)
            except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
                failed.append(f"{name}: {exc}")
        assert failed == []
        assert virsh("net-list", "--all", "--name").split() == []


def test_the_neighbour_check_on_that_libvirtd_refuses_only_a_colliding_stack(
    stack_a_defined: list[str], libvirt_uri: str, overrides: dict[str, Any]
) -> None:
    assert len(stack_a_defined) == len(ZoneName)
    a, b = _spec(A, overrides), _spec(B, overrides)
    # What the check reads back from the libvirtd is A's plan: its bridges and its ranges.
    seen = {n.name: n for n in neighbours.networks_of(libvirt_uri)}
    assert sorted(seen) == sorted(stack_a_defined)
    assert {n.bridge for n in seen.values()} == {a.plan.bridges[z] for z in ZoneName}
    assert {r for n in seen.values() for r in n.ranges} == {
        z.cidr for z in a.zones.values() if z.host_ip is not None
    }
    # A's own networks are no clash (an `up` again of A), and B shares nothing with them.
    up.refuse_neighbours(a, libvirt_uri)
    up.refuse_neighbours(b, libvirt_uri)
    # A third stack with A's whole address plan: refused on a range, naming A's network.
    with pytest.raises(up.UpError, match=r"overlaps .* of libvirt network 'hwl-twostacks-st"):
        up.refuse_neighbours(_spec("twostacks-copy", overrides, STACKS[A]), libvirt_uri)
    # B's address plan but a bridge of A's: refused on the bridge, naming it.
    taken = a.plan.bridges[ZoneName.INTERNAL]
    zones = json.loads(json.dumps(read_stack(STACKS[B]).values["zones"]))
    zones["internal"]["bridge"] = taken
    with pytest.raises(up.UpError, match=rf"already has bridge {taken}"):
        up.refuse_neighbours(_spec(B, overrides, zones=zones), libvirt_uri)
