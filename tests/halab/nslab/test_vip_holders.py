"""Who holds the VIP, read without root: netlink's answers stand in for the LBs' namespaces."""

from __future__ import annotations

from typing import ClassVar

import pytest

from halab.nslab import lab as lab_module
from halab.nslab.lab import NamespaceLab


class _Address:
    """One address message of a netlink dump: what the lab reads of it."""

    def __init__(self, ip: str) -> None:
        self.ip = ip

    def get_attr(self, name: str) -> str:
        assert name == "IFA_ADDRESS"
        return self.ip


class _FakeIPRoute:
    """An IPRoute of one namespace whose addresses the test sets; records opens and closes."""

    addresses: ClassVar[dict[str, list[str]]] = {}
    opened: ClassVar[list[str]] = []
    closed: ClassVar[list[str]] = []

    def __init__(self, netns: str) -> None:
        self.netns = netns
        self.opened.append(netns)

    def get_addr(self, family: int) -> list[_Address]:
        assert family == 2
        return [_Address(ip) for ip in self.addresses.get(self.netns, [])]

    def close(self) -> None:
        self.closed.append(self.netns)


@pytest.fixture
def lab(monkeypatch: pytest.MonkeyPatch) -> NamespaceLab:
    monkeypatch.setattr(lab_module, "IPRoute", _FakeIPRoute)
    monkeypatch.setattr(_FakeIPRoute, "addresses", {})
    monkeypatch.setattr(_FakeIPRoute, "opened", [])
    monkeypatch.setattr(_FakeIPRoute, "closed", [])
    return NamespaceLab.create("dev")


def test_the_holders_are_the_lbs_whose_namespace_has_the_vip(lab: NamespaceLab) -> None:
    first, second = lab.lb_names[:2]
    vip = str(lab.spec.vip_address)
    assert lab.vip_holders() == []
    _FakeIPRoute.addresses[lab.ns(second)] = ["172.22.1.12", vip]
    assert lab.vip_holders() == [second]
    _FakeIPRoute.addresses[lab.ns(first)] = [vip]  # a split brain: both claim it
    assert lab.vip_holders() == [first, second]
    with lab.vip_reader() as read:
        assert read() == lab.vip_holders()
    # Every namespace's socket is closed again, one per LB per read.
    assert sorted(_FakeIPRoute.opened) == sorted(_FakeIPRoute.closed)
    assert len(_FakeIPRoute.opened) == 5 * len(lab.lb_names)
