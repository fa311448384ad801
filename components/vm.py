"""One lab VM: disk overlay, cloud-init seed, domain with pinned MACs and a serial console."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
import pulumi_libvirt as libvirt

from components.readiness import SshAccess, host_gate
from components.storage import LabStorage
from halab.model.plan import ResolvedHost
from halab.model.roles import ZoneName
from halab.model.sections import DomainType, ReadinessSpec, VmSpec
from halab.render.hosts import RenderedHost


@dataclass(kw_only=True)
class LabVmArgs:
    """What a VM needs.

    ``seed`` is the rendered host; it is an Output because an LB's seed carries the TLS key,
    a secret that only exists inside Pulumi.
    """

    #: Every VM's libvirt names start with it.
    lab_name: str
    vm: VmSpec
    readiness: ReadinessSpec
    host: ResolvedHost
    seed: pulumi.Output[RenderedHost]
    storage: LabStorage
    network_ids: dict[ZoneName, pulumi.Output[str]]
    #: SSH access for the readiness gate; None when the gates are off.
    ssh: SshAccess | None = None
    #: Gates of other VMs that must pass before this VM's gate runs (or reruns).
    gate_after: list[pulumi.Resource] = field(default_factory=list)


class LabVm(pulumi.ComponentResource):
    """A libvirt domain seeded by the renderer's cloud-init files."""

    root_disk: libvirt.Volume
    seed_disk: libvirt.CloudInitDisk
    domain: libvirt.Domain
    ready: pulumi.Resource | None
    addresses: dict[str, str]
    #: Names this machine's seed; changes only when the VM must be made anew.
    instance_id: pulumi.Output[str]
    #: Changes whenever anything the VM should hold changes (the gates re-run then).
    fingerprint: pulumi.Output[str]

    def __init__(self, name: str, args: LabVmArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("ha-web-lab:index:LabVm", name, None, opts)
        vm, host, storage = args.vm, args.host, args.storage
        child = pulumi.ResourceOptions(parent=self)
        vm_name = f"{args.lab_name}-{host.name}"

        # What the machine is seeded with, as a hash that is not secret (an LB's seed carries the
        # TLS key, but a digest of it reveals nothing): triggers and names must be plain values,
        # since pulumi-command refuses a secret trigger whose value is unknown at preview.
        self.instance_id = pulumi.Output.unsecret(args.seed.apply(lambda s: s.instance_id))
        self.fingerprint = pulumi.Output.unsecret(args.seed.apply(lambda s: s.config_hash))

        # A new instance is a new machine: its root disk is named after the instance id too, so
        # it starts from the base image (a memory change keeps the disk and only reboots).
        self.root_disk = libvirt.Volume(
            f"{name}-root",
            name=self.instance_id.apply(lambda iid: f"{vm_name}-root-{iid[-12:]}.qcow2"),
            pool=storage.pool.name,
            base_volume_id=storage.base_image.id,
            format="qcow2",
            opts=child,
        )
        # The seed's name carries the instance id: a changed seed is a new ISO
        # (terraform-provider-libvirt#1150) and, through the domain's cloudinit input, a new domain,
        # since a running VM never re-reads it. With the readiness gates on, the gate converges role
        # files over SSH instead, so only a new network-config (addresses, MACs) makes a new
        # instance id, seed and VM; user-data changes are left out of the seed's diff and applied by
        # the gate.
        self.seed_disk = libvirt.CloudInitDisk(
            f"{name}-seed",
            name=self.instance_id.apply(lambda iid: f"{vm_name}-seed-{iid[-12:]}.iso"),
            pool=storage.pool.name,
            user_data=args.seed.apply(lambda s: s.user_data),
            network_config=args.seed.apply(lambda s: s.network_config),
            meta_data=args.seed.apply(lambda s: s.meta_data),
            opts=pulumi.ResourceOptions(
                parent=self, ignore_changes=["userData"] if args.ssh is not None else None
            ),
        )
        direct_boot = storage.kernel is not None
        self.domain = libvirt.Domain(
            f"{name}-domain",
            name=vm_name,
            type=vm.domain_type.value,
            vcpu=host.vcpus,
            memory=host.memory_mib,
            # BIOS, not UEFI: UEFI domains with nvram fail to undefine
            # (terraform-provider-libvirt#1203).
            cpu=host_cpu(vm.domain_type),
            kernel=storage.kernel.id if storage.kernel is not None else None,
            initrd=storage.initrd.id if storage.initrd is not None else None,
            cmdlines=canonical_cmdlines(vm.kernel_cmdline) if direct_boot else None,
            disks=[libvirt.DomainDiskArgs(volume_id=self.root_disk.id)],
            cloudinit=self.seed_disk.id,
            network_interfaces=leg_nics(host, args.network_ids),
            consoles=[serial_console()],
            graphics=no_listening_display(),
            autostart=True,
            opts=pulumi.ResourceOptions(
                parent=self,
                # The provider updates both in place, and neither works: a new seed is swapped
                # into the CD-ROM of a running domain whose old ISO is already deleted ("Cannot
                # access storage file"), and new NICs only edit DHCP entries. A new domain is
                # what a changed seed or NIC means; its name is fixed, so the old one goes first.
                replace_on_changes=["cloudinit", "networkInterfaces"],
                delete_before_replace=True,
            ),
        )
        self.ready = None
        if args.ssh is not None:
            self.ready = host_gate(
                name,
                args.readiness,
                host,
                args.seed,
                args.ssh,
                # A new domain (a replaced VM) must pass its gate again.
                triggers=[self.fingerprint, self.domain.id],
                opts=pulumi.ResourceOptions(
                    parent=self, depends_on=[self.domain, *args.gate_after]
                ),
            )
        self.addresses = {leg.zone.value: str(leg.address) for leg in host.legs}
        self.register_outputs(
            {"domain_id": self.domain.id, "name": vm_name, "addresses": self.addresses}
        )


def host_cpu(domain_type: DomainType) -> libvirt.DomainCpuArgs | None:
    """The host's own CPU model under KVM; QEMU's default under emulation, which cannot pass one
    through."""
    if domain_type is DomainType.KVM:
        return libvirt.DomainCpuArgs(mode="host-passthrough")
    return None


def leg_nics(
    host: ResolvedHost, network_ids: Mapping[ZoneName, pulumi.Input[str]]
) -> list[libvirt.DomainNetworkInterfaceArgs]:
    """One virtio NIC per leg of ``host``, in leg order, on its zone's network."""
    return [
        libvirt.DomainNetworkInterfaceArgs(
            network_id=network_ids[leg.zone],
            # Pinned: network-config matches on it, and libvirt must not invent one.
            mac=leg.mac,
            # No wait_for_lease: it hangs or fails with static addresses
            # (terraform-provider-libvirt#1091).
        )
        for leg in host.legs
    ]


def serial_console() -> libvirt.DomainConsoleArgs:
    """The serial console every lab VM has (``virsh console``)."""
    return libvirt.DomainConsoleArgs(type="pty", target_port="0", target_type="serial")


def no_listening_display() -> libvirt.DomainGraphicsArgs:
    """The provider's default display is SPICE, which QEMU builds without SPICE (RHEL 9 and its
    rebuilds) cannot define. VNC with no network listener opens no port; the console stays
    reachable through libvirt (``virsh domdisplay``, virt-viewer) and the serial console."""
    return libvirt.DomainGraphicsArgs(type="vnc", listen_type="none")


def canonical_cmdlines(text: str) -> list[dict[str, str]]:
    """The kernel command line in the shape the libvirt provider reads back, so it never diffs.

    The provider joins every ``key=value`` and bare word of ``cmdlines`` in sorted order on
    create, and reads the line back as maps of distinct keys (a repeated key starts a new map)
    followed by one ``{"_": "bare words"}``. ``cmdlines`` forces a new domain when it differs,
    so any other shape (one map per word, say) replaces every VM on every `pulumi up`.
    """
    maps: list[dict[str, str]] = []
    current: dict[str, str] = {}
    bare: list[str] = []
    for word in sorted(text.split()):
        key, sep, value = word.partition("=")
        if not sep:
            bare.append(word)
            continue
        if key in current:
            maps.append(current)
            current = {}
        current[key] = value
    if current:
        maps.append(current)
    if bare:
        maps.append({"_": " ".join(bare)})
    return maps
