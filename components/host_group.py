"""The VMs of one role: the one component that builds web nodes, LBs and the Linux edge alike.

What differs between roles is data, not code: which hosts, their rendered seeds (the lab renders
every host once, in :mod:`components.ha_web_lab`) and whether their readiness gates run one after
another. A group of LBs gates one at a time, so a rerun of setup never reloads two LBs at once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi

from components.readiness import SshAccess
from components.storage import LabStorage
from components.vm import LabVm, LabVmArgs
from halab.model.plan import ResolvedHost
from halab.model.roles import ZoneName
from halab.model.sections import ReadinessSpec, VmSpec
from halab.render.hosts import RenderedHost


@dataclass(kw_only=True)
class HostGroupArgs:
    """The hosts of one group, their seeds and what their VMs share.

    ``seeds`` holds an Output per host because an LB's seed carries the TLS key, a secret that
    only exists inside Pulumi.
    """

    #: Every VM's libvirt names start with it.
    lab_name: str
    vm: VmSpec
    readiness: ReadinessSpec
    #: In gate order when ``serial_gates``.
    hosts: Sequence[ResolvedHost]
    seeds: Mapping[str, pulumi.Output[RenderedHost]]
    storage: LabStorage
    network_ids: Mapping[ZoneName, pulumi.Output[str]]
    #: SSH access for the readiness gates; None when they are off.
    ssh: SshAccess | None = None
    #: Each host's gate waits for the one before it (a rerun of setup may reload daemons).
    serial_gates: bool = False
    #: Resources whose creation must finish first (LBs: the web nodes HAProxy checks).
    depends_on: Sequence[pulumi.Resource] = ()
    #: Earlier names of a host's VM, so a lab deployed under them keeps its resources.
    vm_aliases: Mapping[str, Sequence[pulumi.Alias]] = field(default_factory=dict)


class HostGroup(pulumi.ComponentResource):
    """One :class:`LabVm` per host, named ``{name}-{host}``."""

    vms: dict[str, LabVm]

    def __init__(
        self, name: str, args: HostGroupArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("ha-web-lab:index:HostGroup", name, None, opts)
        self.vms = {}
        gate_after: list[pulumi.Resource] = []
        for host in args.hosts:
            vm = LabVm(
                f"{name}-{host.name}",
                LabVmArgs(
                    lab_name=args.lab_name,
                    vm=args.vm,
                    readiness=args.readiness,
                    host=host,
                    seed=args.seeds[host.name],
                    storage=args.storage,
                    network_ids=dict(args.network_ids),
                    ssh=args.ssh,
                    gate_after=list(gate_after),
                ),
                opts=pulumi.ResourceOptions(
                    parent=self,
                    depends_on=list(args.depends_on),
                    aliases=list(args.vm_aliases.get(host.name, ())),
                ),
            )
            self.vms[host.name] = vm
            if args.serial_gates and vm.ready is not None:
                gate_after = [vm.ready]
        self.register_outputs({"hosts": list(self.vms)})
