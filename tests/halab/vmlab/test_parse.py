"""What a VM printed: its addresses, the VIP's moves, HAProxy's servers."""

from __future__ import annotations

from halab.vmlab.parse import holds_vip, ipv4_addresses, servers_state, vip_change

IP_MASTER = (
    "2: dmz    inet 172.22.1.11/24 brd 172.22.1.255 scope global dmz\\"
    "       valid_lft forever preferred_lft forever\n"
    "2: dmz    inet 172.22.1.100/24 scope global secondary dmz\\"
    "       valid_lft forever preferred_lft forever\n"
)
IP_BACKUP = (
    "2: dmz    inet 172.22.1.12/24 brd 172.22.1.255 scope global dmz\\"
    "       valid_lft forever preferred_lft forever\n"
)

SERVERS = """1
# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight
3 web_nodes 1 web-1 172.22.10.10 2 0 1 1 63 15 3 4 6 0 0 0 - 80 - 0 0 - - 0
3 web_nodes 2 web-2 172.22.10.11 0 0 1 1 3 1 0 0 14 0 0 0 - 80 - 0 0 - - 0
"""


def test_ipv4_addresses_and_holds() -> None:
    assert ipv4_addresses(IP_MASTER) == ["172.22.1.11", "172.22.1.100"]
    assert holds_vip(IP_MASTER, "172.22.1.100")
    assert not holds_vip(IP_BACKUP, "172.22.1.100")
    # A prefix of the VIP is not the VIP.
    assert not holds_vip(IP_MASTER, "172.22.1.10")
    assert ipv4_addresses("") == []


def test_servers_state() -> None:
    assert servers_state(SERVERS) == {"web-1": "RUNNING", "web-2": "STOPPED"}
    assert servers_state("") == {}
    assert servers_state("No such backend.\n") == {}


def test_vip_change_reads_ip_monitor_lines() -> None:
    # As `ip -o -4 monitor address dev dmz` printed them in a namespace of this machine.
    added = (
        "3: dmz    inet 172.22.1.100/32 scope global dmz\\       valid_lft forever "
        "preferred_lft forever"
    )
    assert vip_change(added, "172.22.1.100") is True
    assert vip_change(f"Deleted {added}", "172.22.1.100") is False
    assert vip_change(added, "172.22.1.10") is None
    assert vip_change(".", "172.22.1.100") is None
