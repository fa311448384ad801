"""What a preview plans, judged against the change it is for (the e2e run's no-diff and
scale-out checks). No I/O here."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

#: libvirt resource types: a second ``up`` may create them for the new host only.
LIBVIRT_PREFIX = "libvirt:"
#: Steps that replace, change or remove something that exists.
DESTRUCTIVE_OPS = frozenset(
    {"replace", "create-replacement", "delete-replaced", "delete", "update", "discard"}
)


@dataclass
class PlanCheck:
    """What a preview plans, judged against the change it is for.

    ``new_hosts`` may get libvirt resources created; ``replaced_hosts`` may have theirs replaced
    (and must have their domain replaced). Commands (the readiness gates) may do anything: they
    re-run whenever what a VM should hold changes.
    """

    new_hosts: tuple[str, ...] = ()
    replaced_hosts: tuple[str, ...] = ()
    ops: dict[str, dict[str, int]] = field(default_factory=dict)
    created: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when nothing but the expected hosts' resources and re-run commands changes."""
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        """Plain data."""
        return {
            "new_hosts": list(self.new_hosts),
            "replaced_hosts": list(self.replaced_hosts),
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


#: Steps of a replacement (delete-before-replace shows ``replace``; the pair of create and
#: delete steps show the other two).
REPLACE_OPS = frozenset({"replace", "create-replacement", "delete-replaced"})
DOMAIN_TYPE = "libvirt:index/domain:Domain"


def check_steps(
    steps: Iterable[tuple[str, str, str]],
    *,
    new_hosts: Iterable[str] = (),
    replaced_hosts: Iterable[str] = (),
) -> PlanCheck:
    """Judge preview steps, each ``(op, urn, type)``, for a change that adds ``new_hosts`` and
    must replace the VMs of ``replaced_hosts`` (nothing else of libvirt's may change)."""
    check = PlanCheck(tuple(new_hosts), tuple(replaced_hosts))
    replaced_domains: set[str] = set()
    for op, urn, kind in steps:
        check.ops.setdefault(kind, {})
        check.ops[kind][op] = check.ops[kind].get(op, 0) + 1
        short = urn.rsplit("::", 1)[-1]
        libvirt = kind.startswith(LIBVIRT_PREFIX)
        if op == "create":
            check.created.append(short)
            if libvirt and not any(_names_host(urn, h) for h in check.new_hosts):
                check.problems.append(f"creates {kind} {short}, which is no new host's")
        elif op in DESTRUCTIVE_OPS:
            ours = [h for h in check.replaced_hosts if _names_host(urn, h)]
            if op in REPLACE_OPS:
                if short not in check.replaced:
                    check.replaced.append(short)
                if kind == DOMAIN_TYPE:
                    replaced_domains.update(ours)
            if libvirt and not (ours and op in REPLACE_OPS):
                check.problems.append(f"{op} of {kind} {short}")
    for host in check.new_hosts:
        if not any(_names_host(c, host) for c in check.created):
            check.problems.append(f"nothing is created for {host}")
    for host in check.replaced_hosts:
        if host not in replaced_domains:
            check.problems.append(f"{host}'s domain is not replaced")
    return check


def check_plan(preview: Mapping[str, Any], new_host: str) -> PlanCheck:
    """Judge the steps of ``pulumi preview --json`` for adding ``new_host`` (see
    :func:`check_steps`): no libvirt resource of any other host is created, replaced, updated
    or deleted."""
    steps: Iterable[Mapping[str, Any]] = preview.get("steps") or []
    return check_steps(
        ((str(s.get("op", "?")), str(s.get("urn", "")), _step_type(s)) for s in steps),
        new_hosts=(new_host,),
    )
