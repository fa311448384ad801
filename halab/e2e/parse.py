"""Pure helpers of the e2e run: what a VM printed, what a preview plans. No I/O here."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

#: HAProxy's ``srv_op_state`` values (``show servers state``).
SRV_STATES = {0: "STOPPED", 1: "STARTING", 2: "RUNNING", 3: "STOPPING"}

#: libvirt resource types: a second ``up`` may create them for the new host only.
LIBVIRT_PREFIX = "libvirt:"
#: Steps that replace, change or remove something that exists.
DESTRUCTIVE_OPS = frozenset(
    {"replace", "create-replacement", "delete-replaced", "delete", "update", "discard"}
)


def ipv4_addresses(ip_output: str) -> list[str]:
    """The IPv4 addresses (no prefix length) in ``ip -o -4 addr show`` output."""
    found: list[str] = []
    for line in ip_output.splitlines():
        words = line.split()
        for i, word in enumerate(words[:-1]):
            if word == "inet":
                found.append(words[i + 1].split("/", 1)[0])
    return found


def holds(ip_output: str, vip: str) -> bool:
    """True when the ``ip -o -4 addr show`` output lists ``vip``."""
    return vip in ipv4_addresses(ip_output)


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


@dataclass
class PlanCheck:
    """What a ``pulumi preview --json`` plans, judged for a scale-out by one host."""

    new_host: str
    ops: dict[str, dict[str, int]] = field(default_factory=dict)
    created: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when nothing but the new host's resources and re-run commands changes."""
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        """Plain data."""
        return {
            "new_host": self.new_host,
            "ok": self.ok,
            "ops": self.ops,
            "created": self.created,
            "replaced": self.replaced,
            "problems": self.problems,
        }


def _step_type(step: Mapping[str, Any]) -> str:
    for key in ("newState", "oldState"):
        state = step.get(key)
        if isinstance(state, Mapping) and state.get("type"):
            return str(state["type"])
    urn = str(step.get("urn", ""))
    parts = urn.split("::")
    return parts[-2].split("$")[-1] if len(parts) >= 3 else "?"


def _names_host(urn: str, host: str) -> bool:
    name = urn.rsplit("::", 1)[-1]
    return f"-{host}-" in f"-{name}-" or name.endswith(f"-{host}")


def check_plan(preview: Mapping[str, Any], new_host: str) -> PlanCheck:
    """Judge the steps of ``pulumi preview --json`` for adding ``new_host``.

    Allowed: anything created for the new host, ``same`` steps, and commands (the readiness
    gates, which re-run when what a VM should hold changes: the LBs' HAProxy backends).
    Refused: any replace, update or delete of a libvirt resource (domain, volume, seed disk,
    network, pool), and creating a libvirt resource for any other host.
    """
    check = PlanCheck(new_host)
    steps: Iterable[Mapping[str, Any]] = preview.get("steps") or []
    for step in steps:
        op = str(step.get("op", "?"))
        urn = str(step.get("urn", ""))
        kind = _step_type(step)
        check.ops.setdefault(kind, {})
        check.ops[kind][op] = check.ops[kind].get(op, 0) + 1
        short = urn.rsplit("::", 1)[-1]
        if op == "create":
            check.created.append(short)
            if kind.startswith(LIBVIRT_PREFIX) and not _names_host(urn, new_host):
                check.problems.append(f"creates {kind} {short}, which is not {new_host}'s")
        elif op in DESTRUCTIVE_OPS:
            if op in {"replace", "create-replacement"}:
                check.replaced.append(short)
            if kind.startswith(LIBVIRT_PREFIX):
                check.problems.append(f"{op} of {kind} {short}")
    if not any(_names_host(c, new_host) for c in check.created):
        check.problems.append(f"nothing is created for {new_host}")
    return check
