"""Stack outputs, computed from the spec alone (so tests and the docs agree with `pulumi up`)."""

from __future__ import annotations

from typing import Any

from halab.model.sections import EdgeKind
from halab.model.spec import LabSpec


def ssh_command(spec: LabSpec, host: str) -> str:
    """How to log in to a host from the hypervisor (keys only, as the admin user)."""
    address = spec.plan.host(host).management_address
    return f"ssh {spec.vm.admin_user}@{address}"


def stack_outputs(spec: LabSpec) -> dict[str, Any]:
    """The VIP, the public URL, every host's addresses and an SSH command per host."""
    return {
        "vip": str(spec.vip_address),
        "publicIp": str(spec.public_address) if spec.edge.kind is not EdgeKind.NONE else None,
        "publicUrl": spec.plan.public_url,
        "edge": spec.edge.kind.value,
        "hosts": {
            h.name: {leg.zone.value: str(leg.address) for leg in h.legs} for h in spec.plan.hosts
        },
        "ssh": {h.name: ssh_command(spec, h.name) for h in spec.plan.hosts},
    }
