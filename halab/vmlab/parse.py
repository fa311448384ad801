"""What a VM of the lab printed (its addresses, ``ip monitor``, HAProxy's servers). No I/O here."""

from __future__ import annotations

#: HAProxy's ``srv_op_state`` values (``show servers state``).
SRV_STATES = {0: "STOPPED", 1: "STARTING", 2: "RUNNING", 3: "STOPPING"}


def ipv4_addresses(ip_output: str) -> list[str]:
    """The IPv4 addresses (no prefix length) in ``ip -o -4 addr show`` output."""
    found: list[str] = []
    for line in ip_output.splitlines():
        words = line.split()
        for i, word in enumerate(words[:-1]):
            if word == "inet":
                found.append(words[i + 1].split("/", 1)[0])
    return found


def holds_vip(ip_output: str, vip: str) -> bool:
    """True when the ``ip -o -4 addr show`` output lists ``vip``."""
    return vip in ipv4_addresses(ip_output)


def vip_change(monitor_line: str, vip: str) -> bool | None:
    """What a line of ``ip -o -4 monitor address`` says of ``vip``: True added, False deleted,
    None when it is about another address (or is a heartbeat)."""
    deleted = monitor_line.startswith("Deleted ")
    if not holds_vip(monitor_line.removeprefix("Deleted "), vip):
        return None
    return not deleted


def servers_state(text: str) -> dict[str, str]:
    """``{server: RUNNING|STOPPED|...}`` from HAProxy's ``show servers state`` answer.

    The answer is a version line, a ``# be_id be_name srv_id srv_name srv_addr srv_op_state``
    header, then one line per server; unknown states are kept as their number.
    """
    columns: list[str] = []
    states: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("#"):
            columns = line[1:].split()
            continue
        words = line.split()
        if not columns or len(words) < 6 or not words[0].isdigit():
            continue
        row = dict(zip(columns, words, strict=False))
        name, op = row.get("srv_name"), row.get("srv_op_state", "")
        if name is None:
            continue
        states[name] = SRV_STATES.get(int(op), op) if op.isdigit() else op
    return states
