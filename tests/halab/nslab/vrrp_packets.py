"""VRRPv3 adverts built by hand (RFC 5798 section 5), to play a rogue router in the lab."""

from __future__ import annotations

import socket
import struct
from ipaddress import IPv4Address

VRRP_PROTO = 112
#: RFC 5798: a receiver drops an advert whose TTL is not 255.
VRRP_TTL = 255


def _checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071)."""
    if len(data) % 2:
        data += b"\0"
    words: tuple[int, ...] = struct.unpack(f"!{len(data) // 2}H", data)
    total = sum(words)
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def advert(
    src: IPv4Address,
    dst: IPv4Address,
    router_id: int,
    priority: int,
    addresses: list[IPv4Address],
    interval_cs: int,
) -> bytes:
    """One VRRPv3 advert (version 3, type 1); its checksum covers the IPv4 pseudo-header."""
    head = struct.pack("!BBBBH", 0x31, router_id, priority, len(addresses), interval_cs & 0xFFF)
    body = b"".join(a.packed for a in addresses)
    pseudo = src.packed + dst.packed + struct.pack("!BBH", 0, VRRP_PROTO, len(head) + 2 + len(body))
    checksum = _checksum(pseudo + head + b"\0\0" + body)
    return head + struct.pack("!H", checksum) + body


def raw_sender(sock: socket.socket) -> socket.socket:
    """Make a raw IPPROTO_VRRP socket send as a VRRP router must (TTL 255)."""
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, VRRP_TTL)
    return sock
