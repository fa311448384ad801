"""The namespace lab's FortiGate edge (no root): where the emulator listens and what it maps."""

from __future__ import annotations

from pathlib import Path

import pytest

from halab.fortigate.site import EMULATOR_COMMAND
from halab.model.spec import LabSpec
from halab.model.stackconfig import read_stack
from halab.nslab.lab import LabError, NamespaceLab, emulated_fortigate, lab_spec


def _spec(**overrides: object) -> LabSpec:
    values = {**read_stack("dev").values, **overrides}
    return lab_spec("dev", values, {"fortigateToken"})


def test_the_dev_edge_emulates_its_fortigate_on_fortigate_host() -> None:
    lab = NamespaceLab.create("dev", fortigate_emulator=True)
    assert lab.fortigate is not None
    assert lab.fortigate.hostname == "203.0.113.2"
    assert lab.fortigate.interfaces == (("port1", "public"), ("port2", "dmz"))
    (edge_daemon,) = lab.daemons(lab.spec.plan.host("edge"))
    assert edge_daemon.name == EMULATOR_COMMAND
    argv = list(edge_daemon.argv)
    assert argv[argv.index("--net") + 1] == "/run/netns/hwl-dev-edge"
    assert "--apply-nft" in argv and "--listen" in argv
    assert argv[argv.index("--listen") + 1] == "203.0.113.2:443"
    assert "--interface=port1=public" in argv and "--interface=port2=dmz" in argv


def test_without_the_flag_the_edge_is_the_linux_edge() -> None:
    lab = NamespaceLab.create("dev")
    assert lab.fortigate is None
    assert lab.daemons(lab.spec.plan.host("edge")) == []


def test_a_port_in_fortigate_host_is_kept() -> None:
    found = emulated_fortigate(_spec(fortigateHost="203.0.113.2:8443"), Path("/x"))
    assert (found.port, found.hostname) == (8443, "203.0.113.2:8443")


@pytest.mark.parametrize("host", ["fgt.example", "198.51.100.2", "203.0.113.10"])
def test_fortigate_host_must_be_a_free_public_address(host: str) -> None:
    with pytest.raises(LabError, match="fortigateHost"):
        emulated_fortigate(_spec(fortigateHost=host), Path("/x"))


def test_only_a_fortigate_stack_can_emulate_one() -> None:
    with pytest.raises(LabError, match="no FortiGate edge"):
        NamespaceLab.create("dev", overrides={"edge": "linux"}, fortigate_emulator=True)
