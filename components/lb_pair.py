"""The load-balancer pair: HAProxy on both, Keepalived moving one VIP between them."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import pulumi

from components.readiness import SshAccess
from components.storage import LabStorage
from components.vm import LabVm, LabVmArgs
from halab.render import VM, RenderedHost, render_host
from halab.spec import LabSpec, ResolvedHost, Role, ZoneName


def _render_lb(spec: LabSpec, host: ResolvedHost, tls_pem: str) -> RenderedHost:
    return render_host(spec, host, VM, tls_pem)


@dataclass
class LoadBalancerPairArgs:
    """What the LB pair needs. ``tls_pem`` is the shared certificate and key (a secret)."""

    spec: LabSpec
    storage: LabStorage
    network_ids: dict[ZoneName, pulumi.Output[str]]
    tls_pem: pulumi.Output[str]
    #: Resources whose creation must finish first (the web tier: HAProxy's checks need it).
    depends_on: list[pulumi.Resource] | None = None
    #: SSH access for the readiness gates; None when they are off.
    ssh: SshAccess | None = None


class LoadBalancerPair(pulumi.ComponentResource):
    """Two LB VMs; the first lb host is the preferred VRRP master."""

    vms: dict[str, LabVm]
    vip: pulumi.Output[str]

    def __init__(
        self, name: str, args: LoadBalancerPairArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("ha-web-lab:index:LoadBalancerPair", name, None, opts)
        spec = args.spec
        lbs = spec.hosts_with_role(Role.LB)
        vms: dict[str, LabVm] = {}
        # The gates run one LB at a time, the configured backups first and the preferred master
        # last: a gate that reruns setup may reload a daemon, and the LB that most likely holds
        # the VIP should change only once the others serve the new config (a reload of both
        # Keepalived at once moved the VIP twice in the namespace lab: see the setup script).
        gate_after: list[pulumi.Resource] = []
        for host in reversed(lbs):
            # Pure rendering inside apply: the seed carries the TLS key, so it stays secret.
            seed = args.tls_pem.apply(partial(_render_lb, spec, host))
            vm = LabVm(
                f"{name}-{host.name}",
                LabVmArgs(
                    spec, host, seed, args.storage, args.network_ids, args.ssh, list(gate_after)
                ),
                opts=pulumi.ResourceOptions(parent=self, depends_on=args.depends_on or []),
            )
            vms[host.name] = vm
            gate_after = [vm.ready] if vm.ready is not None else []
        self.vms = {host.name: vms[host.name] for host in lbs}
        self.vip = pulumi.Output.from_input(str(spec.vip_address))
        self.register_outputs({"vip": self.vip, "hosts": list(self.vms)})
