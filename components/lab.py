"""The whole lab as one component: zones, storage, web tier, LB pair, edge, readiness gates."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from components.edge import FortiGateEdge, FortiGateEdgeArgs, LinuxEdge, LinuxEdgeArgs
from components.lb_pair import LoadBalancerPair, LoadBalancerPairArgs
from components.network import ZoneNetwork, ZoneNetworkArgs
from components.readiness import SshAccess, TierGate, TierGateArgs
from components.storage import LabStorage, LabStorageArgs
from components.tls import LabCertificate, LabCertificateArgs
from components.vm import LabVm
from components.web_tier import WebTier, WebTierArgs
from halab.spec import EdgeKind, LabSpec, ZoneName


@dataclass
class HaWebLabArgs:
    """The spec, the providers (made once by the program) and what only Pulumi holds."""

    spec: LabSpec
    libvirt_provider: pulumi.ProviderResource
    #: Required when the spec's edge is ``fortigate``.
    fortigate_provider: pulumi.ProviderResource | None = None
    #: None turns the readiness gates off.
    ssh: SshAccess | None = None
    tls_certificate: pulumi.Output[str] | None = None
    tls_private_key: pulumi.Output[str] | None = None


class HaWebLab(pulumi.ComponentResource):
    """The tutorial's lab: one network per zone, N web VMs, the LB pair, the edge, the gates."""

    networks: dict[ZoneName, ZoneNetwork]
    storage: LabStorage
    web: WebTier
    lbs: LoadBalancerPair
    vms: list[LabVm]
    gate: TierGate | None

    def __init__(
        self, name: str, args: HaWebLabArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("ha-web-lab:index:HaWebLab", name, None, opts)
        spec, ssh = args.spec, args.ssh
        on_libvirt = pulumi.ResourceOptions(parent=self, provider=args.libvirt_provider)

        self.networks = {
            zone: ZoneNetwork(f"{name}-zone-{zone.value}", ZoneNetworkArgs(spec, zone), on_libvirt)
            for zone in ZoneName
        }
        network_ids = {zone: net.network_id for zone, net in self.networks.items()}
        self.storage = LabStorage(f"{name}-storage", LabStorageArgs(spec), on_libvirt)
        self.web = WebTier(
            f"{name}-web", WebTierArgs(spec, self.storage, network_ids, ssh), on_libvirt
        )
        certificate = LabCertificate(
            f"{name}-tls",
            LabCertificateArgs(spec, args.tls_certificate, args.tls_private_key),
            pulumi.ResourceOptions(parent=self),
        )
        self.lbs = LoadBalancerPair(
            f"{name}-lb",
            # HAProxy's first health checks should find web nodes, so the LBs come second.
            LoadBalancerPairArgs(spec, self.storage, network_ids, certificate.pem, [self.web], ssh),
            on_libvirt,
        )
        self.vms = [*self.web.vms.values(), *self.lbs.vms.values()]
        if spec.edge is EdgeKind.FORTIGATE:
            if args.fortigate_provider is None:
                raise ValueError("edge 'fortigate' needs the FortiOS provider")
            FortiGateEdge(
                f"{name}-edge",
                FortiGateEdgeArgs(spec),
                pulumi.ResourceOptions(parent=self, provider=args.fortigate_provider),
            )
        elif spec.edge is EdgeKind.LINUX:
            edge = LinuxEdge(
                f"{name}-edge", LinuxEdgeArgs(spec, self.storage, network_ids, ssh), on_libvirt
            )
            self.vms.append(edge.vm)

        self.gate = None
        if ssh is not None:
            self.gate = TierGate(
                f"{name}-gate",
                TierGateArgs(
                    spec,
                    ssh,
                    host_gates=[vm.ready for vm in self.vms if vm.ready is not None],
                    # Any VM's new files or a new VM re-checks the tier.
                    fingerprint=pulumi.Output.all(
                        *[vm.fingerprint for vm in self.vms], *[vm.domain.id for vm in self.vms]
                    ).apply(lambda parts: ",".join(sorted(parts))),
                ),
                pulumi.ResourceOptions(parent=self),
            )
        self.register_outputs({"vms": [vm.domain.name for vm in self.vms]})
