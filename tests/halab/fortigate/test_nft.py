"""The emulator's objects as nftables rules: each FortiOS rule the translation follows, each case it
refuses, and every rendered ruleset through ``nft -c``.

Short names of the sources as in halab/fortigate/nft.py (VIP-ORDER, KB-LOCALIN, KB-PORT, ...).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from halab.cli import build_parser
from halab.fortigate.errors import UNPROVEN_HTTP_STATUS, FortiOSError
from halab.fortigate.nft import (
    ApplyError,
    Forwarding,
    NftApplier,
    Ruleset,
    render,
    tables_of,
    translate,
)
from halab.fortigate.server import Api, Request
from halab.fortigate.store import Store
from halab.render.validate import in_namespaces, run, which
from tests.halab.fortigate.test_rules import ADDRESS, GROUP, POLICY, SERVICE, VIP, policy, vip

LINUX = {"port1": "wan0", "port2": "dmz0", "port3": "lan0"}


def ruleset(store: Store) -> Ruleset:
    return translate(tables_of(store, "root"), LINUX)


def edge_store(**policy_extra: Any) -> Store:
    """The edge's objects as components/edge.py makes them: VIPs 80 and 443, a group, a policy."""
    store = Store()
    store.create("root", VIP, vip())
    store.create("root", VIP, vip(name="lab-443", port="443"))
    store.create("root", GROUP, {"name": "lab-vips", "interface": "port1",
                                 "member": [{"name": "lab-80"}, {"name": "lab-443"}]})  # fmt: skip
    body = {"service": [{"name": "HTTP"}, {"name": "HTTPS"}], **policy_extra}
    store.create("root", POLICY, policy(**body))
    return store


# -- what a VIP and a policy mean ----------------------------------------------------------------


def test_the_edge_s_objects_forward_each_port_to_the_vip() -> None:
    rules = ruleset(edge_store())
    # KB-PF: with port forwarding only the external port is translated, to the mapped one.
    assert [(d.vip, d.iifname, d.extip, d.protocol, d.extport, d.mappedip, d.mappedport)
            for d in rules.dnats] == [
        ("lab-80", "wan0", "203.0.113.10", "tcp", "80", "10.0.1.100", None),
        ("lab-443", "wan0", "203.0.113.10", "tcp", "443", "10.0.1.100", None),
    ]  # fmt: skip
    # VIPGRP: a policy naming the group takes every member's parameters.
    seen = [(r.policy, r.vip, r.iifnames, r.oifnames, r.saddrs, r.verdict) for r in rules.forwards]
    assert seen == [
        (1000, "lab-80", ("wan0",), ("dmz0",), (), "accept"),
        (1000, "lab-443", ("wan0",), ("dmz0",), (), "accept"),
    ]  # fmt: skip
    assert rules.forwards[0].service_ports == ("80", "443")
    assert not rules.masquerades


def test_a_vip_no_policy_names_translates_nothing() -> None:
    # VIP-ORDER, KB-ORDER: VIPs are only checked once a policy includes them.
    store = Store()
    store.create("root", VIP, vip())
    assert ruleset(store) == Ruleset((), ())


def test_with_no_policy_everything_is_dropped() -> None:
    # IMPLICIT-DENY: the forward chain's policy is drop, and nothing is accepted before it.
    text = render(ruleset(Store()))
    assert "type filter hook forward priority filter; policy drop;" in text
    assert " accept comment" not in text


def test_a_disabled_policy_matches_nothing_and_its_vip_stays_off() -> None:
    # GUIDE-800: enabled policies only; VIP-ORDER: the VIP needs a policy that includes it.
    assert ruleset(edge_store(status="disable")) == Ruleset((), ())


def test_a_deny_policy_still_translates_its_vip_and_drops() -> None:
    # KB-LOCALIN: a policy naming the VIP makes the DNAT, and the policies decide the outcome.
    rules = ruleset(edge_store(action="deny"))
    assert [d.vip for d in rules.dnats] == ["lab-80", "lab-443"]
    assert {r.verdict for r in rules.forwards} == {"drop"}


def test_sources_are_the_policy_s_subnets_and_all_is_any() -> None:
    store = edge_store()
    store.create("root", ADDRESS, {"name": "net-a", "subnet": "198.51.100.0/24"})
    store.create("root", ADDRESS, {"name": "net-b", "subnet": "192.0.2.0 255.255.255.128"})
    store.update("root", POLICY, "1000", {"srcaddr": [{"name": "net-a"}, {"name": "net-b"}]})
    assert ruleset(store).forwards[0].saddrs == ("198.51.100.0/24", "192.0.2.0/25")
    store.update("root", POLICY, "1000", {"srcaddr": [{"name": "net-a"}, {"name": "all"}]})
    assert ruleset(store).forwards[0].saddrs == ()


def test_the_service_is_matched_on_the_mapped_port() -> None:
    # KB-PORT: 8080 -> 80 passes with service HTTP (80), not with a service of 8080.
    store = Store()
    store.create("root", VIP, vip(name="web", extport="8080", mappedport="80"))
    store.create("root", POLICY, policy(dstaddr=[{"name": "web"}]))
    (dnat,) = ruleset(store).dnats
    assert (dnat.extport, dnat.mappedport) == ("8080", "80")
    (rule,) = ruleset(store).forwards
    assert (rule.extport, rule.service_ports) == ("8080", ("80",))
    text = render(ruleset(store))
    assert "tcp dport 8080 dnat ip to 10.0.1.100:80" in text
    assert "ct original proto-dst 8080 ip daddr 10.0.1.100 tcp dport 80 accept" in text


def test_service_all_matches_every_port_and_protocol() -> None:
    rules = ruleset(edge_store(service=[{"name": "ALL"}]))
    assert {r.service_ports for r in rules.forwards} == {None}
    assert "tcp dport {" not in render(rules).split("chain forward")[1]


def test_a_tcp_service_never_matches_a_udp_vip() -> None:
    store = Store()
    store.create("root", VIP, vip(name="dns", protocol="udp", port="53"))
    store.create("root", SERVICE, {"name": "tcp-53", "tcp-portrange": "53"})
    store.create("root", POLICY, policy(dstaddr=[{"name": "dns"}], service=[{"name": "tcp-53"}]))
    rules = ruleset(store)
    # KB-LOCALIN: translated (a policy names it), but no policy accepts it: implicit deny.
    assert [d.protocol for d in rules.dnats] == ["udp"]
    assert rules.forwards == ()


def test_static_nat_without_port_forwarding_maps_every_port() -> None:
    # KB-PF: one-to-one NAT of every port of the external IP.
    store = Store()
    store.create("root", VIP, vip(name="one", portforward="disable"))
    store.create("root", POLICY, policy(dstaddr=[{"name": "one"}], service=[{"name": "ALL"}]))
    (dnat,) = ruleset(store).dnats
    assert (dnat.protocol, dnat.extport, dnat.mappedport) == (None, None, None)
    assert 'iifname "wan0" ip daddr 203.0.113.10 dnat ip to 10.0.1.100 comment' in render(
        ruleset(store)
    )


def test_any_interface_matches_every_interface() -> None:
    # GUIDE-4: "Any" as an interface matches all interfaces.
    store = Store()
    store.create("root", VIP, vip(extintf="any"))
    store.create("root", POLICY, policy(dstaddr=[{"name": "lab-80"}], srcintf=[{"name": "any"}],
                                        dstintf=[{"name": "any"}]))  # fmt: skip
    rules = ruleset(store)
    assert rules.dnats[0].iifname is None
    assert (rules.forwards[0].iifnames, rules.forwards[0].oifnames) == ((), ())
    assert "iifname" not in render(rules)


def test_nat_enable_masquerades_to_the_outgoing_interface() -> None:
    # GUIDE-4 (source NAT of accepted packets), KB-SNAT (the outgoing interface's address).
    rules = ruleset(edge_store(nat="enable"))
    assert rules.masquerades
    text = render(rules)
    assert text.count("ct mark set 0x46470001 accept") == 2
    assert "ct mark 0x46470001 masquerade" in text
    # A deny policy never masquerades.
    assert not ruleset(edge_store(nat="enable", action="deny")).masquerades


def test_policies_keep_their_sequence() -> None:
    # NSE4: first match, top down; a deny before the accept wins.
    store = edge_store()
    store.create("root", ADDRESS, {"name": "bad", "subnet": "198.51.100.0/24"})
    store.create("root", POLICY, policy(policyid=7, name="deny-bad", action="deny",
                                        srcaddr=[{"name": "bad"}]))  # fmt: skip
    assert [(r.policy, r.verdict) for r in ruleset(store).forwards] == [
        (1000, "accept"), (1000, "accept"), (7, "drop"), (7, "drop")
    ]  # fmt: skip


def test_names_cannot_break_out_of_a_comment() -> None:
    store = Store()
    store.create("root", VIP, vip(name='v" accept #'))
    store.create("root", POLICY, policy(dstaddr=[{"name": 'v" accept #'}]))
    assert 'comment "VIP v? accept ?"' in render(ruleset(store))


# -- what no source settles: refused, no rules ---------------------------------------------------

Change = Callable[[Store], object]


def _policy_to(target: str, **extra: Any) -> Change:
    return lambda s: s.create("root", POLICY, policy(dstaddr=[{"name": target}], **extra))


def _vip_and_policy(**vip_extra: Any) -> Change:
    def make(s: Store) -> None:
        # None: the attribute is left out of the request.
        body = {k: v for k, v in vip(name="odd", **vip_extra).items() if v is not None}
        s.create("root", VIP, body)
        s.create("root", POLICY, policy(dstaddr=[{"name": "odd"}]))

    return make


REFUSED: dict[str, tuple[Change, str]] = {
    "extip range": (_vip_and_policy(extip="203.0.113.10-203.0.113.12"), "is a range"),
    "extip unset": (_vip_and_policy(extip="0.0.0.0"), "no extip"),
    "mappedip range": (_vip_and_policy(mappedip=[{"range": "10.0.1.1-10.0.1.9"}]), "range"),
    "two mappedips": (
        _vip_and_policy(mappedip=[{"range": "10.0.1.1"}, {"range": "10.0.1.2"}]),
        "2 mapped",
    ),
    "load-balance VIP": (_vip_and_policy(type="load-balance"), "only static-nat"),
    "disabled VIP": (_vip_and_policy(status="disable"), "disabled"),
    "icmp port forward": (_vip_and_policy(protocol="icmp"), "protocol 'icmp'"),
    "port range remapped": (_vip_and_policy(extport="8000-8010", mappedport="9000-9010"), "range"),
    "many to one": (_vip_and_policy(extport="8000-8010", mappedport="80"), "range"),
    "no mappedport": (_vip_and_policy(mappedport=None), "without extport"),
    "unmapped extintf": (_vip_and_policy(extintf="port9"), "no Linux interface"),
    "unmapped srcintf": (
        lambda s: (
            s.create("root", VIP, vip()),
            _policy_to("lab-80", srcintf=[{"name": "port9"}])(s),
        ),
        "no Linux interface",
    ),
    "address as destination": (
        lambda s: (
            s.create("root", ADDRESS, {"name": "dmz", "subnet": "10.0.1.0/24"}),
            _policy_to("dmz")(s),
        ),
        "not a VIP",
    ),
    "ipsec action": (
        lambda s: (s.create("root", VIP, vip()), _policy_to("lab-80", action="ipsec")(s)),
        "action 'ipsec'",
    ),
    "no schedule": (
        lambda s: (s.create("root", VIP, vip()), _policy_to("lab-80", schedule="")(s)),
        "schedule",
    ),
    "fqdn source": (
        lambda s: (
            s.create("root", VIP, vip()),
            s.create("root", ADDRESS, {"name": "f", "type": "fqdn"}),
            _policy_to("lab-80", srcaddr=[{"name": "f"}])(s),
        ),
        "only ipmask",
    ),
    "service without ports": (
        lambda s: (
            s.create("root", VIP, vip()),
            s.create("root", SERVICE, {"name": "none"}),
            _policy_to("lab-80", service=[{"name": "none"}])(s),
        ),
        "only TCP port services",
    ),
    "group on another interface": (
        lambda s: (
            s.create("root", VIP, vip()),
            s.create(
                "root", GROUP, {"name": "g", "interface": "port3", "member": [{"name": "lab-80"}]}
            ),
            _policy_to("g")(s),
        ),
        "another interface",
    ),
    "empty group": (
        lambda s: (
            s.create("root", GROUP, {"name": "g", "interface": "port1"}),
            _policy_to("g")(s),
        ),
        "empty",
    ),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_what_no_source_settles_is_refused(case: str) -> None:
    change, words = REFUSED[case]
    store = Store()
    change(store)
    with pytest.raises(FortiOSError) as caught:
        ruleset(store)
    assert caught.value.http_status == UNPROVEN_HTTP_STATUS
    assert caught.value.cli_error.startswith("fortigate-emulator refuses: forwarding:")
    assert words in caught.value.cli_error


def test_an_odd_vip_no_policy_names_is_not_looked_at() -> None:
    store = Store()
    store.create("root", VIP, vip(extip="203.0.113.10-203.0.113.12"))
    assert ruleset(store) == Ruleset((), ())


# -- every rendered ruleset is one nft takes ----------------------------------------------------

SCENARIOS: dict[str, Callable[[], Store]] = {
    "empty": Store,
    "edge": edge_store,
    "edge with nat": lambda: edge_store(nat="enable"),
    "edge deny": lambda: edge_store(action="deny"),
    "edge ALL": lambda: edge_store(service=[{"name": "ALL"}]),
}


def _more_scenarios() -> None:
    def remapped() -> Store:
        store = Store()
        store.create("root", VIP, vip(name="web", extport="8080", mappedport="80"))
        store.create("root", VIP, vip(name="one", extip="203.0.113.20", portforward="disable"))
        store.create("root", VIP, vip(name="udp", protocol="udp", port="53", extintf="any"))
        store.create("root", VIP, vip(name="sctp", protocol="sctp", port="9000-9010"))
        store.create("root", ADDRESS, {"name": "a", "subnet": "198.51.100.0/24"})
        store.create("root", ADDRESS, {"name": "b", "subnet": "192.0.2.0/25"})
        store.create("root", POLICY, policy(dstaddr=[{"name": "web"}, {"name": "one"}],
                                            srcaddr=[{"name": "a"}, {"name": "b"}]))  # fmt: skip
        store.create("root", POLICY, policy(policyid=2, dstaddr=[{"name": "udp"}, {"name": "sctp"}],
                                            srcintf=[{"name": "port1"}, {"name": "port3"}],
                                            dstintf=[{"name": "any"}], service=[{"name": "ALL"}],
                                            nat="enable"))  # fmt: skip
        return store

    SCENARIOS["remapped, static, udp, sctp range, any"] = remapped


_more_scenarios()


@pytest.mark.validators
@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_every_rendered_ruleset_passes_nft_check(scenario: str, tmp_path: Path) -> None:
    text = render(ruleset(SCENARIOS[scenario]()))
    path = tmp_path / "fortigate.nft"
    path.write_text(text)
    # In a throwaway network namespace (halab.validate): the machine's ruleset is never touched.
    result = run(in_namespaces([which("nft"), "-c", "-f", str(path)]))
    assert result.returncode == 0, f"{scenario}:\n{result.output}\n{text}"


# -- loading: after every change, or not at all ---------------------------------------------------


class FakeApplier:
    """Records what it is given; fails when told to."""

    def __init__(self) -> None:
        self.loaded: list[str] = []
        self.fail: str | None = None

    def apply(self, text: str) -> None:
        if self.fail is not None:
            raise ApplyError(self.fail)
        self.loaded.append(text)


TOKEN = "t"


def call(api: Api, method: str, path: str, body: Any = None) -> tuple[int, dict[str, Any]]:
    data = json.dumps(body).encode() if body is not None else b""
    return api.handle(Request(method, f"/api/v2/cmdb/{path}", {"vdom": ["root"]}, TOKEN, data))


@pytest.fixture
def applier() -> FakeApplier:
    return FakeApplier()


@pytest.fixture
def api(applier: FakeApplier) -> Api:
    return Api(Store(), TOKEN, Forwarding(applier, LINUX))


def test_every_change_is_loaded(api: Api, applier: FakeApplier) -> None:
    assert call(api, "POST", VIP, vip())[0] == 200
    assert call(api, "POST", POLICY, policy(dstaddr=[{"name": "lab-80"}]))[0] == 200
    assert len(applier.loaded) == 2
    assert "dnat ip to 10.0.1.100" not in applier.loaded[0]  # the VIP alone does nothing
    assert "dnat ip to 10.0.1.100" in applier.loaded[1]
    assert call(api, "DELETE", f"{POLICY}/1000")[0] == 200
    assert "dnat" not in applier.loaded[2]
    # Reads load nothing.
    call(api, "GET", VIP)
    assert len(applier.loaded) == 3


def test_a_load_failure_is_a_500_and_the_change_is_undone(api: Api, applier: FakeApplier) -> None:
    call(api, "POST", VIP, vip())
    _, before = call(api, "GET", VIP)
    applier.fail = "Error: Could not process rule: No such file or directory"
    status, body = call(api, "POST", POLICY, policy(dstaddr=[{"name": "lab-80"}]))
    assert (status, body["status"], body["http_status"]) == (500, "error", 500)
    assert "rolled back" in body["cli_error"] and "No such file" in body["cli_error"]
    assert "error" not in body  # no FortiOS code: no FortiGate fails this way
    assert call(api, "GET", f"{POLICY}/1000")[0] == 404
    _, after = call(api, "GET", VIP)
    assert after["revision"] == before["revision"]
    applier.fail = None
    assert call(api, "POST", POLICY, policy(dstaddr=[{"name": "lab-80"}]))[0] == 200


def test_an_untranslatable_change_is_refused_and_undone(api: Api, applier: FakeApplier) -> None:
    call(api, "POST", ADDRESS, {"name": "dmz", "subnet": "10.0.1.0/24"})
    status, body = call(api, "POST", POLICY, policy(dstaddr=[{"name": "dmz"}]))
    assert status == UNPROVEN_HTTP_STATUS
    assert "not a VIP" in body["cli_error"]
    assert call(api, "GET", f"{POLICY}/1000")[0] == 404
    assert len(applier.loaded) == 1  # the address only


def test_an_update_that_fails_to_load_keeps_the_old_values(api: Api, applier: FakeApplier) -> None:
    call(api, "POST", VIP, vip())
    applier.fail = "boom"
    assert call(api, "PUT", f"{VIP}/lab-80", {"extport": "81", "mappedport": "81"})[0] == 500
    assert call(api, "GET", f"{VIP}/lab-80")[1]["results"][0]["extport"] == "80"


def test_the_state_file_is_rolled_back_too(tmp_path: Path, applier: FakeApplier) -> None:
    state = tmp_path / "state.json"
    api = Api(Store(state_file=state), TOKEN, Forwarding(applier, LINUX))
    call(api, "POST", VIP, vip())
    applier.fail = "boom"
    call(api, "DELETE", f"{VIP}/lab-80")
    assert [v["name"] for v in Store(state_file=state).list("root", VIP)] == ["lab-80"]


def test_without_forwarding_nothing_is_translated() -> None:
    api = Api(Store(), TOKEN)
    call(api, "POST", ADDRESS, {"name": "dmz", "subnet": "10.0.1.0/24"})
    assert call(api, "POST", POLICY, policy(dstaddr=[{"name": "dmz"}]))[0] == 200


def test_nft_applier_keeps_the_file_it_loaded(tmp_path: Path) -> None:
    nft = tmp_path / "nft"
    log = tmp_path / "calls"
    fails = 'grep -q FAIL "$2" && echo "Error: no" >&2 && exit 1'
    nft.write_text(f'#!/bin/sh\necho "$@" >> {log}\n{fails}\nexit 0\n')
    nft.chmod(0o755)
    applier = NftApplier(tmp_path / "out" / "fortigate.nft", nft=str(nft))
    applier.apply("table inet fortigate {}\n")
    assert (tmp_path / "out" / "fortigate.nft").read_text() == "table inet fortigate {}\n"
    with pytest.raises(ApplyError, match="Error: no"):
        applier.apply("FAIL\n")
    # The file still holds what the kernel has; the refused one is gone.
    assert (tmp_path / "out" / "fortigate.nft").read_text() == "table inet fortigate {}\n"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["fortigate.nft"]
    assert all(line.startswith("-f ") for line in log.read_text().splitlines())
    with pytest.raises(ApplyError, match="could not run"):
        NftApplier(tmp_path / "x.nft", nft=str(tmp_path / "missing")).apply("")


def test_the_command_line_takes_interfaces_and_apply_nft() -> None:
    args = build_parser().parse_args(
        ["fortigate-emulator", "--interface", "port1=eth0", "--interface", "any", "--apply-nft"]
    )
    assert args.interface == [("port1", "eth0"), ("any", None)]
    assert args.apply_nft
    assert not build_parser().parse_args(["fortigate-emulator"]).apply_nft
    for bad in ("port1=", "port1=a b", "=eth0", "port1=waytoolonginterface"):
        with pytest.raises(SystemExit):
            build_parser().parse_args(["fortigate-emulator", "--interface", bad])
