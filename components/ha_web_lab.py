"""The whole lab as one component: zones, storage, a host group per role, edge, readiness gates.

Every host is rendered here, once; the groups and VMs below only consume what was rendered.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial

import pulumi

from components.edge import FortiGateEdge, FortiGateEdgeArgs
from components.fortigate_vm import FortiGateVm, FortiGateVmArgs
from components.host_group import HostGroup, HostGroupArgs
from components.network import ZoneNetwork, ZoneNetworkArgs
from components.readiness import SshAccess, TierGate, TierGateArgs
from components.storage import LabStorage, LabStorageArgs
from components.tls import LabCertificate, LabCertificateArgs
from components.vm import LabVm
from halab.model.plan import ResolvedHost
from halab.model.roles import Role, ZoneName
from halab.model.sections import EdgeKind
from halab.model.spec import LabSpec
from halab.render.hosts import RenderedHost, render_all

#: The component each role's group was before one :class:`HostGroup` built them all (its name
#: is unchanged: ``{lab}-{role}``). Aliases to these keep every resource of a lab deployed then.
_EARLIER_GROUP_TYPES = {
    Role.WEB: "ha-web-lab:index:WebTier",
    Role.LB: "ha-web-lab:index:LoadBalancerPair",
    Role.EDGE: "ha-web-lab:index:LinuxEdge",
}
#: The Linux edge's VM was ``{lab}-edge-vm`` then (now ``{lab}-edge-edge``, like every host's).
_EARLIER_EDGE_VM_SUFFIX = "vm"


@dataclass(kw_only=True)
class HaWebLabArgs:
    """The spec, the providers (made once by the program) and what only Pulumi holds."""

    spec: LabSpec
    libvirt_provider: pulumi.ProviderResource
    #: Required when the spec's edge is ``fortigate``.
    fortigate_provider: pulumi.ProviderResource | None = None
    #: Required when the edge is ``fortigate-vm``: the program's one FortiOS provider, made when
    #: called with the API address as an Output that is known only once the FortiGate-VM
    #: answers, so the provider logs in to a FortiGate that exists (and a preview before the VM
    #: exists leaves it unconfigured rather than failing).
    fortigate_vm_provider: Callable[[pulumi.Output[str]], pulumi.ProviderResource] | None = None
    #: The API token (secret), which ``fortigate-vm`` puts on the FortiGate-VM's config drive.
    fortigate_token: pulumi.Output[str] | None = None
    #: None turns the readiness gates off.
    ssh: SshAccess | None = None
    tls_certificate: pulumi.Output[str] | None = None
    tls_private_key: pulumi.Output[str] | None = None


class HaWebLab(pulumi.ComponentResource):
    """The tutorial's lab: a network per zone, the web nodes, the LB group, the edge, the gates."""

    networks: dict[ZoneName, ZoneNetwork]
    storage: LabStorage
    groups: dict[Role, HostGroup]
    vms: list[LabVm]
    fortigate_vm: FortiGateVm | None
    gate: TierGate | None

    def __init__(
        self, name: str, args: HaWebLabArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("ha-web-lab:index:HaWebLab", name, None, opts)
        spec, ssh = args.spec, args.ssh

        self.networks = {
            zone: ZoneNetwork(
                f"{name}-zone-{zone.value}",
                ZoneNetworkArgs(
                    network_name=f"{spec.lab_name}-{zone.value}",
                    zone=spec.zones[zone],
                    bridge=spec.plan.bridges[zone],
                ),
                opts=pulumi.ResourceOptions(parent=self, provider=args.libvirt_provider),
            )
            for zone in ZoneName
        }
        self.storage = LabStorage(
            f"{name}-storage",
            LabStorageArgs(lab_name=spec.lab_name, pool_path=spec.plan.pool_path, vm=spec.vm),
            opts=pulumi.ResourceOptions(parent=self, provider=args.libvirt_provider),
        )
        certificate = LabCertificate(
            f"{name}-tls",
            LabCertificateArgs(
                spec=spec, certificate=args.tls_certificate, private_key=args.tls_private_key
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        seeds = _seeds(spec, certificate.pem)

        def group(
            role: Role,
            hosts: Sequence[ResolvedHost],
            *,
            serial_gates: bool = False,
            depends_on: Sequence[pulumi.Resource] = (),
        ) -> HostGroup:
            group_name = f"{name}-{role.value}"
            vm_aliases = {}
            if role is Role.EDGE:
                earlier = f"{group_name}-{_EARLIER_EDGE_VM_SUFFIX}"
                vm_aliases = {h.name: [pulumi.Alias(name=earlier)] for h in hosts}
            return HostGroup(
                group_name,
                HostGroupArgs(
                    lab_name=spec.lab_name,
                    vm=spec.vm,
                    readiness=spec.readiness,
                    hosts=hosts,
                    seeds=seeds,
                    storage=self.storage,
                    network_ids={zone: net.network_id for zone, net in self.networks.items()},
                    ssh=ssh,
                    serial_gates=serial_gates,
                    depends_on=depends_on,
                    vm_aliases=vm_aliases,
                ),
                opts=pulumi.ResourceOptions(
                    parent=self,
                    provider=args.libvirt_provider,
                    aliases=[pulumi.Alias(type_=_EARLIER_GROUP_TYPES[role])],
                ),
            )

        web = group(Role.WEB, spec.plan.hosts_with_role(Role.WEB))
        self.groups = {
            Role.WEB: web,
            # HAProxy's first health checks should find web nodes, so the LBs come second. Their
            # gates run one at a time, the lowest priority first and the preferred master last:
            # a gate that reruns setup may reload a daemon, and the LB that most likely holds the
            # VIP should change only once the others serve the new config (a reload of both
            # Keepalived at once moved the VIP twice in the namespace lab: see the setup script).
            Role.LB: group(
                Role.LB,
                tuple(reversed(spec.plan.lbs_by_priority)),
                serial_gates=True,
                depends_on=[web],
            ),
        }
        self.fortigate_vm = None
        edge_done: list[pulumi.Resource] = []
        if spec.edge.kind is EdgeKind.FORTIGATE:
            if args.fortigate_provider is None:
                raise ValueError("edge 'fortigate' needs the FortiOS provider")
            edge = FortiGateEdge(
                f"{name}-edge",
                # The FortiGate sits on the zones' networks (its API is reached through the
                # public one), so a destroy deletes its objects before the networks go; in
                # parallel, the calls that came after the public network's delete found no route.
                FortiGateEdgeArgs(spec=spec, after=[net.network for net in self.networks.values()]),
                opts=pulumi.ResourceOptions(parent=self, provider=args.fortigate_provider),
            )
            # The public IP answers only once the FortiGate forwards it: the tier gate waits.
            edge_done = [edge.policy]
        elif spec.edge.kind is EdgeKind.FORTIGATE_VM:
            if args.fortigate_vm_provider is None or args.fortigate_token is None:
                raise ValueError("edge 'fortigate-vm' needs the FortiOS provider and the token")
            fortigate_vm = self.fortigate_vm = FortiGateVm(
                f"{name}-fortigate",
                FortiGateVmArgs(
                    spec=spec,
                    storage=self.storage,
                    network_ids={zone: net.network_id for zone, net in self.networks.items()},
                    token=args.fortigate_token,
                ),
                opts=pulumi.ResourceOptions(parent=self, provider=args.libvirt_provider),
            )
            api_host = spec.fortigate_api_host
            ready = fortigate_vm.ready
            provider = args.fortigate_vm_provider(ready.stdout.apply(lambda _: api_host))
            edge = FortiGateEdge(
                f"{name}-edge",
                FortiGateEdgeArgs(spec=spec, after=[ready]),
                opts=pulumi.ResourceOptions(parent=self, provider=provider),
            )
            # The public IP answers only once the FortiGate forwards it: the tier gate waits.
            edge_done = [edge.policy]
        elif spec.edge.kind is EdgeKind.LINUX:
            self.groups[Role.EDGE] = group(Role.EDGE, spec.plan.hosts_with_role(Role.EDGE))
        self.vms = [vm for g in self.groups.values() for vm in g.vms.values()]

        self.gate = None
        if ssh is not None:
            self.gate = TierGate(
                f"{name}-gate",
                TierGateArgs(
                    spec=spec,
                    ssh=ssh,
                    host_gates=[
                        *(vm.ready for vm in self.vms if vm.ready is not None),
                        *edge_done,
                    ],
                    # Any VM's new files or a new VM re-checks the tier.
                    fingerprint=pulumi.Output.all(
                        *[vm.fingerprint for vm in self.vms], *[vm.domain.id for vm in self.vms]
                    ).apply(lambda parts: ",".join(sorted(parts))),
                ),
                opts=pulumi.ResourceOptions(parent=self),
            )
        self.register_outputs({"vms": [vm.domain.name for vm in self.vms]})


def _seeds(spec: LabSpec, tls_pem: pulumi.Output[str]) -> dict[str, pulumi.Output[RenderedHost]]:
    """Every host rendered once. A host whose files hold a secret (an LB: the TLS key) gets it
    inside ``apply``, a pure fill-in that keeps its seed secret; the others stay plain values."""
    return {
        name: (
            tls_pem.apply(partial(RenderedHost.with_secret, rendered, spec))
            if rendered.holds_secret
            else pulumi.Output.from_input(rendered)
        )
        for name, rendered in render_all(spec).items()
    }
