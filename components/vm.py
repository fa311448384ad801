"""One lab VM: disk overlay, cloud-init seed, domain with pinned MACs and a serial console."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_libvirt as libvirt

from components.readiness import SshAccess, host_gate
from components.storage import LabStorage
from halab.render import RenderedHost
from halab.spec import DomainType, LabSpec, ResolvedHost, ZoneName


@dataclass
class LabVmArgs:
    """What a VM needs.

    ``seed`` is the rendered host; it is an Output because an LB's seed carries the TLS key,
    a secret that only exists inside Pulumi.
    """

    spec: LabSpec
    host: ResolvedHost
    seed: pulumi.Output[RenderedHost]
    storage: LabStorage
    network_ids: dict[ZoneName, pulumi.Output[str]]
    #: SSH access for the readiness gate; None when the gates are off.
    ssh: SshAccess | None = None


class LabVm(pulumi.ComponentResource):
    """A libvirt domain seeded by the renderer's cloud-init files."""

    root_disk: libvirt.Volume
    seed_disk: libvirt.CloudInitDisk
    domain: libvirt.Domain
    ready: pulumi.Resource | None
    addresses: dict[str, str]

    def __init__(self, name: str, args: LabVmArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("ha-web-lab:index:LabVm", name, None, opts)
        spec, host, storage = args.spec, args.host, args.storage
        child = pulumi.ResourceOptions(parent=self)
        vm_name = f"{spec.lab_name}-{host.name}"

        self.root_disk = libvirt.Volume(
            f"{name}-root",
            name=f"{vm_name}-root.qcow2",
            pool=storage.pool.name,
            base_volume_id=storage.base_image.id,
            format="qcow2",
            opts=child,
        )
        # The seed's name carries its content hash: a changed seed is a new ISO (tpl#1150) and,
        # through the domain's cloudinit input, a new domain, since a running VM never re-reads it.
        # With the readiness gates on, the gate converges role files over SSH instead, so only a
        # new network-config (addresses, MACs) replaces the seed and the VM; user-data changes
        # are ignored here and applied by the gate, without a new VM.
        seed_opts = child
        if args.ssh is not None:
            seed_opts = pulumi.ResourceOptions(
                parent=self, ignore_changes=["userData", "metaData", "name"]
            )
        self.seed_disk = libvirt.CloudInitDisk(
            f"{name}-seed",
            name=args.seed.apply(lambda s: f"{vm_name}-seed-{s.instance_id[-12:]}.iso"),
            pool=storage.pool.name,
            user_data=args.seed.apply(lambda s: s.user_data),
            network_config=args.seed.apply(lambda s: s.network_config),
            meta_data=args.seed.apply(lambda s: s.meta_data),
            opts=seed_opts,
        )
        direct_boot = storage.kernel is not None
        self.domain = libvirt.Domain(
            f"{name}-domain",
            name=vm_name,
            type=spec.domain_type.value,
            vcpu=host.vcpus,
            memory=host.memory_mib,
            # BIOS, not UEFI: UEFI domains with nvram fail to undefine (tpl#1203).
            cpu=(
                libvirt.DomainCpuArgs(mode="host-passthrough")
                if spec.domain_type is DomainType.KVM
                else None
            ),
            kernel=storage.kernel.id if storage.kernel is not None else None,
            initrd=storage.initrd.id if storage.initrd is not None else None,
            cmdlines=_cmdline(spec.kernel_cmdline) if direct_boot else None,
            disks=[libvirt.DomainDiskArgs(volume_id=self.root_disk.id)],
            cloudinit=self.seed_disk.id,
            network_interfaces=[
                libvirt.DomainNetworkInterfaceArgs(
                    network_id=args.network_ids[leg.zone],
                    # Pinned: network-config matches on it, and libvirt must not invent one.
                    mac=leg.mac,
                    # No wait_for_lease: it hangs or fails with static addresses (tpl#1091).
                )
                for leg in host.legs
            ],
            consoles=[
                libvirt.DomainConsoleArgs(type="pty", target_port="0", target_type="serial"),
            ],
            autostart=True,
            opts=child,
        )
        self.ready = None
        if args.ssh is not None:
            self.ready = host_gate(
                name,
                spec,
                host,
                args.seed,
                args.ssh,
                pulumi.ResourceOptions(parent=self, depends_on=[self.domain]),
            )
        self.addresses = {leg.zone.value: str(leg.address) for leg in host.legs}
        self.register_outputs(
            {"domain_id": self.domain.id, "name": vm_name, "addresses": self.addresses}
        )


def _cmdline(text: str) -> list[dict[str, str]]:
    # The provider takes the command line as maps, "_" for a bare word like "rw"; one map per
    # word keeps the order (a Go map would not).
    words = []
    for word in text.split():
        key, sep, value = word.partition("=")
        words.append({key: value} if sep else {"_": word})
    return words
