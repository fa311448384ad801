"""The dev stack in network namespaces, with real daemons: drills, the partition and the edge rules.

Needs root and the Debian packages of the daemons; a missing binary fails the run with the
package to install (it never skips). Every drill's report is written under
``reports/test-lab/<time>/``; a failing drill names its report.
"""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator

import pytest

from halab.drills.core import DrillResult
from halab.model.roles import APP, Role, ZoneName
from halab.model.stackconfig import REPO_ROOT
from halab.nslab.lab import LabError, NamespaceLab, http_get
from halab.plumbing import netns, procs
from halab.plumbing.tls import unverified_context
from tests.halab.nslab import vrrp_packets
from tests.halab.nslab.running import passing_drills, running_lab

pytestmark = pytest.mark.lab

STACK = "dev"
REPORTS = REPO_ROOT / "reports" / "test-lab" / time.strftime("%Y%m%d-%H%M%S")


@pytest.fixture(scope="module")
def lab() -> Iterator[NamespaceLab]:
    """The dev lab, up for the module; torn down (and checked gone) whatever happens."""
    with running_lab(STACK) as up:
        yield up


def _run(lab: NamespaceLab, name: str) -> DrillResult:
    (result,) = passing_drills(lab, [name], REPORTS)
    return result


def test_lab_serves_through_the_public_ip(lab: NamespaceLab) -> None:
    status, body = lab.client_get()
    assert status == 200 and "Hello from web-" in body
    assert lab.vip_holders() == [lab.lb_names[0]]


def _in(lab: NamespaceLab, host: str, *argv: str) -> str:
    """A command in a host's namespace (bounded); its output. Fails the test on a non-zero exit."""
    done = subprocess.run(
        procs.nsexec_argv(list(argv), net=lab.ns(host)),
        capture_output=True, text=True, timeout=10, check=False,
    )  # fmt: skip
    assert done.returncode == 0, f"{' '.join(argv)} in {host}: {done.stderr.strip()}"
    return done.stdout


def _curl(lab: NamespaceLab, host: str, *args: str) -> str:
    """The real curl in one of the lab's namespaces."""
    return _in(lab, host, "curl", "--silent", "--show-error", "--max-time", "3", *args)


def test_the_tutorials_curl_k_works_and_port_80_redirects(lab: NamespaceLab) -> None:
    """`curl -k https://<VIP>` from the DMZ (the edge sits there) and through the public IP from
    the client; plain HTTP gets a 301 to the same URL on HTTPS."""
    vip, public = lab.spec.vip_address, lab.spec.public_address
    assert "Hello from web-" in _curl(lab, "edge", "-k", f"https://{vip}/")
    assert "Hello from web-" in _curl(lab, "client", "-k", f"https://{public}/")
    redirect = _curl(lab, "client", "-o", "/dev/null", "-w", "%{http_code} %{redirect_url}",
                     f"http://{public}/")  # fmt: skip
    assert redirect == f"301 https://{public}/"


def _vip_certificate(lab: NamespaceLab) -> bytes:
    """The DER certificate the VIP presents, seen from the DMZ."""
    sock = netns.socket_in(lab.ns("edge"))
    sock.settimeout(2.0)
    with unverified_context().wrap_socket(sock) as tls:
        tls.connect((str(lab.spec.vip_address), 443))
        der = tls.getpeercert(binary_form=True)
    assert der
    return der


def test_drill_round_robin(lab: NamespaceLab) -> None:
    _run(lab, "round-robin")


def test_drill_app_crash(lab: NamespaceLab) -> None:
    _run(lab, "app-crash")


def test_drill_all_webs_down_gives_a_quick_503(lab: NamespaceLab) -> None:
    _run(lab, "all-webs-down")


def test_drill_web_hard_failure_costs_few_requests_and_the_node_returns(lab: NamespaceLab) -> None:
    result = _run(lab, "web-hard-failure")
    assert result.figures["answered_at_the_end_by"] == ["web-1"]


def test_drill_partition_heals_to_one_owner_and_the_edge_follows(lab: NamespaceLab) -> None:
    """The VIP holder has the higher priority here (lb-1, before any failover): the case where
    the backup's gratuitous ARPs during the cut leave the edge pointing at the loser."""
    assert lab.vip_holders() == [lab.lb_names[0]]
    result = _run(lab, "partition")
    assert result.figures["both_claimed_vip"], "the cut did not split the pair: nothing was tested"
    assert result.figures["owner_after_heal"] == [lab.lb_names[0]]


def test_drill_lb_hard_failure_and_return(lab: NamespaceLab) -> None:
    """The peer takes over and keeps the VIP when the old master returns (nopreempt), and it
    presents the same certificate: clients pinning it see no change on failover."""
    holder, certificate = lab.vip_holders(), _vip_certificate(lab)
    passing_drills(lab, ["lb-hard-failure", "master-returns"], REPORTS)
    assert len(lab.vip_holders()) == 1 and lab.vip_holders() != holder
    assert _vip_certificate(lab) == certificate


def _fails(ns: str, ip: str, port: int, tls: bool) -> bool:
    try:
        http_get(ns, ip, port, "/", tls=tls, timeout=0.5)
    except (OSError, ValueError):
        return True
    return False


def test_edge_rules_only_the_public_ip_reaches_the_lab(lab: NamespaceLab) -> None:
    """From the client: the public IP answers; a web node, an LB's own address and the VIP
    itself do not (the client routes them all to the edge, whose forward chain drops them)."""
    client = lab.ns("client")
    assert lab.client_get()[0] == 200
    web = lab.spec.plan.hosts_with_role(Role.WEB)[0].leg(ZoneName.INTERNAL).address
    assert _fails(client, str(web), 80, False), "client reached a web node directly"
    for lb in lab.spec.plan.hosts_with_role(Role.LB):
        own = lb.leg(ZoneName.DMZ).address
        assert _fails(client, str(own), 443, True), f"client reached {lb.name} directly"
    assert _fails(client, str(lab.spec.vip_address), 443, True), "client reached the VIP directly"
    # The public IP on a port the edge does not forward.
    assert _fails(client, str(lab.spec.public_address), 8000, False)


def test_web_nodes_accept_http_only_from_the_lbs(lab: NamespaceLab) -> None:
    web = lab.spec.plan.hosts_with_role(Role.WEB)[0]
    ip = str(web.leg(ZoneName.INTERNAL).address)
    lb = lab.lb_names[-1]
    status, _ = http_get(lab.ns(lb), ip, 80, "/healthz", tls=False, timeout=1.0)
    assert status == 200
    other = lab.spec.plan.hosts_with_role(Role.WEB)[1].name
    assert _fails(lab.ns(other), ip, 80, False), "a web node reached another web node"


def _listening(lab: NamespaceLab, host: str) -> set[str]:
    """Every listening TCP and UDP socket of a host, as "tcp 10.0.1.100:443"."""
    lines = _in(lab, host, "ss", "--no-header", "--listening", "--tcp", "--udp", "--numeric")
    return {f"{cols[0]} {cols[4]}" for cols in (line.split() for line in lines.splitlines())}


def test_only_the_designed_services_listen(lab: NamespaceLab) -> None:
    """LBs: the service on the VIP and nothing else (no stats port; the admin socket is a unix
    socket). Web nodes: nginx on the internal address, the app on loopback only."""
    vip = lab.spec.vip_address
    for lb in lab.lb_names:
        assert _listening(lab, lb) == {f"tcp {vip}:{port}" for port in lab.spec.edge.ports}, lb
    for web in lab.spec.plan.hosts_with_role(Role.WEB):
        own = web.leg(ZoneName.INTERNAL).address
        assert _listening(lab, web.name) == {f"tcp {own}:80", f"tcp 127.0.0.1:{APP.port}"}


def _rogue_adverts(lab: NamespaceLab, target: str, priority: int, count: int) -> str:
    """VRRP adverts from the edge's DMZ address to ``target``, one per advert interval, claiming
    the VIP; returns what the target's Keepalived logged meanwhile."""
    rogue = lab.spec.zones[ZoneName.DMZ].gateway_ip
    assert rogue is not None
    dst = lab.spec.plan.host(target).leg(ZoneName.DMZ).address
    packet = vrrp_packets.advert(
        rogue, dst, lab.spec.vrrp.router_id, priority, [lab.spec.vip_address],
        lab.spec.vrrp.advert_interval_ms // 10,
    )  # fmt: skip
    log = lab.logdir(target) / "keepalived.log"
    offset = log.stat().st_size
    raw = netns.socket_in(lab.ns("edge"), socket.AF_INET, socket.SOCK_RAW, vrrp_packets.VRRP_PROTO)
    with vrrp_packets.raw_sender(raw) as sock:
        for _ in range(count):
            sock.sendto(packet, (str(dst), 0))
            time.sleep(lab.spec.vrrp.advert_interval_ms / 1000)
    time.sleep(0.5)
    with log.open("rb") as handle:
        handle.seek(offset)
        return handle.read().decode(errors="replace")


def test_vrrp_from_anyone_but_the_peer_is_dropped_then_ignored(lab: NamespaceLab) -> None:
    """A rogue router on the DMZ claims the VIP with priority 255, at the advert rate for 20
    intervals: the master's host firewall drops it all, nothing reaches Keepalived, the VIP stays.

    Then one rogue advert through a hole punched for this test: Keepalived refuses it itself
    (``check_unicast_src``). Only one, because Keepalived restarts the master's advert timer on
    every packet it reads, refused or not: a stream of them would silence the master and hand the
    VIP to the backup. That is why the firewall rule, not Keepalived, is the lock that matters."""
    (master,) = lab.vip_holders()
    rogue = str(lab.spec.zones[ZoneName.DMZ].gateway_ip)
    assert rogue not in _rogue_adverts(lab, master, 255, count=20)
    assert lab.vip_holders() == [master]

    hole = f"ip saddr {rogue} ip protocol vrrp accept"
    added = _in(lab, master, "nft", "--echo", "--handle", "insert", "rule", "inet", "hwl_filter",
                "input", *hole.split())  # fmt: skip
    handle = added.rsplit("# handle", 1)[1].split()[0]
    try:
        seen = _rogue_adverts(lab, master, 255, count=1)
    finally:
        _in(lab, master, "nft", "delete", "rule", "inet", "hwl_filter", "input", "handle", handle)
    # The log line proves the forged adverts are well formed and reached Keepalived.
    assert f"unicast source address {rogue} not a unicast peer" in seen
    assert "higher priority" not in seen
    assert lab.vip_holders() == [master]


def test_second_up_is_refused(lab: NamespaceLab) -> None:
    with pytest.raises(LabError, match="down"):
        NamespaceLab.create(STACK).up(lambda _m: None)


def test_drill_haproxy_death_moves_the_vip(lab: NamespaceLab) -> None:
    """Keepalived tracks HAProxy by process events where the lab runs in the machine's own PID
    namespace, and by polling where it does not (make fresh-test): either way the VIP leaves the
    LB whose HAProxy died. Last, since it moves the VIP for the rest of the module."""
    holder = lab.vip_holders()
    (result,) = passing_drills(lab, ["haproxy-death"], REPORTS)
    assert lab.vip_holders() != holder
    assert result.figures["master"] == holder[0]
