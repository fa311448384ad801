"""Other networks on the hypervisor: a stack that would take their bridge or range is refused."""

from __future__ import annotations

import subprocess

import pytest

from halab import up
from halab.model.roles import ZoneName
from halab.model.spec import LabSpec, load_spec
from halab.model.stackconfig import read_stack
from halab.vmlab import neighbours
from halab.vmlab.neighbours import LibvirtNetwork, clashes, parse_network_xml
from tests.conftest import TEST_SSH_KEY

#: libvirt's own default network, as `virsh net-dumpxml default` prints it.
DEFAULT_XML = """<network>
  <name>default</name>
  <uuid>9a05da11-e96b-47f3-8253-a3a482e445f5</uuid>
  <forward mode='nat'/>
  <bridge name='virbr0' stp='on' delay='0'/>
  <mac address='52:54:00:0a:cd:21'/>
  <ip address='192.168.122.1' netmask='255.255.255.0'>
    <dhcp><range start='192.168.122.2' end='192.168.122.254'/></dhcp>
  </ip>
  <ip family='ipv6' address='fd00::1' prefix='64'/>
</network>"""


def _spec(stack: str = "e2e") -> LabSpec:
    values = {**read_stack("e2e").values, "sshPublicKeys": [TEST_SSH_KEY]}
    return load_spec(values, stack=stack)


def test_network_xml_gives_the_bridge_and_the_ipv4_ranges() -> None:
    net = parse_network_xml(DEFAULT_XML)
    assert net.name == "default" and net.bridge == "virbr0"
    assert [str(r) for r in net.ranges] == ["192.168.122.0/24"]
    isolated = parse_network_xml("<network><name>l2</name><bridge name='br9'/></network>")
    assert isolated.ranges == () and isolated.bridge == "br9"


def test_another_labs_range_or_bridge_is_a_clash_naming_both() -> None:
    spec = _spec()
    other = LibvirtNetwork("hwl-other-dmz", "hwl-other-dmz", (spec.zones[ZoneName.DMZ].cidr,))
    (error,) = clashes(spec, [parse_network_xml(DEFAULT_XML), other])
    assert error.key == "zones.dmz.cidr" and "hwl-other-dmz" in error.line()
    assert str(spec.zones[ZoneName.DMZ].cidr) in error.line()
    # The same name of bridge, whatever the range.
    taken = LibvirtNetwork("someone", spec.plan.bridges[ZoneName.INTERNAL], ())
    (error,) = clashes(spec, [taken])
    assert error.key == "zones.internal" and "someone" in error.line()


def test_the_labs_own_networks_and_other_ranges_are_no_clash() -> None:
    spec = _spec()
    own = LibvirtNetwork(
        f"{spec.lab_name}-dmz", spec.plan.bridges[ZoneName.DMZ], (spec.zones[ZoneName.DMZ].cidr,)
    )
    assert clashes(spec, [own, parse_network_xml(DEFAULT_XML)]) == []


def test_make_up_stops_with_one_line_before_anything_is_made(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    spec = _spec()
    dmz = spec.zones[ZoneName.DMZ].cidr
    xml = f"<network><name>lab-b</name><ip address='{dmz[1]}' prefix='24'/></network>"
    answers = {("net-list", "--all", "--name"): "lab-b\n", ("net-dumpxml", "lab-b"): xml}

    class Answering:
        """virsh as the libvirtd answers it: lab-b has this lab's DMZ range."""

        def __init__(self, uri: str, timeout: float) -> None:
            assert (uri, timeout) == ("qemu:///system", neighbours.VIRSH_TIMEOUT_S)

        def __call__(self, *args: str) -> str:
            return answers[args]

    monkeypatch.setattr(neighbours, "Virsh", Answering)
    with pytest.raises(up.UpError, match=r"^ha-web-lab:zones\.dmz\.cidr = .*'lab-b'") as info:
        up.refuse_neighbours(spec, "qemu:///system")
    assert "\n" not in str(info.value)

    class Refusing(Answering):
        """A libvirtd that does not answer."""

        def __call__(self, *args: str) -> str:
            cmd = ["virsh", "-q", "-c", "qemu:///system", *args]
            raise subprocess.CalledProcessError(1, cmd, "", "failed to connect\n")

    monkeypatch.setattr(neighbours, "Virsh", Refusing)
    with pytest.raises(
        up.UpError, match=r"asking the libvirtd at qemu:///system.*failed to connect"
    ):
        up.refuse_neighbours(spec, "qemu:///system")
