"""A zone of the lab as one libvirt network."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_libvirt as libvirt

from halab.model.spec import NetworkMode, Zone

# libvirt's names for our modes; "none" is libvirt's isolated network.
_LIBVIRT_MODE = {
    NetworkMode.NAT: "nat",
    NetworkMode.ROUTE: "route",
    NetworkMode.ISOLATED: "none",
    NetworkMode.BRIDGE: "bridge",
}


@dataclass(kw_only=True)
class ZoneNetworkArgs:
    """What a zone network needs: its name, the zone as configured, and its bridge."""

    #: The libvirt network's name (the lab's name and the zone's).
    network_name: str
    zone: Zone
    bridge: str


class ZoneNetwork(pulumi.ComponentResource):
    """One zone (public, DMZ, internal) as a libvirt network with a pinned bridge name."""

    network: libvirt.Network
    network_id: pulumi.Output[str]
    bridge: pulumi.Output[str]

    def __init__(
        self, name: str, args: ZoneNetworkArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("ha-web-lab:index:ZoneNetwork", name, None, opts)
        zone = args.zone
        bridge_mode = zone.mode is NetworkMode.BRIDGE
        self.network = libvirt.Network(
            f"{name}-net",
            name=args.network_name,
            mode=_LIBVIRT_MODE[zone.mode],
            bridge=args.bridge,
            # Without a host address the bridge is pure layer 2: a firewall owns the gateway.
            addresses=[str(zone.cidr)] if zone.host_ip is not None and not bridge_mode else None,
            # Static addresses come from cloud-init network-config; DHCP would only race them.
            dhcp=None if bridge_mode else libvirt.NetworkDhcpArgs(enabled=False),
            dns=(
                libvirt.NetworkDnsArgs(enabled=True, local_only=True)
                if zone.host_ip is not None and not bridge_mode
                else None
            ),
            # Networks do not come back after a hypervisor reboot otherwise
            # (terraform-provider-libvirt#947).
            autostart=True,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.network_id = self.network.id
        self.bridge = pulumi.Output.from_input(args.bridge)
        self.register_outputs({"network_id": self.network_id, "bridge": self.bridge})
