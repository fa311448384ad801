"""Every strictness rule of the emulator, each test naming the public source of its rule.

Short names as in halab/fortigate/schema.py: TF (terraform-provider-fortios 1.20.0 validators),
ANSIBLE (fortinet.fortios 2.4.2 versioned_schema), CLI (Fortinet's CLI reference); issue numbers
are terraform-provider-fortios's.
"""

from __future__ import annotations

from typing import Any

import pytest

from halab.fortigate.errors import (
    ENTRY_EXISTS,
    ENTRY_IN_USE,
    INVALID_VALUE,
    NOT_FOUND,
    UNPROVEN_HTTP_STATUS,
    FortiOSError,
)
from halab.fortigate.store import Store

VIP = "firewall/vip"
GROUP = "firewall/vipgrp"
POLICY = "firewall/policy"
ADDRESS = "firewall/address"
SERVICE = "firewall.service/custom"


def vip(name: str = "lab-80", port: str = "80", **extra: Any) -> dict[str, Any]:
    """A VIP as components/edge.py sends it."""
    return {
        "name": name,
        "type": "static-nat",
        "extintf": "port1",
        "extip": "203.0.113.10",
        "mappedip": [{"range": "10.0.1.100"}],
        "portforward": "enable",
        "protocol": "tcp",
        "extport": port,
        "mappedport": port,
        "arp-reply": "enable",
        **extra,
    }


def policy(**extra: Any) -> dict[str, Any]:
    """The edge's policy."""
    return {
        "policyid": 1000,
        "name": "lab-inbound",
        "srcintf": [{"name": "port1"}],
        "dstintf": [{"name": "port2"}],
        "srcaddr": [{"name": "all"}],
        "dstaddr": [{"name": "lab-vips"}],
        "service": [{"name": "HTTP"}],
        "action": "accept",
        "schedule": "always",
        "nat": "disable",
        "logtraffic": "all",
        "status": "enable",
        **extra,
    }


@pytest.fixture
def store() -> Store:
    return Store()


@pytest.fixture
def edge(store: Store) -> Store:
    """The edge's objects in place: a VIP, its group, the policy naming the group."""
    store.create("root", VIP, vip())
    store.create("root", GROUP, {"name": "lab-vips", "interface": "port1",
                                 "member": [{"name": "lab-80"}]})  # fmt: skip
    store.create("root", POLICY, policy())
    return store


def refused(call: Any, *args: Any) -> FortiOSError:
    with pytest.raises(FortiOSError) as caught:
        call(*args)
    return caught.value


# -- names, lengths, ranges (TF validators) ---------------------------------------------------


@pytest.mark.parametrize(
    ("path", "body", "limit"),
    [
        (VIP, vip(name="v" * 80), 79),  # TF resource_firewall_vip.go name 0..79
        (GROUP, {"name": "g" * 80, "interface": "port1"}, 79),  # TF vipgrp name 0..79
        (ADDRESS, {"name": "a" * 80, "subnet": "10.0.0.0/24"}, 79),  # TF address name 0..79
        (SERVICE, {"name": "s" * 80, "tcp-portrange": "8080"}, 79),  # TF service name 0..79
        (POLICY, policy(name="p" * 36), 35),  # TF resource_firewall_policy.go name 0..35
        (VIP, vip(comment="c" * 256), 255),  # TF/CLI vip comment 255
        (VIP, vip(extintf="i" * 36), 35),  # TF extintf 0..35
        (POLICY, policy(comments="c" * 1024), 1023),  # TF policy comments 0..1023
    ],
)
def test_over_long_values_are_refused_as_invalid(
    edge: Store, path: str, body: dict[str, Any], limit: int
) -> None:
    error = refused(edge.create, "root", path, body)
    assert (error.http_status, error.code) == (500, INVALID_VALUE)
    assert f"longer than {limit} characters" in error.cli_error


def test_names_at_the_limit_are_taken(store: Store) -> None:
    store.create("root", VIP, vip(name="v" * 79))
    store.create("root", POLICY, policy(name="p" * 35, dstaddr=[{"name": "v" * 79}]))


@pytest.mark.parametrize(
    ("path", "body"),
    [
        (VIP, vip(color=33)),  # TF color IntBetween(0, 32)
        (VIP, vip(id=65536)),  # TF fosid / CLI id 0..65535
        (POLICY, policy(policyid=4294967295)),  # ANSIBLE "Policy ID (0 - 4294967294)"
        (VIP, vip(port="65536")),  # ports are 1-65535
        (VIP, vip(port="90-80")),  # a range runs low to high
    ],
)
def test_out_of_range_numbers_are_refused(store: Store, path: str, body: dict[str, Any]) -> None:
    error = refused(store.create, "root", path, body)
    assert (error.http_status, error.code) == (500, INVALID_VALUE)


# -- types and enums (ANSIBLE versioned_schema options) -----------------------------------------


@pytest.mark.parametrize(
    ("path", "body"),
    [
        (VIP, vip(type="static")),  # ANSIBLE vip type options
        (VIP, vip(portforward="on")),  # ANSIBLE disable|enable
        (VIP, vip(protocol="TCP")),  # ANSIBLE tcp|udp|sctp|icmp, lower case
        (VIP, vip(**{"arp-reply": "yes"})),  # ANSIBLE disable|enable
        (POLICY, policy(action="allow")),  # ANSIBLE accept|deny|ipsec
        (POLICY, policy(logtraffic="enable")),  # ANSIBLE all|utm|disable
        (POLICY, policy(nat="yes")),  # ANSIBLE enable|disable
        (ADDRESS, {"name": "a", "type": "route-tag"}),  # ANSIBLE: route-tag is 7.4+, not 7.2
        (SERVICE, {"name": "s", "protocol": "TCP/UDP/UDP-Lite/SCTP"}),  # ANSIBLE: 7.6+ only
        (VIP, vip(extip="203.0.113.300")),  # CLI extip: an IPv4 address or range
        (VIP, vip(extip="203.0.113.20-203.0.113.10")),  # a range runs low to high
        (VIP, vip(mappedip=[{"range": "not-an-ip"}])),
        (ADDRESS, {"name": "a", "subnet": "10.0.0.0/33"}),
        (VIP, vip(comment=7)),  # a string attribute takes a string
    ],
)
def test_values_outside_the_schema_are_refused(
    store: Store, path: str, body: dict[str, Any]
) -> None:
    error = refused(store.create, "root", path, body)
    assert (error.http_status, error.code) == (500, INVALID_VALUE)
    assert error.cli_error.endswith("Command fail. Return code -651")


# -- normal forms and defaults: reads answer FortiOS, not the request ------------------------


def test_a_subnet_reads_back_as_address_and_mask(store: Store) -> None:
    # TF config.go validateConvIPMask2CIDR exists because FortiOS answers "a.b.c.d m.m.m.m".
    store.create("root", ADDRESS, {"name": "src", "type": "ipmask", "subnet": "198.51.100.0/24"})
    assert store.get("root", ADDRESS, "src")["subnet"] == "198.51.100.0 255.255.255.0"


def test_reads_fill_in_fortios_defaults_and_a_uuid(store: Store) -> None:
    store.create("root", VIP, {"name": "bare", "extip": "203.0.113.10",
                               "mappedip": [{"range": "10.0.1.100"}]})  # fmt: skip
    read = store.get("root", VIP, "bare")
    # CLI defaults: static-nat, arp-reply enable, portforward disable, protocol tcp, id 0.
    assert read["type"] == "static-nat"
    assert read["arp-reply"] == "enable"
    assert read["portforward"] == "disable"
    assert read["protocol"] == "tcp"
    assert read["id"] == 0 and read["color"] == 0
    assert len(read["uuid"]) == 36  # CLI: "automatically assigned"


def test_a_policy_reads_defaults_it_was_not_given(store: Store) -> None:
    body = policy()
    for key in ("logtraffic", "nat", "action", "status"):
        del body[key]
    store.create("root", VIP, vip(name="lab-vips"))
    store.create("root", POLICY, body)
    read = store.get("root", POLICY, "1000")
    # CLI defaults: logtraffic utm, nat disable, action deny, status enable.
    assert (read["logtraffic"], read["nat"], read["action"], read["status"]) == (
        "utm", "disable", "deny", "enable"
    )  # fmt: skip


def test_a_put_changes_only_what_it_names(edge: Store) -> None:
    before = edge.get("root", VIP, "lab-80")
    edge.update("root", VIP, "lab-80", {"comment": "new"})
    after = edge.get("root", VIP, "lab-80")
    assert after == {**before, "comment": "new"}


# -- referential integrity ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "name", "users"),
    [(VIP, "lab-80", 1), (GROUP, "lab-vips", 1)],
)
def test_an_entry_in_use_cannot_be_deleted(edge: Store, path: str, name: str, users: int) -> None:
    # terraform-provider-fortios#297: HTTP 500, "The entry is used by other 1 entries", return
    # code -23.
    error = refused(edge.delete, "root", path, name)
    assert (error.http_status, error.code) == (500, ENTRY_IN_USE)
    assert error.cli_error == (
        f"The entry is used by other {users} entries\nCommand fail. Return code -23"
    )
    assert edge.get("root", path, name)["name"] == name


def test_the_order_fortios_accepts_takes_the_edge_down(edge: Store) -> None:
    edge.delete("root", POLICY, "1000")
    edge.delete("root", GROUP, "lab-vips")
    edge.delete("root", VIP, "lab-80")
    assert edge.list("root", VIP) == []


def test_an_address_a_policy_names_is_in_use(store: Store) -> None:
    store.create("root", ADDRESS, {"name": "src", "subnet": "198.51.100.0/24"})
    store.create("root", VIP, vip(name="lab-vips"))
    store.create("root", POLICY, policy(srcaddr=[{"name": "src"}]))
    assert refused(store.delete, "root", ADDRESS, "src").code == ENTRY_IN_USE
    store.update("root", POLICY, "1000", {"srcaddr": [{"name": "all"}]})
    store.delete("root", ADDRESS, "src")


@pytest.mark.parametrize(
    ("path", "body", "missing"),
    [
        # terraform-provider-fortios#193: a policy naming an interface that does not exist.
        (POLICY, policy(srcintf=[{"name": "port2032"}]), "port2032"),
        # ANSIBLE dstaddr "Source firewall.address.name ... firewall.vip.name
        # firewall.vipgrp.name"
        (POLICY, policy(dstaddr=[{"name": "no-such-vips"}]), "no-such-vips"),
        # ANSIBLE service "Source firewall.service.custom.name ..."
        (POLICY, policy(service=[{"name": "HTTP-8080"}]), "HTTP-8080"),
        # ANSIBLE schedule "Source firewall.schedule.* .name"
        (POLICY, policy(schedule="weekdays"), "weekdays"),
        # ANSIBLE vipgrp member "VIP name. Source firewall.vip.name."
        (GROUP, {"name": "g", "interface": "port1", "member": [{"name": "nope"}]}, "nope"),
        # ANSIBLE vipgrp interface / vip extintf "Source system.interface.name"
        (GROUP, {"name": "g", "interface": "port99"}, "port99"),
        (VIP, vip(name="lab-8080", port="8080", extintf="wan9"), "wan9"),
    ],
)
def test_a_reference_to_nothing_is_refused(
    edge: Store, path: str, body: dict[str, Any], missing: str
) -> None:
    if path == POLICY:
        edge.delete("root", POLICY, "1000")
    error = refused(edge.create, "root", path, body)
    assert (error.http_status, error.code) == (500, INVALID_VALUE)
    assert error.cli_error == (
        f"node_check_object fail! for name {missing}\n"
        f"value parse error before '{missing}'\nCommand fail. Return code -651"
    )


def test_a_group_member_must_be_a_vip_not_an_address(store: Store) -> None:
    store.create("root", ADDRESS, {"name": "src", "subnet": "198.51.100.0/24"})
    body = {"name": "g", "interface": "port1", "member": [{"name": "src"}]}
    assert refused(store.create, "root", GROUP, body).code == INVALID_VALUE


def test_an_update_may_not_name_what_does_not_exist(edge: Store) -> None:
    error = refused(edge.update, "root", POLICY, "1000", {"dstaddr": [{"name": "gone"}]})
    assert error.code == INVALID_VALUE


# -- existence --------------------------------------------------------------------------------


def test_a_name_is_created_once(edge: Store) -> None:
    # terraform-provider-fortios#244: "object already exists (mkey='vpn2')", API error -5.
    error = refused(edge.create, "root", VIP, vip())
    assert (error.http_status, error.code) == (500, ENTRY_EXISTS)
    assert "object already exists (mkey='lab-80')" in error.cli_error


@pytest.mark.parametrize("call", ["get", "update", "delete"])
def test_a_missing_entry_is_404(store: Store, call: str) -> None:
    # The provider reads 404 as "gone" (sdkutils.go read); ANSIBLE: -3 "Object not found".
    args: tuple[Any, ...] = ("root", VIP, "nope")
    if call == "update":
        args = (*args, {"comment": "x"})
    error = refused(getattr(store, call), *args)
    assert (error.http_status, error.code) == (404, NOT_FOUND)


# -- refusals where no source says what FortiOS does ------------------------------------------


@pytest.mark.parametrize(
    ("call", "args", "why"),
    [
        ("create", (VIP, vip(**{"nat-source-vip": "enable"})), "attribute 'nat-source-vip'"),
        ("create", (ADDRESS, {"name": "a", "subnet": "10.0.0.1/24"}), "host bits"),
        ("create", (POLICY, policy(policyid=0)), "next free id"),
        ("create", (VIP, vip(port="0")), "port 0"),
        ("create", (VIP, vip(name="lab-80-again")), "which VIP 'lab-80' has"),
        ("create", (VIP, vip(id="7")), "given as str"),
        ("update", (VIP, "lab-80", {"name": "renamed"}), "renaming"),
        ("delete", (ADDRESS, "all"), "factory entry"),
        ("create", ("system/interface", {"name": "port11"}), "writing table"),
    ],
)
def test_what_no_source_settles_is_refused_not_guessed(
    edge: Store, call: str, args: tuple[Any, ...], why: str
) -> None:
    error = refused(getattr(edge, call), "root", *args)
    assert (error.http_status, error.code) == (UNPROVEN_HTTP_STATUS, None)
    assert why in error.cli_error
    assert "no public source says what FortiOS does" in error.cli_error


def test_an_unknown_vdom_is_refused(store: Store) -> None:
    assert refused(store.list, "vdom2", VIP).http_status == UNPROVEN_HTTP_STATUS


def test_vips_on_other_ports_of_the_same_address_coexist(edge: Store) -> None:
    edge.create("root", VIP, vip(name="lab-443", port="443"))
    edge.create("root", VIP, vip(name="lab-80-udp", protocol="udp"))


def test_the_state_file_keeps_the_configuration(tmp_path: Any) -> None:
    state = tmp_path / "state.json"
    first = Store(state_file=state)
    first.create("root", VIP, vip())
    again = Store(state_file=state)
    assert again.get("root", VIP, "lab-80") == first.get("root", VIP, "lab-80")
    assert refused(again.create, "root", VIP, vip()).code == ENTRY_EXISTS
