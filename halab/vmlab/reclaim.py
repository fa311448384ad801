"""Leftovers: libvirt objects of a lab that its Pulumi state does not know.

The libvirt provider can leave an object behind that the state never records: a domain whose
start failed stays defined (the provider returns the error without undefining it), and a CLI
killed in the middle of a create leaves whatever libvirt had made by then, with only a pending
operation in the state. The next ``pulumi up`` then fails with "already exists". Everything the
lab creates is named after the lab (``hwl-<stack>``), so an object with that prefix that the
state does not list is such a leftover, and removing it lets ``up`` create it again.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from halab.plumbing.virsh import Virsh

#: Resource type -> the libvirt kind it makes.
KINDS = {
    "libvirt:index/domain:Domain": "domain",
    "libvirt:index/volume:Volume": "volume",
    "libvirt:index/cloudInitDisk:CloudInitDisk": "volume",
    "libvirt:index/network:Network": "network",
    "libvirt:index/pool:Pool": "pool",
}


@dataclass
class Inventory:
    """Names per libvirt kind (``domain``, ``volume``, ``network``, ``pool``)."""

    names: dict[str, set[str]] = field(default_factory=dict)

    def add(self, kind: str, name: str) -> None:
        """Record one object."""
        self.names.setdefault(kind, set()).add(name)

    def of(self, kind: str) -> set[str]:
        """The names of one kind."""
        return self.names.get(kind, set())


def in_state(deployment: Mapping[str, Any]) -> Inventory:
    """What a ``pulumi stack export`` deployment holds, by libvirt kind and name."""
    known = Inventory()
    for resource in deployment.get("resources") or []:
        kind = KINDS.get(str(resource.get("type", "")))
        name = (resource.get("outputs") or {}).get("name")
        if kind and isinstance(name, str):
            known.add(kind, name)
    return known


def leftovers(lab: str, on_host: Inventory, known: Inventory) -> list[tuple[str, str]]:
    """``(kind, name)`` of every object named after ``lab`` that the state does not hold.

    Pools go last: a pool is removed only once its volumes are gone.
    """
    out: list[tuple[str, str]] = []
    for kind in ("domain", "volume", "network", "pool"):
        for name in sorted(on_host.of(kind) - known.of(kind)):
            if name == lab or name.startswith(f"{lab}-"):
                out.append((kind, name))
    return out


def on_host(virsh: Virsh, pool: str) -> Inventory:
    """The domains, networks and pools on the host, and the volumes of ``pool``."""
    found = Inventory()
    for name in virsh.names("list", "--all", "--name"):
        found.add("domain", name)
    for name in virsh.names("net-list", "--all", "--name"):
        found.add("network", name)
    for name in virsh.names("pool-list", "--all", "--name"):
        found.add("pool", name)
    if pool in found.of("pool"):
        for name in virsh.names("vol-list", pool):
            found.add("volume", name)
    return found


def remove_leftovers(virsh: Virsh, pool: str, objects: Iterable[tuple[str, str]]) -> list[str]:
    """Remove each leftover; one line per object saying what was done."""
    done: list[str] = []
    for kind, name in objects:
        if kind == "domain":
            virsh("destroy", name, check=False)
            virsh("undefine", name)
        elif kind == "volume":
            virsh("vol-delete", name, "--pool", pool)
        elif kind == "network":
            virsh("net-destroy", name, check=False)
            virsh("net-undefine", name)
        elif kind == "pool":
            virsh("pool-destroy", name, check=False)
            virsh("pool-delete", name, check=False)
            virsh("pool-undefine", name)
        done.append(f"removed {kind} {name}")
    return done


def reclaim(uri: str, lab: str, deployment: Mapping[str, Any]) -> list[str]:
    """Remove the lab's objects on ``uri`` that ``deployment`` does not hold; what was done."""
    virsh = Virsh(uri)
    return remove_leftovers(virsh, lab, leftovers(lab, on_host(virsh, lab), in_state(deployment)))


def run_reclaim(args: Any) -> int:
    """``python -m halab reclaim``: list (and with ``--yes`` remove) a stack's leftovers."""
    import json

    from halab.model.stackconfig import stack_spec

    spec = stack_spec(args.stack, Path(args.project_dir))
    exported = subprocess.run(
        ["pulumi", "stack", "export", "--stack", args.stack],
        cwd=args.project_dir,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if exported.returncode != 0:
        print(f"reclaim: pulumi stack export failed: {exported.stderr.strip()}")
        return 1
    deployment = json.loads(exported.stdout).get("deployment") or {}
    virsh = Virsh(spec.vm.libvirt_uri)
    found = leftovers(spec.lab_name, on_host(virsh, spec.lab_name), in_state(deployment))
    if not found:
        print(
            f"reclaim: nothing of {spec.lab_name} on {spec.vm.libvirt_uri} is unknown to the state"
        )
        return 0
    if not args.yes:
        for kind, name in found:
            print(f"leftover {kind} {name}")
        print("reclaim: run again with --yes to remove them, then `pulumi up`")
        return 0
    for line in remove_leftovers(virsh, spec.lab_name, found):
        print(f"reclaim: {line}")
    return 0


def add_reclaim_command(subparsers: Any) -> None:
    """Add ``reclaim`` to ``python -m halab``."""
    parser = subparsers.add_parser(
        "reclaim",
        help="remove libvirt objects of a stack's lab that its state does not know",
        description=(
            "After a failed domain start or an interrupted `pulumi up`, libvirt can hold "
            "objects named after the lab that the stack's state never recorded, and the next "
            "`pulumi up` fails with 'already exists'. This lists them (the pulumi CLI on PATH "
            "exports the state); --yes removes them. Run `pulumi refresh "
            "--clear-pending-creates` first when the CLI was killed."
        ),
    )
    parser.add_argument("--stack", required=True)
    parser.add_argument("--yes", action="store_true", help="remove them")
    parser.set_defaults(func=run_reclaim)
