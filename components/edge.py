"""The FortiGate edge in front of the VIP, configured through the FortiOS provider.

It applies the lab's one firewall model (``LabPlan.firewall_rule``): public IP:ports -> VIP,
only from the allowed sources, nothing else forwarded. The Linux edge applies the same rule in
nftables; it is a VM like any other host (:class:`components.host_group.HostGroup`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumiverse_fortios as fortios

from halab.model.plan import ANY_SOURCE
from halab.model.spec import FORTIOS_PREDEFINED_SERVICES, LabSpec


@dataclass(kw_only=True)
class FortiGateEdgeArgs:
    """What the FortiGate edge needs."""

    spec: LabSpec
    #: What must be done before the first API call: the FortiGate-VM's readiness wait (every
    #: object waits for it, not only the component: a component's dependencies are not its
    #: children's).
    after: Sequence[pulumi.Resource] = ()


class FortiGateEdge(pulumi.ComponentResource):
    """One port-forwarding VIP per port (same public IP), a VIP group, and the inbound policy.

    FortiOS maps one external port (range) per VIP object, so 80 and 443 need two VIPs; a group
    lets one policy name both. Port forwarding, rather than static NAT, keeps every other port
    of the public IP closed on the VIP itself, not only in the policy.
    """

    vips: list[fortios.firewall.Vip]
    vip_group: fortios.firewall.Vipgrp
    _spec: LabSpec
    _after: list[pulumi.Resource]
    policy: fortios.firewall.Policy

    def __init__(
        self, name: str, args: FortiGateEdgeArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("ha-web-lab:index:FortiGateEdge", name, None, opts)
        spec = self._spec = args.spec
        after = self._after = list(args.after)
        rule = spec.plan.firewall_rule
        names = spec.plan.fortios
        wan, dmz = spec.edge.fortigate.wan_interface, spec.edge.fortigate.dmz_interface
        child = pulumi.ResourceOptions(parent=self, depends_on=after)
        # A VIP in use by a policy cannot be replaced in place ("entry is used",
        # terraform-provider-fortios#123): delete first, so Pulumi takes the policy down and back up
        # around it.
        vip_opts = pulumi.ResourceOptions(parent=self, delete_before_replace=True, depends_on=after)
        vdom = spec.edge.fortigate.vdom

        # A change of edgePorts never replaces a VIP: each port's VIP is a resource of its own,
        # the port in its URN and in its FortiOS name, so a port that goes is a delete and a port
        # that comes is a create. Pulumi runs creates and updates in dependency order and
        # "schedules the deletion of resources at the very end" (pulumi/pulumi#9979), so FortiOS
        # is asked in an order it accepts: a new VIP exists before the group names it (-651
        # otherwise), and the group and the policy stop naming an old VIP before its DELETE (-23
        # while they do). tests/engine/test_fortigate_nslab_engine.py takes port 80 out and back
        # through the emulator, which refuses either wrong order as FortiOS does. (A failed up
        # leaves replaced resources' pending deletes, which the next up runs first:
        # pulumi/pulumi#2948; a port change leaves none.)
        self.vips = [
            fortios.firewall.Vip(
                f"{name}-vip-{port}",
                name=names.vip(port),
                comment=f"ha-web-lab {spec.stack}: {rule.public_ip}:{port} -> {rule.target_vip}",
                type="static-nat",
                extintf=wan,
                extip=str(rule.public_ip),
                mappedips=[fortios.firewall.VipMappedipArgs(range=str(rule.target_vip))],
                portforward="enable",
                protocol="tcp",
                extport=str(port),
                mappedport=str(port),
                arp_reply="enable",
                vdomparam=vdom,
                opts=vip_opts,
            )
            for port in rule.ports
        ]
        self.vip_group = fortios.firewall.Vipgrp(
            f"{name}-vip-group",
            name=names.vip_group,
            interface=wan,
            members=[fortios.firewall.VipgrpMemberArgs(name=vip.name) for vip in self.vips],
            # FortiOS returns member lists reordered; natural order avoids perpetual diffs.
            dynamic_sort_subtable="natural",
            vdomparam=vdom,
            opts=vip_opts,
        )
        services = [self._service(name, port, vdom) for port in rule.ports]
        sources = self._sources(name, [str(n) for n in rule.allowed_sources], vdom)
        self.policy = fortios.firewall.Policy(
            f"{name}-policy",
            # Explicit id: a new policy is appended at the end of the sequence
            # (terraform-provider-fortios#247).
            policyid=spec.edge.fortigate.policy_id,
            name=names.policy,
            comments=f"ha-web-lab {spec.stack}: public {rule.public_ip} to the LB VIP",
            srcintfs=[fortios.firewall.PolicySrcintfArgs(name=wan)],
            dstintfs=[fortios.firewall.PolicyDstintfArgs(name=dmz)],
            srcaddrs=[fortios.firewall.PolicySrcaddrArgs(name=s) for s in sources],
            dstaddrs=[fortios.firewall.PolicyDstaddrArgs(name=self.vip_group.name)],
            services=[fortios.firewall.PolicyServiceArgs(name=s) for s in services],
            action="accept",
            schedule="always",
            # Off by default: the LBs route replies back through the FortiGate (their default
            # gateway), so there is no asymmetric path and the web tier sees client addresses.
            nat="enable" if rule.source_nat else "disable",
            logtraffic="all",
            status="enable",
            dynamic_sort_subtable="natural",
            vdomparam=vdom,
            opts=child,
        )
        self.register_outputs(
            {
                "vip_names": [v.name for v in self.vips],
                "vip_group": self.vip_group.name,
                "policy_id": self.policy.policyid,
            }
        )

    def _service(self, name: str, port: int, vdom: str) -> pulumi.Input[str]:
        if port in FORTIOS_PREDEFINED_SERVICES:
            return FORTIOS_PREDEFINED_SERVICES[port]
        custom = fortios.firewall.service.Custom(
            f"{name}-service-{port}",
            name=self._spec.plan.fortios.service(port),
            tcp_portrange=str(port),
            vdomparam=vdom,
            opts=pulumi.ResourceOptions(parent=self, depends_on=self._after),
        )
        return custom.name

    def _sources(self, name: str, networks: list[str], vdom: str) -> list[pulumi.Input[str]]:
        if ANY_SOURCE in networks:
            return ["all"]
        out: list[pulumi.Input[str]] = []
        for index, net in enumerate(networks):
            address = fortios.firewall.Address(
                f"{name}-source-{index}",
                name=self._spec.plan.fortios.address(net),
                type="ipmask",
                subnet=net,
                vdomparam=vdom,
                opts=pulumi.ResourceOptions(parent=self, depends_on=self._after),
            )
            out.append(address.name)
        return out
