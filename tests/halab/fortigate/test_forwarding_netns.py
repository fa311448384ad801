"""The emulator forwards by what it was told: client -- edge (emulator, --apply-nft) -- backend.

Three network namespaces of this test's own (every interface and address is made inside them; the
root namespace is never touched). The VIP, its group, the source address and the policy are made
through the emulator's REST API as the provider sends them; then a client in the policy's sources
reaches the backend's tiny HTTP server through the VIP's public address and port, a client
outside them does not, nothing reaches the backend directly, and after the policy is deleted
nothing passes. Needs root; every process is ended by its own PID and every namespace deleted,
whatever happens.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from halab.model.stackconfig import REPO_ROOT
from halab.plumbing import netns
from tests.halab.fortigate.test_rules import policy, vip

pytestmark = pytest.mark.lab

#: The edge holds the public address on its WAN side, as the lab's edge does (a FortiGate
#: answers ARP for a VIP's extip: arp-reply enable).
PUBLIC_IP = "198.51.100.5"
BACKEND = "10.0.1.100"
ALLOWED = "198.51.100.10"  # in the policy's source 198.51.100.0/25
OUTSIDER = "198.51.100.200"  # on the same wire, outside it
API_PORT = 8443
#: Seconds a blocked connection is given: a dropped SYN is retried, never answered.
BLOCKED_TIMEOUT = 2.0


@dataclass
class Net:
    """The namespaces, the emulator's API and its files."""

    client: str
    edge: str
    backend: str
    ca: Path
    token: str
    nft_file: Path
    backend_log: Path


def _ip(*args: str) -> None:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=10, check=False)
    assert done.returncode == 0, f"ip {' '.join(args)}: {done.stderr.strip()}"


def _in(ns: str, *argv: str) -> str:
    done = subprocess.run(["ip", "netns", "exec", ns, *argv],
                          capture_output=True, text=True, timeout=10, check=False)  # fmt: skip
    assert done.returncode == 0, f"{' '.join(argv)} in {ns}: {done.stderr.strip()}"
    return done.stdout


def _start(ns: str, argv: list[str], log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
    with log.open("ab") as out:
        return subprocess.Popen(["ip", "netns", "exec", ns, *argv], stdout=out,
                                stderr=subprocess.STDOUT, cwd=REPO_ROOT, env=env)  # fmt: skip


def _end(proc: subprocess.Popen[bytes]) -> None:
    # By its own PID (ip netns exec execs the command, so this is the server itself).
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def _wait_for(what: str, ready: Any, log: Path, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if ready():
            return
        time.sleep(0.2)
    pytest.fail(f"{what} not ready in {seconds:.0f} s; its log:\n{log.read_text()[-2000:]}")


@pytest.fixture
def net(tmp_path: Path) -> Iterator[Net]:
    assert os.geteuid() == 0, "this test makes network namespaces: run it as root"
    assert shutil.which("nft", path="/usr/sbin:/usr/bin"), (
        "nft is missing: apt-get install nftables"
    )
    prefix = f"hwlfgt{os.getpid() % 100000}"
    names = [f"{prefix}-{role}" for role in ("c", "e", "b")]
    client, edge, backend = names
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for name in names:
            _ip("netns", "add", name)
            _ip("-n", name, "link", "set", "lo", "up")
        # Each veth is made with both ends already inside the namespaces.
        _ip("link", "add", "c0", "netns", client, "type", "veth", "peer", "name", "wan0",
            "netns", edge)  # fmt: skip
        _ip("link", "add", "b0", "netns", backend, "type", "veth", "peer", "name", "dmz0",
            "netns", edge)  # fmt: skip
        for ns, dev, addresses in (
            (client, "c0", [f"{ALLOWED}/24", f"{OUTSIDER}/24"]),
            (edge, "wan0", ["198.51.100.1/24", f"{PUBLIC_IP}/24"]),
            (edge, "dmz0", ["10.0.1.1/24"]),
            (backend, "b0", [f"{BACKEND}/24"]),
        ):
            for address in addresses:
                _ip("-n", ns, "addr", "add", address, "dev", dev)
            _ip("-n", ns, "link", "set", dev, "up")
        _ip("-n", client, "route", "add", "default", "via", "198.51.100.1")
        _ip("-n", backend, "route", "add", "default", "via", "10.0.1.1")
        # Forwarding on in the edge's namespace only (the sysctl is per namespace).
        _in(edge, "sysctl", "-qw", "net.ipv4.ip_forward=1")

        site = tmp_path / "site"
        site.mkdir()
        (site / "index.html").write_text("backend behind the VIP\n")
        web_log = tmp_path / "backend.log"
        procs.append(_start(backend, [sys.executable, "-u", "-m", "http.server", "80", "--bind",
                                      BACKEND, "--directory", str(site)], web_log))  # fmt: skip
        state = tmp_path / "emulator" / "state.json"
        state.parent.mkdir()
        emu_log = tmp_path / "emulator.log"
        procs.append(
            _start(edge, [sys.executable, "-m", "halab", "fortigate-emulator",
                          "--listen", f"127.0.0.1:{API_PORT}", "--state", str(state),
                          "--interface", "any", "--interface", "port1=wan0",
                          "--interface", "port2=dmz0", "--apply-nft"], emu_log)
        )  # fmt: skip
        tls = state.parent / "fortigate-tls"
        _wait_for("the emulator", lambda: _api_up(edge, tls), emu_log)
        _wait_for("the backend", lambda: "Serving HTTP" in web_log.read_text(), web_log)
        yield Net(client, edge, backend, tls / "ca.pem", (tls / "token").read_text().strip(),
                  state.parent / "fortigate.nft", web_log)  # fmt: skip
    finally:
        for proc in procs:
            _end(proc)
        for name in names:
            # Deleting a namespace takes its veths with it.
            subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=10,
                           check=False)  # fmt: skip
        left = [n for n in names if netns.exists(n)]
        assert not left, f"namespaces left behind: {left}"


def _api_up(edge: str, tls: Path) -> bool:
    if not (tls / "token").exists() or not (tls / "ca.pem").exists():
        return False
    try:
        with netns.entered(edge):
            conn = http.client.HTTPSConnection(
                "127.0.0.1", API_PORT, timeout=1,
                context=ssl.create_default_context(cafile=str(tls / "ca.pem")),
            )  # fmt: skip
            conn.request("GET", "/api/v2/monitor/system/status")
            conn.getresponse().read()
            conn.close()
        return True
    except (OSError, ssl.SSLError):
        return False


def api(net: Net, method: str, path: str, body: Any = None) -> dict[str, Any]:
    """One call as the provider makes it: the token in the query, JSON, the CA verified."""
    request = urllib.request.Request(
        f"https://127.0.0.1:{API_PORT}/api/v2/cmdb/{path}?vdom=root&access_token={net.token}",
        data=json.dumps(body).encode() if body is not None else None,
        method=method,
        headers={"Content-Type": "application/json"},
    )
    context = ssl.create_default_context(cafile=str(net.ca))
    # The API listens on the edge's loopback: the socket is made in the edge's namespace.
    with netns.entered(net.edge):
        try:
            with urllib.request.urlopen(request, context=context, timeout=20) as answer:
                out: dict[str, Any] = json.load(answer)
        except urllib.error.HTTPError as error:
            pytest.fail(f"{method} {path}: {error.code} {error.read().decode()}")
    assert out["status"] == "success", out
    return out


#: What the client sees when it is not forwarded: the edge itself answers (nothing listens
#: there: no VIP took the packet), or nobody does (the forward chain dropped it).
REFUSED_BY_THE_EDGE = "refused"
DROPPED = "dropped"


def get(net: Net, source: str, host: str, port: int) -> str:
    """The body the client gets from ``host:port`` with source ``source``, or why it got none."""
    with netns.entered(net.client):
        conn = http.client.HTTPConnection(host, port, timeout=BLOCKED_TIMEOUT,
                                          source_address=(source, 0))  # fmt: skip
        try:
            conn.request("GET", "/index.html")
            answer = conn.getresponse()
            return answer.read().decode() if answer.status == 200 else f"HTTP {answer.status}"
        except ConnectionRefusedError:
            return REFUSED_BY_THE_EDGE
        except TimeoutError:
            return DROPPED
        finally:
            conn.close()


def backend_requests(net: Net) -> list[str]:
    """The requests the backend's server logged (its access log lines)."""
    return [line for line in net.backend_log.read_text().splitlines() if '"GET ' in line]


def test_a_client_reaches_the_backend_only_through_the_vip_a_policy_accepts(net: Net) -> None:
    # Port forwarding 8080 -> 80; the service to allow is the mapped port (KB-PORT): HTTP.
    body = vip(name="lab-8080", extport="8080", mappedport="80", extip=PUBLIC_IP,
               mappedip=[{"range": BACKEND}])  # fmt: skip
    api(net, "POST", "firewall/vip", body)
    api(net, "POST", "firewall/vipgrp",
        {"name": "lab-vips", "interface": "port1", "member": [{"name": "lab-8080"}]})  # fmt: skip
    api(net, "POST", "firewall/address", {"name": "lab-src", "subnet": "198.51.100.0/25"})
    # A VIP no policy names translates nothing (VIP-ORDER): the edge itself answers.
    assert get(net, ALLOWED, PUBLIC_IP, 8080) == REFUSED_BY_THE_EDGE

    api(net, "POST", "firewall/policy", policy(srcaddr=[{"name": "lab-src"}]))
    ruleset = _in(net.edge, "nft", "list", "table", "inet", "fortigate")
    assert f"dnat ip to {BACKEND}:80" in ruleset
    assert net.nft_file.read_text().startswith("#!/usr/sbin/nft -f")

    assert get(net, ALLOWED, PUBLIC_IP, 8080) == "backend behind the VIP\n"
    # Outside the policy's srcaddr: translated (KB-LOCALIN), then no policy accepts it.
    assert get(net, OUTSIDER, PUBLIC_IP, 8080) == DROPPED
    # Not the VIP's external port: no VIP takes it, so it is the edge's own.
    assert get(net, ALLOWED, PUBLIC_IP, 80) == REFUSED_BY_THE_EDGE
    # Straight to the backend: no policy for it, implicit deny.
    assert get(net, ALLOWED, BACKEND, 80) == DROPPED

    api(net, "DELETE", "firewall/policy/1000")
    assert "dnat" not in _in(net.edge, "nft", "list", "table", "inet", "fortigate")
    assert get(net, ALLOWED, PUBLIC_IP, 8080) == REFUSED_BY_THE_EDGE
    assert get(net, OUTSIDER, PUBLIC_IP, 8080) == REFUSED_BY_THE_EDGE
    # Only the one request through the VIP, from the allowed client, ever reached the backend.
    (request,) = backend_requests(net)
    assert request.startswith(ALLOWED)
